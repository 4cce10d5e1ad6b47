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
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=ALL_LINEAR if names == [ALL_LINEAR] else names,
        task_type=task_type,
    )


LORA_HELP = {
    "use_lora": "train a LoRA adapter instead of all weights",
    "lora_r": "LoRA rank",
    "lora_alpha": "LoRA scaling numerator (the update is scaled by lora_alpha / lora_r)",
    "lora_dropout": "dropout on the LoRA branch's input",
    "lora_target_modules": "module names, or all-linear; a comma string on the command line",
}


def lora_field(name: str, default: Any) -> Any:
    """A stage config's `lora_*` field: this help, the stage's default (a list default is copied per config)."""
    from dataclasses import field

    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": LORA_HELP[name]})
    return field(default=default, metadata={"help": LORA_HELP[name]})
