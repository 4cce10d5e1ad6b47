"""What a folder of this tool is: one rule, applied by every command before it deletes or writes anything.

A folder belongs to this tool when it holds the marker `gift_run.json` that the tool wrote on creating it
(`{"tool": "gift", "stage": ..., "version": ..., "created": ...}`; the stage says which command owns it:
`cold_start`, `rl`, `pipeline`, `eval`, `entropy_report`). Folders written before the marker existed are
recognised by a file only this tool writes: a manifest in `final/` or in a `checkpoint-N/` (a training
run), `pipeline_state.json` (a pipeline), `eval_config.json` (an evaluation), `entropy_report.json`.
A name alone (`checkpoint-500/` of another trainer, `final/`) never makes a folder ours.

A command writes only into a new or empty folder, or one this tool marked for the same stage.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from gift.checkpoint import FINAL_DIR, MANIFEST_NAME, RUN_MARKER
from stages.runs.discovery import last_complete_checkpoint

LOCK_NAME = "gift_run.lock"
TRAINING_STAGES = ("cold_start", "rl")
# The file that marked each kind of folder before `gift_run.json` existed.
_LEGACY_SIGNS = {"pipeline": "pipeline_state.json", "eval": "eval_config.json", "entropy_report": "entropy_report.json"}


class RunDirError(RuntimeError):
    """The output folder cannot be used as asked (a file, a dangling link, locked, not writable)."""


class ForeignFolderError(FileExistsError):
    """The folder holds files this tool did not write (or another command's run); nothing was written."""


def read_marker(out: Path) -> dict[str, Any] | None:
    """The folder's marker, or None when it has none (or an unreadable one)."""
    try:
        marker = json.loads((Path(out) / RUN_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("tool") == "gift" else None


def _legacy_training_run(out: Path) -> bool:
    """A training run of a version before the marker: a complete `final/` or `checkpoint-N/` of ours."""
    return (out / FINAL_DIR / MANIFEST_NAME).is_file() or last_complete_checkpoint(out) is not None


def folder_stage(out: str | Path) -> str | None:
    """The stage that owns `out` (`cold_start`, `rl`, `pipeline`, ...), `"run"` for a training run older
    than the marker, or None when this tool did not write it."""
    out = Path(out)
    marker = read_marker(out)
    if marker is not None:
        return str(marker.get("stage"))
    if _legacy_training_run(out):
        return "run"
    for stage, sign in _LEGACY_SIGNS.items():
        if (out / sign).is_file():
            return stage
    return None


def is_run_dir(out: str | Path) -> bool:
    """A training run folder of this tool (marker, or a complete checkpoint of an older version)."""
    return folder_stage(out) in (*TRAINING_STAGES, "run")


def mark_folder(out: str | Path, stage: str, **extra: Any) -> None:
    """Create `out` if needed and write its marker (once: an existing marker is kept)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / RUN_MARKER).is_file():
        return
    from gift import __version__

    marker = {
        "tool": "gift",
        "stage": stage,
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    (out / RUN_MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _own_file(name: str) -> bool:
    """Files this tool puts into a folder before its marker: the lock (another run is starting there; the
    lock refuses it) and the pipeline's console log (never written by the run)."""
    return name.startswith(LOCK_NAME) or name == "console.log"


def check_writable_path(out: str | Path, option: str = "--output_dir") -> Path:
    """Refuse an output path that is a file or a link to nothing; returns it as a Path."""
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise RunDirError(
            f"{option} {out}: a symbolic link to {os.readlink(out)}, which does not exist; "
            f"create its target or choose another {option}"
        )
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{option} {out}: exists and is not a directory; choose another {option}")
    return out


def check_folder(out: str | Path, stage: str, option: str = "--output_dir") -> Path:
    """Refuse `out` unless it is new, empty, or a folder this tool marked for `stage` (nothing is written).

    A training stage (`cold_start`, `rl`) also accepts a training run older than the marker; `"run"`
    accepts any training run.
    """
    out = check_writable_path(out, option)
    found = sorted(p.name for p in out.iterdir() if not _own_file(p.name)) if out.is_dir() else []
    if not found:
        return out
    owner = folder_stage(out)
    if owner == stage or (stage in TRAINING_STAGES and owner == "run") or (stage == "run" and owner in TRAINING_STAGES):
        return out
    shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    what = "not a run directory of this tool" if owner is None else f"a {owner} folder of this tool, not a {stage} one"
    raise ForeignFolderError(
        f"{option} {out}: not empty ({shown}) and {what}; nothing was written: choose a new or empty {option}"
    )
