"""Recipes that name a `base` recipe (stages.recipes)."""

import pytest
import yaml

from stages.recipes import load_recipe, materialize


def _write(path, text):
    path.write_text(text)
    return path


def test_base_is_loaded_first_and_overridden(tmp_path):
    _write(tmp_path / "a.yaml", "x: 1\ny: 2\nz: [1, 2]\n")
    (tmp_path / "sub").mkdir()
    child = _write(tmp_path / "sub" / "b.yaml", "base: ../a.yaml\ny: 3\nw: null\n")
    grandchild = _write(tmp_path / "c.yaml", "base: sub/b.yaml\nx: 9\n")
    assert load_recipe(child) == {"x": 1, "y": 3, "z": [1, 2], "w": None}
    assert load_recipe(grandchild) == {"x": 9, "y": 3, "z": [1, 2], "w": None}


def test_materialize_writes_the_merged_recipe_only_when_needed(tmp_path):
    plain = _write(tmp_path / "a.yaml", "x: 1\n")
    child = _write(tmp_path / "b.yaml", "base: a.yaml\ny: 2\n")
    assert materialize(plain) == str(plain)
    merged = materialize(child)
    assert merged != str(child) and yaml.safe_load(open(merged)) == {"x": 1, "y": 2}


def test_missing_base_and_cycles_are_named(tmp_path):
    _write(tmp_path / "a.yaml", "base: b.yaml\n")
    _write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ValueError, match=r"a.yaml: recipe bases form a cycle"):
        load_recipe(tmp_path / "a.yaml")
    _write(tmp_path / "c.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ValueError, match=r"c.yaml: base recipe nowhere.yaml not found"):
        load_recipe(tmp_path / "c.yaml")


def test_the_cli_reads_a_recipe_through_its_base(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from stages.config_args import parse_config
    from stages.train.rl import make_parser

    config = parse_config(make_parser(), ["--config", "configs/llada/spg_sudoku.yaml", "--output_dir", str(tmp_path)])
    assert config.rl_algorithm == "spg" and config.beta == 0.0 and config.num_iterations == 4  # the override
    assert config.task == "sudoku" and config.learning_rate == 3e-6 and config.global_batch_size == 96  # the base
