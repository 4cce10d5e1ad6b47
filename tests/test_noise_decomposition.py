"""scripts/noise_decomposition.py on hand-made evaluation folders: per-puzzle counts, the paired bootstrap,
and the split of the seed-to-seed variance."""

import json
import math

import numpy as np
import pytest

from scripts.noise_decomposition import bootstrap_variance, main, plan, puzzle_counts

SOLUTION = "1234341221434321"


def _eval(folder, rights: list[int]) -> None:
    """One Sudoku eval folder: puzzle i has its first two cells empty; `rights[i]` of them answered right."""
    folder.mkdir(parents=True)
    rows = []
    for i, right in enumerate(rights):
        puzzle = "00" + SOLUTION[2:]
        answer = SOLUTION[:right] + "9" * (2 - right) + SOLUTION[2:]
        rows.append(
            {
                "index": i,
                "puzzle": puzzle,
                "solution": SOLUTION,
                "completion": f"<reasoning></reasoning><answer>{answer}</answer>",
            }
        )
    (folder / "sudoku_24.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_puzzle_counts_keep_cells_with_their_puzzle(tmp_path):
    _eval(tmp_path / "e", [2, 1, 0])
    assert puzzle_counts(tmp_path / "e") == {0: (2, 2), 1: (1, 2), 2: (0, 2)}


def test_identical_arms_have_no_evaluation_noise_and_the_paired_bootstrap_matches_the_formula():
    a = {i: (2 * (i % 2), 2) for i in range(200)}  # half the puzzles right, half wrong
    diff, var = bootstrap_variance(a, a, 500, np.random.default_rng(0))
    assert diff == 0.0 and var == 0.0  # the same resample for both arms: nothing left
    b = {i: (0, 2) for i in range(200)}
    diff, var = bootstrap_variance(a, b, 4000, np.random.default_rng(0))
    # a - b is the share of right puzzles p = 0.5; its bootstrap variance p (1 - p) / n = 0.00125
    assert diff == pytest.approx(0.5) and var == pytest.approx(0.25 / 200, rel=0.1)


def test_plan_half_width_is_t_times_the_standard_error():
    rows = plan(train_var=0.0004, eval_var=0.0004, puzzles=256, target=0.0)
    six = next(r for r in rows if r["puzzles"] == 256 and r["seeds"] == 6)
    assert six["half_width"] == pytest.approx(100 * 2.570582 * math.sqrt(0.0008 / 6), rel=1e-5)
    four_x = next(r for r in rows if r["puzzles"] == 1024 and r["seeds"] == 6)
    assert four_x["half_width"] == pytest.approx(100 * 2.570582 * math.sqrt(0.0005 / 6), rel=1e-5)


def test_main_splits_the_variance(tmp_path, capsys):
    for seed, (g, s) in enumerate(
        [([2, 2, 1, 0], [2, 1, 1, 0]), ([2, 1, 1, 0], [2, 1, 1, 0]), ([2, 2, 2, 1], [1, 1, 1, 0])]
    ):
        _eval(tmp_path / f"seed{seed}" / "gift", g)
        _eval(tmp_path / f"seed{seed}" / "sft", s)
    assert (
        main(
            [
                "--treatment",
                str(tmp_path / "seed*" / "gift"),
                "--reference",
                str(tmp_path / "seed*" / "sft"),
                "--draws",
                "200",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [0, 1, 2] and out["diffs_points"] == [12.5, 0.0, 50.0]
    total = out["sd_total_points"] ** 2
    assert total == pytest.approx(np.var([12.5, 0.0, 50.0], ddof=1))
    assert out["sd_train_points"] ** 2 == pytest.approx(max(0.0, total - out["sd_eval_points"] ** 2))
