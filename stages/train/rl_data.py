"""Prompts and ground-truth columns for stage two, per task."""

from __future__ import annotations

from rewards import get_task, task_messages
from rewards.data.loaders import d1_train_rows


def rl_rows(
    task: str, dataset: str = "synthetic", split: str = "train", limit: int | None = None, seed: int = 0
) -> list[dict]:
    """Rows `{"prompt", <task columns>}`.

    `synthetic`: the embedded model's compact format (prompt = the bare puzzle). Otherwise the task's
    loader, from the hub (`hub`) or a local file, with d1's row selection (`rewards.data.d1_train_rows`:
    the seed-42 shuffle, then Countdown and Sudoku drop their last 500 rows; Countdown keeps only
    3-number problems), and the prompt from `rewards.task_messages`: the same user turn `gift eval`
    builds for that row. Prefill `<reasoning>` (RLConfig `prefill`) as `gift eval` does and the tokens
    are identical. `limit` keeps the first rows of that selection. A row missing a column the task's
    rewards need is an error naming the row and the column.
    """
    spec = get_task(task)
    if dataset == "synthetic":
        from rewards.data.synthetic import synthetic_rows

        rows = [{k: r[k] for k in ("prompt", *spec.columns)} for r in synthetic_rows(task, split, limit or 2048, seed)]
    else:
        loaded = spec.load(split=split, path=None if dataset == "hub" else dataset, **spec.train_options)
        loaded = d1_train_rows(loaded, holdout=spec.train_holdout)
        rows = [{"prompt": task_messages(task, r), **{c: r.get(c) for c in spec.columns}} for r in loaded]
    for i, row in enumerate(rows):
        missing = [c for c in spec.columns if row.get(c) is None]
        if missing:
            raise ValueError(f"{dataset}: row {i}: missing column(s) {missing} needed by the {task} rewards")
    return rows[:limit] if limit else rows
