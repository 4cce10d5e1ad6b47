"""The `gift` command: one entry point, one module per subcommand (imported only when used).

    gift init-model --output_dir models/base [--preset tiny]
    gift cold-start --config configs/embedded/gift_sudoku.yaml [--key value ...]
    gift merge --checkpoint runs/gift --output_dir runs/gift-merged
    gift eval --model runs/gift --task sudoku --output_dir runs/gift/eval && gift score runs/gift/eval
    gift rl --config configs/embedded/grpo_sudoku.yaml --model runs/gift --output_dir runs/gift-rl
    gift pipeline --config configs/embedded/pipeline.yaml
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module with main(argv), one-line help)
COMMANDS = {
    "init-model": ("stages.model_commands:init_model_main", "write a fresh embedded model + tokenizer"),
    "cold-start": ("stages.cold_start:main", "stage one: GIFT or masked-diffusion SFT"),
    "merge": ("stages.model_commands:merge_main", "merge a LoRA checkpoint into full weights"),
    "eval": ("stages.evaluate:main", "generate completions for a task (d1 protocol) into JSONL"),
    "score": ("stages.score:main", "score generation JSONL files into an accuracy table"),
    "rl": ("stages.rl:main", "stage two: diffu-GRPO from a stage-one checkpoint"),
    "pipeline": ("stages.pipeline:main", "both stages for every arm and seed, evaluation, figure, report"),
    "curves": ("stages.curves:main", "reward curves (raw + time-weighted EMA) from metrics.jsonl files"),
    "entropy-report": ("stages.entropy_report:main", "which tokens the probe finds high or low entropy"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = argparse.ArgumentParser(prog="gift", description="GIFT / diffu-GRPO training stack for diffusion LMs")
        parser.add_argument("command", choices=list(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
        parser.parse_args(argv[:1] or ["--help"])
        return 2
    module, _, func = COMMANDS[argv[0]][0].partition(":")
    sys.argv = [f"gift {argv[0]}", *argv[1:]]  # so argparse/TrlParser usage lines name the subcommand
    getattr(importlib.import_module(module), func)(argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
