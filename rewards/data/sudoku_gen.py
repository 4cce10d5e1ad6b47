"""Seeded 4x4 Sudoku puzzles with a unique solution, and a compact reasoning trace for SFT.

All 288 valid 4x4 grids are enumerated once. For each cell and digit we keep a bitset over the grids
that have that digit there; the grids consistent with a puzzle are the AND over its filled cells, so
counting solutions is 16 integer ANDs and a popcount.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterable

SIZE = 16
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
    return " ".join(
        f"r{i // 4 + 1}c{i % 4 + 1}={solution[i]}" for i in range(SIZE) if puzzle[i] == "0"
    )
