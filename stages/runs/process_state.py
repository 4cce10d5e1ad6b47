"""Which process of a multi-process launch this is: only rank 0 takes locks and writes run files."""

from __future__ import annotations

import os


def is_main_process() -> bool:
    """Rank 0 of a torchrun/accelerate launch (or a single process); read from the environment, so it is
    known before the process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


def process_state():
    """accelerate's process state (rank, number of processes, main-process-first); on a machine without
    CUDA a torchrun launch uses gloo on CPU. Imported lazily: building it starts the process group."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())
