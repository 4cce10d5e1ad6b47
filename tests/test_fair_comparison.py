"""The fair estimator comparison's set-up: grid labels, learning-rate selection on the validation split, the
selected config, and a validation split disjoint from the test and training puzzles."""

import csv
from pathlib import Path

import pytest
import yaml

from scripts.fair_comparison import COMPARISON, GRID, apply_selection, select_learning_rates
from stages.pipeline_config import load_pipeline_config

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT / "configs" / "embedded" / "data" / "sudoku_validation.csv"


def test_grid_entries_are_labelled_and_keep_their_estimator():
    cfg = load_pipeline_config(GRID)
    names = {label.split("@")[0] for label in cfg.algorithms()}
    assert names == {"d1", "spg", "unigrpo", "wd1", "gdpo", "coupled"}
    assert all(sum(label.startswith(f"{n}@") for label in cfg.algorithms()) >= 3 for n in names)
    assert cfg.algorithm_overrides("unigrpo@3e-4") == {"num_t": 2, "learning_rate": 3.0e-4, "rl_algorithm": "unigrpo"}
    assert cfg.rl_label("gift", "spg@1e-4") == "gift:spg@1e-4"
    assert cfg.seeds == [0] and cfg.eval["data"].endswith("sudoku_validation.csv")  # never the test puzzles


def test_a_label_that_cannot_name_a_folder_is_refused(tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text(
        f"output_dir: {tmp_path}\narms: [{{name: sft}}]\nrl_algorithms: [{{name: d1, label: 'd1:fast'}}]\n"
    )
    with pytest.raises(ValueError, match=r"rl_algorithms\[0\]: label must be"):
        load_pipeline_config(config)


def _grid_results(scores: dict[str, list[float]]) -> dict:
    stage2 = {
        f"{arm}:{label}": {"cell_accuracy": {"values": [value]}}
        for label, values in scores.items()
        for arm, value in zip(("sft", "gift"), values)
    }
    return {"metrics": ["cell_accuracy"], "accuracy": {"stage2": stage2}}


def test_selection_takes_the_best_mean_over_starts_and_ties_to_the_smaller_rate():
    grid = [{"name": n, "label": f"{n}@{lr}", "learning_rate": lr} for n in ("d1", "spg") for lr in (3e-5, 1e-4, 3e-4)]
    results = _grid_results(
        {
            "d1@3e-05": [0.70, 0.80],
            "d1@0.0001": [0.78, 0.80],
            "d1@0.0003": [0.90, 0.60],
            "spg@3e-05": [0.7, 0.7],
            "spg@0.0001": [0.6, 0.8],
            "spg@0.0003": [0.5, 0.5],
        }
    )
    chosen = select_learning_rates(results, grid)
    assert chosen["d1"]["learning_rate"] == 1e-4  # mean 0.79 beats 0.75 and 0.75
    assert chosen["spg"]["learning_rate"] == 3e-5  # 0.70 ties 0.70: the smaller rate
    assert chosen["d1"]["validation"]["d1@0.0003"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="no stage-two evaluation of 'd1@0.001'"):
        select_learning_rates(results, [{"name": "d1", "label": "d1@0.001", "learning_rate": 1e-3}])


def test_the_selected_config_sets_every_estimators_rate(tmp_path):
    config = yaml.safe_load(COMPARISON.read_text())
    grid = yaml.safe_load(GRID.read_text())["rl_algorithms"]
    selection = {e["name"]: {"learning_rate": 3e-4} for e in grid}
    chosen = apply_selection(config, selection)
    assert [e["learning_rate"] for e in chosen["rl_algorithms"]] == [3e-4] * len(config["rl_algorithms"])
    assert {"name": "unigrpo", "num_t": 2, "learning_rate": 3e-4} in chosen["rl_algorithms"]
    path = tmp_path / "selected.yaml"
    path.write_text(yaml.safe_dump({**chosen, "output_dir": str(tmp_path / "out")}))
    assert load_pipeline_config(path).algorithm_overrides("spg") == {"learning_rate": 3e-4, "rl_algorithm": "spg"}
    with pytest.raises(ValueError, match="'gdpo' has no learning rate"):
        apply_selection(config, {k: v for k, v in selection.items() if k != "gdpo"})


def test_the_validation_split_is_neither_test_nor_training_puzzles():
    from rewards.tasks.sudoku import generate_sudoku
    from rewards.tasks.task import SYNTHETIC_TEST_SEED, SYNTHETIC_TEST_SIZE

    with open(VALIDATION) as handle:
        puzzles = [row["Puzzle"] for row in csv.DictReader(handle)]
    assert len(puzzles) == len(set(puzzles)) == 256
    test = {p["puzzle"] for p in generate_sudoku(SYNTHETIC_TEST_SIZE, seed=SYNTHETIC_TEST_SEED)}
    train = {p["puzzle"] for p in generate_sudoku(2048, seed=0, exclude=test)}  # stage two's prompts
    assert not set(puzzles) & test and not set(puzzles) & train
