"""Checks of user options, shared by the core and the stage configs: named choices (`--objective sft|gift`,
`--remasking ...`), the range rules of numeric options, and the semi-autoregressive split."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

# A numeric option's range: (accepts the value, what the error says). Each rule is written once, here; the
# stage configs' table (stages.train.validation) and the estimators' `option(rule=...)` take them from here.
Rule = tuple[Callable[[Any], bool], str]


def _positive_int(v) -> bool:
    return float(v).is_integer() and v >= 1


POSITIVE: Rule = (lambda v: v > 0, "must be > 0")
POSITIVE_INT: Rule = (_positive_int, "must be a positive integer")
NON_NEGATIVE: Rule = (lambda v: v >= 0, "must be >= 0")
OPEN_UNIT: Rule = (lambda v: 0 < v < 1, "must lie in (0, 1)")
PROBABILITY: Rule = (lambda v: 0 <= v < 1, "must lie in [0, 1)")
UNIT: Rule = (lambda v: 0 <= v <= 1, "must lie in [0, 1]")
UNIT_LEFT_OPEN: Rule = (lambda v: 0 < v <= 1, "must lie in (0, 1]")
# Counts that must be Python ints, not 2.0 (the sampler's lengths and steps index tensors).
COUNT: Rule = (lambda v: isinstance(v, int) and v >= 1, "must be a positive integer")
NON_NEGATIVE_COUNT: Rule = (lambda v: isinstance(v, int) and v >= 0, "must be a non-negative integer")
# HF's steps options: an integer >= 1, or a fraction of the run in (0, 1).
STEPS_OR_RATIO: Rule = (
    lambda v: 0 < v < 1 or _positive_int(v),
    "must be a positive integer (steps) or a fraction in (0, 1) of the run",
)


def check_rule(name: str, value: Any, rule: Rule, *, flag: bool = True) -> None:
    """A `ValueError` when `value` is not a finite number that `rule` accepts. `flag`: the command-line phrasing
    (`--steps -2: must be a positive integer`), else the API's (`steps must be a positive integer, got -2`)."""
    ok, says = rule
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value)
    if bad or not ok(value):
        raise ValueError(f"--{name} {value}: {says}" if flag else f"{name} {says}, got {value!r}")


def choice_problem(option: str, value, allowed: Iterable) -> str | None:
    """The message naming the option, the bad value and the choices; None when `value` is one of them."""
    allowed = tuple(allowed)
    return None if value in allowed else f"unknown {option} {value!r}; choose one of {', '.join(map(str, allowed))}"


def check_option(option: str, value, allowed: Iterable) -> None:
    """A clear error naming the option, the bad value and the choices."""
    message = choice_problem(option, value, allowed)
    if message:
        raise ValueError(message)


def check_block_split(gen_length: int, block_length: int, steps: int | None = None, *, prefix: str = "") -> None:
    """The semi-autoregressive split's rule, for every command: gen_length is a whole number of blocks and
    the steps split evenly over them. `prefix` spells the options as the caller's user writes them (`--`)."""
    if gen_length % block_length:
        raise ValueError(f"{prefix}gen_length {gen_length} is not divisible by {prefix}block_length {block_length}")
    blocks = gen_length // block_length
    if steps is not None and steps % blocks:
        raise ValueError(
            f"{prefix}steps {steps} is not divisible by the number of blocks "
            f"(gen_length {gen_length} / block_length {block_length} = {blocks})"
        )
