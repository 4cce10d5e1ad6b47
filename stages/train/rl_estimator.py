"""The estimator part of the stage-two config, read from the registry (`gift.estimators.registry`).

`EstimatorOptions` is the dataclass of the flat `gift rl` options every registered estimator declares
(`num_t`, `spg_negative`, `wd1_psi`, ...), each None unless set; `resolve_estimator` fills the trainer
fields an estimator gives defaults for (`beta`, `epsilon`, `loss_type`, `kl_reference`), refuses options
the chosen estimator does not read, and checks its capabilities against the rest of the config.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from gift.estimators import ESTIMATORS, settings_from_options
from gift.estimators.registry import estimator_options
from gift.options import check_option


def _options_dataclass() -> type:
    fields = [(flag, Optional[spec["type"]], dataclasses.field(default=None, metadata={"help": spec["help"]}))
              for flag, spec in estimator_options().items() if not spec["trainer"]]
    options = dataclasses.make_dataclass("EstimatorOptions", fields)
    options.__module__ = __name__
    return options


EstimatorOptions = _options_dataclass()
TRAINER_FIELDS = ("beta", "epsilon", "loss_type")


def option_values(config: Any) -> dict[str, Any]:
    """Every estimator option's value on `config` (None where unset)."""
    return {flag: getattr(config, flag, None) for flag in estimator_options()}


def estimator_settings(config: Any) -> Any:
    """The chosen estimator's settings from the config (SPG's blocks default to the sampler's)."""
    return settings_from_options(config.rl_algorithm, option_values(config),
                                 context={"block_length": getattr(config, "block_length", None)})


def resolve_estimator(config: Any, trainer_defaults: dict[str, Any]) -> None:
    """Fill the unset trainer fields from the estimator (else `trainer_defaults`), then check the estimator's
    options and capabilities. Raises ValueError naming the option."""
    check_option("rl_algorithm", config.rl_algorithm, tuple(ESTIMATORS))
    cls = ESTIMATORS[config.rl_algorithm]
    defaults = cls.settings_type()
    for name in TRAINER_FIELDS:
        if getattr(config, name) is None:
            setattr(config, name, getattr(defaults, name, trainer_defaults[name]))
    if config.kl_reference is None:
        config.kl_reference = cls.default_kl_reference
    settings = estimator_settings(config)
    cls.check_settings(settings, config.gen_length)
    if getattr(config, "scale_rewards", "none") != "none" and not cls.reads_scale_rewards:
        raise ValueError(f"rl_algorithm {cls.name} sets its own advantage scaling and ignores scale_rewards; "
                         f"leave scale_rewards at none (got {config.scale_rewards})")
    if config.beta != 0.0 and not cls.supports_kl:
        raise ValueError(f"rl_algorithm {cls.name} has no KL term; set beta: 0 (got {config.beta})")
    if config.beta != 0.0 and config.kl_reference == "generation" and not cls.uses_old_logps:
        raise ValueError(f"kl_reference generation reads the policy that generated the batch, which rl_algorithm "
                         f"{cls.name} does not compute: use kl_reference start or beta 0")
    if config.beta != 0.0 and config.kl_reference == "generation" and config.num_iterations == 1:
        raise ValueError("kl_reference generation is the policy being trained when num_iterations is 1 (the KL "
                         "is always 0): use num_iterations > 1, kl_reference start, or beta 0")
