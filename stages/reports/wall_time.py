"""Where a pipeline run's wall time went: seconds by stage, the machine's core count and the speed of one
step of each kind, so a reader can tell a slow machine from a slow job."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from stages.run_record import STAGES, RunRecord


def seconds_per_step(run_dir: Path) -> float | None:
    """A stage-two run's wall time per optimizer step (its last metrics line: cumulative wall time and step)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[-1]["wall_time"] / lines[-1]["step"] if lines and lines[-1].get("step") else None


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.mean(present), 4) if present else None


def wall_time(state: dict[str, Any], record: RunRecord, stage_one_step_s: float | None, workers: int) -> dict[str, Any]:
    """`results.json`'s wall-time block: every step's seconds, their sum by stage, the elapsed wall clock, the
    cores and worker processes, and seconds per step (stage one: mean of the runs' median step; stage two:
    per optimizer step; frozen control: per generation batch)."""
    steps = state.get("steps", {})
    by_stage = {stage: round(sum(v["seconds"] for v in steps.values() if v.get("stage") == stage), 1)
                for stage in STAGES}
    per_step = {"stage one": _mean([stage_one_step_s]),
                "stage two": _mean([seconds_per_step(Path(r.run_dir)) for r in record.stage_two]),
                "frozen control": _mean([seconds_per_step(Path(r.control.run_dir))
                                         for r in record.stage_two if r.control is not None])}
    return {"steps": {k: v["seconds"] for k, v in steps.items()},
            "total_s": sum(v["seconds"] for v in steps.values()), "elapsed_s": state.get("elapsed_s"),
            "by_stage_s": by_stage, "cores": record.cores, "workers": workers, "seconds_per_step": per_step}
