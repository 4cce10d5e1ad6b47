"""Synthetic tasks for the embedded default, in a compact format a ~1M-parameter model can learn.

The full d1 prompt (system skeleton + instructions) is hundreds of characters; for the embedded
character-level model the prompt is just the puzzle, and the answer keeps the output format taught in
both stages, with single-token tags: `<reasoning>...</reasoning><answer>...</answer>`. Train and test
sets are disjoint (training puzzles exclude the test puzzles). Each task's generator is its `Task.synthetic`
(rewards/tasks/); this module looks it up.
"""

from __future__ import annotations

from rewards.registry import TASKS, get_task
from rewards.tasks.sudoku import SIZE as SUDOKU_CELLS
from rewards.tasks.sudoku import compact_sudoku_cells
from rewards.tasks.task import SYNTHETIC_TEST_SIZE as TEST_SIZE

__all__ = [
    "SUDOKU_CELLS",
    "TEST_SIZE",
    "compact_sudoku_cells",
    "synthetic_examples",
    "synthetic_rows",
    "synthetic_tasks",
]


def synthetic_tasks() -> tuple[str, ...]:
    """The registered tasks that have synthetic data."""
    return tuple(name for name, task in TASKS.items() if task.synthetic is not None)


def synthetic_rows(task: str, split: str, n: int, seed: int = 0) -> list[dict]:
    """Rows with `prompt`, `answer` (the gold completion) and the task's ground-truth columns."""
    if task not in TASKS or get_task(task).synthetic is None:
        raise ValueError(f"unknown synthetic task {task!r}; choose one of {', '.join(synthetic_tasks())}")
    return get_task(task).synthetic(split, n, seed)


def synthetic_examples(task: str, n: int, seed: int = 0) -> list[dict]:
    """Training prompt/answer examples of a synthetic task."""
    return [{"prompt": r["prompt"], "answer": r["answer"]} for r in synthetic_rows(task, "train", n, seed)]
