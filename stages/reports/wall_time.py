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
    by_stage = {
        stage: round(sum(v["seconds"] for v in steps.values() if v.get("stage") == stage), 1) for stage in STAGES
    }
    per_step = {
        "stage one": _mean([stage_one_step_s]),
        "stage two": _mean([seconds_per_step(Path(r.run_dir)) for r in record.stage_two]),
        "frozen control": _mean(
            [seconds_per_step(Path(r.control.run_dir)) for r in record.stage_two if r.control is not None]
        ),
    }
    return {
        "steps": {k: v["seconds"] for k, v in steps.items()},
        "total_s": sum(v["seconds"] for v in steps.values()),
        "elapsed_s": state.get("elapsed_s"),
        "by_stage_s": by_stage,
        "cores": record.cores,
        "workers": workers,
        "seconds_per_step": per_step,
    }


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile")


def machine(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU's vector extensions and the kernels torch chose, which decide the float results of a run (two
    CPUs with different extensions give different last bits, in effect another draw of the seeds)."""
    import platform

    import torch

    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    vector = sorted(f for f in set(flags) if f in VECTOR_FLAGS or f.startswith("avx512"))
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), None
    )
    return {
        "cpu": model or platform.processor() or None,
        "vector_extensions": vector,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


def machine_line(info: dict[str, Any] | None) -> str:
    """One sentence naming the CPU, its vector extensions and torch's kernel choice (or that none was recorded)."""
    if not info:
        return "Machine: not recorded (results written before the machine was)."
    extensions = ", ".join(info.get("vector_extensions") or []) or "none listed"
    return (
        f"Machine: {info.get('cpu') or 'CPU unnamed'}; vector extensions {extensions}; torch {info.get('torch')} "
        f"CPU kernels `{info.get('torch_cpu_capability')}`."
    )
