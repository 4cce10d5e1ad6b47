"""Small model commands: `gift init-model`, `gift merge` and `gift convert`.

Both write a new directory and refuse an existing non-empty one (nothing of the user's is replaced).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from gift.adapters import KINDS, load_pretrained
from gift.checkpoint import explain_disk_full, merge_checkpoint
from gift.embedded_model import PRESETS, init_model
from gift.models import stored_dtype
from stages.runs.folder import check_writable_path


def check_new_output(output_dir: str) -> None:
    """Refuse an output path that is a file, a dangling link or a non-empty directory, before anything is loaded."""
    out = check_writable_path(output_dir)  # a file, or a link to nothing
    if out.is_dir() and any(out.iterdir()):
        raise FileExistsError(
            f"--output_dir {out}: already exists and is not empty; nothing was written: "
            "choose a new or empty --output_dir"
        )


def _write_published(out: Path, write) -> None:
    """`write(folder)` into a staging folder beside `out`, renamed to `out` once complete: a failed write (a full
    disk) leaves nothing behind, and the rerun is not refused as "not empty"."""
    staged = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        with explain_disk_full(out):
            staged.mkdir(parents=True)
            write(staged)
        os.rename(staged, out)  # onto a missing or empty folder
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def init_model_main(argv: list[str] | None = None) -> None:
    """`gift init-model --output_dir DIR [--preset tiny] [--seed 0]`: a fresh embedded model + tokenizer."""
    parser = argparse.ArgumentParser(prog="gift init-model", description=init_model_main.__doc__)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_new_output(args.output_dir)
    with explain_disk_full(args.output_dir):
        print(f"model: {init_model(args.output_dir, args.preset, args.seed)}")


def merge_main(argv: list[str] | None = None) -> None:
    """`gift merge --checkpoint DIR --output_dir DIR`: fold a LoRA adapter into full weights."""
    parser = argparse.ArgumentParser(prog="gift merge", description=merge_main.__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--trust_remote_code", action="store_true")
    args = parser.parse_args(argv)
    check_new_output(args.output_dir)
    if not Path(args.checkpoint).exists():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: no such checkpoint directory")
    print(f"merged: {merge_checkpoint(args.checkpoint, args.output_dir, args.trust_remote_code)}")


def convert_main(argv: list[str] | None = None) -> None:
    """`gift convert --model DIR --output_dir DIR`: an official-layout LLaDA/Dream checkpoint in native form.

    Loading the official layout works without this step; the native form loads with plain
    transformers (`AutoModelForCausalLM`) and records `honour_attention_mask` for anyone who wants the
    official LLaDA behaviour (`--ignore_attention_mask`).
    """
    parser = argparse.ArgumentParser(prog="gift convert", description=convert_main.__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--model_type", default=None, choices=KINDS)
    parser.add_argument(
        "--dtype",
        default=None,
        choices=("float32", "bfloat16", "float16"),
        help="default: the dtype the weights are stored in",
    )
    parser.add_argument(
        "--ignore_attention_mask",
        action="store_true",
        help="reproduce official LLaDA (padding visible to attention); default: mask honoured",
    )
    args = parser.parse_args(argv)
    check_new_output(args.output_dir)
    if not Path(args.model).exists() and (args.model.startswith(("/", ".", "~")) or args.model.count("/") > 1):
        raise FileNotFoundError(f"--model {args.model}: no such model directory (and not a hub id)")
    # Without --dtype the weights keep the dtype they are stored in (the loaders would otherwise give fp32).
    dtype = args.dtype or (stored_dtype(args.model) if Path(args.model).is_dir() else None)
    model, tokenizer, adapter = load_pretrained(args.model, args.model_type, dtype=dtype)
    model.config.honour_attention_mask = not args.ignore_attention_mask
    _write_published(
        Path(args.output_dir),
        lambda staged: (model.save_pretrained(staged, safe_serialization=True), tokenizer.save_pretrained(staged)),
    )
    print(f"converted: {args.output_dir} ({adapter.kind}, native {model.config.model_type})")
