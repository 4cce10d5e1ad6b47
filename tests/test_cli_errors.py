"""Every `gift` subcommand answers a user mistake with one line, `gift <cmd>: error: ...`, exit code 2 for
usage errors and 1 for runtime ones, and no traceback unless --debug / GIFT_DEBUG=1 asks for it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stages import cli
from stages.config_args import join_negative_values

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def files(tmp_path, base_dir) -> dict[str, str]:
    """Bad inputs of every kind, as {name: path}."""
    (tmp_path / "binary.yaml").write_bytes(b"\x00\x01\xff\xfe objective: gift\n")
    (tmp_path / "unknown_key.yaml").write_text("objective: gift\nbeta_temperature: [1, 2]\nfoo: bar\n")
    (tmp_path / "renamed.yaml").write_text("diffusion_steps: 16\nsampler_threshold: 0.9\n")  # an older stage-two recipe
    (tmp_path / "broken.yaml").write_text("objective: gift\nmax_steps: [1,\n")
    (tmp_path / "list.yaml").write_text("- objective\n")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "1", "answer": "2"}\n{"prompt": "caf\xe9", "answer": "2"}\n')
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "a_file").write_text("not a directory\n")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "README.md").write_text("my notes\n")
    truncated = tmp_path / "truncated"
    shutil.copytree(base_dir, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:64])
    return {
        "tmp": str(tmp_path),
        "base": str(base_dir),
        **{p.name.replace(".", "_"): str(p) for p in tmp_path.iterdir()},
    }


CS = [
    "cold-start",
    "--model_name_or_path",
    "{base}",
    "--output_dir",
    "{tmp}/run",
    "--max_steps",
    "2",
    "--synthetic_examples",
    "64",
    "--disable_tqdm",
    "true",
]
RL = ["rl", "--model", "{base}", "--output_dir", "{tmp}/rl", "--max_steps", "2", "--disable_tqdm", "true"]

CASES = [
    # cold-start: usage errors (2)
    (CS + ["--max_steps", "-5"], 2, r"--max_steps -5: must be a positive integer, or -1 to train num_train_epochs"),
    (CS + ["--learning_rate", "-1e-3"], 2, r"--learning_rate -0.001: must be > 0"),
    (CS + ["--max_steps", "abc"], 2, r"argument --max_steps/--max-steps: invalid int value: 'abc'"),
    (CS + ["--objective", "dpo"], 2, r"unknown objective 'dpo'"),
    (CS + ["--no_such_option", "1"], 2, r"unknown option\(s\) \['--no_such_option', '1'\]"),
    (
        CS + ["--config", "{unknown_key_yaml}"],
        2,
        r"unknown_key.yaml: unknown key\(s\) beta_temperature, foo; remove them",
    ),
    (CS + ["--config", "{tmp}/missing.yaml"], 2, r"--config .*missing.yaml: no such file"),
    (
        CS + ["--config", "{binary_yaml}"],
        2,
        r"binary.yaml:1: not UTF-8 text \(byte 0xff at column 3\); a config is a YAML file",
    ),
    (CS + ["--config", "{broken_yaml}"], 2, r"broken.yaml:3: not valid YAML"),
    (CS + ["--config", "{list_yaml}"], 2, r"list.yaml: expected a YAML mapping"),
    # cold-start: runtime errors (1)
    (CS + ["--dataset", "{latin1_jsonl}"], 1, r"latin1.jsonl:2: not UTF-8 text \(byte 0xe9 at column 16\)"),
    (CS + ["--dataset", "{empty_jsonl}"], 1, r"empty.jsonl: no examples \(an empty file or split\?\)"),
    (CS + ["--model_name_or_path", "{tmp}/no_model"], 1, r"no_model: no such model directory or checkpoint"),
    (
        CS + ["--model_name_or_path", "{truncated}"],
        1,
        r"truncated/model.safetensors: unreadable weights .*truncated or corrupt",
    ),
    (CS + ["--output_dir", "{a_file}"], 1, r"--output_dir .*a_file: exists and is not a directory"),
    (CS + ["--output_dir", "{mine}"], 1, r"--output_dir .*mine: not empty \(README.md\) and not a run directory"),
    (CS + ["--resume", "true"], 1, r"--resume: no complete checkpoint-N in .*run \(no run there\); drop --resume"),
    # rl
    (RL + ["--num_iterations", "0"], 2, r"--num_iterations 0: must be a positive integer"),
    (RL + ["--p_mask_prompt", "-0.5"], 2, r"--p_mask_prompt -0.5: must lie in \[0, 1\)"),
    (RL + ["--model", "{tmp}/no_model"], 1, r"no_model: no such model directory or checkpoint"),
    (RL + ["--output_dir", "{mine}"], 1, r"not a run directory of this tool"),
    (RL + ["--task", "chess"], 1, r"unknown task 'chess'"),
    (
        RL + ["--config", "{renamed_yaml}"],
        2,
        r"renamed.yaml: unknown key\(s\) diffusion_steps, sampler_threshold; renamed: diffusion_steps is now steps, "
        r"sampler_threshold is now threshold$",
    ),
    # merge, init-model
    (["merge", "--checkpoint", "{base}"], 2, r"the following arguments are required: --output_dir"),
    (
        ["merge", "--checkpoint", "{tmp}/nothing", "--output_dir", "{tmp}/m"],
        1,
        r"--checkpoint .*nothing: no such checkpoint",
    ),
    (["merge", "--checkpoint", "{base}", "--output_dir", "{mine}"], 1, r"mine: already exists and is not empty"),
    (["merge", "--checkpoint", "{base}", "--output_dir", "{tmp}/m"], 1, r"no gift_manifest.json: not a checkpoint"),
    (["init-model", "--output_dir", "{tmp}/x", "--preset", "huge"], 2, r"argument --preset: invalid choice: 'huge'"),
    (["init-model", "--output_dir", "{mine}"], 1, r"mine: already exists and is not empty"),
    # evaluation, scoring, curves, entropy report, pipeline
    (
        ["eval", "--model", "{tmp}/no_model", "--task", "sudoku", "--data", "synthetic", "--output_dir", "{tmp}/e"],
        1,
        r"no_model",
    ),
    (
        ["eval", "--model", "{base}", "--task", "gsm8k", "--data", "{latin1_jsonl}", "--output_dir", "{tmp}/e"],
        1,
        r"latin1.jsonl:2: not UTF-8 text \(byte 0xe9 at column 16\); save it as UTF-8",
    ),
    (
        ["eval", "--model", "{truncated}", "--task", "sudoku", "--data", "synthetic", "--output_dir", "{tmp}/e"],
        1,
        r"truncated/model.safetensors: unreadable weights",
    ),
    (
        ["entropy-report", "--model", "{base}", "--data", "{latin1_jsonl}", "--output_dir", "{tmp}/er"],
        1,
        r"latin1.jsonl:2: not UTF-8 text",
    ),
    (["score", "{tmp}/nothing"], 1, r"nothing: no such file or directory"),
    (["curves", "{tmp}/nothing", "--output", "{tmp}/c.png"], 1, r"nothing/metrics.jsonl: no such metrics file"),
    (
        ["entropy-report", "--model", "{tmp}/no_model", "--data", "synthetic:sudoku", "--output_dir", "{tmp}/er"],
        1,
        r"no_model: no such model directory or checkpoint",
    ),
    (["pipeline", "--config", "{tmp}/missing.yaml"], 2, r"--config .*missing.yaml: no such file"),
    (["pipeline", "--config", "{binary_yaml}"], 2, r"binary.yaml:1: not UTF-8 text"),
]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,code,message", CASES, ids=[f"{c[0][0]}-{i}" for i, c in enumerate(CASES)])
def test_one_line_error_and_exit_code(argv, code, message, files, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gift"])
    monkeypatch.delenv("GIFT_DEBUG", raising=False)
    argv = [a.format(**files) for a in argv]
    before = sorted(p.name for p in Path(files["tmp"]).iterdir())
    got, err = _run(argv, capsys)
    errors = [line for line in err.splitlines() if line.startswith(f"gift {argv[0]}: error: ")]
    assert "Traceback" not in err
    assert len(errors) == 1, err
    import re

    assert re.search(message, errors[0]), errors[0]
    assert got == code, err
    # Nothing was created next to the inputs (a refused run leaves no directory behind).
    assert sorted(p.name for p in Path(files["tmp"]).iterdir()) == before
    assert sorted(p.name for p in (Path(files["tmp"]) / "mine").iterdir()) == ["README.md"]


def test_debug_shows_the_exception(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gift"])
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        cli.main(["cold-start", "--output_dir", str(tmp_path / "r"), "--resume", "true", "--debug"])
    monkeypatch.setenv("GIFT_DEBUG", "1")
    with pytest.raises(cli.UsageError, match="no such file"):
        cli.main(["pipeline", "--config", str(tmp_path / "missing.yaml")])


def test_negative_numbers_parse_as_values():
    assert join_negative_values(["--learning_rate", "-1e-3", "--max_steps", "-5", "--seed", "3"]) == [
        "--learning_rate=-1e-3",
        "--max_steps=-5",
        "--seed",
        "3",
    ]
    assert join_negative_values(["--smoothing", "-.5", "--x", "-inf", "--lora_target_modules", "-q"]) == [
        "--smoothing=-.5",
        "--x=-inf",
        "--lora_target_modules",
        "-q",
    ]


def test_the_installed_command_prints_one_line(tmp_path):
    """The real process: exit status 2, one stderr line, no traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.cli",
            "cold-start",
            "--output_dir",
            str(tmp_path / "r"),
            "--learning_rate",
            "-1e-3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "GIFT_DEBUG": ""},
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == ["gift cold-start: error: --learning_rate -0.001: must be > 0"]
    assert not (tmp_path / "r").exists()


def test_a_run_through_the_cli_is_refused_while_locked(tmp_path, base_dir, capsys, monkeypatch):
    from stages.runs.lock import LOCK_NAME

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2026-01-01T00:00:00Z"}))
    monkeypatch.setattr(sys, "argv", ["gift"])
    code, err = _run(
        ["cold-start", "--model_name_or_path", str(base_dir), "--output_dir", str(run), "--max_steps", "1"], capsys
    )
    assert code == 1 and "Traceback" not in err
    assert (
        f"gift cold-start: error: {run} is in use by another run (pid 1 on elsewhere, since 2026-01-01T00:00:00Z)"
        in err
    )
    assert f"delete {run / LOCK_NAME}" in err
