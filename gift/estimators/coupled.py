"""coupled-GRPO (DiffuCoder: Gong et al. 2025, "DiffuCoder: Understanding and Improving Masked Diffusion
Models for Code Generation", arXiv 2506.20639; github apple/ml-diffucoder, `src/open_r1/coupled_grpo.py`).

Per completion and inner iteration, a masking rate t ~ U[min_t, max_t] (0.2, 0.8) and a uniform u_j per
completion position give three noised copies, the prompt never masked:

    copy 0: every completion position masked (d1's one-step estimate)
    copy 1: the positions with u_j < t masked
    copy 2: the others (the complement of copy 1 within the completion)

so every completion token is masked, and scored, in exactly one copy of the pair (1, 2). Its per-token
log-probability is

    logp_j = (logp0_j + (logp1_j / t if j in copy 1 else logp2_j / (1 - t))) / 2

and the surrogate is d1's per-token clipped ratio and k3 KL on it (eps 0.5, beta 0.01, token mean over the
micro-batch), with leave-one-out advantages A_i = r_i - mean_{k != i} r_k (the rewards not divided by their
std unless `scale_rewards: group`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.estimators.base import (
    NON_NEGATIVE,
    POSITIVE,
    UNIT,
    Estimator,
    EstimatorLoss,
    clipped_ratio_loss,
    loss_type_option,
    mask_schedule_option,
    option,
)
from gift.estimators.registry import register

COPIES = 3  # the fully masked copy and the complementary pair


def _pair_rates(s: CoupledSettings, gen_length: int) -> str | None:
    if 0 < s.min_t <= s.max_t < 1:
        return None
    return (
        f"coupled_min_t ({s.min_t}) and coupled_max_t ({s.max_t}) must satisfy "
        "0 < coupled_min_t <= coupled_max_t < 1 (the pair is weighted by 1/t and 1/(1 - t))"
    )


@dataclass
class CoupledSettings:
    min_t: float = option(
        0.2, "least masking rate of the complementary pair", UNIT, flag="coupled_min_t", checks=(_pair_rates,)
    )
    max_t: float = option(0.8, "largest masking rate of the complementary pair", UNIT, flag="coupled_max_t")
    mask_schedule: str = mask_schedule_option("official")
    loss_type: str = loss_type_option()
    epsilon: float = option(0.5, "clip range of the ratio", POSITIVE, trainer=True)
    beta: float = option(0.01, "weight of the k3 KL", NON_NEGATIVE, trainer=True)


def leave_one_out(rewards: torch.Tensor, num_generations: int, scale: bool = False) -> torch.Tensor:
    """(N,) each reward minus the mean of the other rewards of its group; divided by the group's std (+1e-4)
    when `scale`. A group of one has no other reward: 0."""
    grouped = rewards.view(-1, num_generations)
    if num_generations == 1:
        return torch.zeros_like(rewards)
    others = (grouped.sum(1, keepdim=True) - grouped) / (num_generations - 1)
    advantages = grouped - others
    if scale:
        advantages = advantages / (grouped.std(1, keepdim=True) + 1e-4)
    return advantages.reshape(-1)


def coupled_logps(logps: torch.Tensor, noise: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """(B, L) DiffuCoder's per-token estimate from the three copies' log-probs (B, 3, L), their completion
    masks (B, 3, L) and the pair's masking rate (B, 3) (the rate sits in every column of a row)."""
    t = rates[:, 1:2]
    in_first = noise[:, 1]
    paired = torch.where(in_first, logps[:, 1] / t, logps[:, 2] / (1 - t))
    return (logps[:, 0] + paired) / 2


class Coupled(Estimator):
    name = "coupled"
    settings_type = CoupledSettings
    uses_old_logps = True
    supports_kl = True

    def advantages(self, rewards, num_generations, scale) -> torch.Tensor:
        return leave_one_out(rewards, num_generations, scale)

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None):
        """The noise (B, mu, 3, P + L) and each copy's rate (B, mu, 3): the pair's t in every column."""
        s, device = self.settings, completion_mask.device
        batch, width = completion_mask.shape
        t = s.min_t + (s.max_t - s.min_t) * torch.rand(
            (batch, num_iterations, 1), generator=generator, device=device, dtype=torch.float64
        )
        u = torch.rand((batch, num_iterations, width), generator=generator, device=device, dtype=torch.float64)
        first = u < t  # over the whole completion width, the EOS fill included, as DiffuCoder's code
        completion = torch.stack([torch.ones_like(first), first, ~first], dim=2)
        prompt = torch.zeros(
            (batch, num_iterations, COPIES, prompt_attention.shape[1]), dtype=torch.bool, device=device
        )
        return torch.cat([prompt, completion], dim=-1), t.expand(-1, -1, COPIES).float()

    def loss(self, logps, noise, old, ref, advantages, completion_mask, rates=None) -> EstimatorLoss:
        if rates is None:
            raise ValueError("coupled-GRPO needs the masking rates drawn with its noise")
        s = self.settings
        rates = rates.to(logps.dtype)
        combine = lambda x: None if x is None else coupled_logps(x, noise, rates)  # noqa: E731
        return clipped_ratio_loss(
            combine(logps),
            combine(old),
            combine(ref),
            advantages,
            completion_mask.bool(),
            s.epsilon,
            s.beta,
            s.loss_type,
        )


register(Coupled)
