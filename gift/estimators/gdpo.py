"""GDPO: group diffusion policy optimization (Rojas et al. 2025, "Improving Reasoning for Diffusion
Language Models via Group Diffusion Policy Optimization", arXiv 2510.08554).

A sequence-level ratio on the ELBO, estimated by semi-deterministic Monte Carlo: the integral of the
ELBO over the masking time t is taken with a fixed Gauss-Legendre rule on (0, 1) (`points` nodes t_n with
weights w_n, two by default) and only the mask at each node is random (`draws` masks per node, one by
default). As GDPO's `NumericalIntegrationEstimator` (`gdpo/likelihood_estimators.py`), `gdpo_mask_area:
canvas` (default) masks int(t_n W) positions of the whole completion canvas of W positions, the fill after
the EOS included and scored, and never the prompt; `completion` masks round(t_n |y|) (at least one) of the
completion y only:

    ELBO(y) = sum_n w_n / (t_n draws) sum_{d} sum_{j masked in (n, d)} log p(y_j | y_(n, d), x)
    r = exp((ELBO_theta(y) - ELBO_old(y)) / N)     (N = W for canvas, |y| for completion)
    loss = -mean_i min(r_i A_i, clip(r_i, 1 - eps, 1 + eps) A_i),   A = reward - group mean

Prompt tokens are masked with probability `p_mask_prompt` (0, as GDPO; never scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gift.estimators.base import (
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Estimator,
    EstimatorLoss,
    mask_schedule_option,
    option,
    random_subset,
)
from gift.estimators.registry import register

MASK_AREAS = ("canvas", "completion")


@dataclass
class GDPOSettings:
    points: int = option(
        2, "Gauss-Legendre nodes of the time integral", (lambda v: 1 <= v <= 8, "must lie in 1..8"), flag="gdpo_points"
    )
    draws: int = option(1, "random masks per node", POSITIVE_INT, flag="gdpo_draws")
    p_mask_prompt: float = option(0.0, "probability that a real prompt token is masked (not scored)", PROBABILITY)
    mask_area: str = option(
        "canvas",
        "canvas (GDPO: int(t W) of the W completion positions, EOS fill scored, "
        "ratio over W) | completion (round(t |y|) of y, ratio over |y|)",
        choices=MASK_AREAS,
        flag="gdpo_mask_area",
    )
    mask_schedule: str = mask_schedule_option("official")
    epsilon: float = option(0.5, "clip range of the sequence ratio", POSITIVE, trainer=True)


def quadrature(points: int) -> tuple[list[float], list[float]]:
    """Gauss-Legendre nodes and weights mapped from [-1, 1] onto (0, 1) (the weights sum to 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    return [float(x) / 2 + 0.5 for x in nodes], [float(w) / 2 for w in weights]


class GDPO(Estimator):
    name = "gdpo"
    settings_type = GDPOSettings
    uses_old_logps = True

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None) -> torch.Tensor:
        s, device = self.settings, completion_mask.device
        times, _ = quadrature(s.points)
        batch, plen = prompt_attention.shape
        k = s.points * s.draws
        prompt = torch.rand((batch, num_iterations, k, plen), generator=generator, device=device) < s.p_mask_prompt
        prompt &= prompt_attention.bool()[:, None, None]
        scored = self.area(completion_mask)[:, None, None].expand(-1, num_iterations, k, -1)
        length = scored.sum(-1)
        t = torch.tensor(times, device=device, dtype=torch.float64).repeat_interleave(s.draws)  # (K,)
        if s.mask_area == "canvas":
            counts = (length.double() * t).floor().long()  # GDPO's int(t W)
        else:
            counts = torch.minimum((length.double() * t).round().long().clamp_min(1), length)
        return torch.cat([prompt, random_subset(scored, counts, generator) | ~scored], dim=-1)

    def area(self, completion_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: the positions masked and scored (canvas: all of them; completion: y)."""
        return (
            torch.ones_like(completion_mask, dtype=torch.bool)
            if self.settings.mask_area == "canvas"
            else completion_mask.bool()
        )

    def elbo(self, logps: torch.Tensor, noise: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
        """(B,) the semi-deterministic ELBO from log-probs (B, K, L) and masks (B, K, L)."""
        s = self.settings
        times, weights = quadrature(s.points)
        coefficient = torch.tensor(
            [w / (t * s.draws) for t, w in zip(times, weights)], dtype=logps.dtype, device=logps.device
        ).repeat_interleave(s.draws)
        masked = (noise & self.area(completion_mask).unsqueeze(1)).to(logps.dtype)
        return ((logps * masked).sum(-1) * coefficient).sum(-1)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        eps = self.settings.epsilon
        length = self.area(completion_mask).to(logps.dtype).sum(-1).clamp_min(1)
        current = self.elbo(logps, noise, completion_mask)
        previous = current.detach() if old is None else self.elbo(old, noise, completion_mask)
        ratio = torch.exp((current - previous) / length)
        per_sequence = -torch.min(ratio * advantages, ratio.clamp(1 - eps, 1 + eps) * advantages)
        clipped = ((ratio < 1 - eps) & (advantages < 0)) | ((ratio > 1 + eps) & (advantages > 0))
        return EstimatorLoss(per_sequence.mean(), 0.0, float(clipped.float().mean()))


register(GDPO)
