"""wd1: ratio-free weighted likelihood (Tang et al. 2025, arXiv 2507.08838; github xiaohangt/wd1).

Within each prompt's group, completion i gets the weight `w_i = softmax(psi A)_i - softmax(-psi A)_i`
(A = reward - group mean): above-average completions are pushed up, below-average ones down, with no
old-policy ratio and no clipping. The loss is `-sum_i w_i log pi(y_i | x)`, with log pi the sum of
d1's one-step token log-probabilities over the completion. wd1 sums it over a micro-batch of one group;
`wd1_reduction: group_sum` (default) sums over each group and averages over the groups of the micro-batch
(equal to wd1's for one group per micro-batch), `row_mean` divides the sum by the rows (G times smaller: under
gradient clipping that is not a learning-rate change).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.estimators.base import POSITIVE, PROBABILITY, EstimatorLoss, mask_schedule_option, option
from gift.estimators.d1 import D1, PADDING_HELP, PROMPT_PADDING
from gift.estimators.registry import register

WD1_REDUCTIONS = ("group_sum", "row_mean")


@dataclass
class WD1Settings:
    p_mask_prompt: float = option(
        0.15, "probability that a real prompt token is masked in the log-prob estimate", PROBABILITY
    )
    psi: float = option(1.0, "advantage scale inside the softmax weights", POSITIVE, flag="wd1_psi")
    mask_schedule: str = mask_schedule_option("official")
    prompt_padding: str = option("excluded", PADDING_HELP, choices=PROMPT_PADDING)
    reduction: str = option(
        "group_sum",
        "group_sum (wd1: sum over a group, mean over groups) | row_mean (mean over rows: G times smaller)",
        choices=WD1_REDUCTIONS,
        flag="wd1_reduction",
    )


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
        # The loss divides by the micro-batch's rows B; group_sum scales the weights by G, so the loss is
        # the sum over each group averaged over the B / G groups (wd1's sum when B = G).
        scale_to_groups = num_generations if self.settings.reduction == "group_sum" else 1
        return scale_to_groups * wd1_weights(rewards, num_generations, self.settings.psi)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        sequence_logp = (logps[:, 0] * completion_mask.to(logps.dtype)).sum(1)
        return EstimatorLoss(-(advantages * sequence_logp).sum() / logps.shape[0])


register(WD1)
