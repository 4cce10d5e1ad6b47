"""Loaders for the real evaluation and training sets: hub first, or a local file via `path`.

Each returns a list of dicts holding `question` (d1's question text; `rewards.task_messages` turns a row
into the prompt) and the ground-truth columns the task's rewards need.

d1's row selection is here too: `d1_test_subset` (the seeded 256-row evaluation subset of the Sudoku and
Countdown test files) and `d1_train_rows` (the seeded shuffle and the 500 held-out rows of Countdown
and Sudoku training). `numpy` is imported only by those two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rewards import countdown as countdown_task
from rewards import sudoku as sudoku_task
from rewards.columns import MissingColumnError
from rewards.data.files import field, hub_rows, read_rows
from rewards.extract import last_number
from rewards.prompts import countdown_question, gsm8k_question, math_question, sudoku_question

T = TypeVar("T")

GSM8K_HUB = ("openai/gsm8k", "main")
# d1's seed (eval/eval.py init_seed(42); diffu-grpo/slurm_scripts/train.yaml seed: 42), its evaluation
# subset size for Countdown and Sudoku (eval/eval.py num_evals) and the rows its training leaves out
# (diffu-grpo/diffu_grpo_train.py: the last 500 after the shuffle, Countdown and Sudoku only). Which
# task uses which is recorded on the task (`rewards.registry.Task`).
D1_SEED = 42
D1_TEST_SUBSET = 256
D1_HOLDOUT = 500
D1_COUNTDOWN_NUMBERS = 3  # d1 trains Countdown on the 3-number problems (diffu-grpo/data_utils.py)
# File names of the published Sudoku splits (neither is on the hub; pass their paths). SPG
# (facebookresearch/SPG, dataset/) re-split d1's puzzles so that train and test share no solution grid.
SUDOKU_SPLITS = {
    "d1": {"train": "4x4_sudoku_unique_puzzles.csv", "test": "4x4_test_sudoku.csv"},
    "spg": {"train": "train_sudoku_split_new.csv", "test": "test_sudoku_split_new.csv"},
}
MATH500_HUB = ("HuggingFaceH4/MATH-500", None)
COUNTDOWN_HUB = ("Jiayi-Pan/Countdown-Tasks-3to4", None)


def _rows(
    path: str | Path | None, hub: tuple[str, str | None], split: str
) -> tuple[Iterable[Mapping[str, Any]], str]:
    if path is not None:
        return read_rows(path), str(path)
    return hub_rows(hub[0], hub[1], split), f"hub:{hub[0]}"


def _take(rows: Iterable[Mapping[str, Any]], limit: int | None) -> Iterable[tuple[int, Mapping]]:
    for i, row in enumerate(rows, start=1):
        if limit is not None and i > limit:
            return
        yield i, row


def load_gsm8k(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """GSM8K rows `{"question", "answer", "reasoning"}`; `answer` is the number after `####`."""
    rows, source = _rows(path, GSM8K_HUB, split)
    out = []
    for i, row in _take(rows, limit):
        question, solution = field(row, "question", source, i), str(field(row, "answer", source, i))
        reasoning, _, final = solution.rpartition("####")
        final = final.strip().replace(",", "")
        if last_number(final) is None:
            raise ValueError(f"{source}: row {i}: column 'answer' has no number after '####'")
        out.append({"question": gsm8k_question(question), "answer": final, "reasoning": reasoning.strip()})
    return out


def load_math500(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """MATH-500 rows `{"question", "answer"}` from the fields `problem` and `answer`."""
    rows, source = _rows(path, MATH500_HUB, split)
    return [
        {
            "question": math_question(field(row, "problem", source, i)),
            "answer": str(field(row, "answer", source, i)).strip(),
        }
        for i, row in _take(rows, limit)
    ]


def load_countdown(
    split: str = "train", path: str | Path | None = None, limit: int | None = None, num_numbers: int | None = None
) -> list[dict]:
    """Countdown rows `{"question", "numbers", "target"}`.

    Accepts the hub's `nums`/`target` fields and d1's test format `{"input": "a,b,c", "output": "T"}`.
    `num_numbers` keeps only problems with that many numbers (d1 trains on the 3-number ones); `limit`
    counts the rows kept.
    """
    rows, source = _rows(path, COUNTDOWN_HUB, split)
    out = []
    for i, row in enumerate(rows, start=1):
        if limit is not None and len(out) >= limit:
            break
        if "nums" in row or "target" in row:
            raw_numbers, raw_target = field(row, "nums", source, i), field(row, "target", source, i)
        elif "input" in row or "output" in row:
            raw_numbers, raw_target = field(row, "input", source, i), field(row, "output", source, i)
        else:
            raise MissingColumnError(
                f"{source}: row {i}: missing columns 'nums'/'target' (or 'input'/'output'); "
                f"columns present: {sorted(row)}"
            )
        try:
            numbers, target = countdown_task.ground_truth(raw_numbers, raw_target)
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        if num_numbers is not None and len(numbers) != num_numbers:
            continue
        out.append({"question": countdown_question(numbers, target), "numbers": numbers, "target": target})
    return out


def load_sudoku(path: str | Path, limit: int | None = None, split: str | None = None) -> list[dict]:
    """Sudoku rows `{"question", "puzzle", "solution"}` from d1's CSV (`Puzzle`, `Solution` columns).

    There is no hub copy of d1's set; use `rewards.data.generate_sudoku` for synthetic puzzles. `split`
    is accepted so every task's loader takes the same keywords; the file itself is the split
    (`SUDOKU_SPLITS`).
    """
    if path is None:
        raise ValueError("load_sudoku needs a path to d1's CSV; or use generate_sudoku()")
    source = str(path)
    out = []
    for i, row in _take(read_rows(path), limit):
        # d1's file capitalises the columns; accept lower case too.
        p_key = "puzzle" if "puzzle" in row else "Puzzle"
        s_key = "solution" if "solution" in row else "Solution"
        try:
            puzzle = sudoku_task.grid_string(field(row, p_key, source, i), "puzzle")
            solution = sudoku_task.grid_string(field(row, s_key, source, i), "solution")
        except MissingColumnError:
            raise
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        out.append({"question": sudoku_question(puzzle), "puzzle": puzzle, "solution": solution})
    return out


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
