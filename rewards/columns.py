"""Checks on the dataset columns a reward or metric receives (trl passes them as keyword lists)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rewards.extract import completion_text


class MissingColumnError(KeyError, ValueError):
    """A reward, metric or data file lacks a column it needs; catchable as KeyError or ValueError."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def require_columns(
    task: str, columns: Mapping[str, Any], names: Sequence[str], n: int
) -> dict[str, list[Any]]:
    """Return the named columns as lists of length `n`, or raise naming every missing one."""
    missing = [name for name in names if columns.get(name) is None]
    if missing:
        raise MissingColumnError(
            f"{task} reward needs dataset column(s) {missing}; got {sorted(columns)}"
        )
    out: dict[str, list[Any]] = {}
    for name in names:
        values = columns[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = [values] * n  # one value broadcast over all completions
        if len(values) != n:
            raise ValueError(
                f"{task}: column {name!r} has {len(values)} values for {n} completions"
            )
        out[name] = list(values)
    return out


def texts(completions: Sequence[Any]) -> list[str]:
    """The text of every completion (strings or chat-message lists)."""
    return [completion_text(c) for c in completions]
