"""4x4 Sudoku (d1), the whole task in one module (the template a new task copies): the cell-accuracy reward
and metric (d1's protocol), a seeded puzzle generator with a unique solution and a compact SFT trace, the
published splits, d1's prompt, the loader, and the `Task` the registry lists.

The 16-digit puzzle is row-major with 0 = empty; the answer is the 16-digit solution. All 288 valid 4x4 grids
are enumerated once; for each cell and digit a bitset over the grids that have that digit there, so the grids
consistent with a puzzle are the AND over its filled cells (16 integer ANDs and a popcount).
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rewards.columns import MissingColumnError, require_columns, texts
from rewards.data import loaders
from rewards.data.files import field, read_rows
from rewards.extract import answer_block
from rewards.tasks.task import SYNTHETIC_TEST_SEED, SYNTHETIC_TEST_SIZE, Row, Task, check_synthetic_split, column

# --- Rules: rewards and metric ---------------------------------------------------------------------------------------

NAME = "sudoku"  # the task name the column errors carry
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
    cols = require_columns(NAME, columns, COLUMNS, len(completions))
    out = []
    for text, puzzle, solution in zip(texts(completions), cols["puzzle"], cols["solution"]):
        correct, empty = cell_counts(text, grid_string(puzzle, "puzzle"), grid_string(solution, "solution"))
        out.append(correct / empty if empty else 0.0)
    return out


def sudoku_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Cell accuracy pooled over puzzles (d1's number), fraction fully solved, and n.

    `accuracy` repeats `cell_accuracy` so every task reports the same headline key.
    """
    cols = require_columns(NAME, columns, COLUMNS, len(completions))
    correct_total = empty_total = solved = 0
    for text, puzzle, solution in zip(texts(completions), cols["puzzle"], cols["solution"]):
        correct, empty = cell_counts(text, grid_string(puzzle, "puzzle"), grid_string(solution, "solution"))
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


# --- Synthetic problems with a known solution, and the SFT trace -----------------------------------------------------

MAX_EMPTIES = 12  # a 4x4 Sudoku with a unique solution needs at least 4 clues


def _box(i: int) -> int:
    row, col = divmod(i, 4)
    return (row // 2) * 2 + col // 2


@functools.lru_cache(maxsize=1)
def all_grids() -> tuple[str, ...]:
    """Every valid 4x4 Sudoku grid (288 of them) as 16-character strings, sorted."""
    rows = ["".join(p) for p in itertools.permutations("1234")]
    grids = []
    for r0, r1, r2, r3 in itertools.product(rows, repeat=4):
        grid = r0 + r1 + r2 + r3
        if all(len({grid[r * 4 + c] for r in range(4)}) == 4 for c in range(4)) and all(
            len({grid[i] for i in range(SIZE) if _box(i) == b}) == 4 for b in range(4)
        ):
            grids.append(grid)
    return tuple(sorted(grids))


@functools.lru_cache(maxsize=1)
def _masks() -> tuple[tuple[int, ...], ...]:
    """_masks()[cell][digit] = bitset of grids with `digit` at `cell` (digit 1..4; index 0 unused)."""
    grids = all_grids()
    table = []
    for cell in range(SIZE):
        row = [0] * 5
        for g, grid in enumerate(grids):
            row[int(grid[cell])] |= 1 << g
        table.append(tuple(row))
    return tuple(table)


def _consistent(puzzle: str) -> int:
    masks = _masks()
    bits = (1 << len(all_grids())) - 1
    for cell, ch in enumerate(puzzle):
        if ch != "0":
            bits &= masks[cell][int(ch)]
    return bits


def count_solutions(puzzle: str) -> int:
    """Number of valid grids that agree with every filled cell of `puzzle` (0 = empty)."""
    return bin(_consistent(puzzle)).count("1")


def solve(puzzle: str) -> str | None:
    """The unique solution of `puzzle`, or None when it has none or several."""
    bits = _consistent(puzzle)
    if bits == 0 or bits & (bits - 1):
        return None
    return all_grids()[bits.bit_length() - 1]


def _make_puzzle(rng: random.Random, empties: int) -> dict[str, str] | None:
    solution = rng.choice(all_grids())
    cells = list(range(SIZE))
    rng.shuffle(cells)
    puzzle = list(solution)
    blanked = 0
    for cell in cells:
        if blanked == empties:
            break
        puzzle[cell] = "0"
        if count_solutions("".join(puzzle)) == 1:
            blanked += 1
        else:
            puzzle[cell] = solution[cell]  # blanking this cell would admit a second solution
    if blanked != empties:
        return None
    return {"puzzle": "".join(puzzle), "solution": solution}


def generate_sudoku(
    n: int,
    seed: int = 0,
    empties: int | tuple[int, int] = (8, 10),
    exclude: Iterable[str] = (),
    max_tries: int = 1000,
) -> list[dict[str, str]]:
    """`n` distinct puzzles `{"puzzle": 16 chars (0 = empty), "solution": 16 chars}`.

    `empties` is a count or an inclusive range drawn uniformly per puzzle. Puzzles in `exclude`
    (e.g. a test set) are skipped. Reproducible: same arguments, same list.
    """
    lo, hi = (empties, empties) if isinstance(empties, int) else empties
    if not 0 <= lo <= hi <= MAX_EMPTIES:
        raise ValueError(f"empties must lie in 0..{MAX_EMPTIES} (low <= high), got {empties!r}")
    rng = random.Random(seed)
    seen = set(exclude)
    out: list[dict[str, str]] = []
    failures = 0
    while len(out) < n:
        item = _make_puzzle(rng, rng.randint(lo, hi))
        if item is None or item["puzzle"] in seen:
            failures += 1
            if failures > max_tries + n:
                raise RuntimeError(f"could not draw {n} distinct puzzles with {empties} empties")
            continue
        seen.add(item["puzzle"])
        out.append(item)
    return out


def sudoku_reasoning(puzzle: str, solution: str) -> str:
    """A short, correct trace: the filled cells as `r<row>c<col>=<digit>`, row-major, one line.

    Kept compact on purpose: a tiny character-level model has to learn to write it.
    """
    return " ".join(f"r{i // 4 + 1}c{i % 4 + 1}={solution[i]}" for i in range(SIZE) if puzzle[i] == "0")


# --- Data, prompt and the Task ---------------------------------------------------------------------------------------

# File names of the published Sudoku splits (neither is on the hub; pass their paths). SPG
# (facebookresearch/SPG, dataset/) re-split d1's puzzles so that train and test share no solution grid.
SUDOKU_SPLITS = {
    "d1": {"train": "4x4_sudoku_unique_puzzles.csv", "test": "4x4_test_sudoku.csv"},
    "spg": {"train": "train_sudoku_split_new.csv", "test": "test_sudoku_split_new.csv"},
}

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
EMPTY_CELL, GIVEN_CELL = "empty cell", "given cell"
# beta = sqrt(typical probe entropy in nats) per token class, measured on the embedded Sudoku base (empty
# cells 0.91, copied givens 0.10, the EOS tail 0.03; docs/embedded_pipeline_report.md, "What the probe sees").
STRUCTURAL_BETAS = {EMPTY_CELL: 0.91**0.5, GIVEN_CELL: 0.10**0.5, "EOS": 0.03**0.5, "other": 0.10**0.5}
_PUZZLE_IN_QUESTION = re.compile(r"Sudoku puzzle: ([0-9]{16})")


def sudoku_question(puzzle: str) -> str:
    """d1's Sudoku question (eval/sudoku.py): the 16-digit puzzle, row-major, 0 = empty."""
    return f"Solve the following Sudoku puzzle: {puzzle}\n"


def synthetic_rows(split: str, n: int, seed: int = 0, empties: tuple[int, int] = (8, 10)) -> list[dict[str, Any]]:
    """Compact rows for the embedded model: the prompt is the bare puzzle; train puzzles exclude the test ones."""
    check_synthetic_split(split)
    test = generate_sudoku(SYNTHETIC_TEST_SIZE, seed=SYNTHETIC_TEST_SEED, empties=empties)
    items = (
        test[:n]
        if split == "test"
        else generate_sudoku(n, seed=seed, empties=empties, exclude=[t["puzzle"] for t in test])
    )
    return [
        {**it, "prompt": it["puzzle"], "answer": f"<reasoning></reasoning><answer>{it['solution']}</answer>"}
        for it in items
    ]


def compact_sudoku_cells(puzzle: str, answer_tokens: Sequence[str]) -> dict[int, bool]:
    """Where the solution cells sit in a compact Sudoku answer: `{token position: cell was empty}`.

    The layout `synthetic_rows` writes: the prompt is the 16-digit puzzle (`0` = empty) and the answer is
    `<reasoning>...</reasoning><answer>` + 16 solution digits + `</answer>`. `answer_tokens` are the
    answer's tokens as strings; positions are found by character offsets, so any tokenizer works. A
    cell is a one-digit token between `<answer>` and `</answer>`; no tags, no cells (empty dict).
    Raises `ValueError` when the puzzle is not 16 digits.
    """
    puzzle = str(puzzle).strip()
    if len(puzzle) != SIZE or not puzzle.isdigit():
        raise ValueError(f"prompt {puzzle!r} is not a 16-digit 4x4 puzzle")
    text = "".join(answer_tokens)
    open_at = text.find("<answer>")
    close_at = text.find("</answer>", open_at + 1)
    if open_at < 0 or close_at < 0:
        return {}
    first, offset, cells = open_at + len("<answer>"), 0, {}
    for position, token in enumerate(answer_tokens):
        cell = offset - first
        if 0 <= cell < SIZE and offset < close_at and len(token) == 1 and token.isdigit():
            cells[position] = puzzle[cell] == "0"
        offset += len(token)
    return cells


def cell_classes(prompt_tokens: Sequence[str], answer_tokens: Sequence[str]) -> dict[int, str]:
    """`{answer position: "empty cell" | "given cell"}` of a compact Sudoku example. The puzzle is the
    prompt's first 16 one-digit tokens (chat-template tokens around it hold no digits); raises
    `ValueError` when there are fewer."""
    puzzle = "".join(t for t in prompt_tokens if len(t) == 1 and t.isdigit())[:SIZE]
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
            puzzle = grid_string(field(row, p_key, source, i), "puzzle")
            solution = grid_string(field(row, s_key, source, i), "solution")
        except MissingColumnError:
            raise
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        out.append({"question": sudoku_question(puzzle), "puzzle": puzzle, "solution": solution})
    return out


def check_ground_truth(row: Row) -> None:
    grid_string(row["puzzle"], "puzzle")
    grid_string(row["solution"], "solution")


def from_d1(truth: Any, question: str) -> dict[str, Any]:
    """d1 keeps the puzzle only inside the question text (`... Sudoku puzzle: 0340...`)."""
    found = _PUZZLE_IN_QUESTION.search(question)
    puzzle = found.group(1) if found else question[:SIZE]
    if not (len(puzzle) == SIZE and puzzle.isdigit()):
        raise ValueError(f"sudoku: no 16-digit puzzle in 'question' {question[:60]!r}")
    return {"puzzle": puzzle, "solution": truth}


TASK = Task(
    name=NAME,
    reward_funcs=(sudoku_reward,),
    columns=COLUMNS,
    metric=sudoku_metric,
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
