"""A toy estimator written as a new estimator would be: one module, its settings, one `register` call.

REINFORCE on d1's one-step log-probabilities: loss = -mean_i A_i * mean_j log p_ij. It declares a KL term
but no old-policy log-probs, so `kl_reference: generation` must be refused for it at validation.
"""

from dataclasses import dataclass


from gift.estimators import D1, EstimatorLoss, option, register
from gift.estimators.base import PROBABILITY


@dataclass
class ToySettings:
    p_mask_prompt: float = option(0.0, "probability that a real prompt token is masked", PROBABILITY)


class Toy(D1):
    name = "toy"
    settings_type = ToySettings
    uses_old_logps = False
    supports_kl = True

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        mask = completion_mask.to(logps.dtype)
        sequence = (logps[:, 0] * mask).sum(1) / mask.sum(1).clamp_min(1)
        return EstimatorLoss(-(advantages * sequence).mean())


register(Toy)
