"""Stage two's `metrics.jsonl` on resume: the lines up to the checkpoint kept (a torn last line repaired),
the rest rewritten by the resumed run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gift.files import atomic_write_text

logger = logging.getLogger(__name__)


def lines_up_to(path: Path, step: int) -> list[str]:
    """The lines of steps <= `step`. A half-written last line (the run was killed while writing it; it
    belongs to a step after the checkpoint) is dropped with a warning naming it; a broken line elsewhere
    is an error naming the file and line."""
    lines = path.read_text().splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    kept = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            if i == last:
                logger.warning(
                    "%s:%d: half-written last line (the run was killed while writing it); repaired: "
                    "dropped, its step is rerun",
                    path,
                    i + 1,
                )
                continue
            raise ValueError(
                f"{path}:{i + 1}: not a JSON line ({getattr(err, 'msg', err)}); the file is damaged: "
                "delete that line, or start a new run"
            ) from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise ValueError(f"{path}:{i + 1}: a metrics line without an integer step; the file is damaged")
        if row["step"] <= step:
            kept.append(line)
    return kept


def rewind(path: Path, step: int) -> float:
    """Keep the lines of steps <= `step` (a resumed run rewrites what came after); return their wall time."""
    if not path.exists():
        return 0.0
    kept = lines_up_to(path, step)
    atomic_write_text(path, "".join(line + "\n" for line in kept))
    return json.loads(kept[-1])["wall_time"] if kept else 0.0
