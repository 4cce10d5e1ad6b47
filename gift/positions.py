"""A generation must fit the model's positions: prompt plus completion no longer than max_position_embeddings.

Beyond it a rotary model silently extrapolates and a learned-position model indexes out of range; both
are refused before anything runs.
"""

from __future__ import annotations

from typing import Any


def max_positions(model: Any) -> int | None:
    """The model's `max_position_embeddings` (None when its config does not say)."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def check_fits_positions(model: Any, prompt_length: int, gen_length: int) -> None:
    """Raise `ValueError` when the longest prompt plus `gen_length` exceeds the model's positions."""
    limit = max_positions(model)
    if limit is not None and prompt_length >= limit:
        raise ValueError(
            f"the longest prompt ({prompt_length} tokens) fills the model's max_position_embeddings "
            f"{limit}: no room for a completion; shorten the prompts"
        )
    if limit is not None and prompt_length + gen_length > limit:
        raise ValueError(
            f"--gen_length {gen_length}: with the longest prompt ({prompt_length} tokens) that is "
            f"{prompt_length + gen_length} positions, beyond the model's max_position_embeddings "
            f"{limit}; use --gen_length <= {limit - prompt_length} or shorter prompts"
        )
