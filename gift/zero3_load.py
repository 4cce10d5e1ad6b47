"""Loading a model whole while DeepSpeed ZeRO-3 is configured.

Once a ZeRO-3 `TrainingArguments` exists, transformers' `from_pretrained` builds every model inside
`deepspeed.zero.Init`, which partitions each weight across the processes as it is created (whatever
accelerate's `zero3_init_flag` says). A LoRA adapter cannot be merged into weights each process holds
only a slice of (peft's `merge_and_unload` adds B @ A to an empty tensor), so the base model a merge
starts from is loaded whole; DeepSpeed partitions the merged model when the trainer wraps it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def unpartitioned_load() -> Iterator[None]:
    """Models built inside load whole on every process, even under ZeRO-3; a no-op otherwise."""
    try:
        from transformers.integrations import deepspeed as hf_deepspeed
    except ImportError:  # transformers without its DeepSpeed integration: nothing partitions
        yield
        return
    # transformers keeps the active DeepSpeed config as a module-level weak reference (owned by the
    # TrainingArguments); it is set aside and restored, not rebuilt, so the owner keeps it alive.
    ref = getattr(hf_deepspeed, "_hf_deepspeed_config_weak_ref", None)
    active = ref() if ref is not None else None
    if active is None:
        yield
        return
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed.set_hf_deepspeed_config(active)
