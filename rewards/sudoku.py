"""4x4 Sudoku: cell-accuracy reward and evaluation metric (d1's protocol)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rewards.columns import require_columns, texts
from rewards.extract import answer_block

TASK = "sudoku"
COLUMNS = ("puzzle", "solution")
SIZE = 16
_ASCII_DIGITS = frozenset("0123456789")


def grid_string(value: Any, field: str) -> str:
    """A ground-truth grid as a 16-character digit string.

    Integers are zero-padded because CSV readers such as pandas turn "0340..." into 340...
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value).zfill(SIZE)
    if isinstance(value, (list, tuple)):
        value = "".join(str(v) for v in value)
    if not isinstance(value, str) or len(value) != SIZE or not set(value) <= _ASCII_DIGITS:
        raise ValueError(f"sudoku: {field} must be {SIZE} digits, got {value!r}")
    return value


_GRID_RUN = re.compile(r"\d{16,}")


def answer_digits(text: str) -> str | None:
    """The grid the last answer block holds, padded with '0' or truncated to 16; None if no block.

    The grid is the last run of 16 or more consecutive digits (the prompt asks for a 16-character
    string; prose such as "The solved 4x4 Sudoku is: ..." then does not shift it); failing that, all
    the block's ASCII digits in order (a grid written row by row on separate lines).
    """
    block = answer_block(text)
    if block is None:
        return None
    runs = _GRID_RUN.findall(block)
    digits = runs[-1] if runs else "".join(ch for ch in block if ch in _ASCII_DIGITS)
    return digits[:SIZE].ljust(SIZE, "0")


def cell_counts(text: str, puzzle: str, solution: str) -> tuple[int, int]:
    """(correctly filled empty cells, empty cells) for one completion."""
    empty = [i for i in range(SIZE) if puzzle[i] == "0"]
    digits = answer_digits(text)
    if digits is None:
        return 0, len(empty)
    return sum(digits[i] == solution[i] for i in empty), len(empty)


def sudoku_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """Fraction of the puzzle's empty cells the last answer block fills correctly. Range [0, 1].

    No answer block, or a puzzle without empty cells: 0.0.
    """
    cols = require_columns(TASK, columns, COLUMNS, len(completions))
    out = []
    for text, puzzle, solution in zip(texts(completions), cols["puzzle"], cols["solution"]):
        correct, empty = cell_counts(
            text, grid_string(puzzle, "puzzle"), grid_string(solution, "solution")
        )
        out.append(correct / empty if empty else 0.0)
    return out


def sudoku_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Cell accuracy pooled over puzzles (d1's number), fraction fully solved, and n.

    `accuracy` repeats `cell_accuracy` so every task reports the same headline key.
    """
    cols = require_columns(TASK, columns, COLUMNS, len(completions))
    correct_total = empty_total = solved = 0
    for text, puzzle, solution in zip(texts(completions), cols["puzzle"], cols["solution"]):
        correct, empty = cell_counts(
            text, grid_string(puzzle, "puzzle"), grid_string(solution, "solution")
        )
        correct_total += correct
        empty_total += empty
        solved += correct == empty
    n = len(completions)
    cell_accuracy = correct_total / empty_total if empty_total else 0.0
    return {
        "accuracy": cell_accuracy,
        "cell_accuracy": cell_accuracy,
        "solved": solved / n if n else 0.0,
        "n": n,
    }
