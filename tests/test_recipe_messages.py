"""Recipe and path mistakes are one line naming the file: a bad value from the config file, a base recipe
that is not UTF-8 or missing (exit 2), the merged copy of a `base:` recipe not left behind; `gift convert`
of a missing local path (docs/reliability.md)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from stages.cli import main as gift

REPO = Path(__file__).resolve().parents[1]


def _cold_start(config: Path, out: Path) -> int:
    return gift(["cold-start", "--config", str(config), "--model_name_or_path", "embedded", "--output_dir", str(out)])


@pytest.mark.parametrize(
    "text, base, message",
    [
        ("max_steps: lots\n", None, "{config}: max_steps: invalid int value: 'lots'"),
        (
            "base: bad.yaml\n",
            b"max_steps: 3\n\xff\n",
            "{dir}/bad.yaml:2: not UTF-8 text (byte 0xff); a recipe is a YAML file",
        ),
        ("base: nothere.yaml\n", None, "{config}: base recipe nothere.yaml not found"),
    ],
)
def test_recipe_mistakes_name_the_file_and_exit_2(tmp_path, capsys, text, base, message):
    config = tmp_path / "recipe.yaml"
    config.write_text(
        f"base: {REPO / 'configs/embedded/sft_sudoku.yaml'}\n{text}" if base is None and "base" not in text else text
    )
    if base is not None:
        (tmp_path / "bad.yaml").write_bytes(base)
    assert _cold_start(config, tmp_path / "out") == 2
    assert message.format(config=config, dir=tmp_path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_merged_copy_of_a_base_recipe_is_not_left_in_the_temp_folder(tmp_path, monkeypatch):
    from stages.config_args import parse_config
    from stages.train.cold_start import make_parser

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    config = tmp_path / "recipe.yaml"
    config.write_text(f"base: {REPO / 'configs/embedded/sft_sudoku.yaml'}\nmax_steps: 3\n")
    parsed = parse_config(make_parser(), ["--config", str(config), "--output_dir", str(tmp_path / "o")])
    assert parsed.max_steps == 3 and list((tmp_path / "tmp").iterdir()) == []


def test_convert_of_a_missing_local_path_names_it(tmp_path, capsys):
    assert gift(["convert", "--model", "./nothere/x", "--output_dir", str(tmp_path / "o")]) == 1
    assert (
        "gift convert: error: --model ./nothere/x: no such model directory (and not a hub id)"
        in capsys.readouterr().err
    )


def test_missing_tokenizer_files_are_named(tmp_path, base_dir, capsys):
    model = tmp_path / "model"
    shutil.copytree(base_dir, model)
    (model / "tokenizer.json").unlink()
    assert (
        gift(
            [
                "eval",
                "--model",
                str(model),
                "--task",
                "sudoku",
                "--data",
                "synthetic",
                "--limit",
                "2",
                "--gen_length",
                "16",
                "--block_length",
                "8",
                "--output_dir",
                str(tmp_path / "ev"),
            ]
        )
        == 1
    )
    assert (
        f"gift eval: error: {model}: no tokenizer files (tokenizer.json, tokenizer.model, vocab.json...)"
        in capsys.readouterr().err
    )


def test_a_deleted_working_directory_is_named(tmp_path):
    import os
    import subprocess
    import sys

    gone = tmp_path / "gone"
    gone.mkdir()
    code = (
        f"import os, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); from stages.cli import main; "
        "sys.exit(main(['score', 'x.jsonl']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "gift score: error: the working directory no longer exists (deleted or moved); "
        "cd into an existing folder and rerun"
    )
