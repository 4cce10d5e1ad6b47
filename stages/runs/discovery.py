"""What a run directory holds: its complete checkpoints, whether the last one ended the run, and
publishing `final/` from that one (a run killed during its final save)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from gift.checkpoint import (
    FINAL_DIR,
    MANIFEST_NAME,
    TRAINER_STATE,
    explain_disk_full,
    publish_checkpoint,
    read_manifest,
    staging_dir,
)

# Files of an HF checkpoint-N that belong to the optimizer state, not to the model (left out of final/).
_TRAINING_STATE = re.compile(
    r"optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state.*\.pth|trainer_state\.json|"
    r"training_args\.bin|global_step\d+|latest|zero_to_fp32\.py"
)


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-N` whose manifest was written (a checkpoint killed mid-save has none)."""
    steps = [
        (int(m.group(1)), p)
        for p in Path(output_dir).glob("checkpoint-*")
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / MANIFEST_NAME).is_file()
    ]
    return max(steps)[1] if steps else None


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rpartition("-")[2])


def reached_max_steps(checkpoint: Path) -> bool:
    """Whether HF's trainer state says the checkpoint was saved at the run's last step."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return False
    return int(state.get("max_steps") or 0) > 0 and int(state.get("global_step", 0)) >= int(state["max_steps"])


def publish_final_from(checkpoint: Path, stage: str) -> Path:
    """`final/` from a checkpoint saved at the last step (a run killed during its final save): no training.

    The model, tokenizer and extra files are copied (not the optimizer state); the manifest records it.
    """
    out = checkpoint.parent
    final = out / FINAL_DIR
    staged = staging_dir(final)
    with explain_disk_full(staged):
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for item in checkpoint.iterdir():
            if item.name == MANIFEST_NAME or _TRAINING_STATE.fullmatch(item.name):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, staged / item.name)
        manifest = read_manifest(checkpoint)
        manifest.metrics = {
            **manifest.metrics,
            "global_step": checkpoint_step(checkpoint),
            "published_from": checkpoint.name,
        }
        manifest.created = ""
        publish_checkpoint(staged, final, None, manifest)
        if stage == "cold_start" and not (out / "train_log.jsonl").exists():
            history = json.loads((checkpoint / TRAINER_STATE).read_text()).get("log_history", [])
            (out / "train_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in history))
    return final
