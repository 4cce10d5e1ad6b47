"""LoRA settings shared by both stages: one peft config from a stage config's `lora_*` fields; the one form of
`lora_target_modules` (`gift.lora_targets`).
"""

from __future__ import annotations

from typing import Any

from gift.lora_targets import ALL_LINEAR, parse_target_modules


def lora_config(config: Any, task_type: str | None = None):
    """peft's `LoraConfig` from a stage config's `lora_*` fields."""
    from peft import LoraConfig

    names = parse_target_modules(config.lora_target_modules)
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=ALL_LINEAR if names == [ALL_LINEAR] else names, task_type=task_type)
