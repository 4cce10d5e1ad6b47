"""Prompts in d1's format: a system prompt with the `<reasoning>`/`<answer>` skeleton, then the task.

Evaluation appends `REASONING_PREFILL` after the chat template's generation prompt, so the model
starts inside the reasoning block; the format rewards accept completions that omit it.
"""

from __future__ import annotations

from collections.abc import Sequence

REASONING_PREFILL = "<reasoning>"

SYSTEM_PROMPT = """Respond in the following format:
<reasoning>
...
</reasoning>
<answer>
...
</answer>"""


def sudoku_question(puzzle: str) -> str:
    """The user turn for a 4x4 puzzle given as 16 digits, row-major, 0 = empty."""
    return (
        "Solve this 4x4 Sudoku. The puzzle is a 16-digit string read row by row, left to right; "
        "0 marks an empty cell. Each row, each column and each 2x2 box must contain 1, 2, 3 and 4 "
        "exactly once. Put the complete 16-digit solution in the answer block.\n"
        f"Puzzle: {puzzle}"
    )


def countdown_question(numbers: Sequence[int], target: int) -> str:
    """The user turn for a Countdown problem."""
    listed = ", ".join(str(n) for n in numbers)
    return (
        f"Using the numbers [{listed}], write an arithmetic expression equal to {target}. "
        "Use every number exactly once, with only +, -, * and / and parentheses. "
        "Put only the expression in the answer block, without '=' or the target."
    )


def gsm8k_question(question: str) -> str:
    """The user turn for a GSM8K problem (the question itself)."""
    return question.strip()


def math_question(problem: str) -> str:
    """The user turn for a MATH problem; the final answer goes in `\\boxed{}` inside the answer."""
    return problem.strip() + "\nPut the final answer in \\boxed{} inside the answer block."


def build_messages(question: str, system_in_user: bool = False) -> list[dict[str, str]]:
    """Chat messages for one prompt: system skeleton + user question.

    `system_in_user` merges them into one user turn, for chat templates without a system role.
    """
    if system_in_user:
        return [{"role": "user", "content": SYSTEM_PROMPT + "\n\n" + question}]
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
    ]
