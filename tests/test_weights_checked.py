"""Divergence stops a run at once, and loaded weights are checked: missing, unexpected, wrong-shaped and
non-finite tensors are refused naming file and tensor (docs/reliability.md)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from helpers import copy_task_rows, kill_at_step, tiny_cold_start_config, tiny_rl_config, write_jsonl
from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from gift.checkpoint import FINAL_DIR, CheckpointError, load_model
from gift.weights_check import ALLOW_NONFINITE_ENV, WeightsError
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig
from stages.train.divergence import DivergenceError
from stages.train.rl import run_rl

KEY = "model.layers.0.mlp.gate_proj.weight"


def _config(run_dir: Path, base_dir: Path, data: Path, **overrides) -> ColdStartConfig:
    return tiny_cold_start_config(run_dir, base_dir, data, **{"objective": "sft", **overrides})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "copy.jsonl", copy_task_rows(16))


def _edited_copy(src: Path, dst: Path, edit) -> Path:
    """A copy of model directory `src` whose model.safetensors is `edit(tensors)`."""
    shutil.copytree(src, dst)
    tensors = {k: v.clone() for k, v in load_file(src / "model.safetensors").items()}
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


def _nan(tensors):
    tensors[KEY].view(-1)[3] = float("nan")


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda t: t.pop(KEY), f"tensor {KEY} is missing"),
        (lambda t: t.update(extra=t[KEY].clone()), "tensor extra is not part of this model"),
        (
            lambda t: t.update({KEY: t[KEY][:-1].clone()}),
            f"tensor {KEY} has the wrong shape (file (255, 128), model (256, 128))",
        ),
        (_nan, f"tensor {KEY} holds 1 non-finite value(s)"),
    ],
)
def test_a_weights_file_that_does_not_fit_is_refused_naming_file_and_tensor(tmp_path, base_dir, edit, says):
    bad = _edited_copy(base_dir, tmp_path / "bad", edit)
    with pytest.raises(WeightsError) as err:
        load_model(str(bad))
    assert str(err.value).startswith(f"{bad / 'model.safetensors'}: ") and says in str(err.value)
    assert "\n" not in str(err.value)


def test_the_tied_lm_head_is_no_gap_and_nonfinite_weights_load_when_allowed(tmp_path, base_dir, monkeypatch):
    loaded = load_model(str(base_dir)).model  # its file holds no lm_head.weight: the embedding is tied to it
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    monkeypatch.setenv(ALLOW_NONFINITE_ENV, "1")
    model = load_model(str(_edited_copy(base_dir, tmp_path / "nan", _nan))).model
    assert torch.isnan(model.state_dict()[KEY]).sum() == 1


class _Poison(TrainerCallback):
    """Writes a NaN into one weight at the end of step `at` (after its checkpoint, if it saves one): the next
    step's loss and gradients are non-finite."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at and not control.should_save:
            self.poison(kwargs["model"])

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            self.poison(kwargs["model"])

    @staticmethod
    def poison(model):
        if True:
            with torch.no_grad():
                dict(model.named_parameters())[KEY].view(-1)[0] = float("nan")


def test_divergence_stops_at_once_and_keeps_the_last_finite_checkpoint(tmp_path, base_dir, data):
    run = tmp_path / "run"
    with pytest.raises(DivergenceError) as err:
        run_cold_start(_config(run, base_dir, data), callbacks=[_Poison(at=2)])
    message = str(err.value)
    assert message.startswith("training diverged at step 3 (loss nan") and "checkpoint-2" in message
    assert not (run / FINAL_DIR).exists() and not (run / "checkpoint-4").exists()
    weights = load_model(str(run / "checkpoint-2")).model.state_dict()  # loads: every tensor finite
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())


def test_a_diverged_rl_step_is_refused_too(tmp_path, base_dir):
    run = tmp_path / "rl"
    with pytest.raises(DivergenceError, match=r"^training diverged at step 2 .*no checkpoint had been written yet"):
        run_rl(
            tiny_rl_config(
                run, base_dir, max_steps=3, max_prompts=8, per_device_train_batch_size=4, steps=6, save_steps=10
            ),
            callbacks=[_Poison(at=1)],
        )
    assert not run.exists() or not (run / FINAL_DIR).exists()


def _killed_after_checkpoint_2(run: Path, base_dir: Path, data: Path) -> Path:
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(run, base_dir, data), callbacks=[kill_at_step(3)])
    return run / "checkpoint-2"


def test_resume_checks_the_checkpoint_weights_and_prints_no_tied_key_line(tmp_path, base_dir, data, caplog):
    run = tmp_path / "run"
    _killed_after_checkpoint_2(run, base_dir, data)
    with caplog.at_level(logging.WARNING):
        run_cold_start(_config(run, base_dir, data, resume=True))
    assert "missing keys" not in caplog.text
    assert (run / FINAL_DIR).is_dir()
    ckpt = _killed_after_checkpoint_2(tmp_path / "run2", base_dir, data)
    tensors = {k: v.clone() for k, v in load_file(ckpt / "model.safetensors").items()}
    _nan(tensors)
    save_file(tensors, str(ckpt / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(WeightsError, match=f"^{ckpt / 'model.safetensors'}: tensor {KEY} holds 1 non-finite"):
        run_cold_start(_config(tmp_path / "run2", base_dir, data, resume=True))


@pytest.mark.parametrize("name", ["optimizer.pt", "rng_state.pth", "trainer_state.json"])
def test_a_truncated_training_state_file_is_named_on_resume(tmp_path, base_dir, data, name):
    ckpt = _killed_after_checkpoint_2(tmp_path / "run", base_dir, data)
    path = ckpt / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=f"^{path}: unreadable .*truncated or corrupt"):
        run_cold_start(_config(tmp_path / "run", base_dir, data, resume=True))


def test_pickled_weights_are_refused_naming_the_file(tmp_path, base_dir):
    model = tmp_path / "pickled"
    shutil.copytree(base_dir, model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    with pytest.raises(
        WeightsError,
        match=rf"^{model / 'pytorch_model.bin'}: weights in PyTorch's pickle format are "
        "not loaded",
    ):
        load_model(str(model))
