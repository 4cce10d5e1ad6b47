"""Read local data files (JSONL, JSON, CSV; Parquet through `datasets`) into lists of row dicts."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rewards.columns import MissingColumnError


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a local `.jsonl`, `.json` (a list of objects), `.csv` or `.parquet` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if line.strip():
                    rows.append(_object(json.loads(line), path, i))
        return rows
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects")
        return [_object(row, path, i) for i, row in enumerate(data, start=1)]
    if suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            return [dict(row) for row in csv.DictReader(f)]
    if suffix == ".parquet":
        import datasets  # lazy: heavy import, only needed for parquet

        return [dict(row) for row in datasets.Dataset.from_parquet(str(path))]
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv, .parquet)")


def _object(row: Any, path: Path, i: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError(f"{path}: row {i} is not a JSON object")
    return row


def field(row: Mapping[str, Any], name: str, source: str, i: int) -> Any:
    """`row[name]`, or an error that names the source, the row (1-based) and the column."""
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MissingColumnError(f"{source}: row {i}: missing column {name!r} (columns present: {sorted(row)})")
    return value


def hub_rows(name: str, config: str | None, split: str) -> Iterable[Mapping[str, Any]]:
    """Rows of a hub dataset split, loaded with `datasets` (imported only here)."""
    import datasets

    return datasets.load_dataset(name, config, split=split)
