"""Stage-two policy-gradient estimators on one harness (docs/rl_algorithms.md).

    from gift.estimators import EstimatorSettings, build_estimator
    estimator = build_estimator("spg", EstimatorSettings(block_length=8, num_t=2))

`d1` (diffu-GRPO), `spg` (sandwiched policy gradient), `unigrpo` (MMaDA) and `wd1` share the rollouts,
rewards, group advantages and trainer (`stages.train.rl`); they differ in the masks they draw for the
log-probability estimate and in the surrogate they maximise.
"""

from __future__ import annotations

from gift.estimators.base import (LOSS_TYPES, Estimator, EstimatorLoss, EstimatorSettings, aggregate,
                                  clipped_ratio_loss, masked_logps)
from gift.estimators.d1 import D1
from gift.estimators.spg import NEGATIVE_SURROGATES, SPG, block_noise, spg_surrogates
from gift.estimators.unigrpo import UniGRPO, random_subset
from gift.estimators.wd1 import WD1, wd1_weights

ESTIMATORS: dict[str, type[Estimator]] = {cls.name: cls for cls in (D1, SPG, UniGRPO, WD1)}
RL_ALGORITHMS = tuple(ESTIMATORS)


def build_estimator(name: str, settings: EstimatorSettings | None = None) -> Estimator:
    """The estimator called `name` (one of RL_ALGORITHMS)."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown rl_algorithm {name!r}; choose one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](settings or EstimatorSettings())


__all__ = ["ESTIMATORS", "LOSS_TYPES", "NEGATIVE_SURROGATES", "RL_ALGORITHMS", "D1", "SPG", "UniGRPO", "WD1",
           "Estimator", "EstimatorLoss", "EstimatorSettings", "aggregate", "block_noise", "build_estimator",
           "clipped_ratio_loss", "masked_logps", "random_subset", "spg_surrogates", "wd1_weights"]
