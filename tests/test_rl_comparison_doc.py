"""docs/rl_comparison.md's comparison block is the rendering of the committed results file."""

import json
from pathlib import Path

import pytest

from scripts.render_rl_comparison import DOC, gains_by_algorithm, markers, render

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
BLOCKS = [
    ("rl-comparison", "rl_algorithms.json", "rl_algorithms_grid.json"),
    ("rl-comparison-three-seeds", "rl_algorithms_three_seeds.json", None),
]


@pytest.mark.parametrize("block,results,grid", BLOCKS)
def test_each_doc_block_is_rendered_from_its_results_file(block, results, grid):
    start, end = markers(block)
    text = DOC.read_text()
    assert start in text and end in text
    grid = json.loads((RESULTS / grid).read_text()) if grid else None
    assert (
        render(json.loads((RESULTS / results).read_text()), grid, block)
        == start + text.partition(start)[2].partition(end)[0] + end
    )


def test_gains_are_grouped_by_estimator_over_arms_and_seeds():
    run = {"seed": 0, "gain": 0.1, "last20": 0.5, "frozen_first10": 0.4, "frozen_last20": 0.4}
    results = {"rl": {"sft:d1": [run, {**run, "seed": 1, "gain": -0.3}], "gift:d1": [{**run, "gain": 0.2}]}}
    table = gains_by_algorithm(results)
    assert list(table) == ["d1"] and [r["gain"] for r in table["d1"]] == pytest.approx([0.1, -0.3, 0.2])
    assert [r["arm"] for r in table["d1"]] == ["sft", "sft", "gift"]


def test_each_estimator_is_paired_with_the_first_on_the_same_start():
    from scripts.render_rl_comparison import _paired_lines

    run = {"last20": 0.5, "frozen_first10": 0.4, "frozen_last20": 0.4}
    results = {
        "rl": {
            "sft:d1": [{**run, "seed": 0, "gain": 0.03}, {**run, "seed": 1, "gain": 0.01}],
            "sft:spg": [{**run, "seed": 0, "gain": 0.01}, {**run, "seed": 1, "gain": 0.04}],
        }
    }
    lines = _paired_lines(results)
    assert lines[0].startswith("Per start (sft 0, sft 1), each estimator's gain minus d1's")
    assert lines[-1] == "| spg | -2.0, +3.0 | +0.5 |"


def _results(changes: dict[str, list[float]], gains: dict[str, list[float]]) -> dict:
    """Two arms x three seeds per estimator; both arms of a seed get the same numbers (so per-seed means are them)."""
    metric = "cell_accuracy"
    accuracy = {
        "rl_start": {arm: {metric: {"values": [0.5, 0.5, 0.5], "seeds": [0, 1, 2]}} for arm in ("sft", "gift")},
        "stage2": {},
    }
    rl = {}
    for name, change in changes.items():
        for arm in ("sft", "gift"):
            accuracy["stage2"][f"{arm}:{name}"] = {metric: {"values": [0.5 + c for c in change], "seeds": [0, 1, 2]}}
            rl[f"{arm}:{name}"] = [{"seed": s, "gain": g} for s, g in enumerate(gains[name])]
    return {"metrics": [metric], "seeds": [0, 1, 2], "accuracy": accuracy, "rl": rl}


def test_the_seed_is_the_unit_and_holm_covers_the_estimators_against_d1():
    from scripts.render_rl_comparison import comparisons

    results = _results(
        {"d1": [0.03, 0.02, 0.025], "spg": [0.0, -0.01, 0.005], "wd1": [0.03, 0.02, 0.025]},
        {"d1": [0.03, 0.03, 0.03], "spg": [0.01, 0.02, 0.0], "wd1": [0.02, 0.04, 0.03]},
    )
    table = comparisons(results)
    change = table["change"]
    assert change["reference"] == "d1" and change["alone"]["d1"]["n"] == 3  # seeds, not 6 starts
    spg = change["versus"]["spg"]
    assert spg["diffs"] == pytest.approx([-0.03, -0.03, -0.02])
    assert change["versus"]["wd1"]["diffs"] == pytest.approx([0, 0, 0])
    # two estimators compared with d1: Holm doubles the smaller p (wd1's identical runs give p = 1)
    assert spg["holm_p"] == pytest.approx(min(1.0, 2 * spg["t_p"]))
    assert table["gain"]["versus"]["spg"]["mean"] == pytest.approx(-0.02)


def test_the_grid_table_shows_every_rate_and_bolds_the_one_the_comparison_ran_with():
    from scripts.render_rl_comparison import _grid_lines

    metric = "cell_accuracy"
    scores = {"d1@3e-5": (0.70, 0.80), "d1@1e-4": (0.80, 0.80), "spg@3e-5": (0.60, 0.60), "spg@1e-4": (0.60, 0.60)}
    grid = {
        "metrics": [metric],
        "seeds": [0],
        "arms": ["sft", "gift"],
        "stage_two_steps": 30,
        "rl_labels": [f"{arm}:{label}" for arm in ("sft", "gift") for label in scores],
        "accuracy": {
            "rl_start": {arm: {metric: {"values": [v]}} for arm, v in (("sft", 0.5), ("gift", 0.6))},
            "stage2": {
                f"{arm}:{label}": {metric: {"values": [pair[i]]}}
                for label, pair in scores.items()
                for i, arm in enumerate(("sft", "gift"))
            },
        },
    }
    lines = _grid_lines(grid)
    assert lines[0].startswith(f"Validation {metric} % after 30 stage-two steps (seed 0; mean of the 2 starts; ")
    assert "at the RL start 55.0" in lines[0]
    assert lines[2] == "| estimator | 3e-5 | 1e-4 | chosen |"
    assert lines[4:] == ["| d1 | 75.0 | **80.0** | 1e-4 |", "| spg | **60.0** | 60.0 | 3e-5 |"]  # a tie: the smaller
