"""Stage-two settings against their frozen controls, one setting at a time, from one stage-one checkpoint.

    python benchmarks/bench_rl_gain.py --model runs/rl_start/seed0/sft/stage1/final --max_steps 60 \
        --variant recipe= --variant t1.0=temperature:1.0 --variant beta0.01=beta:0.01

Each variant is `name=key:value,key:value` (overrides of configs/embedded/grpo_sudoku.yaml; `name=` is the
recipe itself). A variant runs beside a frozen control with the same rollout settings (one control per
distinct set of rollout and batching settings, shared by the variants that only change the update), and
the line printed is its gain over that control (`stages.reports.report.frozen_gain`: last-20% reward minus
the control's over the same generation batches), its rise and its seconds per step (the control's: per
generation batch). Runs land in `--output_dir/<name>` and are skipped when finished, so a sweep can be
extended.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RECIPE = "configs/embedded/grpo_sudoku.yaml"
# Settings that change what a frozen control draws; the others only change the update.
ROLLOUT_KEYS = (
    "temperature",
    "per_device_train_batch_size",
    "num_generations",
    "gen_length",
    "block_length",
    "steps",
    "threshold",
    "min_commit",
    "eos_stop",
    "kv_cache",
    "max_prompts",
    "seed",
    "num_iterations",
    "max_steps",
)


def _value(text: str):
    import yaml

    return yaml.safe_load(text)


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition("=")
    overrides = dict(item.split(":", 1) for item in rest.split(",") if item)
    return name, {key: _value(value) for key, value in overrides.items()}


def _rewards(run: Path) -> list[float]:
    return [json.loads(line)["reward_mean"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _run(settings: dict, out: Path, frozen: bool) -> None:
    from gift.checkpoint import resolve_checkpoint
    from stages.train.frozen_control import run_frozen_control
    from stages.train.rl import run_rl
    from stages.train.rl_config import RLConfig, frozen_settings

    if resolve_checkpoint(out / "final") is not None:  # finished earlier (a shared control, an extended sweep)
        return
    values = frozen_settings(settings) if frozen else settings
    (run_frozen_control if frozen else run_rl)(RLConfig(**{**values, "output_dir": str(out), "disable_tqdm": True}))


def main(argv: list[str] | None = None) -> None:
    from stages.recipes import load_recipe
    from stages.reports.report import frozen_gain, reward_rise
    from stages.reports.wall_time import seconds_per_step
    from stages.train.rl_config import RLConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--max_steps", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--output_dir", default="runs/rl_gain")
    args = parser.parse_args(argv)
    out = Path(args.output_dir)
    base = {
        **load_recipe(RECIPE),
        "model": args.model,
        "seed": args.seed,
        "max_steps": args.max_steps,
        "save_steps": args.max_steps,
    }
    print("| variant | overrides | rise | control rise | gain over control | s/step | control s/batch |")
    print("|---|---|---|---|---|---|---|")
    for name, overrides in map(parse_variant, args.variant):
        settings = {**base, **overrides}
        rollout = sorted((k, v) for k, v in overrides.items() if k in ROLLOUT_KEYS)
        control = out / ("control" + "".join(f"-{k}{v}" for k, v in rollout))
        run = out / (name or "recipe")
        _run(settings, run, frozen=False)
        _run(settings, control, frozen=True)
        mu = settings.get("num_iterations", RLConfig.num_iterations)
        rewards = _rewards(run)
        rise, gain = reward_rise(rewards), frozen_gain(rewards, _rewards(control), mu)
        print(
            f"| {name or 'recipe'} | {overrides or '-'} | {rise['rise']:+.3f} | {gain['frozen_rise']:+.3f} | "
            f"**{gain['gain']:+.3f}** | {seconds_per_step(run):.2f} | {seconds_per_step(control):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
