"""wd1: ratio-free weighted likelihood (Tang et al. 2025, arXiv 2507.08838; github xiaohangt/wd1).

Within each prompt's group, completion i gets the weight `w_i = softmax(psi A)_i - softmax(-psi A)_i`
(A = reward - group mean): above-average completions are pushed up, below-average ones down, with no
old-policy ratio and no clipping. The loss is `-sum_i w_i log pi(y_i | x)`, with log pi the sum of
d1's one-step token log-probabilities over the completion; here divided by the number of rows in the
micro-batch (wd1 sums over a micro-batch of one group: a constant factor G).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.estimators.base import POSITIVE, PROBABILITY, EstimatorLoss, option
from gift.estimators.d1 import D1
from gift.estimators.registry import register


@dataclass
class WD1Settings:
    p_mask_prompt: float = option(0.15, "probability that a real prompt token is masked in the log-prob estimate",
                                  PROBABILITY)
    psi: float = option(1.0, "advantage scale inside the softmax weights", POSITIVE, flag="wd1_psi")


def wd1_weights(rewards: torch.Tensor, num_generations: int, psi: float = 1.0) -> torch.Tensor:
    """(N,) `softmax(psi A) - softmax(-psi A)` within each consecutive group of `num_generations` rows."""
    grouped = rewards.view(-1, num_generations)
    advantages = grouped - grouped.mean(1, keepdim=True)
    weights = torch.softmax(psi * advantages, dim=1) - torch.softmax(-psi * advantages, dim=1)
    return weights.reshape(-1)


class WD1(D1):
    name = "wd1"
    settings_type = WD1Settings
    uses_old_logps = False
    supports_kl = False
    reads_scale_rewards = False  # its weights are a softmax of the centred rewards

    def advantages(self, rewards, num_generations, scale) -> torch.Tensor:
        return wd1_weights(rewards, num_generations, self.settings.psi)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        sequence_logp = (logps[:, 0] * completion_mask.to(logps.dtype)).sum(1)
        return EstimatorLoss(-(advantages * sequence_logp).sum() / logps.shape[0])


register(WD1)
