"""A toy estimator written as a new estimator would be: one module, its settings, one `register` call.

REINFORCE on d1's one-step log-probabilities plus a k3 KL to the reference:
loss = -mean_i (A_i - toy_baseline) mean_j log p_ij + beta mean_ij k3_ij. It has a KL term but reads no
old-policy log-probs, so `kl_reference: generation` must be refused for it at validation. `toy_baseline` is
an option no built-in estimator has: `gift rl` must still get a flag, its help and its range check; with
`toy_cap` it declares a rule across its options (`toy_baseline <= toy_cap`), checked when the config is built.
"""

from dataclasses import dataclass

from gift.estimators import D1, EstimatorLoss, option, register
from gift.estimators.base import NON_NEGATIVE, PROBABILITY, not_above


@dataclass
class ToySettings:
    p_mask_prompt: float = option(0.0, "probability that a real prompt token is masked", PROBABILITY)
    beta: float = option(0.0, "weight of the k3 KL to the reference", NON_NEGATIVE, trainer=True)
    toy_baseline: float = option(
        0.0,
        "constant taken off every advantage",
        NON_NEGATIVE,
        checks=(not_above("toy_baseline", "toy_cap", "toy_baseline", "toy_cap"),),
    )
    toy_cap: float = option(1.0, "largest toy_baseline allowed", NON_NEGATIVE)


class Toy(D1):
    name = "toy"
    settings_type = ToySettings
    uses_old_logps = False
    supports_kl = True

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        mask = completion_mask.to(logps.dtype)
        sequence = (logps[:, 0] * mask).sum(1) / mask.sum(1).clamp_min(1)
        loss, kl_value = -((advantages - self.settings.toy_baseline) * sequence).mean(), 0.0
        if self.settings.beta:
            delta = ref[:, 0] - logps[:, 0]
            kl = ((delta.exp() - delta - 1) * mask).sum() / mask.sum()
            loss, kl_value = loss + self.settings.beta * kl, kl.item()
        return EstimatorLoss(loss, kl_value)


register(Toy)
