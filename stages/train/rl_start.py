"""Checks of stage two's start that need the loaded model: every rollout fits the model's positions."""

from __future__ import annotations

from typing import Any

from gift.positions import check_fits_positions
from gift.sampler import encode_chat_prompts


def check_rollouts_fit(loaded: Any, rows: list[dict], config: Any) -> None:
    """Refuse a gen_length that, after the longest prompt, runs past max_position_embeddings."""
    longest = max(
        (len(ids) for ids in encode_chat_prompts(loaded.tokenizer, [r["prompt"] for r in rows], config.prefill)),
        default=0,
    )
    check_fits_positions(loaded.model, longest, config.gen_length)
