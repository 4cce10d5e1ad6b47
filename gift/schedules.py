"""Masking schedules: the ONE place where SFT and GIFT differ.

A schedule turns a batch and its nominal times `t` into per-token masking rates. The training step
(`gift.loss.diffusion_loss`) is shared; weights are always `1 / rate`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gift.adapters import ModelAdapter
from gift.objective import gift_rates, reference_beta
from gift.options import check_option
from gift.probe import SIGNALS, probe_betas

BetaFn = Callable[[dict], torch.Tensor]  # batch -> (B, L) per-token beta, for control arms
BETA_SOURCES = ("live", "cached", "custom")
PAD_TAIL_SCHEDULES = ("sft", "gift")
BETA_REFS = ("sequence", "batch")  # beta_ref: mean beta over the sequence's answer tokens, or the batch's


class UniformSchedule:
    """Masked-diffusion SFT: every answer token is masked with the sequence's `t`."""

    name = "sft"
    default_normaliser = "answer_tokens"

    def betas(self, model, adapter: ModelAdapter, batch: dict) -> torch.Tensor | None:
        return None

    def token_rates(
        self, model, adapter: ModelAdapter, batch: dict, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Unclamped rates (B, L) on answer positions (0 elsewhere) and the betas used, if any."""
        eligible = batch["answer_mask"]
        return t.unsqueeze(-1).expand(eligible.shape) * eligible, None


class GiftSchedule(UniformSchedule):
    """GIFT: token i is masked with `t_i = 1 - (1-t)^(beta_i / beta_ref)` (Theorem 1).

    beta_source: `live` (probe the current model every step, the paper), `cached` (probe the starting
    model once per example, the paper's fixed forward process: see `BetaCache`) or `custom` (`beta_fn`).
    beta_refresh_steps (live only): k = 1 probes every step; k > 1 probes the batch only at steps that are
    multiples of k and otherwise reuses each example's last probed beta from `cache` (filled from the
    starting model up front, and overwritten by every live probe); the trainer sets `step`. k -> infinity
    is `cached`.
    pad_tail: `sft` keeps the EOS padding tail on the plain schedule and out of `beta_ref`; `gift`
    treats it like any answer token.
    """

    name = "gift"
    default_normaliser = "masked_tokens"

    def __init__(
        self,
        beta_source: str = "live",
        beta_from: str = "entropy",
        beta_ref: str = "sequence",
        beta_ref_floor: float = 1e-3,
        pad_tail: str = "sft",
        chunk_size: int = 256,
        beta_fn: BetaFn | None = None,
        cache: torch.Tensor | None = None,
        beta_refresh_steps: int = 1,
    ):
        check_option("beta_source", beta_source, BETA_SOURCES)
        check_option("beta_from", beta_from, SIGNALS)
        check_option("beta_ref", beta_ref, BETA_REFS)
        check_option("pad_tail_schedule", pad_tail, PAD_TAIL_SCHEDULES)
        if beta_source == "custom" and beta_fn is None:
            raise ValueError("beta_source='custom' needs a beta_fn (batch -> per-token beta)")
        if not isinstance(beta_refresh_steps, int) or isinstance(beta_refresh_steps, bool) or beta_refresh_steps < 1:
            raise ValueError(f"beta_refresh_steps must be a positive integer, got {beta_refresh_steps!r}")
        self.beta_refresh_steps = beta_refresh_steps
        self.step = 0  # the optimizer step, set by the trainer (beta_refresh_steps > 1 probes when step % k == 0)
        self.beta_source, self.beta_from, self.beta_ref_mode = beta_source, beta_from, beta_ref
        self.beta_ref_floor, self.pad_tail, self.chunk_size = beta_ref_floor, pad_tail, chunk_size
        self.beta_fn, self.cache = beta_fn, cache

    def betas(self, model, adapter: ModelAdapter, batch: dict) -> torch.Tensor:
        if self.beta_source == "custom":
            return self.beta_fn(batch).to(torch.float32)
        reuse = self.beta_source == "live" and self.beta_refresh_steps > 1 and self.step % self.beta_refresh_steps
        if self.beta_source == "cached" or reuse:
            if self.cache is None:
                raise RuntimeError(
                    f"beta_source={self.beta_source!r} (beta_refresh_steps={self.beta_refresh_steps}) "
                    "but the beta cache was not built (see stages.train.cold_start)"
                )
            length = batch["input_ids"].shape[1]
            return self.cache[batch["index"].cpu(), :length].to(batch["input_ids"].device, torch.float32)
        beta = probe_betas(model, adapter, batch, self.beta_from, self.chunk_size)
        if self.beta_refresh_steps > 1 and self.cache is not None:
            # Remember this probe for the examples' later steps; positions past the batch width stay 0.
            rows = batch["index"].cpu()
            self.cache[rows] = 0.0
            self.cache[rows, : beta.shape[1]] = beta.to("cpu", self.cache.dtype)
        return beta

    def token_rates(self, model, adapter, batch, t):
        eligible, tail = batch["answer_mask"], batch["pad_tail_mask"]
        beta = self.betas(model, adapter, batch) * eligible
        core = eligible & ~tail if self.pad_tail == "sft" else eligible
        rates = gift_rates(t, beta, reference_beta(beta, core, self.beta_ref_mode), self.beta_ref_floor)
        if self.pad_tail == "sft":
            rates = torch.where(tail, t.unsqueeze(-1).expand_as(rates), rates)
        return rates * eligible, beta
