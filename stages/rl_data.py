"""Prompts and ground-truth columns for stage two, per task."""

from __future__ import annotations

from rewards import get_task
from rewards.prompts import build_messages


def rl_rows(task: str, dataset: str = "synthetic", split: str = "train", limit: int | None = None, seed: int = 0) -> list[dict]:
    """Rows `{"prompt", <task columns>}`.

    `synthetic`: the embedded model's compact format (prompt = the bare puzzle); otherwise d1's chat
    prompt (system skeleton + question) over the task's loader, from the hub (`hub`) or a local file.
    A row missing a column the task's rewards need is an error naming the row and the column.
    """
    spec = get_task(task)
    if dataset == "synthetic":
        from stages.synthetic import synthetic_rows

        rows = [{k: r[k] for k in ("prompt", *spec.columns)} for r in synthetic_rows(task, split, limit or 2048, seed)]
    else:
        kwargs = {"limit": limit} if task == "sudoku" else {"split": split, "limit": limit}
        loaded = spec.load(path=None if dataset == "hub" else dataset, **kwargs)
        rows = [{"prompt": build_messages(r["question"]), **{c: r.get(c) for c in spec.columns}} for r in loaded]
    for i, row in enumerate(rows):
        missing = [c for c in spec.columns if row.get(c) is None]
        if missing:
            raise ValueError(f"{dataset}: row {i}: missing column(s) {missing} needed by the {task} rewards")
    return rows[:limit] if limit else rows
