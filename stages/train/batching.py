"""Global batch as the invariant: derive per-device batch or gradient accumulation from it.

    global batch = per-device batch x gradient accumulation x processes

A recipe states the global batch the method was tuned with (GIFT/d1: 16); the launcher decides the
number of processes; `resolve_batch` derives whichever of per-device batch and accumulation is
missing and refuses combinations that would silently train with another global batch.

    >>> resolve_batch(16, num_processes=8, per_device=1)
    (1, 2)
    >>> resolve_batch(16, num_processes=1, per_device=1)
    (1, 16)
    >>> resolve_batch(16, num_processes=8, accumulation=1)
    (2, 1)
"""

from __future__ import annotations

import os


class BatchSizeError(ValueError):
    """Per-device batch, accumulation and processes that do not multiply to the global batch."""


def global_batch(per_device: int, accumulation: int, num_processes: int) -> int:
    """Sequences per optimizer step: per-device batch x accumulation x processes."""
    for name, value in (("per-device batch", per_device), ("accumulation", accumulation), ("processes", num_processes)):
        _positive(name, value)
    return per_device * accumulation * num_processes


def resolve_batch(
    global_batch_size: int,
    num_processes: int,
    per_device: int | None = None,
    accumulation: int | None = None,
) -> tuple[int, int]:
    """`(per_device, accumulation)` such that `per_device * accumulation * num_processes == global_batch_size`.

    - both given: checked, returned unchanged;
    - one given: the other is derived (it must come out a whole number);
    - neither given: per-device batch 1 (the memory-safe choice), accumulation derived.
    Raises `BatchSizeError` naming the three numbers when no whole-number split exists.
    """
    _positive("global batch", global_batch_size)
    _positive("processes", num_processes)
    if per_device is None and accumulation is None:
        per_device = 1
    if per_device is not None and accumulation is not None:
        got = global_batch(per_device, accumulation, num_processes)
        if got != global_batch_size:
            raise BatchSizeError(
                f"global batch {global_batch_size} != per-device batch {per_device} x accumulation {accumulation} "
                f"x {num_processes} processes (= {got}); change one of them or leave accumulation out to derive it"
            )
        return per_device, accumulation
    if per_device is not None:
        _positive("per-device batch", per_device)
        per_step = per_device * num_processes
        if global_batch_size % per_step:
            raise BatchSizeError(
                f"global batch {global_batch_size} is not a multiple of per-device batch {per_device} x "
                f"{num_processes} processes (= {per_step}): no whole-number accumulation gives it"
            )
        return per_device, global_batch_size // per_step
    _positive("accumulation", accumulation)
    per_micro = accumulation * num_processes
    if global_batch_size % per_micro:
        raise BatchSizeError(
            f"global batch {global_batch_size} is not a multiple of accumulation {accumulation} x "
            f"{num_processes} processes (= {per_micro}): no whole-number per-device batch gives it"
        )
    return global_batch_size // per_micro, accumulation


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BatchSizeError(f"{name} must be a positive integer, got {value!r}")


def world_size() -> int:
    """Processes of this launch: `WORLD_SIZE` (set by accelerate and torchrun), 1 for a plain run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def apply_global_batch(config) -> None:
    """Derive a stage config's per-device batch and gradient_accumulation_steps from `global_batch_size`.

    Called by both stage configs in `__post_init__`, before HF's post-init reads the accumulation. Their
    `gradient_accumulation_steps` defaults to None (unset) so that a value given on purpose (command
    line, recipe, keyword) is told apart: with `global_batch_size` it must equal the derived one, else
    a `BatchSizeError` names both; without `global_batch_size` an unset accumulation is HF's 1.
    """
    given = config.gradient_accumulation_steps
    if not config.global_batch_size:
        if given is None:
            config.gradient_accumulation_steps = 1
        return
    processes = world_size()
    per_device, derived = resolve_batch(
        config.global_batch_size, processes, per_device=config.per_device_train_batch_size
    )
    if given is not None and given != derived:
        raise BatchSizeError(
            f"--gradient_accumulation_steps {given} conflicts with --global_batch_size {config.global_batch_size}, "
            f"which derives accumulation {derived} (per-device batch {per_device} x {processes} processes); drop "
            "--gradient_accumulation_steps, or change --global_batch_size or --per_device_train_batch_size"
        )
    config.per_device_train_batch_size, config.gradient_accumulation_steps = per_device, derived


def global_batch_field(unit: str):
    """A stage config's `global_batch_size` field; `unit`: what one item of its batch is (examples, completions)."""
    from dataclasses import field

    return field(
        default=None,
        metadata={"help": f"{unit} per optimizer step over all processes; derives gradient_accumulation_steps"},
    )


def accumulation_field():
    """A stage config's `gradient_accumulation_steps`: None = unset (HF's 1, or derived from global_batch_size);
    a value given on purpose must match the derived one (`apply_global_batch`)."""
    from dataclasses import field

    return field(
        default=None, metadata={"help": "default 1; with global_batch_size derived, and a different value is an error"}
    )
