"""Parallel decoding by confidence (threshold / factor), model-call counts and the block KV cache."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from test_sampler import FixedLogitsModel, prompts_of_lengths
from transformers import LlamaForCausalLM

from gift.adapters import ModelAdapter, adapter_for
from gift.embedded_model import build_embedded_model, embedded_config
from gift.kv_cache import KVCache
from gift.sampler import DiffusionSampler, SamplerConfig, _BlockCache, close_answered, parallel_commit_count

INF = float("inf")


@pytest.fixture(scope="module")
def embedded():
    model, tokenizer = build_embedded_model("tiny", seed=0)
    return model, tokenizer, adapter_for("embedded", tokenizer)


def llama(tokenizer, layers: int, causal: bool = False, seed: int = 0, sharpen: float = 1.0) -> LlamaForCausalLM:
    """A random tiny Llama; `sharpen` scales the final norm so the random model is confident."""
    config = embedded_config("tiny", vocab_size=len(tokenizer), num_hidden_layers=layers)
    config.is_causal = causal
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        model.model.norm.weight.mul_(sharpen)
    return model


def generate(model, adapter, prompts, **config):
    return DiffusionSampler(model, adapter, SamplerConfig(**config)).generate(prompts)


# ---------------------------------------------------------------- config and commit counts


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(threshold=1.0), r"threshold must lie in \(0, 1\), got 1.0"),
        (dict(threshold=0.0), r"threshold must lie in \(0, 1\)"),
        (dict(factor=0.0), r"factor must be > 0, got 0.0"),
        (dict(threshold=0.9, factor=1.0), r"set threshold \(0.9\) or factor \(1.0\), not both"),
        (dict(threshold=0.9, remasking="random"), r"needs remasking='low_confidence', got 'random'"),
        (dict(kv_cache="full"), r"unknown kv_cache 'full'; choose one of none, prefix, dual"),
    ],
)
def test_bad_options_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**kwargs)


def test_threshold_counts_confidences_above_it_and_at_least_one():
    conf = torch.tensor(
        [[0.95, 0.5, 0.91, -INF], [0.3, 0.2, -INF, -INF], [-INF] * 4, [0.9, 0.99, 0.97, 0.92]], dtype=torch.float64
    )
    assert parallel_commit_count(conf, threshold=0.9).tolist() == [2, 1, 0, 3]  # 0.9 itself is not above


def test_factor_commits_while_the_nth_confidence_clears_one_minus_factor_over_n_plus_one():
    # factor 1: the i-th most confident must be >= 1 - 1/(i+1) = 0.5, 0.667, 0.75, 0.8
    conf = torch.tensor(
        [[0.9, 0.7, 0.6, 0.1], [0.4, 0.3, -INF, -INF], [0.99, 0.98, 0.97, 0.96], [-INF] * 4], dtype=torch.float64
    )
    assert parallel_commit_count(conf, factor=1.0).tolist() == [2, 1, 4, 0]
    # a larger factor accepts more: 1 - 2/(i+1) = 0, 0.333, 0.5, 0.6
    assert parallel_commit_count(conf, factor=2.0).tolist() == [3, 1, 4, 0]


# ---------------------------------------------------------------- parallel decoding


def test_options_off_report_steps_as_model_calls(embedded):
    model, tokenizer, adapter = embedded
    out = generate(model, adapter, prompts_of_lengths(tokenizer), gen_length=16, block_length=8, steps=8)
    assert out.model_calls.tolist() == [8, 8, 8] and out.forward_passes == 8 and out.kv_cache == "none"


def test_a_confident_model_decodes_each_block_in_one_call():
    model = FixedLogitsModel([0.0, 0.0, 12.0, 0.0, 0.0])  # token 2 at p ~ 0.9998 everywhere
    adapter = ModelAdapter("embedded", mask_token_id=4, eos_token_id=3, pad_token_id=3)
    out = generate(model, adapter, [[1, 1], [0]], gen_length=12, block_length=4, steps=12, threshold=0.9)
    assert out.completion_ids.tolist() == [[2] * 12] * 2
    assert out.model_calls.tolist() == [3, 3] and out.forward_passes == 3 == len(model.calls)
    low = generate(model, adapter, [[1, 1]], gen_length=12, block_length=4, steps=3, threshold=0.99999)
    assert low.model_calls.tolist() == [12]  # nothing clears the threshold: one per call, `steps` unused


def test_unreachable_threshold_is_the_one_token_per_step_schedule(embedded):
    model, tokenizer, adapter = embedded  # a random model: confidences near 1 / vocab
    prompts = prompts_of_lengths(tokenizer)
    fixed = generate(model, adapter, prompts, gen_length=16, block_length=8, steps=16)
    parallel = generate(model, adapter, prompts, gen_length=16, block_length=8, steps=2, threshold=0.99)
    assert torch.equal(fixed.sequences, parallel.sequences)
    assert parallel.model_calls.tolist() == [16, 16, 16]


@pytest.mark.parametrize("option", [dict(threshold=0.3), dict(factor=3.0)])
def test_parallel_decoding_invariants_and_batch_independence(embedded, option):
    model, tokenizer, adapter = embedded
    model = llama(tokenizer, layers=2, seed=3, sharpen=25.0)  # several commits per call
    prompts = prompts_of_lengths(tokenizer, (3, 9, 17, 6))
    config = dict(gen_length=16, block_length=8, steps=16, return_history=True, **option)
    out = generate(model, adapter, prompts, **config)
    assert not (out.completion_ids == adapter.mask_token_id).any()
    assert len(out.history) == out.forward_passes == int(out.model_calls.max())
    previous = torch.full_like(out.completion_ids, adapter.mask_token_id)
    for state in out.history:
        decided = previous != adapter.mask_token_id
        assert torch.equal(state[decided], previous[decided])  # committed tokens never change
        previous = state
    assert 2 <= int(out.model_calls.min()) and int(out.model_calls.max()) <= 16
    assert int(out.model_calls.sum()) < 4 * 16 // 2  # this model commits several tokens per call
    for i, prompt in enumerate(prompts):
        alone = generate(model, adapter, [prompt], **config)
        assert torch.equal(alone.completion_ids[0], out.completion_ids[i])
        assert alone.model_calls.tolist() == [int(out.model_calls[i])]  # counts are per sequence


# ---------------------------------------------------------------- KV cache


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_cached_step_on_unchanged_tokens_equals_the_full_forward(embedded, mode):
    _, tokenizer, adapter = embedded
    model = llama(tokenizer, layers=4)
    ids = torch.randint(5, len(tokenizer), (3, 20), generator=torch.Generator().manual_seed(0))
    attn = torch.ones_like(ids)
    attn[0, :4] = 0
    attn[1, :1] = 0
    full = adapter.logits(model, ids, attn)
    cache = KVCache(adapter, mode)
    with torch.no_grad():
        assert torch.allclose(cache.fill(model, ids, attn, 8, 12), full, atol=1e-5)
        assert torch.allclose(cache.logits(model, ids, attn, 8, 12), full[:, 8:12], atol=1e-5)


@pytest.mark.parametrize("mode, layers, causal", [("prefix", 1, False), ("dual", 1, False), ("prefix", 3, True)])
@pytest.mark.parametrize("option", [dict(), dict(threshold=0.7), dict(threshold=0.7, cfg_scale=1.0)])
def test_cache_is_exact_where_nothing_it_keeps_goes_stale(embedded, mode, layers, causal, option):
    """One layer reads only token embeddings; a causal prefix never sees the block: greedy tokens equal."""
    _, tokenizer, adapter = embedded
    model = llama(tokenizer, layers=layers, causal=causal, seed=1, sharpen=25.0)
    prompts = prompts_of_lengths(tokenizer, (3, 9, 17))
    config = dict(gen_length=24, block_length=8, steps=12, **option)
    plain = generate(model, adapter, prompts, **config)
    cached = generate(model, adapter, prompts, kv_cache=mode, **config)
    assert cached.kv_cache == mode
    assert torch.equal(plain.sequences, cached.sequences)
    assert torch.equal(plain.model_calls, cached.model_calls)
    if option:  # rows finish their blocks at different calls: later calls run (and cache) a subset of rows
        assert len(set(plain.model_calls.tolist())) > 1


def test_cache_changes_a_deep_bidirectional_model_only_after_the_block_first_step(embedded):
    """Four layers: the first call of each block is the full forward, so block 1 (one call) is exact."""
    _, tokenizer, adapter = embedded
    model = llama(tokenizer, layers=4, seed=2)
    prompts = prompts_of_lengths(tokenizer, (3, 9, 17))
    plain = generate(model, adapter, prompts, gen_length=16, block_length=8, steps=2, return_history=True)
    cached = generate(
        model, adapter, prompts, gen_length=16, block_length=8, steps=2, return_history=True, kv_cache="dual"
    )
    assert torch.equal(plain.history[0], cached.history[0])


def test_models_without_a_cache_fall_back_with_a_log_line(caplog):
    model = FixedLogitsModel([0.0, 1.0, 3.0, 0.5, 0.0])
    adapter = ModelAdapter("embedded", mask_token_id=4, eos_token_id=3, pad_token_id=3)
    plain = generate(model, adapter, [[1, 2]], gen_length=8, block_length=4, steps=4)
    with caplog.at_level(logging.WARNING, logger="gift.sampler"):
        cached = generate(model, adapter, [[1, 2]], gen_length=8, block_length=4, steps=4, kv_cache="prefix")
    assert torch.equal(plain.sequences, cached.sequences) and cached.kv_cache == "none"
    assert "kv_cache=prefix is not available (FixedLogitsModel is not a native transformers decoder)" in caplog.text


def test_cache_support_is_decided_by_the_adapter(embedded):
    model, tokenizer, adapter = embedded
    assert adapter.kv_cache_unsupported(model, "dual") is None
    causal = llama(tokenizer, layers=1, causal=True)
    assert adapter.kv_cache_unsupported(causal, "prefix") is None
    assert "needs bidirectional attention" in adapter.kv_cache_unsupported(causal, "dual")
    official_llada = ModelAdapter("llada", 126336, 126081, 126081, honour_attention_mask=False)
    assert "honour_attention_mask is false" in official_llada.kv_cache_unsupported(model, "prefix")
    dream = ModelAdapter("dream", 4, 3, 3, shift_logits=True)
    assert dream.kv_cache_unsupported(model, "prefix") == "LlamaForCausalLM is not a native transformers decoder"


# ---------------------------------------------------------------- gift eval


def test_eval_takes_the_options_and_records_model_calls(tmp_path):
    import json

    from stages.evaluation.evaluate import EvalError, evaluate, resolve_decoding

    (path,) = evaluate(
        "embedded",
        "sudoku",
        [16],
        output_dir=tmp_path,
        data="synthetic",
        limit=3,
        block_length=8,
        threshold=0.5,
        kv_cache="dual",
        batch_size=2,
    )
    records = [json.loads(line) for line in path.read_text().splitlines()]
    calls = [r["model_calls"] for r in records]
    assert len(calls) == 3 and all(2 <= c <= 16 for c in calls)
    config = json.loads((tmp_path / "eval_config.json").read_text())["sudoku"]
    assert (config["decoding"][0]["threshold"], config["decoding"][0]["kv_cache"]) == (0.5, "dual")
    assert config["model_calls_per_sequence"] == {"16": round(sum(calls) / 3, 3)}
    with pytest.raises(EvalError, match=r"^--threshold 1.5: must lie in \(0, 1\)$"):
        resolve_decoding([16], 8, threshold=1.5)
    with pytest.raises(EvalError, match=r"^--gen_length 0: must be a positive integer$"):
        resolve_decoding([16, 0], 8)


def test_cache_runs_through_a_lora_wrapped_model(embedded):
    """RL rollouts decode with the peft-wrapped policy: the cache must pass through peft's forward."""
    from peft import LoraConfig, get_peft_model

    _, tokenizer, adapter = embedded
    model = get_peft_model(
        llama(tokenizer, layers=1, seed=1, sharpen=25.0),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    assert adapter.kv_cache_unsupported(model, "dual") is None
    prompts = prompts_of_lengths(tokenizer)
    plain = generate(model, adapter, prompts, gen_length=16, block_length=8, steps=8)
    cached = generate(model, adapter, prompts, gen_length=16, block_length=8, steps=8, kv_cache="dual")
    assert cached.kv_cache == "dual" and torch.equal(plain.sequences, cached.sequences)


def test_schedule_floor_never_takes_more_calls_than_steps(embedded):
    model, tokenizer, adapter = embedded
    prompts = prompts_of_lengths(tokenizer)
    fixed = generate(model, adapter, prompts, gen_length=16, block_length=8, steps=4)
    # unreachable threshold on a random model: exactly the fixed schedule, call for call
    floor = generate(
        model, adapter, prompts, gen_length=16, block_length=8, steps=4, threshold=0.99, min_commit="schedule"
    )
    assert torch.equal(fixed.sequences, floor.sequences) and floor.model_calls.tolist() == [4, 4, 4]
    sharp = llama(tokenizer, layers=2, seed=3, sharpen=25.0)
    out = generate(
        sharp, adapter, prompts, gen_length=16, block_length=8, steps=8, threshold=0.3, min_commit="schedule"
    )
    one = generate(sharp, adapter, prompts, gen_length=16, block_length=8, steps=8, threshold=0.3)
    assert not (out.completion_ids == adapter.mask_token_id).any()
    assert int(out.model_calls.max()) <= 8 and (out.model_calls <= one.model_calls).all()
    with pytest.raises(ValueError, match="unknown min_commit 'two'; choose one of one, schedule"):
        SamplerConfig(min_commit="two")


# ---------------------------------------------------------------- lookahead and eos_stop


class PositionLogitsModel(torch.nn.Module):
    """Logits row `rows[i]` at sequence position i (prompts of one length, no padding)."""

    def __init__(self, rows):
        super().__init__()
        self.rows = torch.nn.Parameter(torch.tensor(rows, dtype=torch.float32), requires_grad=False)
        self.passes = 0

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        self.passes += 1
        return SimpleNamespace(logits=self.rows[: input_ids.shape[1]].expand(input_ids.shape[0], -1, -1).clone())


TOKEN_2_AT_60 = [0.0, 0.0, 1.5, 0.0, 0.0]  # token 2 at p = e^1.5 / (e^1.5 + 3) ~ 0.60 (mask 4 never proposed)
EOS_SURE = [0.0, 0.0, 0.0, 12.0, 0.0]  # EOS (3) at p ~ 0.9998
TINY = ModelAdapter("embedded", mask_token_id=4, eos_token_id=3, pad_token_id=3)


def test_block_cache_maps_batch_rows_to_the_rows_it_was_filled_with():
    cache = _BlockCache(KVCache(TINY, "dual"), rows=torch.tensor([1, 3, 4]))
    cache.kv.batch_size = 6  # [cond; uncond] of the three rows
    assert cache.index(torch.tensor([3, 4]), guided=False).tolist() == [1, 2]
    assert cache.index(torch.tensor([3, 4]), guided=True).tolist() == [1, 2, 4, 5]
    assert cache.index(None, guided=False) is None
    assert _BlockCache(KVCache(TINY, "prefix")).index(torch.tensor([0, 2]), guided=False).tolist() == [0, 2]


def test_close_answered_fills_rows_whose_text_before_the_first_eos_is_decoded():
    completion = torch.tensor([[2, 3, 4, 4], [4, 3, 4, 2], [2, 2, 4, 4], [3, 2, 4, 3]])
    closed = close_answered(completion, eos_id=3, mask_id=4)
    assert closed.tolist() == [True, False, False, True]
    assert completion.tolist() == [[2, 3, 3, 3], [4, 3, 4, 2], [2, 2, 4, 4], [3, 2, 3, 3]]


@pytest.mark.parametrize(
    "decoder, calls_off, calls_on",
    [
        (dict(), 9, 6),  # fixed schedule 2, 1, 1 per block: block 1 closes the text at its third pass
        (dict(threshold=0.9), 7, 6),  # block 0 one token per pass; block 1: the EOS in one pass, then position 4
    ],
)
def test_eos_stop_ends_a_row_once_its_text_is_decoded(decoder, calls_off, calls_on):
    # prompt of 2, then 5 uncertain tokens and an EOS tail the model is sure of
    model = PositionLogitsModel([TOKEN_2_AT_60] * 7 + [EOS_SURE] * 7)
    config = dict(gen_length=12, block_length=4, steps=9, **decoder)
    off = generate(model, TINY, [[1, 1], [0, 1]], **config)
    on = generate(model, TINY, [[1, 1], [0, 1]], eos_stop=True, **config)
    assert off.completion_ids.tolist() == on.completion_ids.tolist() == [[2] * 5 + [3] * 7] * 2
    assert off.model_calls.tolist() == [calls_off] * 2 and on.model_calls.tolist() == [calls_on] * 2
    assert on.forward_passes == calls_on


def test_lookahead_commits_confident_tokens_of_the_next_blocks():
    model = FixedLogitsModel([0.0, 0.0, 12.0, 0.0, 0.0])  # token 2 at p ~ 0.9998 everywhere
    for lookahead, calls in ((0, 3), (1, 2), (2, 1)):  # a block decoded ahead takes no call of its own
        out = generate(
            model, TINY, [[1, 1]], gen_length=12, block_length=4, steps=12, threshold=0.9, lookahead=lookahead
        )
        assert out.completion_ids.tolist() == [[2] * 12] and out.model_calls.tolist() == [calls]
    unsure = FixedLogitsModel(TOKEN_2_AT_60)  # nothing ahead clears the threshold: lookahead changes nothing
    plain = generate(unsure, TINY, [[1, 1]], gen_length=8, block_length=4, steps=8, threshold=0.9, return_history=True)
    ahead = generate(
        unsure, TINY, [[1, 1]], gen_length=8, block_length=4, steps=8, threshold=0.9, return_history=True, lookahead=1
    )
    assert all(torch.equal(a, b) for a, b in zip(plain.history, ahead.history)) and ahead.model_calls.tolist() == [8]


@pytest.mark.parametrize("mode, guidance", [("prefix", 0.0), ("dual", 0.0), ("dual", 1.0)])
def test_lookahead_with_a_cache_is_exact_on_a_one_layer_model(embedded, mode, guidance):
    _, tokenizer, adapter = embedded
    model = llama(tokenizer, layers=1, seed=3, sharpen=25.0)
    # With these, some rows finish a block ahead: its cache is filled for the other rows only, and
    # later passes run a subset of those (the cache must map batch rows to its own rows).
    prompts = prompts_of_lengths(tokenizer, (3, 9, 17, 6, 12, 4, 20, 8))
    config = dict(gen_length=24, block_length=8, steps=24, threshold=0.5, lookahead=1, cfg_scale=guidance)
    plain = generate(model, adapter, prompts, **config)
    assert len(set(plain.model_calls.tolist())) > 2
    cached = generate(model, adapter, prompts, kv_cache=mode, **config)
    assert cached.kv_cache == mode and torch.equal(plain.sequences, cached.sequences)
    assert torch.equal(plain.model_calls, cached.model_calls)
    for i, prompt in enumerate(prompts):  # and a sequence decodes the same alone as in the batch
        assert torch.equal(generate(model, adapter, [prompt], **config).completion_ids[0], plain.completion_ids[i])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(threshold=0.9, lookahead=-1), r"lookahead must be a non-negative integer, got -1"),
        (dict(lookahead=1), r"lookahead=1 commits by threshold: set threshold"),
        (dict(factor=1.0, lookahead=1), r"lookahead=1 commits by threshold: set threshold"),
    ],
)
def test_bad_lookahead_raises_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**kwargs)
