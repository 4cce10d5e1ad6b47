"""One masked-diffusion training step's loss, shared by SFT and GIFT (they differ only in the schedule)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.adapters import ModelAdapter
from gift.objective import RateStats, clamp_rates, draw_mask, sample_time, weighted_masked_ce
from gift.schedules import UniformSchedule


@dataclass
class LossOutput:
    loss: torch.Tensor
    stats: RateStats
    masked: torch.Tensor
    rates: torch.Tensor


def diffusion_loss(
    model: torch.nn.Module,
    adapter: ModelAdapter,
    batch: dict,
    schedule: UniformSchedule,
    normaliser: str | None = None,
    eps: float = 1e-3,
    min_rate: float = 1e-3,
    resample_empty: bool = True,
    generator: torch.Generator | None = None,
    t: torch.Tensor | None = None,
) -> LossOutput:
    """Masked-diffusion loss of one micro-batch (keys: input_ids, attention_mask, answer_mask, pad_tail_mask)."""
    input_ids, eligible = batch["input_ids"], batch["answer_mask"]
    # 1. One nominal time per sequence.
    if t is None:
        t = sample_time(input_ids.shape[0], eps, input_ids.device, generator)
    # 2. Per-token rates from the schedule (SFT: t everywhere; GIFT: Theorem 1), clamped so 1/t_i is finite.
    raw_rates, beta = schedule.token_rates(model, adapter, batch, t)
    rates, clamp_count = clamp_rates(raw_rates, eligible, min_rate)
    # 3. Noise the answer; the prompt is never masked.
    masked, empty = draw_mask(rates, eligible, generator, resample_empty)
    noisy = torch.where(masked, torch.full_like(input_ids, adapter.mask_token_id), input_ids)
    # 4. Forward pass with gradient; logits aligned so that position i scores token i.
    logits = adapter.logits(model, noisy, batch["attention_mask"])
    # 5. Cross-entropy on masked tokens, weighted by 1 / t_i, then normalised.
    loss = weighted_masked_ce(logits, input_ids, masked, rates, eligible, normaliser or schedule.default_normaliser)

    n_eligible = max(int(eligible.sum()), 1)
    stats = RateStats(
        mean_t=float(t.mean()),
        mean_rate=float(rates[eligible].mean()) if eligible.any() else 0.0,
        masked_fraction=float(masked.sum()) / n_eligible,
        clamp_count=clamp_count,
        empty_sequences=empty,
    )
    if beta is not None and eligible.any():
        b = beta[eligible]
        stats.beta_mean, stats.beta_std, stats.beta_max = (
            float(b.mean()),
            float(b.std()) if b.numel() > 1 else 0.0,
            float(b.max()),
        )
    return LossOutput(loss, stats, masked, rates)
