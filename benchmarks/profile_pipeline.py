"""Where the main job's time goes: a shrunk copy of it under cProfile, cumulative seconds per part.

    python benchmarks/profile_pipeline.py --output_dir runs/pipeline_profile
    python benchmarks/profile_pipeline.py --stats runs/pipeline_profile/profile.out   # re-read a profile

The config (benchmarks/configs/pipeline_profile.yaml) keeps the main job's recipes, batch sizes and
evaluation with one seed, fewer steps and `workers: 1`, so one process holds every step. Printed: the wall
time of each pipeline step by stage (pipeline_state.json) and the cumulative time of the functions that
stage two and evaluation spend it in.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
from pathlib import Path

CONFIG = "benchmarks/configs/pipeline_profile.yaml"
# (label, file suffix, function name) of the parts worth naming
PARTS = [
    ("stage two + controls: trainer.train", "transformers/trainer.py", "train"),
    ("rollouts (DiffusionSampler.generate)", "gift/sampler.py", "generate"),
    ("rewards (_calculate_rewards)", "trl/trainer/grpo_trainer.py", "_calculate_rewards"),
    ("old / reference log-probs", "stages/train/rl.py", "_all_iteration_logps"),
    ("policy loss forward (_compute_loss)", "stages/train/rl.py", "_compute_loss"),
    ("backward", "torch/_tensor.py", "backward"),
    ("optimizer step", "torch/optim/optimizer.py", "wrapper"),
    ("checkpoint saves (_save_checkpoint)", "transformers/trainer.py", "_save_checkpoint"),
    ("stage zero/one: run_cold_start", "stages/train/cold_start.py", "run_cold_start"),
    ("evaluation (Pipeline.evaluate)", "stages/pipeline.py", "evaluate"),
    ("model loading (load_model)", "gift/checkpoint.py", "load_model"),
]


def part_times(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds of each `PARTS` function (summed over matching entries)."""
    out = {label: 0.0 for label, _, _ in PARTS}
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for label, suffix, function in PARTS:
            if filename.endswith(suffix) and name == function:
                out[label] += cumulative
    return out


def by_stage(state_file: Path) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, step in json.loads(state_file.read_text())["steps"].items():
        stage = step.get("stage") or name.split(":")[0]
        totals[stage] = totals.get(stage, 0.0) + step["seconds"]
    return totals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--output_dir", default="runs/pipeline_profile")
    parser.add_argument("--stats", help="print an existing profile instead of running")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    profile = Path(args.stats) if args.stats else out / "profile.out"
    if not args.stats:
        from stages.pipeline import run_pipeline
        from stages.pipeline_config import load_pipeline_config

        cProfile.runctx(
            "run_pipeline(load_pipeline_config(config, {'output_dir': output}))",
            {"run_pipeline": run_pipeline, "load_pipeline_config": load_pipeline_config},
            {"config": args.config, "output": str(out)},
            str(profile),
        )
    state = profile.parent / "pipeline_state.json"
    if state.is_file():
        print("| stage | wall time (s) |\n|---|---|")
        for stage, seconds in by_stage(state).items():
            print(f"| {stage} | {seconds:.1f} |")
    print("\n| part | cumulative (s) |\n|---|---|")
    for label, seconds in part_times(pstats.Stats(str(profile))).items():
        print(f"| {label} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
