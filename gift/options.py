"""Checks of named choices (`--objective sft|gift`, `--remasking ...`), shared by the core and the stage configs."""

from __future__ import annotations

from collections.abc import Iterable


def check_option(option: str, value, allowed: Iterable) -> None:
    """A clear error naming the option, the bad value and the choices."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {option} {value!r}; choose one of {', '.join(map(str, allowed))}")
