"""FSDP is refused on CPU: with accelerate 1.15 a CPU launch of `configs/accelerate/fsdp.yaml` would train
unsharded data parallel without a word (docs/scaling.md, "FSDP on CPU", names the lines that decide)."""

from __future__ import annotations

import os


def fsdp_requested(config) -> bool:
    """FSDP asked for: by `accelerate launch` with `distributed_type: FSDP` (its launcher exports
    ACCELERATE_USE_FSDP=true to every process) or by the Trainer's own `--fsdp` option."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" or bool(getattr(config, "fsdp", None))


def refuse_fsdp_on_cpu(config) -> None:
    """One line, before anything loads: FSDP was requested for a CPU run (`use_cpu`, set when no CUDA device)."""
    if config.use_cpu and fsdp_requested(config):
        import accelerate

        raise ValueError(
            f"FSDP was requested (configs/accelerate/fsdp.yaml or --fsdp) but this run is on CPU: accelerate "
            f"{accelerate.__version__} turns FSDP on only for GPU-type devices and would train unsharded data "
            "parallel; on CPU use configs/accelerate/zero3.yaml (DeepSpeed ZeRO-3 shards there), for FSDP use GPUs"
        )
