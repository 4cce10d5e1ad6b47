"""Tests of the diffusion sampler on the random-init embedded tiny model and on fake models."""

from __future__ import annotations

import copy
import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from benchmarks.bench_sampler import reference_generate
from gift.adapters import ModelAdapter, adapter_for
from gift.embedded_model import build_embedded_model
from gift.sampler import (
    DiffusionSampler,
    SamplerConfig,
    SamplerOutput,
    commit_schedule,
    encode_chat_prompts,
)


@pytest.fixture(scope="module")
def embedded():
    model, tokenizer = build_embedded_model("tiny", seed=0)
    return model, tokenizer, adapter_for("embedded", tokenizer)


def sampler_for(embedded, **config) -> DiffusionSampler:
    model, _, adapter = embedded
    return DiffusionSampler(model, adapter, SamplerConfig(**config))


def prompts_of_lengths(tokenizer, lengths=(3, 9, 17)) -> list[list[int]]:
    text = "What is 12 + 30? Think step by step, then answer."
    return [tokenizer(text[:n], add_special_tokens=False)["input_ids"] for n in lengths]


# ---------------------------------------------------------------- fake models


class FixedLogitsModel(torch.nn.Module):
    """Returns the same logits row at every position; records the inputs and its training flag."""

    def __init__(self, row):
        super().__init__()
        self.row = torch.nn.Parameter(torch.tensor(row, dtype=torch.float32), requires_grad=False)
        self.calls: list[SimpleNamespace] = []

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        self.calls.append(SimpleNamespace(input_ids=input_ids.clone(), training=self.training))
        batch, length = input_ids.shape
        return SimpleNamespace(logits=self.row.expand(batch, length, -1).clone())


class PromptCueModel(torch.nn.Module):
    """Logits that depend on whether a cue token is visible: classifier-free guidance matters here."""

    def __init__(self, cue: int, cond_row, uncond_row):
        super().__init__()
        self.cue = cue
        self.cond = torch.nn.Parameter(torch.tensor(cond_row), requires_grad=False)
        self.uncond = torch.nn.Parameter(torch.tensor(uncond_row), requires_grad=False)
        self.calls: list[torch.Tensor] = []

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        self.calls.append(input_ids.clone())
        sees_cue = (input_ids == self.cue).any(dim=1)[:, None, None]
        batch, length = input_ids.shape
        return SimpleNamespace(logits=torch.where(sees_cue, self.cond, self.uncond).expand(batch, length, -1))


class ShiftedTwin(torch.nn.Module):
    """A Dream-style twin: position i scores token i+1."""

    def __init__(self, base: torch.nn.Module):
        super().__init__()
        self.base = base

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        logits = self.base(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        return SimpleNamespace(logits=torch.cat([logits[:, 1:], logits[:, -1:]], dim=1))


def fake_adapter(**kw) -> ModelAdapter:
    return ModelAdapter("embedded", mask_token_id=1, eos_token_id=0, pad_token_id=0, **kw)


def newly_committed(history: list[torch.Tensor], mask_id: int, gen_length: int) -> list[torch.Tensor]:
    """Per step, the boolean (B, gen_length) positions committed at that step."""
    states = [torch.full_like(history[0], mask_id), *history]
    return [(prev == mask_id) & (cur != mask_id) for prev, cur in zip(states, states[1:])]


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gen_length=10, block_length=4), r"gen_length 10 is not divisible by block_length 4"),
        (dict(gen_length=8, block_length=4, steps=5), r"steps 5 is not divisible by the number of blocks.*= 2"),
        (dict(gen_length=0), r"gen_length must be a positive integer"),
        (dict(steps=-2), r"steps must be a positive integer"),
        (dict(remasking="lowest"), r"unknown remasking 'lowest'"),
        (dict(temperature=-0.1), r"temperature must be >= 0"),
        (dict(cfg_scale=float("nan")), r"cfg_scale must be >= 0"),
    ],
)
def test_bad_configs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**kwargs)


def test_config_is_checked_once_and_cannot_change_after(embedded):
    sampler = sampler_for(embedded, gen_length=8, block_length=4, steps=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sampler.config.steps = 3  # a config that passed its checks stays as checked
    with pytest.raises(ValueError, match="steps 3 is not divisible"):
        dataclasses.replace(sampler.config, steps=3)


def test_right_padded_prompts_are_refused(embedded):
    sampler = sampler_for(embedded, gen_length=4, block_length=4, steps=2)
    ids = torch.tensor([[5, 6, 0], [5, 6, 7]])
    with pytest.raises(ValueError, match="LEFT-padded"):
        sampler.generate(ids, attention_mask=torch.tensor([[1, 1, 0], [1, 1, 1]]))


@pytest.mark.parametrize(
    "count, steps, expected",
    [(4, 3, [2, 1, 1]), (12, 5, [3, 3, 2, 2, 2]), (32, 16, [2] * 16), (3, 5, [1, 1, 1, 0, 0]), (7, 1, [7])],
)
def test_commit_schedule_is_even_split_with_remainder_first(count, steps, expected):
    assert commit_schedule(torch.tensor([count]), steps)[0].tolist() == expected


# ---------------------------------------------------------------- commit rule and history


@pytest.mark.parametrize(
    "gen_length, block_length, steps, per_step",
    [
        (8, 4, 6, [2, 1, 1, 2, 1, 1]),
        (12, 12, 5, [3, 3, 2, 2, 2]),
        (12, 4, 12, [1] * 12),
        (6, 3, 4, [2, 1, 2, 1]),
    ],
)
@pytest.mark.parametrize("remasking", ["low_confidence", "random", "entropy", "margin"])
def test_exact_commit_counts_order_and_immutability(embedded, gen_length, block_length, steps, per_step, remasking):
    _, tokenizer, adapter = embedded
    sampler = sampler_for(
        embedded,
        gen_length=gen_length,
        block_length=block_length,
        steps=steps,
        remasking=remasking,
        temperature=0.7,
        return_history=True,
    )
    out = sampler.generate(prompts_of_lengths(tokenizer), generator=torch.Generator().manual_seed(3))
    mask_id = adapter.mask_token_id
    assert len(out.history) == steps
    assert torch.equal(out.history[-1], out.completion_ids)
    assert not (out.completion_ids == mask_id).any()

    steps_per_block = steps // (gen_length // block_length)
    for step, new in enumerate(newly_committed(out.history, mask_id, gen_length)):
        # exactly k per row, all inside the current block
        assert new.sum(1).tolist() == [per_step[step]] * new.shape[0], f"step {step}"
        block = step // steps_per_block
        outside = torch.ones(gen_length, dtype=torch.bool)
        outside[block * block_length : (block + 1) * block_length] = False
        assert not new[:, outside].any(), f"step {step} committed outside block {block}"

    for prev, cur in zip(out.history, out.history[1:]):
        decided = prev != mask_id
        assert torch.equal(prev[decided], cur[decided]), "a committed token changed"
    for step, state in enumerate(out.history):
        # blocks left to right: nothing of block b+1 before block b is full
        block = step // steps_per_block
        if (step + 1) % steps_per_block == 0:
            assert not (state[:, : (block + 1) * block_length] == mask_id).any()
        assert (state[:, (block + 1) * block_length :] == mask_id).all()


def test_matches_an_independent_naive_loop(embedded):
    model, tokenizer, adapter = embedded
    sampler = sampler_for(embedded, gen_length=12, block_length=4, steps=6, return_history=True)
    prompt = prompts_of_lengths(tokenizer, (11,))[0]
    out = sampler.generate([prompt])
    reference = []
    reference_generate(model, adapter, prompt, 12, 4, 6, history=reference)
    assert len(reference) == len(out.history) == 6
    for step, (mine, ref) in enumerate(zip(out.history, reference)):
        assert torch.equal(mine[0], ref), f"step {step}"


# ---------------------------------------------------------------- determinism and batching


def test_greedy_is_deterministic(embedded):
    _, tokenizer, _ = embedded
    sampler = sampler_for(embedded, gen_length=16, block_length=8, steps=8)
    prompts = prompts_of_lengths(tokenizer)
    first = sampler.generate(prompts).sequences
    assert torch.equal(first, sampler.generate(prompts).sequences)


@pytest.mark.parametrize("remasking", ["low_confidence", "entropy", "margin"])
def test_greedy_is_independent_of_batch_composition(embedded, remasking):
    model, tokenizer, adapter = embedded
    # In float64: an untrained model's confidences nearly tie, and a float32 kernel that differs with the
    # batch's shape can flip a near tie (seen on some CPUs for the entropy ranking).
    double = (copy.deepcopy(model).double(), tokenizer, adapter)
    sampler = sampler_for(double, gen_length=16, block_length=8, steps=16, remasking=remasking)
    prompts = prompts_of_lengths(tokenizer, (3, 9, 17, 6))
    batched = sampler.generate(prompts)
    assert batched.prompt_length == 17
    assert batched.attention_mask[0].tolist() == [0] * 14 + [1] * (3 + 16)
    reordered = sampler.generate(prompts[::-1])
    for i, prompt in enumerate(prompts):
        alone = sampler.generate([prompt])
        assert alone.prompt_length == len(prompt)
        assert torch.equal(alone.completion_ids[0], batched.completion_ids[i]), f"prompt {i}"
        assert torch.equal(reordered.completion_ids[len(prompts) - 1 - i], batched.completion_ids[i])
        assert batched.sequences[i, -16 - len(prompt) : -16].tolist() == prompt


def test_tensor_input_with_attention_mask_matches_list_input(embedded):
    _, tokenizer, adapter = embedded
    sampler = sampler_for(embedded, gen_length=8, block_length=8, steps=4)
    prompts = prompts_of_lengths(tokenizer, (5, 8))
    ids = torch.full((2, 8), adapter.pad_token_id)
    mask = torch.zeros((2, 8), dtype=torch.long)
    ids[0, 3:], mask[0, 3:] = torch.tensor(prompts[0]), 1
    ids[1], mask[1] = torch.tensor(prompts[1]), 1
    from_tensor = sampler.generate(ids, attention_mask=mask)
    assert torch.equal(from_tensor.sequences, sampler.generate(prompts).sequences)


def test_generator_drives_sampling_and_global_rng_is_untouched(embedded):
    _, tokenizer, _ = embedded
    sampler = sampler_for(embedded, gen_length=16, block_length=8, steps=8, temperature=1.0, remasking="random")
    prompts = prompts_of_lengths(tokenizer)
    global_state = torch.get_rng_state()
    a = sampler.generate(prompts, generator=torch.Generator().manual_seed(7)).sequences
    b = sampler.generate(prompts, generator=torch.Generator().manual_seed(7)).sequences
    c = sampler.generate(prompts, generator=torch.Generator().manual_seed(8)).sequences
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_model_is_in_eval_during_generation_and_modes_are_restored():
    model = FixedLogitsModel([0.0, 0.0, 1.0, 2.0])
    model.train()
    frozen = torch.nn.Linear(1, 1).eval()
    model.frozen = frozen  # a submodule deliberately left in eval mode
    DiffusionSampler(model, fake_adapter(), SamplerConfig(gen_length=4, block_length=4, steps=2)).generate([[2]])
    assert model.calls and not any(call.training for call in model.calls)
    assert model.training and not frozen.training


# ---------------------------------------------------------------- temperature


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_temperature_sampling_matches_softmax(temperature):
    # vocabulary: 0 = EOS/pad, 1 = mask (never proposed), 2..5 ordinary tokens
    row = [0.5, 4.0, 1.0, 0.0, -0.5, 1.5]
    model = FixedLogitsModel(row)
    sampler = DiffusionSampler(
        model, fake_adapter(), SamplerConfig(gen_length=1, block_length=1, steps=1, temperature=temperature)
    )
    n = 20000
    out = sampler.generate([[2]] * n, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(out.completion_ids[:, 0], minlength=len(row)).double()
    assert counts[1] == 0, "the mask token was proposed"

    logits = torch.tensor(row, dtype=torch.float64)
    logits[1] = -math.inf
    expected = torch.softmax(logits / temperature, -1) * n
    keep = expected > 0
    chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    assert chi2 < 18.47, f"chi-square {chi2:.2f} over the 0.999 quantile (4 dof)"  # 4 dof, p = 0.001
    tv = float((counts / n - expected / n).abs().sum() / 2)
    assert tv < 0.02


def test_greedy_picks_the_argmax_with_fixed_logits():
    model = FixedLogitsModel([0.5, 9.0, 1.0, 3.0, -0.5, 1.5])
    out = DiffusionSampler(model, fake_adapter(), SamplerConfig(gen_length=4, block_length=2, steps=4)).generate([[2]])
    assert out.completion_ids.tolist() == [[3, 3, 3, 3]]


# ---------------------------------------------------------------- adapters: Dream-style shifted logits


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_dream_style_shifted_adapter_matches_unshifted_twin(embedded, temperature):
    model, tokenizer, adapter = embedded
    dream = ModelAdapter("dream", adapter.mask_token_id, adapter.eos_token_id, adapter.pad_token_id, shift_logits=True)
    config = SamplerConfig(gen_length=16, block_length=8, steps=8, temperature=temperature)
    prompts = prompts_of_lengths(tokenizer)
    plain = DiffusionSampler(model, adapter, config).generate(prompts, generator=torch.Generator().manual_seed(1))
    shifted = DiffusionSampler(ShiftedTwin(model), dream, config).generate(
        prompts, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(plain.sequences, shifted.sequences)


# ---------------------------------------------------------------- classifier-free guidance


def test_cfg_follows_the_guidance_formula_and_masks_only_real_prompt_tokens():
    cue = 4
    # cond prefers 2 (1.0) over 3 (0.9); uncond sees no cue and scores 3 at 0.
    # cfg 0 -> 2; cfg 1 -> 3: 0 + 2 * (0.9 - 0) = 1.8 > 1 + 2 * 0 = 1.
    cond_row, uncond_row = [0.0, 0.0, 1.0, 0.9, -5.0], [0.0, 0.0, 1.0, 0.0, -5.0]
    prompts = [[cue, cue], [cue]]
    plain = DiffusionSampler(
        PromptCueModel(cue, cond_row, uncond_row), fake_adapter(), SamplerConfig(gen_length=2, block_length=2, steps=1)
    ).generate(prompts)
    assert plain.completion_ids.tolist() == [[2, 2], [2, 2]]

    model = PromptCueModel(cue, cond_row, uncond_row)
    guided = DiffusionSampler(
        model, fake_adapter(), SamplerConfig(gen_length=2, block_length=2, steps=1, cfg_scale=1.0)
    ).generate(prompts)
    assert guided.completion_ids.tolist() == [[3, 3], [3, 3]]
    seen = model.calls[0]  # [cond; uncond] in one forward
    assert seen.shape == (4, 4)
    assert seen[:2].tolist() == [[cue, cue, 1, 1], [0, cue, 1, 1]]
    assert seen[2:].tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]  # prompt masked, left pad kept


def test_cfg_runs_on_the_embedded_model_and_changes_the_result(embedded):
    _, tokenizer, _ = embedded
    prompts = prompts_of_lengths(tokenizer)
    kwargs = dict(gen_length=16, block_length=8, steps=8)
    plain = sampler_for(embedded, **kwargs).generate(prompts)
    guided = sampler_for(embedded, cfg_scale=2.0, **kwargs).generate(prompts)
    assert guided.sequences.shape == plain.sequences.shape
    assert not torch.equal(plain.completion_ids, guided.completion_ids)


# ---------------------------------------------------------------- text helpers


def test_chat_helper_applies_template_and_prefill(embedded):
    _, tokenizer, _ = embedded
    ids = encode_chat_prompts(
        tokenizer,
        ["2+3?", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]],
        prefill="<reasoning>",
    )
    assert tokenizer.decode(ids[0]) == "<|user|>2+3?<|assistant|><reasoning>"
    assert tokenizer.decode(ids[1]) == "<|system|>Be brief.<|user|>hi<|assistant|><reasoning>"
    with pytest.raises(TypeError):
        encode_chat_prompts(tokenizer, "not a list")

    sampler = sampler_for(embedded, gen_length=8, block_length=8, steps=4)
    out = sampler.generate_chat(["2+3?", "hi"], tokenizer, prefill="<reasoning>")
    assert out.prompt_length == len(ids[0])
    direct = sampler.generate(encode_chat_prompts(tokenizer, ["2+3?", "hi"], "<reasoning>"))
    assert torch.equal(out.sequences, direct.sequences)
    assert len(sampler.decode(out, tokenizer)) == 2


def test_decode_cuts_at_the_first_eos(embedded):
    model, tokenizer, adapter = embedded
    sampler = DiffusionSampler(model, adapter, SamplerConfig(gen_length=6, block_length=6, steps=1))
    a, b, eos = tokenizer.convert_tokens_to_ids(["a", "b"]) + [adapter.eos_token_id]
    answer = tokenizer.convert_tokens_to_ids("<answer>")
    completion = torch.tensor([[a, b, eos, a, a, eos], [answer, a, b, b, a, a]])
    out = SamplerOutput(
        sequences=completion, completion_ids=completion, prompt_length=0, attention_mask=torch.ones_like(completion)
    )
    assert sampler.decode(out, tokenizer) == ["ab", "<answer>abbaa"]
