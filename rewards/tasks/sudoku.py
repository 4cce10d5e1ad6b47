"""4x4 Sudoku (d1): the 16-digit puzzle row-major with 0 = empty; the answer is the 16-digit solution."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewards import sudoku as rules
from rewards.columns import MissingColumnError
from rewards.data import loaders
from rewards.data.files import field, read_rows
from rewards.data.sudoku_gen import generate_sudoku
from rewards.tasks.task import SYNTHETIC_TEST_SEED, SYNTHETIC_TEST_SIZE, Row, Task, check_synthetic_split, column

# d1 eval/sudoku.py, SUDOKU_SYSTEM_PROMPT, character for character.
SUDOKU_SYSTEM = """
Please solve the following 4x4 Sudoku puzzle. The puzzle is provided as a 16-character string reading left-to-right, top-to-bottom, where '0' represents empty cells.

Rules:
- Fill empty cells with digits 1-4
- Each row must contain digits 1-4 exactly once
- Each column must contain digits 1-4 exactly once
- Each 2x2 box must contain digits 1-4 exactly once

Important: Your solution must be a COMPLETE 16-character string with only the digits 1-4, representing your final solved grid.

Respond in this exact format:
<reasoning>
Your step-by-step solving process
</reasoning>
<answer>
[16-character solution string with no spaces or separators]
</answer>
"""
SUDOKU_CELLS = 16  # 4x4
EMPTY_CELL, GIVEN_CELL = "empty cell", "given cell"
# beta = sqrt(typical probe entropy in nats) per token class, measured on the embedded Sudoku base (empty
# cells 0.91, copied givens 0.10, the EOS tail 0.03; docs/embedded_pipeline_report.md, "What the probe sees").
STRUCTURAL_BETAS = {EMPTY_CELL: 0.91 ** 0.5, GIVEN_CELL: 0.10 ** 0.5, "EOS": 0.03 ** 0.5, "other": 0.10 ** 0.5}
_PUZZLE_IN_QUESTION = re.compile(r"Sudoku puzzle: ([0-9]{16})")


def sudoku_question(puzzle: str) -> str:
    """d1's Sudoku question (eval/sudoku.py): the 16-digit puzzle, row-major, 0 = empty."""
    return f"Solve the following Sudoku puzzle: {puzzle}\n"


def synthetic_rows(split: str, n: int, seed: int = 0, empties: tuple[int, int] = (8, 10)) -> list[dict[str, Any]]:
    """Compact rows for the embedded model: the prompt is the bare puzzle; train puzzles exclude the test ones."""
    check_synthetic_split(split)
    test = generate_sudoku(SYNTHETIC_TEST_SIZE, seed=SYNTHETIC_TEST_SEED, empties=empties)
    items = test[:n] if split == "test" else generate_sudoku(n, seed=seed, empties=empties,
                                                                exclude=[t["puzzle"] for t in test])
    return [{**it, "prompt": it["puzzle"], "answer": f"<reasoning></reasoning><answer>{it['solution']}</answer>"}
            for it in items]


def compact_sudoku_cells(puzzle: str, answer_tokens: Sequence[str]) -> dict[int, bool]:
    """Where the solution cells sit in a compact Sudoku answer: `{token position: cell was empty}`.

    The layout `synthetic_rows` writes: the prompt is the 16-digit puzzle (`0` = empty) and the answer is
    `<reasoning>...</reasoning><answer>` + 16 solution digits + `</answer>`. `answer_tokens` are the
    answer's tokens as strings; positions are found by character offsets, so any tokenizer works. A
    cell is a one-digit token between `<answer>` and `</answer>`; no tags, no cells (empty dict).
    Raises `ValueError` when the puzzle is not 16 digits.
    """
    puzzle = str(puzzle).strip()
    if len(puzzle) != SUDOKU_CELLS or not puzzle.isdigit():
        raise ValueError(f"prompt {puzzle!r} is not a 16-digit 4x4 puzzle")
    text = "".join(answer_tokens)
    open_at = text.find("<answer>")
    close_at = text.find("</answer>", open_at + 1)
    if open_at < 0 or close_at < 0:
        return {}
    first, offset, cells = open_at + len("<answer>"), 0, {}
    for position, token in enumerate(answer_tokens):
        cell = offset - first
        if 0 <= cell < SUDOKU_CELLS and offset < close_at and len(token) == 1 and token.isdigit():
            cells[position] = puzzle[cell] == "0"
        offset += len(token)
    return cells


def cell_classes(prompt_tokens: Sequence[str], answer_tokens: Sequence[str]) -> dict[int, str]:
    """`{answer position: "empty cell" | "given cell"}` of a compact Sudoku example. The puzzle is the
    prompt's first 16 one-digit tokens (chat-template tokens around it hold no digits); raises
    `ValueError` when there are fewer."""
    puzzle = "".join(t for t in prompt_tokens if len(t) == 1 and t.isdigit())[:SUDOKU_CELLS]
    return {p: EMPTY_CELL if empty else GIVEN_CELL for p, empty in compact_sudoku_cells(puzzle, answer_tokens).items()}


def load_sudoku(path: str | Path, limit: int | None = None, split: str | None = None) -> list[dict]:
    """Sudoku rows `{"question", "puzzle", "solution"}` from d1's CSV (`Puzzle`, `Solution` columns).

    There is no hub copy of d1's set; use `rewards.data.generate_sudoku` for synthetic puzzles. `split`
    is accepted so every task's loader takes the same keywords; the file itself is the split
    (`rewards.data.loaders.SUDOKU_SPLITS`).
    """
    if path is None:
        raise ValueError("load_sudoku needs a path to d1's CSV; or use generate_sudoku()")
    source = str(path)
    out = []
    for i, row in loaders.take(read_rows(path), limit):
        # d1's file capitalises the columns; accept lower case too.
        p_key = "puzzle" if "puzzle" in row else "Puzzle"
        s_key = "solution" if "solution" in row else "Solution"
        try:
            puzzle = rules.grid_string(field(row, p_key, source, i), "puzzle")
            solution = rules.grid_string(field(row, s_key, source, i), "solution")
        except MissingColumnError:
            raise
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        out.append({"question": sudoku_question(puzzle), "puzzle": puzzle, "solution": solution})
    return out


def check_ground_truth(row: Row) -> None:
    rules.grid_string(row["puzzle"], "puzzle")
    rules.grid_string(row["solution"], "solution")


def from_d1(truth: Any, question: str) -> dict[str, Any]:
    """d1 keeps the puzzle only inside the question text (`... Sudoku puzzle: 0340...`)."""
    found = _PUZZLE_IN_QUESTION.search(question)
    puzzle = found.group(1) if found else question[:SUDOKU_CELLS]
    if not (len(puzzle) == SUDOKU_CELLS and puzzle.isdigit()):
        raise ValueError(f"sudoku: no 16-digit puzzle in 'question' {question[:60]!r}")
    return {"puzzle": puzzle, "solution": truth}


TASK = Task(
    name="sudoku",
    reward_funcs=(rules.sudoku_reward,),
    columns=rules.COLUMNS,
    metric=rules.sudoku_metric,
    max_reward=1.0,
    report_metrics=("cell_accuracy", "solved"),
    check_ground_truth=check_ground_truth,
    load=load_sudoku,
    system_prompt=SUDOKU_SYSTEM,
    question=lambda row: sudoku_question(str(column("sudoku", row, "puzzle"))),
    compact_prompt=lambda row: str(row["puzzle"]),
    protocol_size=256,
    test_file_hint="4x4_test_sudoku.csv, or SPG test_sudoku_split_new.csv",
    test_subset=loaders.D1_TEST_SUBSET,
    train_holdout=loaders.D1_HOLDOUT,
    synthetic=synthetic_rows,
    d1_names=("sudoku",),
    from_d1=from_d1,
    token_classes=cell_classes,
    token_class_names=(EMPTY_CELL, GIVEN_CELL),
    structural_betas=STRUCTURAL_BETAS,
)
