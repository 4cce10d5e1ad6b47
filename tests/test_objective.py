"""The math of docs/algorithms.md §1-2: rates, weights, normalisers, the probe."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from gift.loss import diffusion_loss
from gift.objective import (
    chunked_entropy,
    chunked_nll,
    clamp_rates,
    draw_mask,
    gift_rates,
    reference_beta,
    sample_time,
    weighted_masked_ce,
)
from gift.probe import probe_signal, split_head
from gift.schedules import GiftSchedule, UniformSchedule


def _batch(tokenizer, n=4, length=12, prompt=4, tail=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, len(tokenizer), (n, length), generator=g)
    answer = torch.zeros(n, length, dtype=torch.bool)
    answer[:, prompt:] = True
    pad_tail = torch.zeros_like(answer)
    pad_tail[:, length - tail :] = True
    ids[pad_tail] = tokenizer.eos_token_id
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(n, length, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": pad_tail,
        "index": torch.arange(n),
    }


def test_sample_time_range():
    t = sample_time(100_000, eps=1e-3, generator=torch.Generator().manual_seed(0))
    assert t.min() >= 1e-3 and t.max() < 1
    assert abs(float(t.mean()) - 0.5) < 0.01


def test_equal_betas_give_t():
    t = torch.tensor([0.1, 0.5, 0.9])
    beta = torch.full((3, 5), 0.7)
    rates = gift_rates(t, beta, reference_beta(beta, torch.ones(3, 5, dtype=torch.bool)))
    assert torch.allclose(rates, t[:, None].expand(3, 5), atol=1e-6)


def test_rates_monotone_in_beta_in_unit_interval_and_t_at_beta_ref():
    t = torch.linspace(0.01, 0.99, 9)
    beta = torch.linspace(0.05, 3.0, 50).expand(9, 50)
    beta_ref = torch.ones(9, 1)
    rates = gift_rates(t, beta, beta_ref)
    assert (rates.diff(dim=-1) > 0).all()
    assert (rates > 0).all() and (rates < 1).all()
    at_ref = gift_rates(t, torch.ones(9, 1), beta_ref)
    assert torch.allclose(at_ref.squeeze(-1), t, atol=1e-6)


def test_zero_signal_sequence_falls_back_to_t():
    t = torch.tensor([0.3])
    rates = gift_rates(t, torch.zeros(1, 4), torch.zeros(1, 1), floor=1e-3)
    assert torch.allclose(rates, torch.full((1, 4), 0.3))


def test_importance_weights_are_unbiased():
    """E[1[masked_i] / t_i] = 1 per token: GIFT re-allocates masking, it does not rescale the loss."""
    g = torch.Generator().manual_seed(0)
    n = 200_000
    beta = torch.tensor([0.1, 0.5, 1.0, 2.0, 4.0]).expand(n, 5)
    t = sample_time(n, generator=g)
    rates, _ = clamp_rates(gift_rates(t, beta, beta.mean(-1, keepdim=True)), torch.ones(n, 5, dtype=torch.bool))
    masked = torch.rand(n, 5, generator=g) < rates
    estimate = (masked / rates).mean(0)
    assert torch.allclose(estimate, torch.ones(5), atol=0.05), estimate


def test_clamp_counts_and_zeroes_ineligible():
    rates = torch.tensor([[1e-5, 0.2, 1e-6], [0.5, 1e-7, 0.3]])
    eligible = torch.tensor([[True, True, False], [True, True, True]])
    clamped, fired = clamp_rates(rates, eligible, 1e-3)
    assert fired == 2
    assert clamped[0, 2] == 0 and clamped[0, 0] == 1e-3 and clamped[1, 1] == 1e-3 and clamped[0, 1] == 0.2


def test_reference_beta_modes():
    beta = torch.tensor([[1.0, 3.0, 9.0], [2.0, 2.0, 0.0]])
    w = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.allclose(reference_beta(beta, w, "sequence").squeeze(-1), torch.tensor([2.0, 4 / 3]))
    assert torch.allclose(reference_beta(beta, w, "batch").squeeze(-1), torch.tensor([1.6, 1.6]))
    with pytest.raises(ValueError, match="beta_ref"):
        reference_beta(beta, w, "nope")


def test_chunked_entropy_and_nll_match_unchunked():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 50, generator=g) * 3
    pos = torch.rand(2, 7, generator=g) > 0.3
    targets = torch.randint(0, 50, (2, 7), generator=g)
    logp = logits.log_softmax(-1)
    full_h = -(logp.exp() * logp).sum(-1) * pos
    assert torch.allclose(chunked_entropy(logits, pos, chunk_size=3), full_h, atol=1e-5)
    full_nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * pos
    assert torch.allclose(chunked_nll(logits, targets, pos, chunk_size=2), full_nll, atol=1e-5)
    # fp32 entropy even for half-precision logits
    assert chunked_entropy(logits.bfloat16(), pos, 4).dtype == torch.float32


def test_draw_mask_resamples_empty_sequences():
    rates = torch.full((64, 4), 0.02)
    eligible = torch.ones(64, 4, dtype=torch.bool)
    eligible[0] = False  # nothing eligible: may stay empty, is not counted
    masked, empty = draw_mask(rates, eligible, torch.Generator().manual_seed(0))
    assert empty == 0 and (masked[1:].sum(-1) >= 1).all() and not masked[0].any()
    _, empty_plain = draw_mask(rates, eligible, torch.Generator().manual_seed(0), resample_empty=False)
    assert empty_plain > 0


def test_normalisers_by_hand():
    logits = torch.zeros(2, 3, 4)  # uniform: CE = log 4 everywhere
    targets = torch.zeros(2, 3, dtype=torch.long)
    masked = torch.tensor([[True, False, False], [True, True, False]])
    eligible = torch.tensor([[True, True, False], [True, True, True]])
    rates = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.5, 0.5]])
    ce = math.log(4)
    total = ce / 0.5 + ce / 0.25 + ce / 0.5
    assert weighted_masked_ce(logits, targets, masked, rates, eligible, "answer_tokens").item() == pytest.approx(
        total / 5
    )
    assert weighted_masked_ce(logits, targets, masked, rates, eligible, "masked_tokens").item() == pytest.approx(
        total / 3
    )
    per_seq = [(ce / 0.5) / 2, (ce / 0.25 + ce / 0.5) / 3]
    assert weighted_masked_ce(logits, targets, masked, rates, eligible, "answer_length").item() == pytest.approx(
        sum(per_seq) / 2
    )
    with pytest.raises(ValueError, match="normaliser"):
        weighted_masked_ce(logits, targets, masked, rates, eligible, "tokens")


@pytest.mark.parametrize("normaliser", ["answer_tokens", "answer_length", "masked_tokens"])
def test_gift_with_equal_betas_equals_sft(tiny, normaliser):
    model, tokenizer, adapter = tiny
    batch = _batch(tokenizer)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    constant = GiftSchedule(
        beta_source="custom", beta_fn=lambda b: torch.full(b["input_ids"].shape, 0.9), pad_tail="gift"
    )
    gift = diffusion_loss(model, adapter, batch, constant, normaliser, t=t, generator=torch.Generator().manual_seed(1))
    sft = diffusion_loss(
        model, adapter, batch, UniformSchedule(), normaliser, t=t, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(gift.masked, sft.masked)
    assert torch.allclose(gift.loss, sft.loss)


def test_pad_tail_stays_on_sft_schedule(tiny):
    model, tokenizer, adapter = tiny
    batch = _batch(tokenizer)
    t = torch.tensor([0.2, 0.4, 0.6, 0.8])
    varied = torch.rand(batch["input_ids"].shape, generator=torch.Generator().manual_seed(0)) * 2
    schedule = GiftSchedule(beta_source="custom", beta_fn=lambda b: varied, pad_tail="sft")
    rates, beta = schedule.token_rates(model, adapter, batch, t)
    tail = batch["pad_tail_mask"]
    assert torch.allclose(rates[tail], t[:, None].expand_as(rates)[tail])
    assert (rates[~batch["answer_mask"]] == 0).all()
    assert not torch.allclose(
        rates[batch["answer_mask"] & ~tail], t[:, None].expand_as(rates)[batch["answer_mask"] & ~tail]
    )


def test_no_gradient_through_probe(tiny):
    """The probe runs under no_grad and in eval mode; only the second pass records a graph."""
    model, tokenizer, adapter = tiny
    model.train()
    calls = []
    # Hooked on the decoder body: both passes run it (the probe calls it directly and applies the LM head
    # to answer positions only, gift.probe.split_head).
    handle = model.model.register_forward_hook(lambda m, i, o: calls.append((torch.is_grad_enabled(), m.training)))
    out = diffusion_loss(model, adapter, _batch(tokenizer), GiftSchedule(), generator=torch.Generator().manual_seed(0))
    handle.remove()
    assert calls == [(False, False), (True, True)]
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model.training


def test_nll_signal_uses_gold_token(tiny):
    model, tokenizer, adapter = tiny
    batch = _batch(tokenizer)
    by_entropy = GiftSchedule(beta_from="entropy").betas(model, adapter, batch)
    by_nll = GiftSchedule(beta_from="nll").betas(model, adapter, batch)
    assert by_entropy.shape == by_nll.shape and not torch.allclose(by_entropy, by_nll)
    assert (by_nll[~batch["answer_mask"]] == 0).all()


def test_bad_schedule_options():
    with pytest.raises(ValueError, match="beta_source"):
        GiftSchedule(beta_source="sometimes")
    with pytest.raises(ValueError, match="beta_fn"):
        GiftSchedule(beta_source="custom")
    with pytest.raises(ValueError, match="beta_from"):
        GiftSchedule(beta_from="variance")


@pytest.mark.parametrize("signal", ["entropy", "nll"])
def test_probe_runs_the_lm_head_on_answer_positions_only_and_matches_the_full_logits(tiny, signal):
    model, tokenizer, adapter = tiny
    batch = _batch(tokenizer)
    batch["attention_mask"][0, :2] = 0  # a left-padded row
    answer = batch["answer_mask"]
    args = (batch["input_ids"], batch["attention_mask"], answer, signal, 5)
    rows: list[int] = []
    handle = model.get_output_embeddings().register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    split = probe_signal(model, adapter, *args)
    handle.remove()
    assert split_head(model, adapter) is not None and sum(rows) == int(answer.sum())  # 32 rows, not 48
    # The same probe through the adapter's full logits (what a model that is not its family's native decoder takes).
    full_path = dataclasses.replace(adapter, kind="dream")
    assert split_head(model, full_path) is None
    full = probe_signal(model, full_path, *args)
    assert torch.allclose(split, full, rtol=1e-6, atol=1e-6) and (split[~answer] == 0).all()
    assert (split[answer] > 0).all()
