"""YAML recipes with one level of reuse: `base: other.yaml` loads that recipe first, then this file's keys
override it (a chain of bases is followed; a cycle is an error naming the files).

    # configs/llada/spg_sudoku.yaml
    base: grpo_sudoku.yaml        # relative to this file
    rl_algorithm: spg
    beta: 0.0

`gift cold-start` / `gift rl` / `gift pipeline` read recipes through `load_recipe`, so a recipe that only
states where it differs is a complete recipe everywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from stages.yaml_keys import load_yaml

BASE_KEY = "base"


def load_recipe(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The recipe at `path` as a dict, its `base` chain merged (the file's own keys win)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ValueError(f"{path}: recipe bases form a cycle ({chain})")
    data = load_yaml(_read_text(path), path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping of option: value, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    base_path = path.parent / str(base)
    if not base_path.is_file():
        raise ValueError(f"{path}: base recipe {base} not found (looked for {base_path})")
    return {**load_recipe(base_path, (*_seen, resolved)), **data}


def _read_text(path: Path) -> str:
    """A recipe's text; a file that is not UTF-8 is named (the decoder's error names none)."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte 0x{path.read_bytes()[err.start]:02x}); a recipe is a YAML file"
        ) from None


def materialize(path: str | Path) -> str:
    """`path` itself when it has no `base`; otherwise a temporary file holding the merged recipe, for
    parsers that read one flat YAML file (trl's `--config`)."""
    data = load_yaml(Path(path).read_text(encoding="utf-8"), path)
    if not isinstance(data, dict) or BASE_KEY not in data:
        return str(path)
    merged = load_recipe(path)
    handle, name = tempfile.mkstemp(prefix=f"{Path(path).stem}-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        yaml.safe_dump(merged, out, sort_keys=False)
    return name
