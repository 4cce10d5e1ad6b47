"""Checks of named choices (`--objective sft|gift`, `--remasking ...`), shared by the core and the stage configs."""

from __future__ import annotations

from collections.abc import Iterable


def check_option(option: str, value, allowed: Iterable) -> None:
    """A clear error naming the option, the bad value and the choices."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"unknown {option} {value!r}; choose one of {', '.join(map(str, allowed))}")


def check_block_split(gen_length: int, block_length: int, steps: int | None = None, *, prefix: str = "",
                      steps_name: str = "steps") -> None:
    """The semi-autoregressive split's rule, for every command: gen_length is a whole number of blocks and
    the steps split evenly over them. `prefix` and `steps_name` spell the options as the caller's user
    writes them (`--`, `diffusion_steps`)."""
    if gen_length % block_length:
        raise ValueError(f"{prefix}gen_length {gen_length} is not divisible by {prefix}block_length {block_length}")
    blocks = gen_length // block_length
    if steps is not None and steps % blocks:
        raise ValueError(f"{prefix}{steps_name} {steps} is not divisible by the number of blocks "
                         f"(gen_length {gen_length} / block_length {block_length} = {blocks})")
