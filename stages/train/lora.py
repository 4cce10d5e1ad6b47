"""LoRA settings shared by both stages: one form of `lora_target_modules`, one peft config.

Both configs hold `lora_target_modules` as a list of module names. A recipe writes a YAML list
(`[q_proj, k_proj, v_proj]`, or `[all-linear]`: peft's every linear layer but the output head); on the
command line a comma-separated string works too (`--lora_target_modules q_proj,v_proj`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ALL_LINEAR = "all-linear"


def parse_target_modules(value: str | Sequence[str]) -> list[str]:
    """`lora_target_modules` as a list of names: from a list, a comma-separated string, or a list of
    such strings (argparse hands a list field's command-line value over as one item per word)."""
    items = [value] if isinstance(value, str) else list(value)
    names = [name.strip() for item in items for name in str(item).split(",") if name.strip()]
    if not names:
        raise ValueError(f"lora_target_modules names no module (got {value!r})")
    if ALL_LINEAR in names and len(names) > 1:
        raise ValueError(f"lora_target_modules: {ALL_LINEAR} stands alone, got {names}")
    return names


def lora_config(config: Any, task_type: str | None = None):
    """peft's `LoraConfig` from a stage config's `lora_*` fields."""
    from peft import LoraConfig

    names = parse_target_modules(config.lora_target_modules)
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=ALL_LINEAR if names == [ALL_LINEAR] else names, task_type=task_type)


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
