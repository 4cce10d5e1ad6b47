"""Checks on the dataset columns a reward or metric receives (trl passes them as keyword lists), and the
one judging loop of the tasks graded against an `answer` column (GSM8K, MATH-500)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rewards.extract import completion_text


class MissingColumnError(KeyError, ValueError):
    """A reward, metric or data file lacks a column it needs; catchable as KeyError or ValueError."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def require_columns(task: str, columns: Mapping[str, Any], names: Sequence[str], n: int) -> dict[str, list[Any]]:
    """Return the named columns as lists of length `n`, or raise naming every missing one."""
    missing = [name for name in names if columns.get(name) is None]
    if missing:
        raise MissingColumnError(f"{task} reward needs dataset column(s) {missing}; got {sorted(columns)}")
    out: dict[str, list[Any]] = {}
    for name in names:
        values = columns[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = [values] * n  # one value broadcast over all completions
        if len(values) != n:
            raise ValueError(f"{task}: column {name!r} has {len(values)} values for {n} completions")
        out[name] = list(values)
    return out


def texts(completions: Sequence[Any]) -> list[str]:
    """The text of every completion (strings or chat-message lists)."""
    return [completion_text(c) for c in completions]


def judge_answers(
    task: str, columns: Mapping[str, Any], completions: Sequence[Any], is_correct: Callable[[str, Any], bool]
) -> list[bool]:
    """`is_correct(text, answer)` for every completion against its row of the `answer` column."""
    answers = require_columns(task, columns, ("answer",), len(completions))["answer"]
    return [is_correct(text, answer) for text, answer in zip(texts(completions), answers)]


def accuracy(judged: Sequence[bool]) -> dict[str, float]:
    """The metric of a task judged right or wrong per completion: accuracy (0.0 for none) and n."""
    n = len(judged)
    return {"accuracy": sum(judged) / n if n else 0.0, "n": n}
