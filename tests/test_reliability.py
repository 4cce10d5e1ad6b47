"""Run directories: the lock, foreign directories, resume at every boundary, config drift, full disk,
numeric validation, incomplete checkpoints (docs/reliability.md)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import copy_task_rows, kill_at_step, tiny_cold_start_config, tiny_rl_config, write_jsonl

import stages.train.cold_start as cold_start
import stages.train.rl as rl
from gift.checkpoint import (
    MANIFEST_NAME,
    RUN_MARKER,
    CheckpointError,
    DiskFullError,
    load_model,
    read_manifest,
    save_checkpoint,
)
from stages.runs.drift import config_drift
from stages.runs.lock import LOCK_NAME, RunDirError, acquire_lock, release_lock
from stages.runs.manifest import HARMLESS_KEYS, ConfigDriftError, canonical_spelling
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig
from stages.train.rl import run_rl
from stages.train.rl_config import RLConfig

REPO = Path(__file__).resolve().parents[1]


def _config(run_dir: Path, base_dir: Path, data: Path, **overrides) -> ColdStartConfig:
    return tiny_cold_start_config(run_dir, base_dir, data, **{"objective": "gift", **overrides})


def _rl_config(run_dir: Path, model: Path, **overrides) -> RLConfig:
    return tiny_rl_config(
        run_dir, model, **{"max_prompts": 16, "steps": 6, "per_device_train_batch_size": 4, "beta": 0.04, **overrides}
    )


def tree_checksums(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(str(path)).model.state_dict()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "copy.jsonl", copy_task_rows(32))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, base_dir, data) -> Path:
    """The uninterrupted 4-step run (checkpoints at 2 and 4) every resumed run must reproduce."""
    return run_cold_start(_config(tmp_path_factory.mktemp("straight") / "run", base_dir, data))


# --- the lock ---------------------------------------------------------------------------------------------
def _holder(run_dir: Path) -> subprocess.Popen:
    """Another process that takes the run directory's lock and keeps it until killed."""
    code = (
        "import sys; from pathlib import Path; from stages.runs.lock import acquire_lock; "
        f"acquire_lock(Path({str(run_dir)!r})); print('locked', flush=True); sys.stdin.read()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_and_a_dead_owners_lock_is_taken_over(tmp_path, base_dir, data):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = _holder(run_dir)
    try:
        owner = json.loads((run_dir / LOCK_NAME).read_text())
        assert owner["pid"] == holder.pid
        with pytest.raises(RunDirError, match=rf"in use by another run \(pid {holder.pid} on {owner['host']}"):
            run_cold_start(_config(run_dir, base_dir, data))
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_NAME]  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The owner died without releasing: its lock is stale and the next run takes it over.
    final = run_cold_start(_config(run_dir, base_dir, data, max_steps=1, save_steps=10))
    assert final == run_dir / "final" and not (run_dir / LOCK_NAME).exists()


def test_lock_is_exclusive_within_a_process_and_released(tmp_path):
    lock = acquire_lock(tmp_path)
    with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
        acquire_lock(tmp_path)
    release_lock(lock)
    assert not lock.exists()
    release_lock(acquire_lock(tmp_path))


# --- directories that are not runs --------------------------------------------------------------------------
def test_a_directory_that_is_not_a_run_is_refused_with_its_files_unchanged(tmp_path, base_dir, data):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "README.md").write_text("my notes\n")
    (user / "metrics.jsonl").write_text('{"step": 1, "mine": true}\n')
    (user / "train_log.jsonl").write_text("keep me\n")
    before = tree_checksums(user)
    with pytest.raises(FileExistsError, match=r"not empty \(README.md, metrics.jsonl, train_log.jsonl\) and not a run"):
        run_cold_start(_config(user, base_dir, data))
    with pytest.raises(FileExistsError, match="not a run directory"):
        run_rl(_rl_config(user, base_dir))
    with pytest.raises(FileExistsError, match="not a run directory"):
        run_cold_start(_config(user, base_dir, data, resume=True))
    assert tree_checksums(user) == before


def test_a_failed_start_leaves_no_directory_and_an_output_file_is_refused(tmp_path, base_dir):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "1"}])
    with pytest.raises(ValueError, match="missing field"):
        run_cold_start(_config(tmp_path / "run", base_dir, bad))
    assert not (tmp_path / "run").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="exists and is not a directory"):
        run_cold_start(_config(tmp_path / "file", base_dir, bad))


# --- resume at every boundary ---------------------------------------------------------------------------------
def test_resume_before_the_first_checkpoint_starts_from_step_zero(tmp_path, base_dir, data, straight):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(run_dir, base_dir, data), callbacks=[kill_at_step(1)])
    assert (run_dir / RUN_MARKER).is_file() and not list(run_dir.glob("checkpoint-*"))
    resumed = run_cold_start(_config(run_dir, base_dir, data, resume=True))
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_without_a_run_is_an_error(tmp_path, base_dir, data):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint-N .* drop --resume"):
        run_cold_start(_config(tmp_path / "nothing", base_dir, data, resume=True))
    assert not (tmp_path / "nothing").exists()


def _killed_during_the_final_save(monkeypatch, stage_module, run) -> None:
    """`run()` with the stage's `save_final` raising KeyboardInterrupt, as a process killed while publishing final/."""

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed during the final save")

    with monkeypatch.context() as patch:
        patch.setattr(stage_module, "save_final", killed)
        with pytest.raises(KeyboardInterrupt):
            run()


def test_killed_during_the_final_save_publishes_final_from_the_last_checkpoint(
    tmp_path, base_dir, data, straight, monkeypatch
):
    run_dir = tmp_path / "run"
    _killed_during_the_final_save(monkeypatch, cold_start, lambda: run_cold_start(_config(run_dir, base_dir, data)))
    assert (run_dir / "checkpoint-4" / MANIFEST_NAME).is_file() and not (run_dir / "final").exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a run at max_steps must not train again")

    monkeypatch.setattr(cold_start, "ColdStartTrainer", no_training)
    final = run_cold_start(_config(run_dir, base_dir, data, resume=True))
    assert final == run_dir / "final"
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]  # no step 5
    a, b = _weights(straight), _weights(final)
    assert all(torch.equal(a[k], b[k]) for k in a)
    manifest = read_manifest(final)
    assert manifest.metrics["global_step"] == 4 and manifest.metrics["published_from"] == "checkpoint-4"
    assert manifest.config["learning_rate"] == 3e-3
    assert not (final / "optimizer.pt").exists() and (final / "tokenizer_config.json").is_file()
    steps = [
        row["step"] for row in map(json.loads, (run_dir / "train_log.jsonl").read_text().splitlines()) if "loss" in row
    ]
    assert steps == [1, 2, 3, 4]


def test_resume_of_a_finished_run_changes_nothing(tmp_path, base_dir, data, monkeypatch):
    run_dir = tmp_path / "run"
    final = run_cold_start(_config(run_dir, base_dir, data, max_steps=2, save_steps=2))
    before = tree_checksums(run_dir)
    monkeypatch.setattr(cold_start, "ColdStartTrainer", None)  # any training attempt would fail
    # Harmless keys (logging, save cadence) may differ on --resume.
    again = run_cold_start(_config(run_dir, base_dir, data, max_steps=2, save_steps=1, logging_steps=5, resume=True))
    assert again == final and tree_checksums(run_dir) == before
    assert not list(run_dir.glob("checkpoint-3"))


def test_resume_with_a_changed_config_is_refused_naming_the_keys(tmp_path, base_dir, data):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(run_dir, base_dir, data), callbacks=[kill_at_step(3)])
    before = tree_checksums(run_dir)
    with pytest.raises(ConfigDriftError, match=r"learning_rate: 0\.003 -> 0\.01; objective: 'gift' -> 'sft'") as err:
        run_cold_start(_config(run_dir, base_dir, data, objective="sft", learning_rate=0.01, resume=True))
    assert "checkpoint-2" in str(err.value)
    with pytest.raises(ConfigDriftError, match=r"max_steps: 4 -> 6"):
        run_cold_start(_config(run_dir, base_dir, data, max_steps=6, resume=True))
    assert tree_checksums(run_dir) == before


@pytest.mark.parametrize(
    "saved,drift",
    [
        ("all-linear", []),  # stage two before lora_target_modules became a list
        (["all-linear"], []),
        ("q_proj,v_proj", ["lora_target_modules: ['q_proj', 'v_proj'] -> ['all-linear']"]),
        ("all-linear,q_proj", ["lora_target_modules: 'all-linear,q_proj' -> ['all-linear']"]),  # invalid: as written
    ],
)
def test_lora_target_modules_drift_is_judged_on_the_normalised_list(tmp_path, saved, drift):
    config = _rl_config(tmp_path / "rl", tmp_path / "model", use_lora=True, lora_target_modules="all-linear")
    recorded = json.loads(json.dumps(config.to_dict(), default=str))
    assert config_drift({**recorded, "lora_target_modules": saved}, config, HARMLESS_KEYS, canonical_spelling) == drift


def test_rl_resume_boundaries(tmp_path, straight, monkeypatch):
    """Stage two: killed during the final save -> final/ from checkpoint-4; resumed again -> unchanged."""
    run_dir = tmp_path / "rl"
    _killed_during_the_final_save(monkeypatch, rl, lambda: run_rl(_rl_config(run_dir, straight)))
    lines = (run_dir / "metrics.jsonl").read_text()
    monkeypatch.setattr(rl, "DiffuGRPOTrainer", None)
    final = run_rl(_rl_config(run_dir, straight, resume=True))
    assert read_manifest(final).metrics["published_from"] == "checkpoint-4"
    before = tree_checksums(run_dir)
    assert run_rl(_rl_config(run_dir, straight, resume=True)) == final
    assert tree_checksums(run_dir) == before and (run_dir / "metrics.jsonl").read_text() == lines
    assert [json.loads(line)["step"] for line in lines.splitlines()] == [1, 2, 3, 4]
    with pytest.raises(ConfigDriftError, match=r"beta: 0\.04 -> 0\.0"):
        run_rl(_rl_config(run_dir, straight, beta=0.0, resume=True))


# --- full disk --------------------------------------------------------------------------------------------
def test_a_full_disk_names_the_path_and_free_space_and_publishes_nothing(tmp_path, base_dir, data, monkeypatch):
    import transformers

    original = transformers.PreTrainedModel.save_pretrained

    def full(self, directory, *args, **kwargs):
        original(self, directory, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(directory) / "model.safetensors"))

    monkeypatch.setattr(transformers.PreTrainedModel, "save_pretrained", full)
    run_dir = tmp_path / "run"
    with pytest.raises(
        DiskFullError, match=r"checkpoint-2/model.safetensors: no space left on device, [\d.]+ [KMGT]?B free"
    ):
        run_cold_start(_config(run_dir, base_dir, data))
    assert not (run_dir / "checkpoint-2" / MANIFEST_NAME).exists() and not (run_dir / "final").exists()
    assert not (run_dir / LOCK_NAME).exists()
    loaded = load_model(str(base_dir))
    with pytest.raises(DiskFullError, match="no space left on device") as err:
        save_checkpoint(tmp_path / "ckpt", loaded.model, loaded.tokenizer, _manifest(loaded))
    assert err.value.errno == errno.ENOSPC and not (tmp_path / "ckpt").exists()


def _manifest(loaded):
    from gift.checkpoint import manifest_for

    return manifest_for(loaded, "base", "embedded:tiny", None, False, {})


def test_torch_stream_error_is_reported_as_a_write_failure(tmp_path):
    from gift.checkpoint import explain_disk_full

    with pytest.raises(DiskFullError, match=rf"{tmp_path}: write failed \(iostream error: a full disk\?\), .* free"):
        with explain_disk_full(tmp_path):
            raise RuntimeError(
                "[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0; basic_ios::clear: iostream error"
            )


# --- numeric validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "option,value,message",
    [
        ("max_steps", -5, r"--max_steps -5: must be a positive integer, or -1 to train num_train_epochs"),
        ("max_steps", 0, r"--max_steps 0: must be a positive integer"),
        ("learning_rate", -1e-3, r"--learning_rate -0.001: must be > 0"),
        ("learning_rate", float("nan"), r"--learning_rate nan: must be > 0"),
        ("per_device_train_batch_size", 0, r"--per_device_train_batch_size 0: must be a positive integer"),
        ("gradient_accumulation_steps", 0, r"--gradient_accumulation_steps 0"),
        ("max_length", 1, r"--max_length 1: must be an integer >= 2"),
        ("lora_dropout", 1.5, r"--lora_dropout 1.5: must lie in \[0, 1\)"),
        ("save_steps", -2, r"--save_steps -2: must be a positive integer \(steps\) or a fraction"),
        ("synthetic_examples", 0, r"--synthetic_examples 0"),
        ("seed", -1, r"--seed -1: must be an integer in \[0, 2\^32\)"),
    ],
)
def test_numeric_options_are_validated_before_anything_loads(tmp_path, option, value, message):
    with pytest.raises(ValueError, match=message):
        ColdStartConfig(output_dir=str(tmp_path / "o"), **{option: value})


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("max_steps", -5, r"--max_steps -5"),
        ("p_mask_prompt", 1.0, r"p_mask_prompt 1.0: must lie in \[0, 1\)"),
        ("gen_length", 0, r"--gen_length 0"),
        ("temperature", -1.0, r"--temperature -1.0: must be >= 0"),
        ("num_generations", 1, r"--num_generations 1: must be an integer >= 2"),
        ("beta", -0.1, r"--beta -0.1"),
        ("gen_length", 20, r"--gen_length 20 is not divisible by --block_length 32"),
        (
            "steps",
            100,
            r"--steps 100 is not divisible by the number of blocks \(gen_length 256 / "
            r"block_length 32 = 8\)",
        ),
    ],
)
def test_rl_numeric_options_are_validated(tmp_path, option, value, message):
    values = {
        "output_dir": str(tmp_path / "o"),
        "per_device_train_batch_size": 4,
        "num_generations": 4,
        "save_steps": 12,
        option: value,
    }
    if option == "num_generations":
        values["per_device_train_batch_size"] = 2
    with pytest.raises(ValueError, match=message):
        RLConfig(**values)


# --- checkpoints without a manifest --------------------------------------------------------------------------
def test_a_checkpoint_without_manifest_is_refused_and_a_plain_model_is_accepted(tmp_path, straight, base_dir, caplog):
    import shutil

    incomplete = tmp_path / "checkpoint-4"
    shutil.copytree(straight.parent / "checkpoint-4", incomplete)
    (incomplete / MANIFEST_NAME).unlink()
    with pytest.raises(CheckpointError, match="looks like a checkpoint of this project but has no gift_manifest.json"):
        load_model(str(incomplete))
    run = tmp_path / "unfinished"
    shutil.copytree(straight.parent, run, ignore=shutil.ignore_patterns("final"))
    with pytest.raises(CheckpointError, match=r"run directory without a complete final/ .*latest: .*checkpoint-4"):
        load_model(str(run))
    with caplog.at_level("INFO", logger="gift.checkpoint"):
        loaded = load_model(str(base_dir))
    assert loaded.manifest is None
    assert "no gift_manifest.json: loaded as a plain embedded base model" in caplog.text


def test_truncated_weights_name_the_file(tmp_path, straight):
    import shutil

    copy = tmp_path / "ckpt"
    shutil.copytree(straight, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=rf"{weights}: unreadable weights .* truncated or corrupt"):
        load_model(str(copy))


def test_an_output_dir_that_cannot_be_written_is_one_clear_error(tmp_path, base_dir, data, monkeypatch):
    import stages.runs.guard as run_dir_module

    def denied(out):
        raise PermissionError(errno.EACCES, "Permission denied", str(out / LOCK_NAME))

    monkeypatch.setattr(run_dir_module, "acquire_lock", denied)
    with pytest.raises(
        RunDirError, match=r"--output_dir .*ro: cannot write there \(Permission denied\); choose a writable"
    ):
        run_cold_start(_config(tmp_path / "ro", base_dir, data))
    assert not (tmp_path / "ro").exists()


def test_a_finished_run_without_checkpoints_or_marker_is_already_complete(tmp_path, base_dir, data, straight):
    """A run from before the marker, saved only at the end (save_steps > max_steps): final/ alone."""
    import shutil

    run_dir = tmp_path / "old"
    shutil.copytree(straight, run_dir / "final")
    before = tree_checksums(run_dir)
    assert run_cold_start(_config(run_dir, base_dir, data, resume=True)) == run_dir / "final"
    assert tree_checksums(run_dir) == before
    with pytest.raises(FileExistsError, match="already holds a run; pass --resume"):
        run_cold_start(_config(run_dir, base_dir, data))


def test_a_model_directory_shipping_a_trainer_state_stays_a_plain_model(tmp_path, base_dir):
    import shutil

    model = tmp_path / "some-model"
    shutil.copytree(base_dir, model)
    (model / "trainer_state.json").write_text(json.dumps({"global_step": 10, "max_steps": 10}))
    assert load_model(str(model)).manifest is None


@pytest.mark.slow
def test_two_cli_runs_in_one_directory_then_kill_and_resume(tmp_path, base_dir, data, capsys, monkeypatch):
    """Two runs racing for one directory: `S1 --output_dir X & S1 --seed 1 --output_dir X`, then `kill -9` and
    `--resume`."""
    import time

    from stages import cli

    run_dir = tmp_path / "X"
    args = [
        "cold-start",
        "--model_name_or_path",
        str(base_dir),
        "--dataset",
        str(data),
        "--max_length",
        "24",
        "--per_device_train_batch_size",
        "8",
        "--max_steps",
        "40",
        "--save_steps",
        "2",
        "--disable_tqdm",
        "true",
        "--output_dir",
        str(run_dir),
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "stages.cli", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.time() + 120
        while not (run_dir / "checkpoint-2" / MANIFEST_NAME).is_file():
            assert first.poll() is None and time.time() < deadline, "the first run stopped before its first checkpoint"
            time.sleep(0.2)
        monkeypatch.setattr(sys, "argv", ["gift"])
        assert cli.main([*args, "--seed", "1"]) == 1
        assert f"is in use by another run (pid {first.pid} on" in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (run_dir / LOCK_NAME).is_file() and not (run_dir / "final").exists()
    assert cli.main([*args, "--resume", "true"]) == 0  # takes over the dead run's lock, continues, finishes
    manifest = read_manifest(run_dir / "final")
    assert manifest.metrics["global_step"] == 40 and manifest.config["seed"] == 42
    assert not (run_dir / LOCK_NAME).exists()
    assert max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*")) == 40


def test_resume_from_a_checkpoint_with_truncated_weights_names_the_file(tmp_path, base_dir, data):
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(run_dir, base_dir, data), callbacks=[kill_at_step(3)])
    weights = run_dir / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:80])
    with pytest.raises(CheckpointError, match=rf"{weights}: unreadable weights .*truncated or corrupt"):
        run_cold_start(_config(run_dir, base_dir, data, resume=True))
