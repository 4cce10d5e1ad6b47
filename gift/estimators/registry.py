"""The estimators by name, and their options as the flat `gift rl` options.

Adding an estimator: write one module with its settings dataclass and `Estimator` subclass, and call
`register(TheClass)` there (see tests/toy_estimator.py). `RLConfig`, its help, the range checks and the
trainer read everything else from here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from gift.estimators.base import TRAINER_FIELDS, Estimator, Rule, flag_of
from gift.options import choice_problem

ESTIMATORS: dict[str, type[Estimator]] = {}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Add `cls` under `cls.name`; its options must agree in type with another estimator's of the same name."""
    if cls.name in ESTIMATORS and ESTIMATORS[cls.name] is not cls:
        raise ValueError(f"an estimator named {cls.name!r} is already registered ({ESTIMATORS[cls.name].__name__})")
    ESTIMATORS[cls.name] = cls
    try:
        estimator_options()
    except TypeError:
        del ESTIMATORS[cls.name]
        raise
    return cls


def build_estimator(name: str, settings: Any = None) -> Estimator:
    """The estimator called `name` with `settings` (an instance of its `settings_type`; None = its defaults)."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown rl_algorithm {name!r}; choose one of {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name](settings)


def _option_fields() -> dict[str, list[tuple[str, dataclasses.Field, Any]]]:
    """flag -> [(estimator, field, resolved type)] over every registered estimator."""
    table: dict[str, list[tuple[str, dataclasses.Field, Any]]] = {}
    for name, cls in ESTIMATORS.items():
        hints = get_type_hints(cls.settings_type)
        for field in dataclasses.fields(cls.settings_type):
            declared = field.metadata.get("trainer")
            if declared is not None and bool(declared) != (flag_of(field) in TRAINER_FIELDS):
                raise TypeError(
                    f"{name}: option {flag_of(field)!r} is declared trainer={declared}, but the trainer's "
                    f"own fields are {', '.join(TRAINER_FIELDS)}"
                )
            table.setdefault(flag_of(field), []).append((name, field, hints[field.name]))
    return table


def estimator_options() -> dict[str, dict[str, Any]]:
    """flag -> {type, help, rule, choices, trainer, estimators}: one entry per flat option."""
    options = {}
    for flag, uses in _option_fields().items():
        _, first, kind = uses[0]
        for name, _field, other in uses[1:]:
            if other != kind:
                raise TypeError(f"option {flag!r}: {name} declares it as {other}, {uses[0][0]} as {kind}")
        helps = "; ".join(f"{name}: {field.metadata['help']} (default {field.default})" for name, field, _ in uses)
        options[flag] = {
            "type": kind,
            "help": helps,
            "rule": first.metadata.get("rule"),
            "choices": first.metadata.get("choices"),
            "trainer": flag in TRAINER_FIELDS,
            "estimators": tuple(name for name, _, _ in uses),
        }
    return options


def estimator_rules() -> dict[str, Rule]:
    """flag -> range rule, for the stage configs' one numeric check."""
    return {flag: spec["rule"] for flag, spec in estimator_options().items() if spec["rule"]}


def unread_option(name: str, values: dict[str, Any]) -> str | None:
    """The error for the first set option (not None) that estimator `name` does not read (it would be
    silently ignored otherwise), else None. The trainer's own fields are read by every estimator."""
    options = estimator_options()
    own = {flag_of(f) for f in dataclasses.fields(ESTIMATORS[name].settings_type)}
    for flag, value in values.items():
        if value is not None and flag in options and flag not in own and not options[flag]["trainer"]:
            return (
                f"--{flag} is an option of {', '.join(options[flag]['estimators'])}, not of "
                f"rl_algorithm {name} (remove it, or choose one of those)"
            )
    return None


def unknown_choice(name: str, values: dict[str, Any]) -> str | None:
    """The error for the first set option of estimator `name` outside the choices its settings declare (only
    its own: a trainer field it does not declare keeps trl's values), else None."""
    for field in dataclasses.fields(ESTIMATORS[name].settings_type):
        allowed, value = field.metadata.get("choices"), values.get(flag_of(field))
        if allowed and value is not None and choice_problem(flag_of(field), value, allowed):
            return choice_problem(flag_of(field), value, allowed)
    return None


def settings_from_options(name: str, values: dict[str, Any], context: dict[str, Any] | None = None) -> Any:
    """`name`'s settings from flat option values (None = unset: the estimator's default; for a field
    declared with `default_from`, `context[default_from]`).

    A set option that `name` does not read is an error (`unread_option`); so is a value outside the
    option's choices. (The stage-two config checks both when it is built; this is for direct callers.)
    """
    cls = ESTIMATORS[name]
    own = {flag_of(f): f for f in dataclasses.fields(cls.settings_type)}
    message = unread_option(name, values) or unknown_choice(name, values)
    if message:
        raise ValueError(message)
    kwargs = {f.name: values[flag] for flag, f in own.items() if values.get(flag) is not None}
    for f in own.values():
        source = f.metadata.get("default_from")
        if source and kwargs.get(f.name) is None and context and context.get(source) is not None:
            kwargs[f.name] = context[source]
    return cls.settings_type(**kwargs)
