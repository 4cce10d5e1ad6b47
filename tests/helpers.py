"""Plain helpers shared by tests (importable as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def copy_task_rows(n: int = 64) -> list[dict]:
    """A trivially learnable set: the answer copies the prompt's digits."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        digits = "".join(str(int(d)) for d in torch.randint(0, 10, (6,), generator=g))
        rows.append({"prompt": digits, "answer": f"<answer>{digits}</answer>"})
    return rows
