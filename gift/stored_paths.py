"""Paths a file stores relative to its own folder, so that a folder tree moved or copied elsewhere (a pipeline
folder: `mv d d2`, `cp -r d d2`) still names its own files, with nothing to translate.

A stored relative path always starts with `./` or `../`, so it never reads as a hub id (`org/model`); every
other value (an absolute path, a hub id, `embedded:tiny`, `synthetic:sudoku`, a cwd-relative path of an older
file) is stored and read as it is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# The manifest fields and config keys that name a model, data file or run folder (`gift_manifest.json`).
MANIFEST_PATH_FIELDS = ("base_model", "parent")
CONFIG_PATH_KEYS = ("model", "model_name_or_path", "dataset", "output_dir")


def is_stored_relative(value: object) -> bool:
    return isinstance(value, str) and (value in (".", "..") or value.startswith(("./", "../")))


def store_relative(path: str | None, root: str | Path, start: str | Path) -> str | None:
    """`path` as seen from the folder `start` when it is an existing path inside `root` (`root` itself
    included), else unchanged. `start` need not exist yet (a checkpoint about to be written)."""
    if not isinstance(path, str) or is_stored_relative(path) or not Path(path).exists():
        return path
    target, root = Path(path).resolve(), Path(root).resolve()
    if target != root and root not in target.parents:
        return path
    relative = os.path.relpath(target, Path(start).resolve())
    return relative if relative in (".", "..") or relative.startswith("../") else f"./{relative}"


def resolve_stored(value: str | None, start: str | Path) -> str | None:
    """A value read from a file in the folder `start`: a stored relative path made absolute against it."""
    return str((Path(start) / value).resolve()) if is_stored_relative(value) else value


def manifest_paths_resolved(data: dict[str, Any], directory: str | Path) -> dict[str, Any]:
    """A manifest's fields as read from `directory`, its stored relative paths made absolute."""
    data = {**data, **{k: resolve_stored(data.get(k), directory) for k in MANIFEST_PATH_FIELDS if k in data}}
    config = data.get("config")
    if isinstance(config, dict):
        data["config"] = {
            **config,
            **{k: resolve_stored(config[k], directory) for k in CONFIG_PATH_KEYS if k in config},
        }
    return data
