"""MATH-500 (d1): competition problems graded by the boxed answer; the hub's test set."""

from __future__ import annotations

from pathlib import Path

from rewards import math_task as rules
from rewards.data import loaders
from rewards.data.files import field
from rewards.tasks.task import D1_BOXED_FORMAT, Row, Task, column

# d1 eval/math500.py, MATH500_SYSTEM_PROMPT, character for character (the stray `" ` after `</answer>`).
MATH_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}.\n" + D1_BOXED_FORMAT + '" \n'
)


def math_question(problem: str) -> str:
    """d1's MATH-500 question: the dataset's problem, verbatim."""
    return problem


def load_math500(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """MATH-500 rows `{"question", "answer"}` from the fields `problem` and `answer`."""
    rows, source = loaders.source_rows(path, loaders.MATH500_HUB, split)
    return [
        {
            "question": math_question(field(row, "problem", source, i)),
            "answer": str(field(row, "answer", source, i)).strip(),
        }
        for i, row in loaders.take(rows, limit)
    ]


def check_ground_truth(row: Row) -> None:
    if not str(row["answer"]).strip():
        raise ValueError("math: empty answer")


TASK = Task(
    name="math",
    reward_funcs=(rules.math_correctness_reward, rules.math_format_reward),
    columns=rules.COLUMNS,
    metric=rules.math_metric,
    max_reward=2.5,
    check_ground_truth=check_ground_truth,
    load=load_math500,
    system_prompt=MATH_SYSTEM,
    question=lambda row: math_question(str(column("math", row, "question"))),
    protocol_size=500,
    hub_test_set="hub:HuggingFaceH4/MATH-500 (test)",
    d1_names=("math", "math500"),
)
