"""GSM8K (d1): grade-school word problems graded by the final number; the hub's test set. The whole task in one
module: numeric correctness (2.0) plus two d1-style format rewards (0.5 each), the metric, d1's prompt, the
loader, and the `Task` the registry lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from rewards.columns import accuracy, judge_answers, texts
from rewards.data import loaders
from rewards.data.files import field
from rewards.extract import final_answer, has_tags_in_order, is_integer_text, last_number
from rewards.tasks.task import D1_BOXED_FORMAT, Row, Task, column

# --- Rules: rewards and metric ---------------------------------------------------------------------------------------

NAME = "gsm8k"  # the task name the column errors carry
COLUMNS = ("answer",)
CORRECT_REWARD = 2.0
FORMAT_REWARD = 0.5


def reference_number(answer: Any) -> Fraction:
    """The reference as a number: "18", "1,234", 18, or a full GSM8K solution ending in "#### 18"."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return Fraction(answer)
    text = str(answer)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    value = last_number(text)
    if value is None:
        raise ValueError(f"gsm8k: reference answer {answer!r} holds no number")
    return value


def predicted_number(text: str) -> Fraction | None:
    """The number in the last `\\boxed{}`, else the last number in the last answer block."""
    answer = final_answer(text)
    return None if answer is None else last_number(answer)


def is_correct(text: str, answer: Any) -> bool:
    """Numbers compared exactly: "18", "18.0", "$18", "18 eggs" all equal 18."""
    predicted = predicted_number(text)
    return predicted is not None and predicted == reference_number(answer)


def gsm8k_correctness_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """2.0 when the extracted final number equals the reference number, else 0.0. Range {0, 2}."""
    return [CORRECT_REWARD if right else 0.0 for right in judge_answers(NAME, columns, completions, is_correct)]


def gsm8k_format_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """0.5 when `<reasoning>...</reasoning>` is followed by `<answer>...</answer>`. Range {0, 0.5}."""
    return [FORMAT_REWARD if has_tags_in_order(text) else 0.0 for text in texts(completions)]


def gsm8k_integer_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """0.5 when the final answer is written as a bare integer ("18", "-3", "1,234"). Range {0, 0.5}."""
    out = []
    for text in texts(completions):
        answer = final_answer(text)
        out.append(FORMAT_REWARD if answer is not None and is_integer_text(answer) else 0.0)
    return out


def gsm8k_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Accuracy (boxed number, falling back to the answer block) and n."""
    return accuracy(judge_answers(NAME, columns, completions, is_correct))


# --- Data, prompt and the Task ---------------------------------------------------------------------------------------

GSM8K_HUB = ("openai/gsm8k", "main")

# d1 eval/gsm8k.py, GSM_SYSTEM_PROMPT, character for character (the space after `\\boxed{}. `).
GSM8K_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}. \n" + D1_BOXED_FORMAT
)


def gsm8k_question(question: str) -> str:
    """d1's GSM8K question: the dataset's question, verbatim."""
    return question


def load_gsm8k(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """GSM8K rows `{"question", "answer", "reasoning"}`; `answer` is the number after `####`."""
    rows, source = loaders.source_rows(path, GSM8K_HUB, split)
    out = []
    for i, row in loaders.take(rows, limit):
        question, solution = field(row, "question", source, i), str(field(row, "answer", source, i))
        reasoning, _, final = solution.rpartition("####")
        final = final.strip().replace(",", "")
        if last_number(final) is None:
            raise ValueError(f"{source}: row {i}: column 'answer' has no number after '####'")
        out.append({"question": gsm8k_question(question), "answer": final, "reasoning": reasoning.strip()})
    return out


def check_ground_truth(row: Row) -> None:
    reference_number(row["answer"])


TASK = Task(
    name=NAME,
    reward_funcs=(gsm8k_correctness_reward, gsm8k_format_reward, gsm8k_integer_reward),
    columns=COLUMNS,
    metric=gsm8k_metric,
    max_reward=3.0,
    check_ground_truth=check_ground_truth,
    load=load_gsm8k,
    system_prompt=GSM8K_SYSTEM,
    question=lambda row: gsm8k_question(str(column("gsm8k", row, "question"))),
    protocol_size=1319,
    hub_test_set="hub:openai/gsm8k (test)",
    d1_names=("gsm8k",),
)
