"""`lora_target_modules` in one form: a list of module names, whichever way a recipe or the command line
spelled it. Below the stages, so that both stage configs and the run folders' drift check read it.

A recipe writes a YAML list (`[q_proj, k_proj, v_proj]`, or `[all-linear]`: peft's every linear layer but the
output head); on the command line a comma-separated string works too (`--lora_target_modules q_proj,v_proj`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
