"""Reliability round two (docs/reliability.md, cases 9-24): folders that only look like runs, the pipeline's
lock and config check, one model per eval folder, a LoRA stage one into stage two, resolved paths,
duplicate YAML keys and runs, torch's short write, a torn metrics line, save_steps on resume, gen_length
past the model's positions, a dangling output link."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import copy_task_rows, kill_at_step, tiny_cold_start_config, tiny_rl_config, write_jsonl

from gift.checkpoint import DiskFullError, explain_disk_full, load_model, read_manifest
from stages.cli import main as gift
from stages.pipeline import run_pipeline
from stages.pipeline_config import load_pipeline_config
from stages.runs.folder import ForeignFolderError, RunDirError, folder_stage
from stages.runs.lock import LOCK_NAME, acquire_lock, release_lock
from stages.runs.metrics_file import lines_up_to
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig
from stages.train.rl import run_rl
from stages.yaml_keys import DuplicateKeyError, load_yaml

QUICK = "configs/embedded/pipeline_quick.yaml"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "copy.jsonl", copy_task_rows(32))


def _s1(run_dir: Path, model: Path | str, data: Path, **overrides) -> ColdStartConfig:
    return tiny_cold_start_config(run_dir, model, data, **{"objective": "gift", **overrides})


def _rl(run_dir: Path, model: Path | str, **overrides):
    return tiny_rl_config(
        run_dir, model, **{"max_prompts": 16, "steps": 6, "per_device_train_batch_size": 4, **overrides}
    )


# --- one rule for what a run folder is ----------------------------------------------------------------------
LOOKALIKES = {
    "hf_trainer_output": {"checkpoint-500/config.json": "{}", "README.md": "another project\n"},
    "a_file_named_checkpoint": {"checkpoint-ideas.txt": "ideas\n", "train_log.jsonl": "mine\n"},
    "an_old_checkpoint_folder": {"checkpoint-old/notes.txt": "old\n", "README.md": "mine\n", "metrics.jsonl": "{}\n"},
    "a_final_folder": {"final/notes.txt": "keep\n", "README.md": "mine\n", "metrics.jsonl": "{}\n"},
}


@pytest.mark.parametrize("layout", sorted(LOOKALIKES))
@pytest.mark.parametrize("stage", ["cold_start", "rl"])
@pytest.mark.parametrize("resume", [False, True])
def test_a_folder_named_like_a_run_is_not_one(tmp_path, base_dir, data, layout, stage, resume):
    user = tmp_path / "d"
    for name, text in LOOKALIKES[layout].items():
        (user / name).parent.mkdir(parents=True, exist_ok=True)
        (user / name).write_text(text)
    before = tree(user)
    config = _s1(user, base_dir, data, resume=resume) if stage == "cold_start" else _rl(user, base_dir, resume=resume)
    with pytest.raises(
        ForeignFolderError, match=rf"--output_dir {user}: not empty .* and not a run directory of this tool"
    ):
        (run_cold_start if stage == "cold_start" else run_rl)(config)
    assert tree(user) == before


def test_a_folder_of_another_stage_is_refused(tmp_path, base_dir, data):
    run = tmp_path / "run"
    run_cold_start(_s1(run, base_dir, data, max_steps=1, save_steps=10))
    before = tree(run)
    with pytest.raises(ForeignFolderError, match="a cold_start folder of this tool, not a rl one"):
        run_rl(_rl(run, run))
    assert tree(run) == before


def test_a_run_of_an_older_version_still_resumes(tmp_path, base_dir, data):
    """Before the marker, a run was known by its complete checkpoints (they carry gift_manifest.json)."""
    run = tmp_path / "run"
    _kill_cold_start(run, base_dir, data, at=3)
    (run / "gift_run.json").unlink()
    assert folder_stage(run) == "run"
    final = run_cold_start(_s1(run, base_dir, data, resume=True))
    assert read_manifest(final).metrics["global_step"] == 4


def _kill_cold_start(run: Path, model, data: Path, at: int, **overrides) -> None:
    """A stage-one run killed after step `at` (its checkpoints so far kept)."""
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_s1(run, model, data, **overrides), callbacks=[kill_at_step(at)])


@pytest.mark.parametrize(
    "sign, stage",
    [("pipeline_state.json", "pipeline"), ("eval_config.json", "eval"), ("entropy_report.json", "entropy_report")],
)
def test_folders_of_older_versions_are_known_by_a_file_only_the_tool_writes(tmp_path, sign, stage):
    from stages.runs.folder import check_folder

    (tmp_path / sign).write_text("{}")
    (tmp_path / "other.txt").write_text("x")
    assert folder_stage(tmp_path) == stage and check_folder(tmp_path, stage) == tmp_path
    with pytest.raises(ForeignFolderError, match=f"a {stage} folder of this tool, not a cold_start one"):
        check_folder(tmp_path, "cold_start")


def test_a_dangling_link_as_output_dir_is_one_clear_line(tmp_path, base_dir, data, capsys):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "missing")
    with pytest.raises(
        RunDirError, match=rf"--output_dir {link}: a symbolic link to {tmp_path / 'missing'}, which does not exist"
    ):
        run_cold_start(_s1(link, base_dir, data))
    assert _eval(str(base_dir), link) == 1
    assert "a symbolic link to" in capsys.readouterr().err
    assert link.is_symlink() and not (tmp_path / "missing").exists()


# --- the pipeline -----------------------------------------------------------------------------------------
def _tiny_pipeline(out: Path, **changes):
    settings = {
        "output_dir": str(out),
        "pretrain_steps": 0,
        "entropy_examples": 0,
        "rl_from_step": None,
        "stage_one": {"max_steps": 2, "save_steps": 2, "synthetic_examples": 64, "per_device_train_batch_size": 8},
        "arms": [{"name": "sft", "overrides": {"objective": "sft"}, "rl": False}],
        "eval": {"gen_lengths": [8], "block_length": 8, "limit": 4, "batch_size": 4, "data": "synthetic"},
    }
    return load_pipeline_config(QUICK, {**settings, **changes})


def test_the_pipeline_refuses_a_folder_it_did_not_create(tmp_path):
    out = tmp_path / "mine"
    for name, text in {
        "README.md": "r\n",
        "report.md": "mine\n",
        "results.json": "{}\n",
        "pretrain/notes.txt": "n\n",
    }.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = tree(out)
    with pytest.raises(
        ForeignFolderError,
        match=rf"--output_dir {out}: not empty \(README.md, pretrain, report.md, "
        r"results.json\) and not a run directory of this tool",
    ):
        run_pipeline(_tiny_pipeline(out))
    assert tree(out) == before


def test_a_second_pipeline_on_a_held_folder_is_refused_before_writing(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    lock = acquire_lock(out)  # a live pipeline (this process) holds it
    try:
        with pytest.raises(RunDirError, match=rf"{out} is in use by another run \(pid {os.getpid()}"):
            run_pipeline(_tiny_pipeline(out))
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]
    finally:
        release_lock(lock)


@pytest.mark.slow
def test_a_pipeline_rerun_with_a_changed_config_or_recipe_is_refused(tmp_path):
    out = tmp_path / "run"
    recipe = tmp_path / "recipe.yaml"
    shutil.copy("configs/embedded/gift_sudoku.yaml", recipe)
    run_pipeline(_tiny_pipeline(out, stage_one_recipe=str(recipe)), log=lambda message: None)
    assert folder_stage(out) == "pipeline" and not (out / LOCK_NAME).exists()
    before = tree(out)
    changed = _tiny_pipeline(
        out,
        stage_one_recipe=str(recipe),
        stage_one={"max_steps": 3, "save_steps": 2, "synthetic_examples": 64, "per_device_train_batch_size": 8},
    )
    with pytest.raises(
        ValueError,
        match=r"differs from the one this pipeline folder was run with \(.*pipeline_config.yaml\): "
        r"stage_one.max_steps: 2 -> 3; nothing was run",
    ):
        run_pipeline(changed)
    original = recipe.read_text()
    recipe.write_text(re.sub(r"(?m)^learning_rate: .*$", "learning_rate: 0.5", original))  # an edited recipe
    with pytest.raises(
        ValueError, match=r"stage one: sft seed 0: --resume: the config differs .* learning_rate: .* -> 0.5"
    ):
        # (a harmless change too: pipeline_config.yaml is not rewritten before the refusal)
        run_pipeline(_tiny_pipeline(out, stage_one_recipe=str(recipe), smoothing=0.5), log=lambda message: None)
    assert {k: v for k, v in tree(out).items() if k != "pipeline_state.json"} == {
        k: v for k, v in before.items() if k != "pipeline_state.json"
    }
    messages = []  # the recipe as it was: everything skips
    recipe.write_text(original)
    run_pipeline(_tiny_pipeline(out, stage_one_recipe=str(recipe), workers=2), log=messages.append)
    assert any(m.startswith("skip  stage one: sft seed 0") for m in messages), messages


def test_config_drift_keeps_a_new_field_unchanged_only_while_it_keeps_its_default():
    """The one drift rule of `--resume` and of a pipeline rerun: a field newer than the saved config is judged
    by its default, `default_factory` included (the case the two former copies disagreed on)."""
    from dataclasses import dataclass, field

    from stages.runs.drift import config_drift

    @dataclass
    class Config:
        lr: float = 0.1
        seeds: list = field(default_factory=lambda: [0, 1])
        stage: dict = field(default_factory=dict)
        output_dir: str = "a"

    saved = {"lr": 0.1, "output_dir": "b", "retired": 3}  # an older run: no seeds or stage; `retired` since removed
    assert config_drift(saved, Config(), harmless={"output_dir"}) == []
    assert config_drift(saved, Config(lr=0.2, seeds=(0, 1, 2)), harmless={"output_dir"}) == [
        "lr: 0.1 -> 0.2",
        "seeds: [0, 1] -> [0, 1, 2]",
    ]
    assert config_drift(
        {**saved, "stage": {"max_steps": 12}}, Config(stage={"max_steps": 18, "seed": 1}), harmless={"output_dir"}
    ) == ["stage.max_steps: 12 -> 18", "stage.seed: '(unset)' -> 1"]


# --- eval: one model per folder ---------------------------------------------------------------------------
def _eval(model: str, out: Path, gen_length: int = 8) -> int:
    return gift(
        [
            "eval",
            "--model",
            model,
            "--task",
            "sudoku",
            "--data",
            "synthetic",
            "--limit",
            "2",
            "--gen_length",
            str(gen_length),
            "--block_length",
            "8",
            "--steps",
            str(gen_length),
            "--output_dir",
            str(out),
        ]
    )


def test_eval_refuses_a_folder_holding_another_models_generations(tmp_path, base_dir, capsys, monkeypatch):
    out = tmp_path / "eval"
    assert _eval(str(base_dir), out, 8) == 0
    monkeypatch.chdir(base_dir.parent)
    assert _eval(f"./{base_dir.name}", out, 16) == 0  # the same model, spelled relatively: another length
    before = tree(out)
    capsys.readouterr()
    assert _eval("embedded:tiny", out, 24) == 1
    err = capsys.readouterr().err
    assert f"holds generations of {base_dir.resolve()}" in err and "not of embedded:tiny" in err and "mix" in err
    assert tree(out) == before


def test_an_eval_folder_of_an_older_version_is_judged_by_its_eval_config(tmp_path, base_dir, capsys):
    out = tmp_path / "eval"
    assert _eval(str(base_dir), out, 8) == 0
    (out / "gift_run.json").unlink()  # written before the marker existed
    assert _eval("embedded:tiny", out, 16) == 1
    assert f"holds generations of {base_dir.resolve()}" in capsys.readouterr().err
    assert _eval(str(base_dir), out, 16) == 0


def test_eval_refuses_a_user_folder(tmp_path, base_dir, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "todo.txt").write_text("x\n")
    assert _eval(str(base_dir), out) == 1
    assert "not empty (todo.txt) and not a run directory of this tool" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["todo.txt"]


def test_gen_length_beyond_the_models_positions_is_refused_before_running(tmp_path, base_dir, capsys):
    limit = load_model(str(base_dir)).model.config.max_position_embeddings
    too_long = (limit // 8 + 1) * 8
    assert _eval(str(base_dir), tmp_path / "e", too_long) == 1
    assert f"gift eval: error: --gen_length {too_long}: with the longest prompt" in capsys.readouterr().err
    with pytest.raises(
        ValueError, match=rf"--gen_length {too_long}: with the longest prompt .* max_position_embeddings {limit}"
    ):
        run_rl(_rl(tmp_path / "rl", base_dir, gen_length=too_long, block_length=8, steps=too_long // 8))
    assert not (tmp_path / "rl").exists()


# --- a LoRA stage one into stage two ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_stage_one(tmp_path_factory, base_dir, data) -> Path:
    out = tmp_path_factory.mktemp("lora") / "s1"
    return run_cold_start(_s1(out, base_dir, data, use_lora=True, max_steps=2, save_steps=10, lora_r=4, lora_alpha=8))


def test_a_lora_stage_one_trains_full_weights_in_stage_two(tmp_path, lora_stage_one):
    """use_lora false: the adapter is merged into its base and every weight trains."""
    start = load_model(str(lora_stage_one), merge_adapter=True).model.state_dict()
    final = run_rl(_rl(tmp_path / "rl", lora_stage_one, max_steps=2, learning_rate=1e-3))
    manifest = read_manifest(final)
    assert not manifest.adapter and manifest.parent == str(lora_stage_one.resolve())
    trained = load_model(str(final)).model.state_dict()
    changed = [name for name in start if not torch.equal(start[name], trained[name])]
    assert len(changed) > len(start) // 2  # full-weight training, not an adapter


def test_a_lora_stage_one_trains_a_new_adapter_with_use_lora(tmp_path, lora_stage_one):
    final = run_rl(_rl(tmp_path / "rl", lora_stage_one, max_steps=2, use_lora=True, lora_r=4, lora_alpha=8))
    manifest = read_manifest(final)
    assert manifest.adapter and manifest.base_model == str(lora_stage_one.resolve())


# --- resolved paths ---------------------------------------------------------------------------------------
def test_resume_compares_model_paths_resolved(tmp_path, base_dir, data, monkeypatch):
    """`./base`, `base` and the absolute path are one model; `base` from another directory is another."""
    for where in ("a", "b"):
        shutil.copytree(base_dir, tmp_path / where / "base")
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path / "a")
    _kill_cold_start(run, "base", data, at=3)
    monkeypatch.chdir(tmp_path / "b")
    with pytest.raises(
        ValueError, match=rf"model_name_or_path: '{tmp_path / 'a' / 'base'}' -> '{tmp_path / 'b' / 'base'}'"
    ):
        run_cold_start(_s1(run, "base", data, resume=True))
    monkeypatch.chdir(tmp_path / "a")
    final = run_cold_start(_s1(run, "./base", data, resume=True))
    assert read_manifest(final).parent == str((tmp_path / "a" / "base").resolve())
    assert read_manifest(final).config["model_name_or_path"] == str((tmp_path / "a" / "base").resolve())


# --- duplicates -------------------------------------------------------------------------------------------
def test_a_duplicate_yaml_key_names_file_key_and_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 0.1\nmax_steps: 4\nlearning_rate: 0.2\n")
    with pytest.raises(DuplicateKeyError, match=rf"{recipe}:3: duplicate key 'learning_rate' \(first at line 1\)"):
        load_yaml(recipe.read_text(), recipe)
    assert gift(["cold-start", "--config", str(recipe), "--output_dir", str(tmp_path / "o")]) == 2
    assert f"{recipe}:3: duplicate key 'learning_rate'" in capsys.readouterr().err
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("output_dir: x\narms:\n  - name: a\n    rl: false\n    rl: true\n")
    with pytest.raises(DuplicateKeyError, match=rf"{pipeline}:5: duplicate key 'rl' \(first at line 4\)"):
        load_pipeline_config(pipeline)


def test_curves_refuses_the_same_run_twice(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "wall_time": 1.0, "reward_mean": 0.5}\n')
    assert gift(["curves", str(run), f"{run}/", str(run / "metrics.jsonl"), "--output", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err
    assert f"{run}/ (already given as {run})" in err and "the same run given more than once" in err
    assert not (tmp_path / "c.png").exists()


# --- disk full, torn metrics line, save_steps on resume ----------------------------------------------------
def test_torchs_short_write_is_reported_as_a_full_disk(tmp_path):
    with pytest.raises(
        DiskFullError, match=rf"{tmp_path}: write failed \(torch's archive writer stopped short: a full disk\?\)"
    ):
        with explain_disk_full(tmp_path):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")


def test_a_torn_last_metrics_line_is_repaired_with_its_line_number(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "wall_time": 1}\n{"step": 2, "wall_time": 2}\n{"step": 3, "wall_time": 3}\n{"step": 4, "wa'
    )
    with caplog.at_level(logging.WARNING):
        assert lines_up_to(path, 2) == ['{"step": 1, "wall_time": 1}', '{"step": 2, "wall_time": 2}']
    assert f"{path}:4: half-written last line" in caplog.text
    path.write_text('{"step": 1}\n{"step": 2\n{"step": 3}\n')
    with pytest.raises(ValueError, match=rf"{path}:2: not a JSON line"):
        lines_up_to(path, 3)


def test_rl_resume_over_a_torn_metrics_line(tmp_path, base_dir):
    run = tmp_path / "rl"
    with pytest.raises(KeyboardInterrupt):
        run_rl(_rl(run, base_dir, max_steps=4, save_steps=2), callbacks=[kill_at_step(3)])
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 4, "loss": 0.1')
    run_rl(_rl(run, base_dir, max_steps=4, save_steps=2, resume=True))
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [1, 2, 3, 4]


def test_save_steps_changed_on_resume_is_honoured(tmp_path, base_dir, data):
    run = tmp_path / "run"
    _kill_cold_start(run, base_dir, data, at=3, max_steps=6, save_steps=2)
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2"]
    run_cold_start(_s1(run, base_dir, data, max_steps=6, save_steps=1, resume=True))
    assert sorted(p.name for p in run.glob("checkpoint-*")) == [f"checkpoint-{n}" for n in range(2, 7)]


@pytest.mark.slow
def test_two_pipelines_started_on_one_folder_one_runs_the_other_is_refused(tmp_path):
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    code = (
        "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; "
        "from test_run_folders import _tiny_pipeline; "
        f"from stages.pipeline import run_pipeline; run_pipeline(_tiny_pipeline(Path({str(out)!r})))"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(RunDirError, match=rf"{out} is in use by another run \(pid {first.pid} "):
            run_pipeline(_tiny_pipeline(out))
    finally:
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads((out / "pipeline_state.json").read_text())["steps"]  # the first run's record, whole
