"""Stage-two policy-gradient estimators on one harness (docs/rl_algorithms.md).

    from gift.estimators import build_estimator
    estimator = build_estimator("spg", SPGSettings(block_length=8, num_t=2))

`d1` (diffu-GRPO), `spg` (sandwiched policy gradient), `unigrpo` (MMaDA), `wd1`, `gdpo` and `coupled`
(DiffuCoder's coupled-GRPO) share the rollouts, rewards and trainer (`stages.train.rl`); each is one module here
with its settings dataclass, registered once (`gift.estimators.registry`).
"""

from __future__ import annotations

from gift.diffu_grpo import LOSS_TYPES, aggregate, masked_logps
from gift.estimators.base import (
    MASK_SCHEDULES,
    Estimator,
    EstimatorLoss,
    clipped_ratio_loss,
    official_mask_set,
    option,
    random_subset,
)
from gift.estimators.coupled import Coupled, CoupledSettings, coupled_logps, leave_one_out
from gift.estimators.d1 import D1, D1Settings
from gift.estimators.gdpo import GDPO, GDPOSettings, quadrature
from gift.estimators.registry import (
    ESTIMATORS,
    build_estimator,
    estimator_options,
    estimator_rules,
    register,
    settings_from_options,
)
from gift.estimators.spg import NEGATIVE_SURROGATES, SPG, SPGSettings, block_noise, spg_surrogates
from gift.estimators.unigrpo import UniGRPO, UniGRPOSettings, z_scored
from gift.estimators.wd1 import WD1, WD1Settings, wd1_weights

__all__ = [
    "ESTIMATORS",
    "MASK_SCHEDULES",
    "official_mask_set",
    "LOSS_TYPES",
    "NEGATIVE_SURROGATES",
    "D1",
    "D1Settings",
    "GDPO",
    "GDPOSettings",
    "SPG",
    "SPGSettings",
    "UniGRPO",
    "UniGRPOSettings",
    "WD1",
    "WD1Settings",
    "Estimator",
    "EstimatorLoss",
    "aggregate",
    "block_noise",
    "build_estimator",
    "Coupled",
    "CoupledSettings",
    "coupled_logps",
    "leave_one_out",
    "clipped_ratio_loss",
    "estimator_options",
    "estimator_rules",
    "masked_logps",
    "option",
    "quadrature",
    "random_subset",
    "register",
    "settings_from_options",
    "spg_surrogates",
    "wd1_weights",
    "z_scored",
]
