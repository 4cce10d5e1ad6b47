"""Run directories shared by both stages: checkpoint discovery, resume checks, manifest callback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from transformers import TrainerCallback

from gift.checkpoint import FINAL_DIR, MANIFEST_NAME, Manifest, publish_checkpoint, staging_dir, write_manifest


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-N` whose manifest was written (a checkpoint killed mid-save has none)."""
    steps = [(int(m.group(1)), p) for p in Path(output_dir).glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / MANIFEST_NAME).is_file()]
    return max(steps)[1] if steps else None


def check_output_dir(output_dir: str | Path, resume: bool) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run; refuses to overwrite an existing run."""
    out = Path(output_dir)
    previous = last_complete_checkpoint(out) if out.exists() else None
    if resume:
        if previous is None:
            raise FileNotFoundError(f"--resume: no complete checkpoint-N in {out}")
        return previous
    if out.exists() and (previous is not None or (out / FINAL_DIR).exists()):
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --output_dir")
    return None


class CheckpointManifestCallback(TrainerCallback):
    """Makes every HF `checkpoint-N` a checkpoint of this project: extra files, then the manifest, last."""

    def __init__(self, make_manifest: Callable[[dict], Manifest], extra_files: dict[str, Path] | None = None):
        self.make_manifest, self.extra_files = make_manifest, extra_files or {}

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        directory = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        for name, src in self.extra_files.items():
            (directory / name).write_bytes(Path(src).read_bytes())
        last = state.log_history[-1] if state.log_history else {}
        write_manifest(directory, self.make_manifest({"step": state.global_step, **last}))


def save_final(trainer, tokenizer, manifest: Manifest, extra_files: dict[str, Path] | None = None) -> Path:
    """Write the run's final checkpoint to `output_dir/final`, atomically; call it on every rank.

    `trainer.save_model` gathers sharded weights (DeepSpeed ZeRO-3, FSDP) and writes on the main
    process only; the main process then completes and renames the directory (`publish_checkpoint`).
    """
    import shutil

    final = Path(trainer.args.output_dir) / FINAL_DIR
    staged = staging_dir(final)
    if trainer.is_world_process_zero():
        shutil.rmtree(staged, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staged))
    if trainer.is_world_process_zero():
        (staged / "training_args.bin").unlink(missing_ok=True)  # HF's pickle; the manifest holds the config
        publish_checkpoint(staged, final, tokenizer, manifest, extra_files)
    trainer.accelerator.wait_for_everyone()
    return final


def absolute_source(source: str) -> str:
    """A local path made absolute (so manifests stay valid from any working directory); hub ids unchanged."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else source
