"""Seeded generators: unique Sudoku solutions, requested empties, reachable Countdown targets."""

import pytest

from rewards import countdown_reward, sudoku_reward
from rewards.tasks.countdown import countdown_reasoning, evaluate, generate_countdown
from rewards.tasks.sudoku import all_grids, count_solutions, generate_sudoku, solve, sudoku_reasoning


def _valid(grid):
    units = [[r * 4 + c for c in range(4)] for r in range(4)]
    units += [[r * 4 + c for r in range(4)] for c in range(4)]
    units += [[(br + r) * 4 + bc + c for r in range(2) for c in range(2)] for br in (0, 2) for bc in (0, 2)]
    return all(sorted(grid[i] for i in unit) == list("1234") for unit in units)


def _backtrack_count(puzzle):
    # independent check: plain backtracking over the empty cells, row/column/box constraints
    grid = list(puzzle)

    def ok(i, d):
        r, c = divmod(i, 4)
        box = [(r // 2 * 2 + a) * 4 + c // 2 * 2 + b for a in range(2) for b in range(2)]
        peers = [r * 4 + k for k in range(4)] + [k * 4 + c for k in range(4)] + box
        return all(grid[j] != d for j in peers if j != i)

    def count(k):
        if k == 16:
            return 1
        if grid[k] != "0":
            return count(k + 1)
        total = 0
        for d in "1234":
            if ok(k, d):
                grid[k] = d
                total += count(k + 1)
                grid[k] = "0"
        return total

    return count(0)


def test_all_grids():
    grids = all_grids()
    assert len(grids) == 288 == len(set(grids))
    assert all(_valid(g) for g in grids)


def test_sudoku_unique_requested_empties_and_consistent():
    puzzles = generate_sudoku(300, seed=3, empties=(8, 10))
    assert len({p["puzzle"] for p in puzzles}) == 300
    counts = set()
    for p in puzzles:
        empties = p["puzzle"].count("0")
        counts.add(empties)
        assert 8 <= empties <= 10
        assert count_solutions(p["puzzle"]) == 1
        assert solve(p["puzzle"]) == p["solution"]
        assert all(a in ("0", b) for a, b in zip(p["puzzle"], p["solution"]))
    assert counts == {8, 9, 10}
    for p in puzzles[:50]:  # the bitset solver agrees with backtracking
        assert _backtrack_count(p["puzzle"]) == 1
    assert _backtrack_count("0" * 16) == 288


@pytest.mark.parametrize("empties", [0, 4, 11, 12])
def test_sudoku_exact_empty_count(empties):
    for p in generate_sudoku(10, seed=0, empties=empties):
        assert p["puzzle"].count("0") == empties
        assert count_solutions(p["puzzle"]) == 1


def test_sudoku_reproducible_and_exclude():
    a = generate_sudoku(50, seed=7)
    assert a == generate_sudoku(50, seed=7)
    assert a != generate_sudoku(50, seed=8)
    test_set = {p["puzzle"] for p in a}
    b = generate_sudoku(50, seed=7, exclude=test_set)
    assert not test_set & {p["puzzle"] for p in b}


def test_sudoku_bad_empties():
    with pytest.raises(ValueError):
        generate_sudoku(1, empties=13)
    with pytest.raises(ValueError):
        generate_sudoku(1, empties=(10, 8))


def test_count_solutions_non_unique():
    assert count_solutions("0" * 16) == 288
    assert solve("0" * 16) is None
    assert count_solutions("1100000000000000") == 0


def test_sudoku_reasoning_lists_filled_cells():
    p = {"puzzle": "0304003120033400", "solution": "1324423121433412"}
    text = sudoku_reasoning(**p)
    assert text.split() == ["r1c1=1", "r1c3=2", "r2c1=4", "r2c2=2", "r3c2=1", "r3c3=4", "r4c3=1", "r4c4=2"]
    completion = f"<reasoning>{text}</reasoning><answer>{p['solution']}</answer>"
    assert sudoku_reward(None, [completion], **{k: [v] for k, v in p.items()}) == [1.0]


def test_countdown_targets_reachable_by_solution():
    problems = generate_countdown(300, seed=1)
    sizes = set()
    for p in problems:
        sizes.add(len(p["numbers"]))
        assert isinstance(p["target"], int) and 1 <= p["target"] <= 999
        assert evaluate(p["solution"], p["numbers"]) == p["target"]  # every number used once
        reward = countdown_reward(
            None, [f"<answer>{p['solution']}</answer>"], numbers=[p["numbers"]], target=[p["target"]]
        )
        assert reward == [1.0]
    assert sizes == {3, 4}


def test_countdown_reproducible_and_options():
    assert generate_countdown(20, seed=4) == generate_countdown(20, seed=4)
    assert generate_countdown(20, seed=4) != generate_countdown(20, seed=5)
    assert all(len(p["numbers"]) == 3 for p in generate_countdown(20, seed=0, num_numbers=3))


def test_countdown_reasoning_steps():
    text = countdown_reasoning([3, 5, 7], 22, "3 * 5 + 7")
    assert text == "Numbers: 3, 5, 7. Target: 22.\n3 * 5 = 15\n15 + 7 = 22"
    with pytest.raises(ValueError):
        countdown_reasoning([3, 5, 7], 23, "3 * 5 + 7")
    for p in generate_countdown(50, seed=2):
        assert countdown_reasoning(**p).endswith(f"= {p['target']}")
