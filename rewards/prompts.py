"""The one prompt builder: d1's evaluation prompts, per task.

`task_messages(task, row)` is the only place a task's prompt text is made. RL rows
(`stages/train/rl_data.py`), `gift eval` (`stages/evaluation/evaluate.py`, d1 style) and anything else that prompts a
model on a real task call it; `gift.data.prompt_token_ids` then applies the chat template once and
appends `REASONING_PREFILL`, so training and evaluation see the same tokens.

The wording is d1's evaluation protocol (github.com/dllm-reasoning/d1, `eval/gsm8k.py`,
`eval/math500.py`, `eval/countdown.py`, `eval/sudoku.py`): a task-specific system text merged into the
single user turn as `SYSTEM + "\\n\\n" + question`, then the chat template's generation prompt, then
`<reasoning>` prefilled (d1's `add_reasoning=True`). The constants below are d1's strings character
for character, quirks included (the trailing space after `\\boxed{}. ` in GSM8K's, the stray `" ` after
`</answer>` in MATH's, the missing space before "Respond" in Countdown's): changing them would change
the tokens d1's numbers were measured with.

The embedded synthetic tasks (`rewards/data/synthetic.py`) keep their own compact format; they do not come
through here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

REASONING_PREFILL = "<reasoning>"

_BOXED_FORMAT = """Respond in the following format:
<reasoning>
Your reasoning here
</reasoning>
<answer>
\\boxed{...}
</answer>"""

# d1 eval/gsm8k.py, GSM_SYSTEM_PROMPT.
GSM8K_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}. \n" + _BOXED_FORMAT
)
# d1 eval/math500.py, MATH500_SYSTEM_PROMPT.
MATH_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}.\n" + _BOXED_FORMAT + '" \n'
)
# d1 eval/countdown.py, CTD_SYSTEM_PROMPT.
COUNTDOWN_SYSTEM = (
    "Using only the provided numbers, create an arithmetic expression that evaluates to exactly the "
    "provided target number. You may use the operations +, -, *, and / as needed, but each number must "
    "be used exactly once. Think step-by-step. After reasoning, provide only your final expression "
    "inside \\boxed{} tags without including an equals sign or the target number. "
    "For example: \\boxed{a + b * c}" + _BOXED_FORMAT
)
# d1 eval/sudoku.py, SUDOKU_SYSTEM_PROMPT.
SUDOKU_SYSTEM = """
Please solve the following 4x4 Sudoku puzzle. The puzzle is provided as a 16-character string reading left-to-right, top-to-bottom, where '0' represents empty cells.

Rules:
- Fill empty cells with digits 1-4
- Each row must contain digits 1-4 exactly once
- Each column must contain digits 1-4 exactly once
- Each 2x2 box must contain digits 1-4 exactly once

Important: Your solution must be a COMPLETE 16-character string with only the digits 1-4, representing your final solved grid.

Respond in this exact format:
<reasoning>
Your step-by-step solving process
</reasoning>
<answer>
[16-character solution string with no spaces or separators]
</answer>
"""

SYSTEM_PROMPTS: dict[str, str] = {
    "gsm8k": GSM8K_SYSTEM,
    "math": MATH_SYSTEM,
    "countdown": COUNTDOWN_SYSTEM,
    "sudoku": SUDOKU_SYSTEM,
}


# The output format alone, with no task in it: the system turn of the s1K cold-start recipes
# (`system_prompt: format`), whose questions come from many fields.
FORMAT_SYSTEM = """Respond in the following format:
<reasoning>
...
</reasoning>
<answer>
...
</answer>"""

# Texts a recipe may name instead of pasting them (`system_prompt: format`).
NAMED_SYSTEM_PROMPTS: dict[str, str] = {"format": FORMAT_SYSTEM}


def resolve_system_prompt(value: str | None) -> str | None:
    """The system text a `system_prompt` option stands for: a name in `NAMED_SYSTEM_PROMPTS`, or the
    text itself. A single word that names nothing is refused (a one-word system turn is a typo)."""
    if value in NAMED_SYSTEM_PROMPTS:
        return NAMED_SYSTEM_PROMPTS[value]
    if value and len(value.split()) == 1:
        raise ValueError(f"system_prompt {value!r} is neither a named prompt ({', '.join(NAMED_SYSTEM_PROMPTS)}) "
                         "nor a sentence")
    return value


def sudoku_question(puzzle: str) -> str:
    """d1's Sudoku question (eval/sudoku.py): the 16-digit puzzle, row-major, 0 = empty."""
    return f"Solve the following Sudoku puzzle: {puzzle}\n"


def countdown_question(numbers: Sequence[int], target: int) -> str:
    """d1's Countdown question (eval/countdown.py): `Numbers: [a, b, c]\\nTarget: T`."""
    listed = ", ".join(str(int(n)) for n in numbers)  # Python's list repr, whatever the input type
    return f"Numbers: [{listed}]\nTarget: {int(target)}"


def gsm8k_question(question: str) -> str:
    """d1's GSM8K question: the dataset's question, verbatim."""
    return question


def math_question(problem: str) -> str:
    """d1's MATH-500 question: the dataset's problem, verbatim."""
    return problem


# Each task's question from a row: Sudoku and Countdown from their ground-truth columns, so a row's
# prompt cannot disagree with what it is scored against; GSM8K and MATH from `question`.
_QUESTIONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "sudoku": lambda row: sudoku_question(str(_column("sudoku", row, "puzzle"))),
    "countdown": lambda row: countdown_question(
        _column("countdown", row, "numbers"), _column("countdown", row, "target")
    ),
    "gsm8k": lambda row: gsm8k_question(str(_column("gsm8k", row, "question"))),
    "math": lambda row: math_question(str(_column("math", row, "question"))),
}


def task_question(task: str, row: Mapping[str, Any]) -> str:
    """The question part of `task`'s prompt for one row."""
    if task not in _QUESTIONS:
        raise ValueError(f"no prompt for task {task!r}; known tasks: {sorted(_QUESTIONS)}")
    return _QUESTIONS[task](row)


def task_prompt(task: str, row: Mapping[str, Any]) -> str:
    """The user turn: the task's system text, a blank line, the question (d1's merged turn)."""
    question = task_question(task, row)  # raises for an unknown task or a missing column
    return SYSTEM_PROMPTS[task] + "\n\n" + question


def task_messages(task: str, row: Mapping[str, Any]) -> list[dict[str, str]]:
    """Chat messages for one row: a single user turn (d1 has no system turn in train or eval)."""
    return [{"role": "user", "content": task_prompt(task, row)}]


def _column(task: str, row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    if value is None:
        from rewards.columns import MissingColumnError  # lazy: columns imports extract, not prompts

        raise MissingColumnError(f"{task} prompt needs column {name!r}; row has {sorted(row)}")
    return value
