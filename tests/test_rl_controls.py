"""What stage two is measured against: the KL reference (the starting model) and the frozen control."""

import json

import pytest
import torch
from helpers import TINY_RL, tiny_rl_config

import stages.train.rl as rl
from gift.checkpoint import load_model
from stages.train.frozen_control import run_frozen_control
from stages.train.rl_config import RLConfig, frozen_settings

# Six steps at a rate that moves the policy away from its start quickly, with a KL term.
KL_RUN = dict(
    max_prompts=32, steps=12, per_device_train_batch_size=8, beta=0.04, learning_rate=1e-2, max_steps=6, save_steps=6
)


def test_reference_runs_the_starting_weights_while_the_policy_moves(tmp_path, base_dir, monkeypatch):
    # trl patches `model.forward` in its __init__ with a closure over the model's bound forward; a reference
    # deep-copied after that ran the trained weights, so the "KL to the reference" was a KL to the policy
    # that generated the batch (exactly 0 at every batch's first iteration).
    start = load_model(str(base_dir)).model.eval()
    probe = torch.randint(5, 20, (2, 12), generator=torch.Generator().manual_seed(0))
    seen = []
    real = rl.DiffuGRPOTrainer._reference_logps

    def record(self, batch):
        with torch.no_grad():
            logits = {
                "ref": self.ref_model(input_ids=probe).logits,
                "start": start(input_ids=probe).logits,
                "policy": self.accelerator.unwrap_model(self.model)(input_ids=probe).logits,
            }
        seen.append({name: (value - logits["start"]).abs().max().item() for name, value in logits.items()})
        return real(self, batch)

    monkeypatch.setattr(rl.DiffuGRPOTrainer, "_reference_logps", record)
    rl.run_rl(tiny_rl_config(tmp_path / "rl", base_dir, **KL_RUN))
    metrics = [line for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert len(seen) == 3  # one reference pass per generation batch (6 steps, mu 2)
    assert all(s["ref"] == 0.0 for s in seen)  # the reference is the starting model, bit for bit
    assert seen[-1]["policy"] > 1e-3  # while the policy has moved away from it
    kls = [json.loads(line)["kl"] for line in metrics]
    assert kls[2] > 0.0 and kls[4] > 0.0  # first iteration of a later batch: the policy differs from the reference


def _logged(run_dir, key):
    return [json.loads(line)[key] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_the_frozen_control_sees_every_batch_of_its_run(tmp_path, base_dir):
    # A run that cannot learn (rate 1e-12) with 2 steps per generation batch, and its frozen control with
    # one: the same prompts and rollout noise, so the same completions (lengths, rewards) for every batch.
    values = {
        "max_prompts": 64,
        "steps": 12,
        "per_device_train_batch_size": 8,
        "beta": 0.0,
        "learning_rate": 1e-12,
        "temperature": 0.9,
        "num_iterations": 2,
        "max_steps": 8,
        "save_steps": 8,
    }
    run = tiny_rl_config(tmp_path / "run", base_dir, **values)
    control = RLConfig(
        **frozen_settings({**TINY_RL, **values, "model": str(base_dir), "output_dir": str(tmp_path / "control")})
    )
    assert (control.num_iterations, control.max_steps, control.learning_rate) == (1, 4, 1e-12)
    rl.run_rl(run)
    rl.run_rl(control)
    for key in ("completion_length", "reward_mean"):
        assert _logged(tmp_path / "run", key)[::2] == _logged(tmp_path / "control", key)
    assert len(set(_logged(tmp_path / "control", "completion_length"))) > 1  # the batches differ


def test_frozen_settings_need_whole_generation_batches():
    assert frozen_settings({"max_steps": 120, "num_iterations": 4, "beta": 0.04, "learning_rate": 1e-4}) == {
        "max_steps": 30,
        "num_iterations": 1,
        "beta": 0.0,
        "learning_rate": 1e-12,
        "save_steps": 30,
    }
    assert frozen_settings({"max_steps": 24})["max_steps"] == 2  # num_iterations left to RLConfig's default, 12
    # the estimator and its options are the update's: the controls of d1, SPG or UniGRPO runs are one control
    common = {"max_steps": 8, "num_iterations": 2, "temperature": 0.9}
    assert (
        frozen_settings({**common, "rl_algorithm": "spg", "num_t": 2, "spg_negative": "mix", "epsilon": 0.2})
        == frozen_settings({**common, "rl_algorithm": "d1", "p_mask_prompt": 0.15, "kl_reference": "start"})
        == {
            "max_steps": 4,
            "num_iterations": 1,
            "temperature": 0.9,
            "beta": 0.0,
            "learning_rate": 1e-12,
            "save_steps": 4,
        }
    )
    for bad in ({"max_steps": 10, "num_iterations": 4}, {"num_iterations": 2}):
        with pytest.raises(ValueError, match="frozen control needs max_steps"):
            frozen_settings(bad)


def test_a_generation_reference_is_the_policy_that_drew_the_batch(tmp_path, base_dir, monkeypatch):
    # kl_reference: generation penalises the distance to the batch's own generating policy (a proximal
    # term over the mu updates of a batch): no reference copy, KL 0 on each batch's first step only.
    seen = []
    real = rl.DiffuGRPOTrainer._reference_logps

    def record(self, batch):
        ref = real(self, batch)
        seen.append((self.ref_model is None, torch.equal(ref, batch["old_logps"])))
        return ref

    monkeypatch.setattr(rl.DiffuGRPOTrainer, "_reference_logps", record)
    rl.run_rl(tiny_rl_config(tmp_path / "rl", base_dir, **KL_RUN, kl_reference="generation"))
    kls = _logged(tmp_path / "rl", "kl")
    assert seen == [(True, True)] * 3
    assert kls[0::2] == [0.0, 0.0, 0.0] and all(kl > 0 for kl in kls[1::2])
    with pytest.raises(ValueError, match="kl_reference"):
        tiny_rl_config(tmp_path / "x", base_dir, kl_reference="old")
    with pytest.raises(
        ValueError, match="kl_reference generation is the policy being trained when num_iterations is 1"
    ):
        tiny_rl_config(tmp_path / "x", base_dir, beta=0.04, kl_reference="generation", num_iterations=1, steps=12)


def test_a_rollout_only_control_draws_the_completions_of_the_trained_control(tmp_path, base_dir, monkeypatch):
    # The control that only rolls out and scores against the control that ran the whole update at rate
    # 1e-12: the same completions batch for batch, no log-probability pass, the start's weights unchanged.
    from stages.train.frozen_control import FrozenControlTrainer

    drawn: dict[str, list[torch.Tensor]] = {"trained": [], "rollout_only": []}
    real = rl.DiffuGRPOTrainer._generate_and_score_completions

    def record(self, inputs):
        batch = real(self, inputs)
        drawn["rollout_only" if isinstance(self, FrozenControlTrainer) else "trained"].append(batch["completion_ids"])
        return batch

    monkeypatch.setattr(rl.DiffuGRPOTrainer, "_generate_and_score_completions", record)
    values = {
        **TINY_RL,
        "max_prompts": 64,
        "steps": 12,
        "per_device_train_batch_size": 8,
        "beta": 0.04,
        "learning_rate": 1e-2,
        "temperature": 0.9,
        "num_iterations": 2,
        "max_steps": 8,
        "model": str(base_dir),
    }
    rl.run_rl(RLConfig(**frozen_settings({**values, "output_dir": str(tmp_path / "trained")})))

    def no_logps(*args, **kwargs):
        raise AssertionError("the rollout-only control ran a log-probability pass")

    monkeypatch.setattr(rl, "masked_logps", no_logps)
    run_frozen_control(RLConfig(**frozen_settings({**values, "output_dir": str(tmp_path / "rollout_only")})))
    assert len(drawn["rollout_only"]) == 4
    assert all(torch.equal(a, b) for a, b in zip(drawn["trained"], drawn["rollout_only"], strict=True))
    assert _logged(tmp_path / "trained", "reward_mean") == _logged(tmp_path / "rollout_only", "reward_mean")
    start = load_model(str(base_dir)).model.state_dict()
    final = load_model(str(tmp_path / "rollout_only" / "final")).model.state_dict()
    assert all(torch.equal(start[k], final[k]) for k in start)
