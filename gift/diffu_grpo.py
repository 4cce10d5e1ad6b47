"""diffu-GRPO's pieces (docs/algorithms.md §5, d1): prompt masks, one-step log-probabilities, the loss.

The per-token log-probability of a completion under a masked-diffusion model is estimated with ONE
forward pass: every completion token is masked, each real prompt token is masked with probability
`p_mask_prompt`, and `log softmax` is read at the completion positions. Each inner iteration uses its
own prompt mask; the same mask serves the current, old and reference policies at that iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.adapters import ModelAdapter


def draw_prompt_masks(
    prompt_attention: torch.Tensor, p_mask_prompt: float, num_iterations: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(B, mu, P) bool: which real prompt tokens are masked at each inner iteration (padding never is)."""
    batch, length = prompt_attention.shape
    draws = torch.rand((batch, num_iterations, length), generator=generator, device=prompt_attention.device)
    return (draws < p_mask_prompt) & prompt_attention.bool().unsqueeze(1)


def selective_log_softmax(logits: torch.Tensor, targets: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """`log_softmax(logits)[..., targets]` in fp32, one chunk of rows at a time (a 126k vocabulary is large)."""
    flat, gold = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    out = []
    for start in range(0, flat.shape[0], chunk_size):
        rows = flat[start : start + chunk_size].float()
        picked = rows.gather(-1, gold[start : start + chunk_size, None]).squeeze(-1)
        out.append(picked - torch.logsumexp(rows, dim=-1))
    return torch.cat(out).view(targets.shape)


def masked_logps(
    model: torch.nn.Module,
    adapter: ModelAdapter,
    prompt_ids: torch.Tensor,
    prompt_attention: torch.Tensor,
    completion_ids: torch.Tensor,
    noise: torch.Tensor,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """(B, K, L) log-probabilities of the completion tokens, one forward pass per noised copy.

    `prompt_ids` are left-padded (B, P) with `prompt_attention`; `noise` (B, K, P + L) marks the positions
    replaced by the mask token in each of the K copies of `[prompt; completion]`.
    """
    batch, draws, width = noise.shape
    clean = torch.cat([prompt_ids, completion_ids], dim=1)
    noisy = torch.where(noise, adapter.mask_token_id, clean.unsqueeze(1)).reshape(batch * draws, width)
    attention = torch.cat([prompt_attention, torch.ones_like(completion_ids)], dim=1)
    attention = attention.repeat_interleave(draws, dim=0)
    logits = adapter.logits(model, noisy, attention)[:, prompt_ids.shape[1] :]
    targets = completion_ids.repeat_interleave(draws, dim=0)
    return selective_log_softmax(logits, targets, chunk_size).view(batch, draws, -1)


def completion_logps(
    model: torch.nn.Module,
    adapter: ModelAdapter,
    prompt_ids: torch.Tensor,
    prompt_attention: torch.Tensor,
    completion_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """(B, L) d1's one-step estimate: log-probabilities of `completion_ids` with the completion fully
    masked and the prompt tokens marked in `prompt_mask` (B, P) masked too."""
    noise = torch.cat([prompt_mask, torch.ones_like(completion_ids, dtype=torch.bool)], dim=1).unsqueeze(1)
    return masked_logps(model, adapter, prompt_ids, prompt_attention, completion_ids, noise, chunk_size)[:, 0]


def completion_mask_until_eos(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """(B, L) int mask of the completion up to and including its first EOS (all of it if none)."""
    is_eos = completion_ids == eos_token_id
    length = completion_ids.shape[1]
    first = torch.where(is_eos.any(1), is_eos.int().argmax(1), torch.full_like(is_eos[:, 0], length, dtype=torch.long))
    return (torch.arange(length, device=completion_ids.device)[None] <= first[:, None]).int()


def group_advantages(
    rewards: torch.Tensor, num_generations: int, scale: bool = False, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward minus its group's mean (d1); divided by the group's std when `scale`. Also the per-row group std.

    Rows are grouped consecutively: rows `g*G .. g*G+G-1` are the G completions of prompt g.
    """
    grouped = rewards.view(-1, num_generations)
    mean = grouped.mean(1).repeat_interleave(num_generations)
    std = grouped.std(1).repeat_interleave(num_generations)
    advantages = rewards - mean
    return (advantages / (std + eps) if scale else advantages), std


LOSS_TYPES = ("bnpo", "grpo")


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Reduce (B, L) token losses over `mask`: `bnpo` = token mean over the micro-batch (d1's choice),
    `grpo` = each sequence's token mean, then the mean over sequences (trl's names)."""
    mask = mask.to(per_token.dtype)
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp_min(1)
    if loss_type == "grpo":
        return ((per_token * mask).sum(1) / mask.sum(1).clamp_min(1)).mean()
    raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {', '.join(LOSS_TYPES)}")


@dataclass
class GRPOLossOutput:
    loss: torch.Tensor
    kl: float = 0.0
    clip_ratio: float = 0.0


def diffu_grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor | None,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    completion_mask: torch.Tensor,
    epsilon: float = 0.5,
    beta: float = 0.04,
    loss_type: str = "grpo",
) -> GRPOLossOutput:
    """Clipped-ratio policy loss plus `beta` times the k3 KL to the reference, over `completion_mask`.

    Per token: `-min(r A, clip(r, 1-eps, 1+eps) A) + beta * (exp(ref - logp) - (ref - logp) - 1)`, with
    `r = exp(logp - logp_old)`, reduced by `aggregate(..., loss_type)`.
    `old_logps=None` means the first iteration of a fresh batch (mu = 1): the ratio is 1 with gradient.
    """
    old = logps.detach() if old_logps is None else old_logps
    ratio = torch.exp(logps - old)
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    adv = advantages.unsqueeze(1)
    per_token = -torch.min(ratio * adv, clipped * adv)
    mask = completion_mask.to(logps.dtype)
    kl_value = 0.0
    if beta != 0.0:
        if ref_logps is None:
            raise ValueError("beta != 0 needs reference log-probabilities")
        delta = ref_logps - logps
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
        kl_value = float((kl.detach() * mask).sum() / mask.sum().clamp_min(1))
    is_clipped = ((ratio < 1 - epsilon) & (adv < 0)) | ((ratio > 1 + epsilon) & (adv > 0))
    clip_ratio = float((is_clipped.to(mask.dtype) * mask).sum() / mask.sum().clamp_min(1))
    return GRPOLossOutput(aggregate(per_token, completion_mask, loss_type), kl_value, clip_ratio)
