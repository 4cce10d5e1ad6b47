"""`eval_config.json` keeps the settings of every generation file in the folder: a second `gift eval` of a
task into the same folder adds its files to the task's record when its settings are those of the files
already there, replaces the record when it rewrites every one of them, and is refused (before generating
anything) when files made with other settings would stay beside its own, so `gift score` never puts
results of different settings in one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Per-run measurements, not settings; `files`, `decoding` and these are merged per file. The model is one per
# folder already (`eval_folder.claim_eval_folder`, which compares it resolved).
_PER_FILE = ("seconds", "model_calls_per_sequence", "files", "decoding", "num_processes", "model")
# Decoding fields that differ between gen_lengths of one run by design.
_PER_LENGTH = ("gen_length", "steps")


class EvalRecordConflict(ValueError):
    """A rerun whose settings differ from those of generation files it would leave in the folder."""


def _settings(entry: dict[str, Any]) -> dict[str, Any]:
    shared = {k: v for k, v in entry.items() if k not in _PER_FILE}
    decoding = {
        json.dumps({k: v for k, v in d.items() if k not in _PER_LENGTH}, sort_keys=True, default=str)
        for d in entry.get("decoding", [])
    }
    return {**json.loads(json.dumps(shared, default=str)), "decoding": sorted(decoding)}


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [
        f"{k}: {before.get(k)!r} -> {after.get(k)!r}"
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    ]


def merged_record(path: Path, task: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The task's record after this run (`entry`, whose `files` it writes); raises `EvalRecordConflict` if files
    of other settings would remain."""
    try:
        old = json.loads(path.read_text()).get(task) if path.is_file() else None
    except (ValueError, AttributeError):
        old = None
    if not isinstance(old, dict):
        return entry
    kept = [f for f in old.get("files", []) if f not in entry["files"] and (path.parent / f).is_file()]
    if not kept:
        return entry
    changed = _differences(_settings(old), _settings(entry))
    if changed:
        raise EvalRecordConflict(
            f"{path}: {', '.join(kept)} in this folder were generated with other settings ({'; '.join(changed)}); "
            "nothing was generated: evaluate into another --output_dir (or rerun with those settings)"
        )
    gen_length = {f: d.get("gen_length") for f, d in zip(old.get("files", []), old.get("decoding", []))}
    old_decoding = [d for f, d in zip(old.get("files", []), old.get("decoding", [])) if f in kept]
    merged = {**entry, "files": kept + entry["files"], "decoding": old_decoding + entry["decoding"]}
    for key in ("seconds", "model_calls_per_sequence"):
        kept_lengths = {str(gen_length.get(f)) for f in kept}
        merged[key] = {
            **{str(k): v for k, v in (old.get(key) or {}).items() if str(k) in kept_lengths},
            **{str(k): v for k, v in (entry.get(key) or {}).items()},
        }  # JSON's keys are strings
    return merged
