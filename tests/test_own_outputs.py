"""`gift score` and `gift curves` write only their own files: a user's file under one of their output names
is refused, unchanged, before anything is written; their own earlier outputs are replaced (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from helpers import write_jsonl

from stages.cli import main as gift
from stages.runs.folder import RunDirError

SUDOKU = [
    {
        "task": "sudoku",
        "gen_length": 24,
        "puzzle": "0" * 16,
        "solution": "1234341221434321",
        "completion": "<answer>1234341221434321</answer>",
    }
]


def _metrics(run: Path) -> Path:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": s, "wall_time": float(s), "reward_mean": 0.1 * s}) + "\n" for s in (1, 2, 3))
    )
    return run


@pytest.mark.parametrize("name", ["scores.md", "scores.json"])
def test_score_refuses_a_users_file_and_replaces_its_own(tmp_path, capsys, name):
    (tmp_path / "a").mkdir()
    gens = write_jsonl(tmp_path / "a" / "gens.jsonl", SUDOKU)
    assert gift(["score", str(gens)]) == 0  # its own files: written, then replaced by a rerun
    assert gift(["score", str(gens)]) == 0
    (tmp_path / "a" / name).write_text("my notes\n")
    assert gift(["score", str(gens)]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"{tmp_path / 'a' / name}: exists and was not written by gift "
            "score; nothing was written: move it, or choose another --output"
        )
    )
    assert (tmp_path / "a" / name).read_text() == "my notes\n"


@pytest.mark.parametrize("name", ["reward.csv", "reward_aggregate.csv", "reward.png"])
def test_curves_refuses_a_users_file_and_replaces_its_own(tmp_path, capsys, name):
    run, out = _metrics(tmp_path / "run"), tmp_path / "a"
    assert gift(["curves", str(run), "--output", str(out / "reward.png")]) == 0
    assert gift(["curves", str(run), "--output", str(out / "reward.png")]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / name).write_bytes(b"label,x\nmine\n")
    assert gift(["curves", str(run), "--output", str(out / "reward.png")]) == 1
    assert f"{out / name}: exists and was not written by gift curves" in capsys.readouterr().err
    assert (out / name).read_bytes() == b"label,x\nmine\n"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != name} == {
        k: v for k, v in before.items() if k != name
    }


def test_a_failed_convert_leaves_nothing_and_the_rerun_works(tmp_path, base_dir, monkeypatch, capsys):
    import errno

    from transformers import PreTrainedTokenizerBase

    out = tmp_path / "native"
    real = PreTrainedTokenizerBase.save_pretrained

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", full)
    assert gift(["convert", "--model", str(base_dir), "--output_dir", str(out)]) == 1
    assert "no space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no config.json, no staging folder
    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", real)
    assert gift(["convert", "--model", str(base_dir), "--output_dir", str(out)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()


def test_render_readme_names_the_runs_config_and_refuses_a_running_folder(tmp_path):
    from test_readme_results import _results

    from stages.reports.readme_results import RESULTS, load_results, publish_run, render_section
    from stages.runs.folder import LOCK_NAME, mark_folder

    run = tmp_path / "run"
    mark_folder(run, "pipeline")
    (run / "results.json").write_text(json.dumps(_results()))
    (run / "report.md").write_text("# Pipeline report\n")
    (run / "pipeline_config.yaml").write_text("config_path: configs/embedded/pipeline_quick.yaml\n")
    publish_run(run, tmp_path)
    section = render_section(load_results(tmp_path / RESULTS))
    assert "`gift pipeline --config configs/embedded/pipeline_quick.yaml`" in section
    assert "configs/embedded/pipeline.yaml" not in section
    published = (tmp_path / RESULTS).read_bytes()
    (run / LOCK_NAME).write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "started": "now"}))
    (run / "results.json").write_text(json.dumps({**_results(), "seeds": [7]}))
    with pytest.raises(RunDirError, match="is in use by another run"):
        publish_run(run, tmp_path)
    assert (tmp_path / RESULTS).read_bytes() == published
