"""The math of masked-diffusion SFT and GIFT, as small public functions (docs/algorithms.md §1, §2).

Shapes: `B` sequences of `L` positions. `eligible` is a bool (B, L) mask of the answer positions that
may be noised (the prompt never is); `rates` holds each position's masking probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSS_NORMALISERS = ("answer_tokens", "answer_length", "masked_tokens")


def sample_time(
    batch_size: int, eps: float = 1e-3, device=None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One nominal time per sequence: `t ~ U(0,1)`, then `(1-eps) t + eps`, so `t` lies in [eps, 1)."""
    t = torch.rand(batch_size, device=device, generator=generator)
    return (1 - eps) * t + eps


def _chunked_rows(
    logits: torch.Tensor,
    positions: torch.Tensor,
    chunk_size: int,
    fn,
    head: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Apply `fn(rows_fp32, flat_indices) -> (n,)` to the rows at `positions`, `chunk_size` rows at a time.

    Rows are gathered chunk by chunk (no copy of all selected rows), so at most one chunk of fp32
    values exists at a time: a 126k vocabulary over 4k positions never materialises a full fp32 copy.
    With `head`, `logits` holds hidden states and each chunk's logits are `head(rows)`: the LM head
    runs on `positions` only, and no (B, L, V) tensor exists at all.
    """
    flat = logits.reshape(-1, logits.shape[-1])
    index = positions.reshape(-1).nonzero().squeeze(1)
    out = torch.zeros(positions.numel(), dtype=torch.float32, device=logits.device)
    for start in range(0, index.numel(), chunk_size):
        rows = index[start : start + chunk_size]
        values = flat[rows] if head is None else head(flat[rows])
        out[rows] = fn(values.float(), rows)
    return out.view(positions.shape)


def chunked_entropy(
    logits: torch.Tensor,
    positions: torch.Tensor,
    chunk_size: int = 256,
    head: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Predictive entropy (nats, fp32 softmax) at `positions`, zero elsewhere.

    `H = logsumexp(x) - sum(softmax(x) * x)`: fewer passes over the vocabulary than `-sum(p log p)`.
    `head`: `logits` are final hidden states (B, L, H) and the logits are `head(hidden)`, computed at
    `positions` only.
    """

    def entropy(x: torch.Tensor, _rows) -> torch.Tensor:
        return (torch.logsumexp(x, dim=-1) - (torch.softmax(x, dim=-1) * x).sum(-1)).clamp_min(0)

    return _chunked_rows(logits, positions, chunk_size, entropy, head)


def chunked_nll(
    logits: torch.Tensor,
    targets: torch.Tensor,
    positions: torch.Tensor,
    chunk_size: int = 256,
    head: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Negative log-likelihood of `targets` (nats, fp32) at `positions`, zero elsewhere (`head`: as for entropy)."""
    gold = targets.reshape(-1)
    return _chunked_rows(
        logits, positions, chunk_size, lambda x, rows: F.cross_entropy(x, gold[rows], reduction="none"), head
    )


def beta_from_signal(signal: torch.Tensor) -> torch.Tensor:
    """`beta_i = sqrt(signal_i)`; the signal is the probe's entropy (the paper) or gold-token NLL (ablation)."""
    return signal.clamp_min(0).sqrt()


def reference_beta(beta: torch.Tensor, weight_positions: torch.Tensor, mode: str = "sequence") -> torch.Tensor:
    """`beta_ref`, shape (B, 1): mean `beta` over `weight_positions` per sequence, or over the micro-batch."""
    w = weight_positions.to(beta.dtype)
    if mode == "sequence":
        return ((beta * w).sum(-1) / w.sum(-1).clamp_min(1)).unsqueeze(-1)
    if mode == "batch":
        mean = (beta * w).sum() / w.sum().clamp_min(1)
        return mean.expand(beta.shape[0], 1)
    raise ValueError(f"unknown beta_ref mode {mode!r}; choose 'sequence' or 'batch'")


def gift_rates(t: torch.Tensor, beta: torch.Tensor, beta_ref: torch.Tensor, floor: float = 1e-3) -> torch.Tensor:
    """Theorem 1 of the paper: `t_i = 1 - (1 - t) ** (beta_i / beta_ref)` (unclamped).

    `t` is (B,), `beta` (B, L), `beta_ref` (B, 1). A sequence whose `beta_ref` is below `floor` carries
    no signal (the probe is certain everywhere): its ratio is 1, i.e. the plain SFT schedule.
    """
    ratio = torch.where(beta_ref > floor, beta / beta_ref.clamp_min(floor), torch.ones_like(beta))
    # 1 - (1-t)^r computed as -expm1(r * log1p(-t)): exact for small t and small r.
    return -torch.expm1(ratio * torch.log1p(-t.unsqueeze(-1)))


def clamp_rates(rates: torch.Tensor, eligible: torch.Tensor, min_rate: float = 1e-3) -> tuple[torch.Tensor, int]:
    """Clamp eligible rates from below (keeps `1/t_i` finite); ineligible positions get 0. Returns the clamp count."""
    fired = int(((rates < min_rate) & eligible).sum())
    return torch.where(eligible, rates.clamp_min(min_rate), torch.zeros_like(rates)), fired


def draw_mask(
    rates: torch.Tensor,
    eligible: torch.Tensor,
    generator: torch.Generator | None = None,
    resample_empty: bool = True,
    max_tries: int = 64,
) -> tuple[torch.Tensor, int]:
    """Mask each eligible position with its own probability.

    A sequence with eligible positions but nothing masked is redrawn (same rates) rather than
    patched, up to `max_tries`. Returns the mask and the number of sequences left empty.
    """
    masked = (torch.rand(rates.shape, device=rates.device, generator=generator) < rates) & eligible
    if not resample_empty:
        return masked, int(((masked.sum(-1) == 0) & eligible.any(-1)).sum())
    for _ in range(max_tries):
        empty = (masked.sum(-1) == 0) & eligible.any(-1)
        if not empty.any():
            break
        redraw = (torch.rand(rates.shape, device=rates.device, generator=generator) < rates) & eligible
        masked = torch.where(empty.unsqueeze(-1), redraw, masked)
    return masked, int(((masked.sum(-1) == 0) & eligible.any(-1)).sum())


def weighted_masked_ce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    rates: torch.Tensor,
    eligible: torch.Tensor,
    normaliser: str,
) -> torch.Tensor:
    """Sum over masked tokens of `CE_i / t_i`, divided by the normaliser.

    - `answer_tokens` (d1): number of eligible answer positions in the micro-batch;
    - `answer_length` (LLaDA): each sequence by its own answer length, then the batch mean;
    - `masked_tokens` (GIFT's algorithm): number of masked tokens in the micro-batch.
    Cross-entropy is computed only at the masked positions.
    """
    ce = F.cross_entropy(logits[masked].float(), targets[masked], reduction="none")
    weighted = torch.zeros(masked.shape, dtype=ce.dtype, device=ce.device)
    weighted[masked] = ce / rates[masked].to(ce.dtype)
    if normaliser == "answer_tokens":
        return weighted.sum() / eligible.sum().clamp_min(1)
    if normaliser == "answer_length":
        return (weighted.sum(-1) / eligible.sum(-1).clamp_min(1)).mean()
    if normaliser == "masked_tokens":
        return weighted.sum() / masked.sum().clamp_min(1)
    raise ValueError(f"unknown normaliser {normaliser!r}; choose one of {', '.join(LOSS_NORMALISERS)}")


@dataclass
class RateStats:
    """What one batch's schedule did, for logging."""

    mean_t: float
    mean_rate: float
    masked_fraction: float
    clamp_count: int
    empty_sequences: int
    beta_mean: float = float("nan")
    beta_std: float = float("nan")
    beta_max: float = float("nan")
