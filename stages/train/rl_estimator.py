"""The estimator part of the stage-two config, read from the registry (`gift.estimators.registry`) each time
a config class is built, so an estimator registered after this module was imported still gets its options.

`estimator_fields` are the flat `gift rl` options every registered estimator declares (`num_t`,
`spg_negative`, `wd1_psi`, ...), each None unless set, with the estimators' help; the trainer's own fields
they give defaults for (`gift.estimators.base.TRAINER_FIELDS`: beta, epsilon, loss_type) keep trl's help and
become None (unset) too. `fill_estimator_defaults` fills the unset trainer fields (`beta`, `epsilon`,
`loss_type`, `kl_reference`); `ESTIMATOR_CHECKS` are the estimator's rules across the config's options
(options it does not read, the rules its settings declare, its capabilities), run by `check_config`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from trl import GRPOConfig

from gift.estimators import ESTIMATORS, settings_from_options
from gift.estimators.base import TRAINER_FIELDS, settings_problem
from gift.estimators.registry import estimator_options, unknown_choice, unread_option

# The config fields only the policy update reads besides the estimators' options (a frozen control drops them).
ESTIMATOR_FIELDS = ("rl_algorithm", "kl_reference")
_TRL_FIELDS = {f.name: f for f in dataclasses.fields(GRPOConfig)}


def estimator_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    """`(name, type, field)` of every registered estimator's option, for `dataclasses.make_dataclass`."""
    options = estimator_options()
    trainer = {
        name: {"type": _TRL_FIELDS[name].type, "help": "no estimator sets it: trl's default"}
        for name in TRAINER_FIELDS
        if name not in options
    }
    out = []
    for flag, spec in {**options, **trainer}.items():
        help = spec["help"]
        if flag in TRAINER_FIELDS:  # trl's field: its own help, then each estimator's default
            help = f"{_TRL_FIELDS[flag].metadata.get('help', '')} Unset: the estimator's ({help})"
        out.append((flag, Optional[spec["type"]], dataclasses.field(default=None, metadata={"help": help})))  # noqa: UP045 (a type built at run time)
    return out


def estimator_keys() -> frozenset[str]:
    """Every config key that only the policy update reads: a frozen control (rollouts and rewards) drops them."""
    return frozenset({*ESTIMATOR_FIELDS, *TRAINER_FIELDS, *estimator_options()})


def option_values(config: Any) -> dict[str, Any]:
    """Every estimator option's value on `config` (None where unset)."""
    return {flag: getattr(config, flag, None) for flag in estimator_options()}


def estimator_settings(config: Any) -> Any:
    """The chosen estimator's settings from the config (SPG's blocks default to the sampler's)."""
    return settings_from_options(
        config.rl_algorithm, option_values(config), context={"block_length": getattr(config, "block_length", None)}
    )


def fill_estimator_defaults(config: Any) -> None:
    """Fill the unset trainer fields (`beta`, `epsilon`, `loss_type`) and `kl_reference` with the chosen
    estimator's defaults (else trl's); an unregistered `rl_algorithm` is left to `check_config`'s choices."""
    cls = ESTIMATORS.get(config.rl_algorithm)
    if cls is None:
        return
    defaults = cls.settings_type()
    for name in TRAINER_FIELDS:
        if getattr(config, name) is None:
            setattr(config, name, getattr(defaults, name, _TRL_FIELDS[name].default))
    if config.kl_reference is None:
        config.kl_reference = cls.default_kl_reference


# The estimator's rules across the options of the stage-two config, each `check(config) -> message or None`,
# run by `check_config` after the choices and ranges (so `rl_algorithm` is a registered name): the options
# it reads, the rules its settings declare (`option(checks=...)`), then its capabilities.


def _unread(config: Any) -> str | None:
    return unread_option(config.rl_algorithm, option_values(config))


def _choices(config: Any) -> str | None:
    return unknown_choice(config.rl_algorithm, option_values(config))


def _settings(config: Any) -> str | None:
    return settings_problem(estimator_settings(config), config.gen_length)


def _scale_rewards(config: Any) -> str | None:
    cls = ESTIMATORS[config.rl_algorithm]
    if getattr(config, "scale_rewards", "none") != "none" and not cls.reads_scale_rewards:
        return (
            f"rl_algorithm {cls.name} sets its own advantage scaling and ignores scale_rewards; "
            f"leave scale_rewards at none (got {config.scale_rewards})"
        )
    return None


def _kl_term(config: Any) -> str | None:
    cls = ESTIMATORS[config.rl_algorithm]
    if config.beta != 0.0 and not cls.supports_kl:
        return f"rl_algorithm {cls.name} has no KL term; set beta: 0 (got {config.beta})"
    return None


def _kl_to_generation(config: Any) -> str | None:
    cls = ESTIMATORS[config.rl_algorithm]
    if config.beta == 0.0 or config.kl_reference != "generation":
        return None
    if not cls.uses_old_logps:
        return (
            f"kl_reference generation reads the policy that generated the batch, which rl_algorithm "
            f"{cls.name} does not compute: use kl_reference start or beta 0"
        )
    if config.num_iterations == 1:
        return (
            "kl_reference generation is the policy being trained when num_iterations is 1 (the KL "
            "is always 0): use num_iterations > 1, kl_reference start, or beta 0"
        )
    return None


ESTIMATOR_CHECKS = (_unread, _choices, _settings, _scale_rewards, _kl_term, _kl_to_generation)
