"""Small model commands: `gift init-model` and `gift merge`."""

from __future__ import annotations

import argparse

from gift.checkpoint import merge_checkpoint
from gift.embedded_model import PRESETS, init_model


def init_model_main(argv: list[str] | None = None) -> None:
    """`gift init-model --output_dir DIR [--preset tiny] [--seed 0]`: a fresh embedded model + tokenizer."""
    parser = argparse.ArgumentParser(prog="gift init-model", description=init_model_main.__doc__)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"model: {init_model(args.output_dir, args.preset, args.seed)}")


def merge_main(argv: list[str] | None = None) -> None:
    """`gift merge --checkpoint DIR --output_dir DIR`: fold a LoRA adapter into full weights."""
    parser = argparse.ArgumentParser(prog="gift merge", description=merge_main.__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--trust_remote_code", action="store_true")
    args = parser.parse_args(argv)
    print(f"merged: {merge_checkpoint(args.checkpoint, args.output_dir, args.trust_remote_code)}")
