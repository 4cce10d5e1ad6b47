"""A resumed checkpoint's training state is checked before HF's trainer reads it: a truncated or corrupt
`optimizer.pt`, `scheduler.pt`, `rng_state*.pth` or `trainer_state.json` is named in one line (torch and
json report it without the file: "PytorchStreamReader failed...", "EOFError", "Unterminated string")."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from gift.checkpoint import TRAINER_STATE, CheckpointError

_TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth")


def check_resume_state(checkpoint: Path) -> None:
    """Raise `CheckpointError` naming the first unreadable training-state file of `checkpoint`."""
    advice = (
        f"the file is truncated or corrupt: resume from an earlier checkpoint (move {checkpoint.name} "
        "aside) or start a new run"
    )
    state = checkpoint / TRAINER_STATE
    if state.exists():
        try:
            json.loads(state.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{state}: unreadable trainer state ({err}); {advice}") from None
    for pattern in _TORCH_FILES:
        for path in sorted(checkpoint.glob(pattern)):
            try:  # torch.save writes a zip archive: its central directory, at the end, shows truncation
                with zipfile.ZipFile(path) as archive:
                    archive.namelist()
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise CheckpointError(f"{path}: unreadable ({err}); {advice}") from None
