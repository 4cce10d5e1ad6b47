"""Stage two (diffu-GRPO) on the embedded model."""

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import tiny_rl_config, write_jsonl
from transformers import TrainerCallback

from gift.checkpoint import load_model, read_manifest
from gift.diffu_grpo import (
    completion_logps,
    completion_mask_until_eos,
    diffu_grpo_loss,
    draw_prompt_masks,
    group_advantages,
    selective_log_softmax,
)
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig
from stages.train.rl import DiffuGRPOTrainer, run_rl
from stages.train.rl_config import RLConfig
from stages.train.rl_data import rl_rows


@pytest.fixture(scope="module")
def stage_one(tmp_path_factory, base_dir) -> Path:
    """A short GIFT stage-one run on synthetic Sudoku (full weights)."""
    tmp = tmp_path_factory.mktemp("s1")
    return run_cold_start(
        ColdStartConfig(
            model_name_or_path=str(base_dir),
            dataset="synthetic:sudoku",
            synthetic_examples=512,
            max_length=48,
            output_dir=str(tmp / "gift"),
            max_steps=20,
            per_device_train_batch_size=32,
            learning_rate=2e-3,
            save_steps=1000,
            disable_tqdm=True,
        )
    )


def _rl_config(tmp_path, model, **overrides) -> RLConfig:
    return tiny_rl_config(
        tmp_path / "rl",
        model,
        **{"max_prompts": 64, "steps": 12, "per_device_train_batch_size": 8, "beta": 0.04, **overrides},
    )


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --- the estimator and the loss -----------------------------------------------------------------------
def test_estimator_masks_the_whole_completion_and_the_chosen_prompt_tokens(tiny):
    model, tokenizer, adapter = tiny
    seen = []
    model.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True)
    prompt = torch.tensor([[0, 0, 11, 12, 13], [14, 15, 16, 17, 18]])
    attention = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    completion = torch.tensor([[20, 21, 0], [22, 0, 0]])
    prompt_mask = torch.tensor([[False, False, True, False, False], [False, True, False, False, True]])
    logps = completion_logps(model, adapter, prompt, attention, completion, prompt_mask)
    (x,) = seen
    assert (x[:, 5:] == adapter.mask_token_id).all()
    assert x[0, :5].tolist() == [0, 0, adapter.mask_token_id, 12, 13]
    assert x[1, :5].tolist() == [14, adapter.mask_token_id, 16, 17, adapter.mask_token_id]
    with torch.no_grad():
        full = torch.log_softmax(
            adapter.logits(model, x, torch.cat([attention, torch.ones_like(completion)], 1))[:, 5:], -1
        )
    assert torch.allclose(logps, full.gather(-1, completion[..., None]).squeeze(-1), atol=1e-5)


def test_prompt_masks_never_touch_padding_and_differ_across_iterations():
    attention = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1]] * 64)
    masks = draw_prompt_masks(attention, 0.5, 3, torch.Generator().manual_seed(0))
    assert masks.shape == (64, 3, 8) and not masks[:, :, :2].any()
    assert not torch.equal(masks[:, 0], masks[:, 1]) and 0.4 < masks[:, :, 2:].float().mean() < 0.6


def test_selective_log_softmax_matches_full():
    logits = torch.randn(3, 5, 40, generator=torch.Generator().manual_seed(0))
    targets = torch.randint(0, 40, (3, 5))
    expected = torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)
    assert torch.allclose(selective_log_softmax(logits, targets, chunk_size=4), expected, atol=1e-6)


def test_completion_mask_until_first_eos():
    ids = torch.tensor([[5, 0, 0, 0], [5, 6, 7, 8], [0, 5, 0, 5]])
    assert completion_mask_until_eos(ids, 0).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]


def test_group_advantages():
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5, 2.0, 0.0])
    adv, std = group_advantages(rewards, 3)
    assert torch.allclose(adv, torch.tensor([0.5, -0.5, 0.0, -1 / 3, 7 / 6, -5 / 6]))
    scaled, _ = group_advantages(rewards, 3, scale=True)
    assert torch.allclose(scaled, adv / (std + 1e-4))


def test_loss_equals_hand_computation():
    logps = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -0.2, -4.0]], requires_grad=True)
    old = torch.tensor([[-1.6, -1.0, -0.5], [-0.3, -0.9, -4.0]])
    ref = torch.tensor([[-1.1, -2.5, -0.7], [-0.1, -0.2, -3.0]])
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    eps, beta = 0.5, 0.04
    out = diffu_grpo_loss(logps, old, ref, adv, mask, eps, beta)

    def token(lp, o, r, a):
        ratio = math.exp(lp - o)
        clipped = min(max(ratio, 1 - eps), 1 + eps)
        kl = math.exp(r - lp) - (r - lp) - 1
        return -min(ratio * a, clipped * a) + beta * kl

    rows = [
        [token(*v) for v in zip(logps[0, :2].tolist(), old[0, :2].tolist(), ref[0, :2].tolist(), [1.0, 1.0])],
        [token(*v) for v in zip(logps[1].tolist(), old[1].tolist(), ref[1].tolist(), [-2.0] * 3)],
    ]
    expected = (sum(rows[0]) / 2 + sum(rows[1]) / 3) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    # row 0 token 0: ratio e^0.6 > 1.5 with A > 0 (clipped); row 1 token 1: e^0.7 > 1.5 but A < 0 (not clipped)
    assert out.clip_ratio == pytest.approx(1 / 5)
    out.loss.backward()
    assert logps.grad[0, 2] == 0  # outside the completion mask
    assert logps.grad[0, 0] == pytest.approx(beta * (1 - math.exp(ref[0, 0].item() - logps[0, 0].item())) / 2 / 2)


def test_mu_one_ratio_is_one_with_gradient():
    logps = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    out = diffu_grpo_loss(logps, None, None, torch.tensor([2.0]), torch.ones(1, 2), beta=0.0)
    assert out.loss.item() == pytest.approx(-2.0)
    out.loss.backward()
    assert torch.allclose(logps.grad, torch.tensor([[-1.0, -1.0]]))


# --- the trainer --------------------------------------------------------------------------------------
class _Recorder:
    """Records (prompt part of the input, grad enabled, which model) of every forward."""

    def __init__(self, prompt_len_holder):
        self.calls = []

    def hook(self, name):
        def record(module, args, kwargs):
            self.calls.append((name, kwargs["input_ids"].clone(), torch.is_grad_enabled()))

        return record


@pytest.mark.parametrize("use_lora", [False, True])
def test_same_mask_for_old_ref_current_and_new_mask_per_iteration(tmp_path, stage_one, use_lora):
    config = _rl_config(
        tmp_path,
        stage_one,
        max_steps=2,
        num_iterations=2,
        use_lora=use_lora,
        save_steps=0,
        save_strategy="no",
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
    )
    recorder = _Recorder(None)
    original = DiffuGRPOTrainer._generate_and_score_completions

    def generate_and_hook(self, inputs):
        if not getattr(self, "_hooked", False):
            self._hooked = True
            base = self.accelerator.unwrap_model(self.model)
            base.get_base_model().register_forward_pre_hook(
                recorder.hook("policy"), with_kwargs=True
            ) if use_lora else base.register_forward_pre_hook(recorder.hook("policy"), with_kwargs=True)
            if self.ref_model is not None:
                self.ref_model.register_forward_pre_hook(recorder.hook("ref"), with_kwargs=True)
        recorder.calls.clear()
        batch = original(self, inputs)
        self._batch = batch
        return batch

    DiffuGRPOTrainer._generate_and_score_completions = generate_and_hook
    try:
        run_rl(config)
    finally:
        DiffuGRPOTrainer._generate_and_score_completions = original
    # rollout forwards (12 steps) then old x2, ref x2 (no grad), then current x2 (with grad)
    rollout, logp_calls = recorder.calls[:12], recorder.calls[12:]  # steps = 12 sampler forwards first
    assert not any(grad for _, _, grad in rollout)
    assert len(logp_calls) == 6 and all((c[1][:, -24:] == 1).all() for c in logp_calls)  # completion fully masked
    old0, old1, ref0, ref1, cur0, cur1 = logp_calls
    assert [c[2] for c in logp_calls] == [False, False, False, False, True, True]
    if not use_lora:
        assert [c[0] for c in logp_calls] == ["policy", "policy", "ref", "ref", "policy", "policy"]
    masks = [c[1][:, :-24] == 1 for c in logp_calls]
    assert torch.equal(masks[0], masks[2]) and torch.equal(masks[1], masks[3])
    assert not torch.equal(masks[0], masks[1])

    # the current policy sees the same rows in shuffled order: compare sets of rows
    def rows(t):
        return sorted(map(tuple, t.tolist()))

    assert rows(cur0[1]) == rows(old0[1]) and rows(cur1[1]) == rows(old1[1])


def test_parameters_change_and_metrics_are_logged_every_step(tmp_path, stage_one):
    before = load_model(str(stage_one)).model.state_dict()
    final = run_rl(_rl_config(tmp_path, stage_one, max_steps=4, save_steps=2))
    after = load_model(str(final)).model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    lines = _metrics(tmp_path / "rl")
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    for key in (
        "wall_time",
        "reward_mean",
        "reward_std",
        "reward/sudoku_reward",
        "frac_reward_zero_std",
        "kl",
        "clip_ratio",
        "completion_length",
        "learning_rate",
    ):
        assert all(key in line for line in lines), key
    manifest = read_manifest(final)
    assert manifest.stage == "rl" and manifest.parent == str(stage_one.resolve())
    assert read_manifest(tmp_path / "rl" / "checkpoint-2").stage == "rl"


def test_mu_one_with_beta_runs(tmp_path, stage_one):
    run_rl(_rl_config(tmp_path, stage_one, num_iterations=1, beta=0.04, max_steps=2, save_steps=1))
    lines = _metrics(tmp_path / "rl")
    assert len(lines) == 2 and all(line["kl"] >= 0 for line in lines)


def test_lora_stage_one_checkpoint_loads_directly(tmp_path, stage_one):
    lora = run_cold_start(
        ColdStartConfig(
            model_name_or_path=str(stage_one),
            dataset="synthetic:sudoku",
            synthetic_examples=64,
            max_length=48,
            output_dir=str(tmp_path / "lora"),
            max_steps=2,
            per_device_train_batch_size=8,
            use_lora=True,
            save_steps=1000,
            disable_tqdm=True,
        )
    )
    assert read_manifest(lora).adapter
    final = run_rl(_rl_config(tmp_path, tmp_path / "lora", use_lora=True, lora_r=4, lora_alpha=8, max_steps=2))
    assert read_manifest(final).adapter and len(_metrics(tmp_path / "rl")) == 2


class _Crash(TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 5:  # step 5 is logged, checkpoint-4 is the last saved
            raise KeyboardInterrupt("simulated kill")


def test_kill_and_resume_reproduces_the_uninterrupted_metrics(tmp_path, stage_one):
    common = dict(max_steps=6, save_steps=2, num_iterations=2)
    run_rl(_rl_config(tmp_path / "a", stage_one, **common))
    with pytest.raises(KeyboardInterrupt):
        run_rl(_rl_config(tmp_path / "b", stage_one, **common), callbacks=[_Crash()])
    assert [line["step"] for line in _metrics(tmp_path / "b" / "rl")] == [1, 2, 3, 4, 5]
    run_rl(_rl_config(tmp_path / "b", stage_one, resume=True, **common))
    a, b = _metrics(tmp_path / "a" / "rl"), _metrics(tmp_path / "b" / "rl")
    assert [line["step"] for line in b] == [1, 2, 3, 4, 5, 6]  # no duplicated or missing step
    for key in ("loss", "reward_mean", "kl", "completion_length"):
        assert [line[key] for line in a] == pytest.approx([line[key] for line in b], rel=1e-4, abs=1e-7), key
    assert b[-1]["wall_time"] >= b[3]["wall_time"]


def test_reward_rises_with_a_trivially_learnable_reward(tmp_path, stage_one):
    """Reward = share of the completion's characters that are the digit 4."""

    def fours(prompts, completions, **kwargs):
        return [text.count("4") / max(len(text), 1) for text in completions]

    import datasets

    loaded = load_model(str(stage_one), merge_adapter=True)
    config = _rl_config(
        tmp_path,
        stage_one,
        max_steps=30,
        num_iterations=1,
        beta=0.0,
        learning_rate=3e-3,
        per_device_train_batch_size=16,
        save_strategy="no",
        temperature=1.0,
    )
    trainer = DiffuGRPOTrainer(
        model=loaded.model,
        adapter=loaded.adapter,
        args=config,
        metrics_path=tmp_path / "metrics.jsonl",
        reward_funcs=[fours],
        train_dataset=datasets.Dataset.from_list(rl_rows("sudoku", "synthetic", limit=128)),
        processing_class=loaded.tokenizer,
    )
    trainer.train()
    rewards = [json.loads(line)["reward_mean"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert sum(rewards[-5:]) / 5 > sum(rewards[:5]) / 5 + 0.1, rewards


# --- bad input ------------------------------------------------------------------------------------------
def test_bad_inputs_fail_before_training(tmp_path, stage_one):
    from gift.adapters import ModelLoadError

    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelLoadError, match="not a known masked-diffusion model"):
        run_rl(_rl_config(tmp_path, tmp_path / "gpt2"))
    with pytest.raises(ValueError, match="unknown task 'chess'"):
        run_rl(_rl_config(tmp_path, stage_one, task="chess"))
    with pytest.raises(ValueError, match=r"global batch \(5 per device x 1 accumulation x 1 processes = 5"):
        _rl_config(tmp_path, stage_one, per_device_train_batch_size=5)
    bad = write_jsonl(tmp_path / "cd.jsonl", [{"nums": [1, 2, 3], "target": 6}, {"nums": [4, 5]}])
    with pytest.raises(ValueError, match="target"):
        run_rl(_rl_config(tmp_path, stage_one, task="countdown", dataset=str(bad)))
    with pytest.raises(ValueError, match=r"save_steps \(3\) must be a multiple of num_iterations \(2\)"):
        _rl_config(tmp_path, stage_one, save_steps=3)
    assert not (tmp_path / "rl").exists()
