"""What the real sets' loaders share: reading a hub split or a local file, and d1's row selection.

Each task's loader and hub id are in its module (`rewards/tasks/`, `Task.load`); a loader returns dicts holding
`question` (d1's question text; `rewards.task_messages` turns a row into the prompt) and the task's ground-truth
columns.

d1's row selection: `d1_test_subset` (the seeded 256-row evaluation subset of the Sudoku and
Countdown test files) and `d1_train_rows` (the seeded shuffle and the 500 held-out rows of Countdown
and Sudoku training). `numpy` is imported only by those two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rewards.data.files import hub_rows, read_rows

T = TypeVar("T")

# d1's seed (eval/eval.py init_seed(42); diffu-grpo/slurm_scripts/train.yaml seed: 42), its evaluation
# subset size for Countdown and Sudoku (eval/eval.py num_evals) and the rows its training leaves out
# (diffu-grpo/diffu_grpo_train.py: the last 500 after the shuffle, Countdown and Sudoku only). Which
# task uses which is recorded on the task (`rewards.tasks.task.Task`).
D1_SEED = 42
D1_TEST_SUBSET = 256
D1_HOLDOUT = 500


def source_rows(
    path: str | Path | None, hub: tuple[str, str | None], split: str
) -> tuple[Iterable[Mapping[str, Any]], str]:
    """The rows of a local file when `path` is given, else of the hub split; and where they came from."""
    if path is not None:
        return read_rows(path), str(path)
    return hub_rows(hub[0], hub[1], split), f"hub:{hub[0]}"


def take(rows: Iterable[Mapping[str, Any]], limit: int | None) -> Iterable[tuple[int, Mapping]]:
    """`(row number from 1, row)` of the first `limit` rows (all when None)."""
    for i, row in enumerate(rows, start=1):
        if limit is not None and i > limit:
            return
        yield i, row


def d1_test_subset(rows: Sequence[T], size: int = D1_TEST_SUBSET, seed: int = D1_SEED) -> list[T]:
    """d1's evaluation subset, in d1's order: `np.random.seed(42); np.random.choice(n, 256, replace=False)`.

    On d1's 500-row Sudoku test file these are the 256 puzzles d1 scores. A file of `size` rows or fewer
    (d1's 256-row Countdown test file, SPG's 256-row Sudoku test split) gives every row, in the order
    d1's draw puts them (d1 itself would fail on fewer rows).
    """
    import numpy as np  # lazy: only d1's row selection needs it

    n = len(rows)
    # RandomState(seed) is the generator np.random.seed(seed) resets; choice() draws the same indices.
    picked = np.random.RandomState(seed).choice(n, min(size, n), replace=False)
    return [rows[int(i)] for i in picked]


def d1_train_rows(rows: Sequence[T], holdout: int = D1_HOLDOUT, seed: int = D1_SEED) -> list[T]:
    """d1's training rows: `datasets`' `shuffle(seed=42)`, then all but the last `holdout`.

    `Dataset.shuffle(seed)` orders rows by `np.random.default_rng(seed).permutation(n)`; the same call
    here gives the same rows without `datasets`. `holdout=0` only shuffles (d1's GSM8K and MATH).
    """
    import numpy as np

    if holdout < 0:
        raise ValueError(f"holdout must be >= 0, got {holdout}")
    if holdout and len(rows) <= holdout:
        raise ValueError(f"{len(rows)} training rows leave nothing after holding out the last {holdout}")
    order = np.random.default_rng(seed).permutation(len(rows))
    shuffled = [rows[int(i)] for i in order]
    return shuffled[: len(shuffled) - holdout]
