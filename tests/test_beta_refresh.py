"""GIFT's beta refresh interval (`beta_refresh_steps`) and the cheap probe."""

from __future__ import annotations

import pytest
import torch
from helpers import copy_task_rows, write_jsonl

import gift.schedules as schedules
from gift.probe import probe_betas, probe_signal
from gift.schedules import GiftSchedule


def _batch(tokenizer, index, length=12, prompt=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(index)
    ids = torch.randint(10, len(tokenizer), (n, length), generator=g)
    answer = torch.zeros(n, length, dtype=torch.bool)
    answer[:, prompt:] = True
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": torch.zeros_like(answer),
        "index": torch.tensor(index),
    }


def _perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_refresh_probes_every_k_steps_and_reuses_each_examples_last_beta(tiny):
    model, tokenizer, adapter = tiny
    a, b = _batch(tokenizer, [0, 1, 2], seed=0), _batch(tokenizer, [3, 4, 5], seed=1)
    start = torch.rand(6, 16)
    schedule = GiftSchedule(beta_refresh_steps=3, cache=start.clone())

    schedule.step = 0  # a refresh step: probe and remember
    at0 = schedule.betas(model, adapter, a)
    assert torch.equal(at0, probe_betas(model, adapter, a))
    assert torch.equal(schedule.cache[:3, :12], at0) and (schedule.cache[:3, 12:] == 0).all()
    _perturb(model, 0)  # the model moves on; a fresh probe would now differ
    assert not torch.allclose(probe_betas(model, adapter, a), at0)
    for step in (1, 2):
        schedule.step = step
        assert torch.equal(schedule.betas(model, adapter, a), at0)  # this example's last probe
        assert torch.equal(schedule.betas(model, adapter, b), start[3:, :12])  # never probed: the start
    schedule.step = 3
    assert torch.equal(schedule.betas(model, adapter, b), probe_betas(model, adapter, b))


def test_refresh_one_is_live_gift_and_needs_no_store(tiny):
    model, tokenizer, adapter = tiny
    a = _batch(tokenizer, [0, 1])
    schedule = GiftSchedule()  # beta_refresh_steps=1, no cache
    for step in range(3):
        schedule.step = step
        assert torch.equal(schedule.betas(model, adapter, a), probe_betas(model, adapter, a))
        _perturb(model, step)
    assert schedule.cache is None


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_bad_refresh_interval(bad):
    with pytest.raises(ValueError, match=f"beta_refresh_steps must be a positive integer, got {bad!r}"):
        GiftSchedule(beta_refresh_steps=bad)


def test_reuse_without_a_store_says_what_is_missing(tiny):
    model, tokenizer, adapter = tiny
    schedule = GiftSchedule(beta_refresh_steps=2)
    schedule.step = 1
    with pytest.raises(RuntimeError, match=r"beta_refresh_steps=2\) but the beta cache was not built"):
        schedule.betas(model, adapter, _batch(tokenizer, [0]))


def test_probe_output_is_an_ordinary_tensor_without_graph(tiny):
    model, tokenizer, adapter = tiny
    batch = _batch(tokenizer, [0, 1])
    out = probe_signal(model, adapter, batch["input_ids"], batch["attention_mask"], batch["answer_mask"])
    assert not out.is_inference() and not out.requires_grad and out.grad_fn is None
    assert (out[~batch["answer_mask"]] == 0).all() and (out[batch["answer_mask"]] > 0).all()


def test_cold_start_probes_only_on_refresh_steps(tmp_path, base_dir, monkeypatch):
    from stages.train.cold_start import run_cold_start
    from stages.train.cold_start_config import ColdStartConfig

    probes = []
    real = schedules.probe_betas
    monkeypatch.setattr(schedules, "probe_betas", lambda *a, **k: probes.append(1) or real(*a, **k))
    data = write_jsonl(tmp_path / "copy.jsonl", copy_task_rows(64))
    config = ColdStartConfig(
        model_name_or_path=str(base_dir),
        dataset=str(data),
        output_dir=str(tmp_path / "run"),
        max_length=24,
        per_device_train_batch_size=16,
        max_steps=5,
        save_steps=1000,
        objective="gift",
        beta_refresh_steps=2,
        disable_tqdm=True,
        report_to="none",
    )
    run_cold_start(config)
    assert len(probes) == 3  # steps 0, 2, 4 (the one-off store of the starting model goes through the probe module)
