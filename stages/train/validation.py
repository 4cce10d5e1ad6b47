"""The one validation boundary of the stage configs: `check_config(self)`, first thing in their `__post_init__`
(before anything loads); nothing re-checks a built config.

`check_config` checks, in this order: `output_dir` is set; every string option with named choices (the
config class's `CHOICES`: option -> allowed values, next to its fields; None = unset) is one of them; every
numeric option is in range (one table for both stages, `RULES`, plus `rules` the config discovers when it is
built: the estimators'; the sampler's options keep `SamplerConfig`'s); the semi-autoregressive split; and
last the rules across options the config passes (`checks`: stage two's, and its estimator's, which its
settings declare with their fields). The range rules themselves are written once, in `gift.options`. A
config without an option skips it, so both stages (and fields added later) use the same call. A failed
rule is one `ValueError` naming the option, its value and what is accepted, e.g.
`--max_steps -5: must be a positive integer, or -1 to train num_train_epochs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from gift.options import (
    NON_NEGATIVE,
    OPEN_UNIT,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    STEPS_OR_RATIO,
    UNIT,
    Rule,
    check_block_split,
    check_option,
    check_rule,
)
from gift.sampler_options import sampler_rules

logger = logging.getLogger(__name__)


_positive_int = POSITIVE_INT[0]


# None means "not set" for the optional ones (max_examples, global_batch_size...): not checked. The sampler's
# options (gen_length, steps, temperature, ...) keep the rules `SamplerConfig` declares (`sampler_rules`).
RULES: dict[str, Rule] = {
    "max_steps": (lambda v: v == -1 or _positive_int(v), "must be a positive integer, or -1 to train num_train_epochs"),
    "num_train_epochs": POSITIVE,
    "learning_rate": POSITIVE,
    "per_device_train_batch_size": POSITIVE_INT,
    "gradient_accumulation_steps": POSITIVE_INT,
    "global_batch_size": POSITIVE_INT,
    "save_steps": STEPS_OR_RATIO,
    "logging_steps": STEPS_OR_RATIO,
    "warmup_steps": (lambda v: v >= 0, "must be >= 0 (steps, or a fraction of the run below 1)"),
    "warmup_ratio": UNIT,
    "weight_decay": NON_NEGATIVE,
    "max_grad_norm": NON_NEGATIVE,
    "adam_beta1": PROBABILITY,
    "adam_beta2": PROBABILITY,
    "adam_epsilon": POSITIVE,
    "seed": (lambda v: float(v).is_integer() and 0 <= v < 2**32, "must be an integer in [0, 2^32)"),
    # lengths and sizes
    "max_length": (lambda v: _positive_int(v) and v >= 2, "must be an integer >= 2 (prompt + answer tokens)"),
    "max_examples": POSITIVE_INT,
    "synthetic_examples": POSITIVE_INT,
    "max_prompts": POSITIVE_INT,
    "probe_chunk_size": POSITIVE_INT,
    "beta_refresh_steps": POSITIVE_INT,
    "logps_chunk_size": POSITIVE_INT,
    "num_generations": (lambda v: _positive_int(v) and v >= 2, "must be an integer >= 2 (GRPO compares a group)"),
    "num_iterations": POSITIVE_INT,
    "lora_r": POSITIVE_INT,
    "lora_alpha": POSITIVE,
    # probabilities and rates
    "lora_dropout": PROBABILITY,
    "eps": OPEN_UNIT,
    "min_rate": OPEN_UNIT,
    "beta_ref_floor": NON_NEGATIVE,
    "beta": NON_NEGATIVE,
    "epsilon": POSITIVE,
}


def _by_steps(config: Any, strategy: str) -> bool:
    """Whether `<what>_strategy` is "steps" (a string before HF's post-init, an enum after it)."""
    value = getattr(config, strategy, "steps")
    return str(getattr(value, "value", value)).lower() == "steps"


# Checked only when the matching strategy counts in steps (`save_strategy: "no"` may keep save_steps 0).
BY_STRATEGY = {"save_steps": "save_strategy", "logging_steps": "logging_strategy"}


# A rule across options: `check(config)` -> the error message, or None when the options agree.
Check = Callable[[Any], "str | None"]


def check_config(config: Any, rules: dict[str, Rule] | None = None, checks: Iterable[Check] = ()) -> None:
    """Raise `ValueError` for the first option of `config` that breaks its rule (see the module docstring);
    `checks`, the rules across options, run last (every option they read is then known to be valid)."""
    if not config.output_dir:
        raise ValueError("output_dir is required (--output_dir DIR)")
    for name, allowed in getattr(config, "CHOICES", {}).items():
        if getattr(config, name) is not None:
            check_option(name, getattr(config, name), allowed)
    check_numbers(config, rules)
    for check in checks:
        message = check(config)
        if message:
            raise ValueError(message)


def check_numbers(config: Any, extra: dict[str, Rule] | None = None) -> None:
    """Raise `ValueError` for the first numeric option of `config` outside its range (see RULES; `extra`: the
    rules of options discovered when the config is built, the estimators')."""
    for name, rule in {**RULES, **sampler_rules(), **(extra or {})}.items():
        value = getattr(config, name, None)
        if (
            value is None
            or (isinstance(value, str) and name in RULES)  # HF's fields may hold strings; a sampler count may not
            or (name in BY_STRATEGY and not _by_steps(config, BY_STRATEGY[name]))
        ):
            continue
        check_rule(name, value, rule)
    gen, block, steps = (getattr(config, k, None) for k in ("gen_length", "block_length", "steps"))
    if gen and block:
        check_block_split(gen, block, steps or None, prefix="--")
    save_steps, max_steps = getattr(config, "save_steps", None), getattr(config, "max_steps", None)
    if _by_steps(config, "save_strategy") and save_steps and max_steps and 1 <= max_steps < save_steps:
        # Legal (the recipes of short runs do it), but a killed run then restarts from step 0.
        logger.info(
            "save_steps (%s) > max_steps (%s): no checkpoint before the end; a killed run restarts from step 0",
            save_steps,
            max_steps,
        )
