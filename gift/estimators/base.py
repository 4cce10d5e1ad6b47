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

from gift.diffu_grpo import LOSS_TYPES, GRPOLossOutput, aggregate, diffu_grpo_loss, group_advantages, masked_logps

__all__ = ["LOSS_TYPES", "Estimator", "EstimatorLoss", "EstimatorSettings", "aggregate", "clipped_ratio_loss",
           "completion_noise_frame", "masked_logps"]


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


EstimatorLoss = GRPOLossOutput  # loss, kl, clip_ratio (0 for the estimators without them)


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


def clipped_ratio_loss(logps: torch.Tensor, old: torch.Tensor | None, ref: torch.Tensor | None,
                       advantages: torch.Tensor, mask: torch.Tensor, settings: EstimatorSettings) -> EstimatorLoss:
    """d1's clipped ratio and k3 KL per token (`gift.diffu_grpo.diffu_grpo_loss`) over `mask` (B, L)."""
    return diffu_grpo_loss(logps, old, ref, advantages, mask, settings.epsilon, settings.beta, settings.loss_type)


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
