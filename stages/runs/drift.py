"""Config drift: the settings of a rerun that differ from the ones its folder's run was started with.

One rule for both checks that use it: a training stage's `--resume` (against the config in a checkpoint's
manifest, `stages.runs.manifest`) and a pipeline rerun (against its `pipeline_config.yaml`,
`stages.runs.pipeline_guard`). Each passes the keys that may differ (they change no result).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, asdict, fields
from typing import Any


def saved_form(value: Any) -> Any:
    """A value as a run folder's JSON or YAML file holds it: tuples as lists, other objects as strings."""
    return json.loads(json.dumps(value, default=str))


def config_values(config: Any) -> dict[str, Any]:
    """The config's fields as its run folder records them. HF's training arguments say how they are saved
    (`to_dict`: enums as their values, tokens hidden); a plain dataclass is saved as `asdict`."""
    values = config.to_dict() if hasattr(config, "to_dict") else asdict(config)
    return saved_form({k: v for k, v in values.items() if not k.startswith("_")})


def field_defaults(config: Any) -> dict[str, Any]:
    """Each field's default in saved form, from `default` or from `default_factory`."""
    defaults = {
        f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        for f in fields(config)
        if f.default is not MISSING or f.default_factory is not MISSING
    }
    return saved_form(defaults)


def _as_written(key: str, value: Any) -> Any:
    return value


def config_drift(
    saved: Mapping[str, Any], config: Any, harmless: Collection[str], canonical: Callable[[str, Any], Any] = _as_written
) -> list[str]:
    """`key: saved -> now` for every key outside `harmless` where `config` differs from the `saved` config,
    sorted by key, down to the changed entries of a mapping (`stage_one.max_steps: 12 -> 18`).

    A field newer than the saved config counts as unchanged while it keeps its default (`default` or
    `default_factory`); a saved key this version no longer has is ignored. `canonical(key, value)` gives
    both sides one spelling first (an older spelling of the same setting is no drift).
    """
    now, defaults, saved = config_values(config), field_defaults(config), saved_form(dict(saved))
    diffs = []
    for key in sorted(now):
        if key in harmless:
            continue
        before = canonical(key, saved[key]) if key in saved else defaults.get(key, now[key])
        diffs += _differences(key, before, canonical(key, now[key]))
    return diffs


def _differences(key: str, before: Any, after: Any) -> list[str]:
    """`key: before -> after`, down to the changed entries of a mapping."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            line
            for name in sorted(set(before) | set(after), key=str)
            for line in _differences(f"{key}.{name}", before.get(name, "(unset)"), after.get(name, "(unset)"))
        ]
    return [f"{key}: {before!r} -> {after!r}"]
