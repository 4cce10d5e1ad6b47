"""What every stage-two estimator shares: the noised forward pass, the loss aggregation, the settings.

An estimator decides two things (docs/rl_algorithms.md):

1. `draw_noise`: which positions of `[prompt; completion]` are replaced by the mask token for each inner
   iteration and Monte-Carlo draw, as a bool tensor (B, mu, K, P + L). It is drawn once per generation
   batch, so the current, old and reference policies of an iteration see the same noised sequence.
2. `loss`: the surrogate maximised, from the per-token log-probabilities (B, K, L) read at the
   completion positions of the noised sequences.

Group advantages are shared (`advantages`); wd1 overrides them with its weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.adapters import ModelAdapter
from gift.diffu_grpo import group_advantages, selective_log_softmax

LOSS_TYPES = ("bnpo", "grpo")


@dataclass
class EstimatorSettings:
    """Options of the estimators (each reads the ones it needs; see docs/rl_algorithms.md).

    p_mask_prompt: probability that a real prompt token is masked in a log-prob estimate (d1: 0.15).
    epsilon, beta: clip range and k3-KL weight of the ratio estimators (d1, unigrpo).
    loss_type: `bnpo` (token mean over the micro-batch, d1) or `grpo` (per-sequence mean, then batch mean).
    num_t: Monte-Carlo mask draws per completion and iteration (spg, unigrpo).
    block_length, min_t, max_t: SPG's block-wise masks (the partly masked block masks a fraction in
        [min_t, max_t] of its tokens).
    spg_negative: the surrogate of negative-advantage completions: `elbo`, `eubo` or `mix`;
        eubo_beta, mix_weight: its parameters.
    wd1_psi: the advantage scale inside wd1's softmax weights.
    """

    p_mask_prompt: float = 0.15
    epsilon: float = 0.5
    beta: float = 0.0
    loss_type: str = "bnpo"
    num_t: int = 1
    block_length: int = 32
    min_t: float = 0.0
    max_t: float = 1.0
    spg_negative: str = "mix"
    eubo_beta: float = 1.0
    mix_weight: float = 0.5
    wd1_psi: float = 1.0


@dataclass
class EstimatorLoss:
    loss: torch.Tensor
    kl: float = 0.0
    clip_ratio: float = 0.0


class Estimator:
    """Base class: d1-style advantages, no old-policy ratio, no KL."""

    name = "base"
    uses_old_logps = False  # needs the old policy's log-probs when mu > 1 (clipped-ratio estimators)
    supports_kl = False

    def __init__(self, settings: EstimatorSettings):
        self.settings = settings

    def advantages(self, rewards: torch.Tensor, num_generations: int, scale: bool) -> torch.Tensor:
        """(N,) per-completion weights of the policy gradient; reward minus group mean by default."""
        return group_advantages(rewards, num_generations, scale=scale)[0]

    def draw_noise(self, prompt_attention: torch.Tensor, completion_mask: torch.Tensor, num_iterations: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, logps: torch.Tensor, noise: torch.Tensor, old: torch.Tensor | None, ref: torch.Tensor | None,
             advantages: torch.Tensor, completion_mask: torch.Tensor) -> EstimatorLoss:
        raise NotImplementedError


def masked_logps(model: torch.nn.Module, adapter: ModelAdapter, prompt_ids: torch.Tensor,
                 prompt_attention: torch.Tensor, completion_ids: torch.Tensor, noise: torch.Tensor,
                 chunk_size: int = 1024) -> torch.Tensor:
    """(B, K, L) log-probabilities of the completion tokens, one forward pass per noised copy.

    `noise` (B, K, P + L) marks the positions replaced by the mask token in each of the K copies.
    """
    batch, draws, width = noise.shape
    clean = torch.cat([prompt_ids, completion_ids], dim=1)
    noisy = torch.where(noise, adapter.mask_token_id, clean.unsqueeze(1)).reshape(batch * draws, width)
    attention = torch.cat([prompt_attention, torch.ones_like(completion_ids)], dim=1)
    attention = attention.repeat_interleave(draws, dim=0)
    logits = adapter.logits(model, noisy, attention)[:, prompt_ids.shape[1]:]
    targets = completion_ids.repeat_interleave(draws, dim=0)
    return selective_log_softmax(logits, targets, chunk_size).view(batch, draws, -1)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, loss_type: str) -> torch.Tensor:
    """Reduce (B, L) token losses over `mask`: `bnpo` = token mean over the micro-batch (d1's choice),
    `grpo` = each sequence's token mean, then the mean over sequences (trl's names)."""
    mask = mask.to(per_token.dtype)
    if loss_type == "bnpo":
        return (per_token * mask).sum() / mask.sum().clamp_min(1)
    if loss_type == "grpo":
        return ((per_token * mask).sum(1) / mask.sum(1).clamp_min(1)).mean()
    raise ValueError(f"unknown loss_type {loss_type!r}; choose one of {', '.join(LOSS_TYPES)}")


def clipped_ratio_loss(logps: torch.Tensor, old: torch.Tensor | None, ref: torch.Tensor | None,
                       advantages: torch.Tensor, mask: torch.Tensor, settings: EstimatorSettings) -> EstimatorLoss:
    """PPO-style clipped objective per token plus `beta` times the k3 KL, aggregated over `mask` (B, L).

    Per token: `-min(r A, clip(r, 1-eps, 1+eps) A) + beta (exp(ref - logp) - (ref - logp) - 1)`,
    `r = exp(logp - old)`. `old=None` (a fresh batch at mu = 1) makes r = 1 with gradient.
    """
    eps, beta = settings.epsilon, settings.beta
    ratio = torch.exp(logps - (logps.detach() if old is None else old))
    adv = advantages.unsqueeze(1)
    per_token = -torch.min(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
    fmask = mask.to(logps.dtype)
    kl_value = 0.0
    if beta != 0.0:
        if ref is None:
            raise ValueError("beta != 0 needs reference log-probabilities")
        delta = ref - logps
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + beta * kl
        kl_value = float((kl.detach() * fmask).sum() / fmask.sum().clamp_min(1))
    is_clipped = ((ratio < 1 - eps) & (adv < 0)) | ((ratio > 1 + eps) & (adv > 0))
    clip_ratio = float((is_clipped.to(fmask.dtype) * fmask).sum() / fmask.sum().clamp_min(1))
    return EstimatorLoss(aggregate(per_token, mask, settings.loss_type), kl_value, clip_ratio)


def completion_noise_frame(prompt_attention: torch.Tensor, completion_mask: torch.Tensor, num_iterations: int,
                           draws: int, p_mask_prompt: float, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts every completion-masking scheme shares: (B, mu, K, P) prompt noise (each real prompt token
    masked with `p_mask_prompt`, padding never) and (B, mu, K, L) positions after the first EOS (always
    masked: the model fills them with EOS at decoding time, and they are never scored)."""
    batch, plen = prompt_attention.shape
    draw = torch.rand((batch, num_iterations, draws, plen), generator=generator, device=prompt_attention.device)
    prompt_noise = (draw < p_mask_prompt) & prompt_attention.bool()[:, None, None]
    after_eos = ~completion_mask.bool()[:, None, None].expand(-1, num_iterations, draws, -1)
    return prompt_noise, after_eos
