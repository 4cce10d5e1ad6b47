"""An evaluation folder holds one model's generations: `gift score` reads every JSONL in it as one table.

`gift eval` writes only into a new or empty folder, or one it marked for the same model (more lengths or
tasks of that model). The marker records the model; a folder written before the marker existed is read
from its `eval_config.json` (the model of every task in it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gift.stored_paths import resolve_stored, store_relative
from stages.runs.folder import ForeignFolderError, check_folder, mark_folder, read_marker
from stages.runs.manifest import absolute_source, enclosing_pipeline

EVAL_CONFIG = "eval_config.json"


def model_identity(model: Any, loaded: Any) -> str | None:
    """The model's directory resolved (so `./runs/x`, `runs/x` and `/abs/runs/x` are one model), its source
    name (`embedded:tiny`, a hub id), or None for an in-memory model of unknown origin."""
    if getattr(loaded, "source", ""):
        return absolute_source(loaded.source)
    return absolute_source(str(model)) if isinstance(model, (str, Path)) else None


def _recorded_models(out: Path) -> set[str]:
    """The models this folder's generations came from (marker, and every task's `eval_config.json` entry)."""
    models = set()
    marker = read_marker(out) or {}
    if marker.get("model"):  # stored relative to the folder inside a pipeline folder (which may have moved)
        models.add(str(resolve_stored(str(marker["model"]), out.resolve())))
    try:
        config = json.loads((out / EVAL_CONFIG).read_text())
    except (OSError, ValueError):
        config = {}
    for entry in config.values() if isinstance(config, dict) else []:
        if isinstance(entry, dict) and entry.get("model") not in (None, "in-memory"):
            models.add(absolute_source(str(resolve_stored(str(entry["model"]), out.resolve()))))
    return models


def check_eval_folder(output_dir: str | Path) -> Path:
    """Refuse a folder that is neither new, empty nor an evaluation folder (nothing is written)."""
    return check_folder(output_dir, "eval")


def claim_eval_folder(output_dir: str | Path, identity: str | None) -> Path:
    """Refuse a folder that is not an evaluation folder, or holds another model's generations; mark it.

    Nothing is written before the checks pass.
    """
    out = check_eval_folder(output_dir)
    others = sorted(_recorded_models(out) - {identity}) if identity is not None else []
    if others:
        raise ForeignFolderError(
            f"--output_dir {out}: holds generations of {', '.join(others)} ({out / EVAL_CONFIG}), not of {identity}; "
            "gift score would mix the two models in one table: choose another --output_dir"
        )
    pipeline = enclosing_pipeline(out) if identity is not None else None
    stored = store_relative(identity, pipeline, out) if pipeline is not None else identity
    mark_folder(out, "eval", **({"model": stored} if stored is not None else {}))
    return out
