"""Loaders for the real evaluation and training sets: hub first, or a local file via `path`.

Each returns a list of dicts holding `question` (the user turn, ready for `build_messages`) and the
ground-truth columns the task's rewards need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rewards import countdown as countdown_task
from rewards import sudoku as sudoku_task
from rewards.columns import MissingColumnError
from rewards.data.files import field, hub_rows, read_rows
from rewards.extract import last_number
from rewards.prompts import countdown_question, gsm8k_question, math_question, sudoku_question

GSM8K_HUB = ("openai/gsm8k", "main")
MATH500_HUB = ("HuggingFaceH4/MATH-500", None)
COUNTDOWN_HUB = ("Jiayi-Pan/Countdown-Tasks-3to4", None)


def _rows(
    path: str | Path | None, hub: tuple[str, str | None], split: str
) -> tuple[Iterable[Mapping[str, Any]], str]:
    if path is not None:
        return read_rows(path), str(path)
    return hub_rows(hub[0], hub[1], split), f"hub:{hub[0]}"


def _take(rows: Iterable[Mapping[str, Any]], limit: int | None) -> Iterable[tuple[int, Mapping]]:
    for i, row in enumerate(rows, start=1):
        if limit is not None and i > limit:
            return
        yield i, row


def load_gsm8k(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """GSM8K rows `{"question", "answer", "reasoning"}`; `answer` is the number after `####`."""
    rows, source = _rows(path, GSM8K_HUB, split)
    out = []
    for i, row in _take(rows, limit):
        question, solution = field(row, "question", source, i), str(field(row, "answer", source, i))
        reasoning, _, final = solution.rpartition("####")
        final = final.strip().replace(",", "")
        if last_number(final) is None:
            raise ValueError(f"{source}: row {i}: column 'answer' has no number after '####'")
        out.append({"question": gsm8k_question(question), "answer": final, "reasoning": reasoning.strip()})
    return out


def load_math500(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """MATH-500 rows `{"question", "answer"}` from the fields `problem` and `answer`."""
    rows, source = _rows(path, MATH500_HUB, split)
    return [
        {
            "question": math_question(field(row, "problem", source, i)),
            "answer": str(field(row, "answer", source, i)).strip(),
        }
        for i, row in _take(rows, limit)
    ]


def load_countdown(split: str = "train", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Countdown rows `{"question", "numbers", "target"}`.

    Accepts the hub's `nums`/`target` fields and d1's test format `{"input": "a,b,c", "output": "T"}`.
    """
    rows, source = _rows(path, COUNTDOWN_HUB, split)
    out = []
    for i, row in _take(rows, limit):
        if "nums" in row or "target" in row:
            raw_numbers, raw_target = field(row, "nums", source, i), field(row, "target", source, i)
        elif "input" in row or "output" in row:
            raw_numbers, raw_target = field(row, "input", source, i), field(row, "output", source, i)
        else:
            raise MissingColumnError(
                f"{source}: row {i}: missing columns 'nums'/'target' (or 'input'/'output'); "
                f"columns present: {sorted(row)}"
            )
        try:
            numbers, target = countdown_task.ground_truth(raw_numbers, raw_target)
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        out.append({"question": countdown_question(numbers, target), "numbers": numbers, "target": target})
    return out


def load_sudoku(path: str | Path, limit: int | None = None) -> list[dict]:
    """Sudoku rows `{"question", "puzzle", "solution"}` from d1's CSV (`Puzzle`, `Solution` columns).

    There is no hub copy of d1's set; use `rewards.data.generate_sudoku` for synthetic puzzles.
    """
    if path is None:
        raise ValueError("load_sudoku needs a path to d1's CSV; or use generate_sudoku()")
    source = str(path)
    out = []
    for i, row in _take(read_rows(path), limit):
        # d1's file capitalises the columns; accept lower case too.
        p_key = "puzzle" if "puzzle" in row else "Puzzle"
        s_key = "solution" if "solution" in row else "Solution"
        try:
            puzzle = sudoku_task.grid_string(field(row, p_key, source, i), "puzzle")
            solution = sudoku_task.grid_string(field(row, s_key, source, i), "solution")
        except MissingColumnError:
            raise
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        out.append({"question": sudoku_question(puzzle), "puzzle": puzzle, "solution": solution})
    return out
