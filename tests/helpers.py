"""Plain helpers shared by tests (importable as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def copy_task_rows(n: int = 64) -> list[dict]:
    """A trivially learnable set: the answer copies the prompt's digits."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n):
        digits = "".join(str(int(d)) for d in torch.randint(0, 10, (6,), generator=g))
        rows.append({"prompt": digits, "answer": f"<answer>{digits}</answer>"})
    return rows


# The CLI flags every official-layout test run on CPU passes: fp32 weights, no bf16, no progress bar, no logging.
CPU_FLAGS = ["--torch_dtype", "float32", "--bf16", "false", "--disable_tqdm", "true", "--report_to", "none"]


# What the run-folder, reliability and weights-check tests' stage-one runs share: the copy task, 4 steps,
# checkpoints at 2 and 4, a constant rate; each test file picks its objective.
TINY_COLD_START = dict(
    max_length=24,
    per_device_train_batch_size=8,
    learning_rate=3e-3,
    lr_scheduler_type="constant",
    max_steps=4,
    save_steps=2,
    seed=0,
    logging_steps=1,
    disable_tqdm=True,
)


def tiny_cold_start_config(output_dir: Path, model: Path | str, data: Path, **values):
    """A `ColdStartConfig` of `TINY_COLD_START` with `values` on top (imported here: `helpers` stays light)."""
    from stages.train.cold_start_config import ColdStartConfig

    paths = {"model_name_or_path": str(model), "dataset": str(data), "output_dir": str(output_dir)}
    return ColdStartConfig(**{**paths, **TINY_COLD_START, **values})


# What every stage-two test run shares: the embedded model on synthetic Sudoku, full weights, 2 updates
# per generation, no logging; each test file adds its own sizes.
TINY_RL = dict(
    task="sudoku",
    dataset="synthetic",
    gen_length=24,
    block_length=8,
    num_generations=4,
    num_iterations=2,
    use_lora=False,
    learning_rate=1e-4,
    max_steps=4,
    save_steps=2,
    seed=0,
    disable_tqdm=True,
    report_to="none",
)


def tiny_rl_config(output_dir: Path, model: Path | str, **values):
    """An `RLConfig` of `TINY_RL` with `values` on top (imported here: `helpers` stays light)."""
    from stages.train.rl_config import RLConfig

    return RLConfig(**{**TINY_RL, "model": str(model), "output_dir": str(output_dir), **values})


def kill_at_step(step: int):
    """A Trainer callback raising KeyboardInterrupt at the end of optimizer step `step`: a simulated kill."""
    from transformers import TrainerCallback

    class KillAtStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise KeyboardInterrupt("simulated kill")

    return KillAtStep()
