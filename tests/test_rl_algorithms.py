"""Every stage-two algorithm runs on the one trainer (stages.train.rl) and draws its masks as documented."""

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import tiny_rl_config

from gift.checkpoint import load_model, read_manifest
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig
from stages.train.rl import DiffuGRPOTrainer, run_rl
from stages.train.rl_config import RLConfig


@pytest.fixture(scope="module")
def stage_one(tmp_path_factory, base_dir) -> Path:
    tmp = tmp_path_factory.mktemp("s1")
    return run_cold_start(
        ColdStartConfig(
            model_name_or_path=str(base_dir),
            dataset="synthetic:sudoku",
            synthetic_examples=256,
            max_length=48,
            output_dir=str(tmp / "sft"),
            objective="sft",
            max_steps=10,
            per_device_train_batch_size=32,
            learning_rate=2e-3,
            save_steps=1000,
            disable_tqdm=True,
        )
    )


def _config(tmp_path, model, **overrides) -> RLConfig:
    return tiny_rl_config(
        tmp_path / "rl",
        model,
        **{"max_prompts": 32, "steps": 12, "per_device_train_batch_size": 8, "beta": 0.0, "max_steps": 2, **overrides},
    )


def _scored_batches(config: RLConfig, after_each=None) -> list[dict]:
    """Runs stage two; returns every generation batch it scored (`after_each(trainer)` runs after each one)."""
    batches = []
    original = DiffuGRPOTrainer._generate_and_score_completions

    def record(self, inputs):
        batches.append(original(self, inputs))
        if after_each is not None:
            after_each(self)
        return batches[-1]

    DiffuGRPOTrainer._generate_and_score_completions = record
    try:
        run_rl(config)
    finally:
        DiffuGRPOTrainer._generate_and_score_completions = original
    return batches


@pytest.mark.parametrize(
    "algorithm,extra",
    [
        ("spg", {"num_t": 2}),
        ("unigrpo", {"num_t": 2, "beta": 0.04}),
        ("wd1", {"prompt_padding": "official"}),
        ("d1", {"loss_type": "grpo"}),
        ("gdpo", {}),
        ("coupled", {"beta": 0.01}),
    ],
)
def test_every_algorithm_trains_and_records_itself(tmp_path, stage_one, algorithm, extra):
    before = load_model(str(stage_one)).model.state_dict()
    final = run_rl(_config(tmp_path, stage_one, rl_algorithm=algorithm, **extra))
    after = load_model(str(final)).model.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    lines = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2] and all(
        torch.isfinite(torch.tensor(line["loss"])) for line in lines
    )
    manifest = read_manifest(final)
    assert manifest.objective == algorithm and manifest.config["rl_algorithm"] == algorithm


def test_spg_masks_are_shared_within_an_iteration_and_new_across_iterations(tmp_path, stage_one):
    """SPG reads no old or reference policy: the only log-prob forwards are the current policy's, two draws
    per completion, block-wise, one mask set per iteration (one micro-batch per step: the official schedule
    is per_update's)."""
    config = _config(
        tmp_path, stage_one, rl_algorithm="spg", num_t=2, max_steps=2, save_strategy="no", per_device_train_batch_size=4
    )
    seen = []

    def hook_the_forwards_once(trainer):
        if not seen:
            trainer.accelerator.unwrap_model(trainer.model).register_forward_pre_hook(
                lambda m, a, k: seen.append((k["input_ids"].clone(), torch.is_grad_enabled())), with_kwargs=True
            )

    batches = _scored_batches(config, after_each=hook_the_forwards_once)
    (batch,) = batches  # mu = 2: one generation batch for two steps
    assert "old_logps" not in batch and "ref_logps" not in batch
    noise = batch["noise"]
    assert noise.shape[:3] == (4, 2, 2) and not torch.equal(noise[:, 0], noise[:, 1])
    logp_calls = [ids for ids, grad in seen if grad]
    assert len(logp_calls) == 2 and all(ids.shape[0] == 8 for ids in logp_calls)  # 4 rows x num_t 2
    mask_id = load_model(str(stage_one)).adapter.mask_token_id
    plen = batch["prompt_ids"].shape[1]
    for update, ids in enumerate(logp_calls):
        observed = sorted(map(tuple, (ids[:, plen:] == mask_id).int().tolist()))
        expected = sorted(map(tuple, noise[:, update, :, plen:].reshape(8, -1).int().tolist()))
        assert observed == expected  # the current policy sees exactly the drawn masks of its iteration


def test_scale_rewards_is_refused_where_the_estimator_sets_its_own_advantages(tmp_path, stage_one):
    for name in ("unigrpo", "wd1"):
        extra = {"beta": 0.0} if name == "wd1" else {}
        with pytest.raises(
            ValueError,
            match=f"rl_algorithm {name} sets its own advantage scaling and ignores "
            "scale_rewards; leave scale_rewards at none \\(got group\\)",
        ):
            _config(tmp_path, stage_one, rl_algorithm=name, scale_rewards="group", **extra)
    assert _config(tmp_path, stage_one, rl_algorithm="d1", scale_rewards="group").scale_rewards == "group"


def test_algorithm_options_are_checked(tmp_path, stage_one):
    with pytest.raises(ValueError, match="unknown rl_algorithm 'ppo'"):
        _config(tmp_path, stage_one, rl_algorithm="ppo")
    with pytest.raises(ValueError, match="rl_algorithm spg has no KL term; set beta: 0"):
        _config(tmp_path, stage_one, rl_algorithm="spg", beta=0.04)
    with pytest.raises(ValueError, match="--num_t is an option of spg, unigrpo, not of rl_algorithm d1"):
        _config(tmp_path, stage_one, num_t=2)
    with pytest.raises(ValueError, match="--wd1_psi is an option of wd1, not of rl_algorithm spg"):
        _config(tmp_path, stage_one, rl_algorithm="spg", wd1_psi=2.0)
    with pytest.raises(ValueError, match="unknown spg_negative 'upper'"):
        _config(tmp_path, stage_one, rl_algorithm="spg", spg_negative="upper")
    with pytest.raises(ValueError, match="unknown loss_type 'dapo'"):
        _config(tmp_path, stage_one, loss_type="dapo")
    with pytest.raises(ValueError, match="needs num_t >= 2"):
        _config(tmp_path, stage_one, rl_algorithm="spg", num_t=1)


def test_unset_options_are_the_estimators_published_defaults(tmp_path, stage_one):
    d1 = _config(tmp_path, stage_one, beta=None)
    assert (d1.beta, d1.epsilon, d1.loss_type, d1.kl_reference) == (0.04, 0.5, "bnpo", "start")
    uni = _config(tmp_path, stage_one, rl_algorithm="unigrpo", beta=None)
    assert (uni.beta, uni.epsilon, uni.kl_reference) == (0.01, 0.2, "generation")
    from stages.train.rl_estimator import estimator_settings

    assert (
        estimator_settings(uni).num_t == 35
        and estimator_settings(_config(tmp_path, stage_one, rl_algorithm="spg")).block_length == 8
    )
    spg = _config(
        tmp_path, stage_one, rl_algorithm="spg", beta=None, epsilon=0.5
    )  # a recipe's epsilon: unused, allowed
    assert spg.beta == 0.0 and estimator_settings(spg).num_t == 2


@pytest.mark.parametrize(
    "key,value",
    [("num_t", 0), ("eubo_beta", -1.0), ("mix_weight", 1.5), ("spg_block_length", 0), ("p_mask_prompt", 1.0)],
)
def test_estimator_numbers_are_validated(tmp_path, stage_one, key, value):
    with pytest.raises(ValueError, match=key):
        _config(tmp_path, stage_one, rl_algorithm="spg", **{key: value})


def test_a_toy_estimator_registered_from_one_module_trains(tmp_path, stage_one):
    import toy_estimator  # noqa: F401  (registers "toy")

    with pytest.raises(ValueError, match="kl_reference generation reads the policy that generated the batch"):
        _config(tmp_path, stage_one, rl_algorithm="toy", beta=0.04, kl_reference="generation")
    final = run_rl(_config(tmp_path, stage_one, rl_algorithm="toy", beta=0.04, p_mask_prompt=0.1))
    lines = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert lines[0]["kl"] == 0.0 and lines[1]["kl"] > 0  # the reference is the start: apart after one update
    assert read_manifest(final).config["rl_algorithm"] == "toy"


def test_rollout_min_commit_reaches_the_sampler(tmp_path, stage_one):
    config = _config(tmp_path, stage_one, threshold=0.9, min_commit="schedule", eos_stop=True, lookahead=1)
    from gift.checkpoint import load_model as load

    loaded = load(str(stage_one))
    import datasets

    from stages.train.rl_data import rl_rows

    trainer = DiffuGRPOTrainer(
        model=loaded.model,
        adapter=loaded.adapter,
        args=config,
        metrics_path=tmp_path / "m.jsonl",
        reward_funcs=[lambda prompts, completions, **k: [0.0] * len(prompts)],
        train_dataset=datasets.Dataset.from_list(rl_rows("sudoku", "synthetic", limit=8)),
        processing_class=loaded.tokenizer,
    )
    assert trainer.sampler_config.min_commit == "schedule" and trainer.sampler_config.threshold == 0.9
    assert trainer.sampler_config.eos_stop and trainer.sampler_config.lookahead == 1
    with pytest.raises(ValueError, match="unknown min_commit 'two'"):
        _config(tmp_path, stage_one, min_commit="two")
    with pytest.raises(ValueError, match="lookahead=1 commits by threshold: set threshold"):
        _config(tmp_path, stage_one, lookahead=1)


@pytest.mark.parametrize("schedule", ["official", "per_update"])
def test_mask_schedule_reaches_the_trainer(tmp_path, stage_one, schedule):
    """Two micro-batches per step, mu = 2: under `official` (d1's `_step % num_iterations`) each micro-batch
    slot reads one mask set in both updates; under `per_update` each update reads its own."""
    config = _config(
        tmp_path,
        stage_one,
        rl_algorithm="d1",
        p_mask_prompt=0.5,
        mask_schedule=schedule,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        max_steps=2,
        save_strategy="no",
    )
    seen = []
    original = DiffuGRPOTrainer._logps

    def record(self, model, batch, iteration):
        if torch.is_grad_enabled():
            seen.append(batch["noise"][:, iteration].clone())
        return original(self, model, batch, iteration)

    DiffuGRPOTrainer._logps = record
    try:
        run_rl(config)
    finally:
        DiffuGRPOTrainer._logps = original
    assert len(seen) == 4  # (update 0: slots 0, 1), (update 1: slots 0, 1)
    assert torch.equal(seen[0], seen[2]) == (schedule == "official")
    assert torch.equal(seen[1], seen[3]) == (schedule == "official")


def test_coupled_and_the_new_options_reach_the_config(tmp_path, stage_one):
    from stages.train.rl_estimator import estimator_settings

    coupled = _config(tmp_path, stage_one, rl_algorithm="coupled", beta=None)
    assert (coupled.beta, coupled.epsilon, coupled.loss_type, coupled.kl_reference) == (0.01, 0.5, "bnpo", "start")
    assert estimator_settings(coupled).mask_schedule == "official"
    assert (
        estimator_settings(_config(tmp_path, stage_one, rl_algorithm="wd1", wd1_reduction="row_mean")).reduction
        == "row_mean"
    )
    with pytest.raises(ValueError, match="--wd1_reduction is an option of wd1, not of rl_algorithm gdpo"):
        _config(tmp_path, stage_one, rl_algorithm="gdpo", wd1_reduction="row_mean")
    with pytest.raises(ValueError, match="unknown mask_schedule 'fresh'"):
        _config(tmp_path, stage_one, rl_algorithm="d1", mask_schedule="fresh")
    with pytest.raises(ValueError, match="coupled_min_t"):
        _config(tmp_path, stage_one, rl_algorithm="coupled", coupled_min_t=0.9, coupled_max_t=0.5)


def test_unigrpo_length_rule_shapes_the_advantages_not_the_logged_rewards(tmp_path, stage_one):
    """A margin of gen_length zeroes every reward UniGRPO learns from; metrics.jsonl keeps the task's rewards."""
    config = _config(
        tmp_path, stage_one, rl_algorithm="unigrpo", num_t=2, unigrpo_length_margin=24, max_steps=2, save_strategy="no"
    )
    batches = _scored_batches(config)
    assert all(not batch["advantages"].any() for batch in batches)
    lines = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert any(line["reward_mean"] > 0 for line in lines)  # the stage-one model earns partial credit


def test_unigrpo_official_schedule_computes_the_old_policy_once(tmp_path, stage_one):
    """dLLM-RL's schedule reads one mask set for all updates: only that set's old log-probs are computed."""
    config = _config(tmp_path, stage_one, rl_algorithm="unigrpo", num_t=2, max_steps=2, save_strategy="no")
    batches = _scored_batches(config)
    old = batches[0]["old_logps"]  # (B, mu = 2, K, L)
    assert torch.isfinite(old[:, 0]).all() and torch.isnan(old[:, 1]).all()
    lines = [json.loads(line) for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(line["loss"]) for line in lines)
