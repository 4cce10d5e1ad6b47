"""Structural control arms of stage one: a per-token beta fixed by token class, no probe, no entropy.

A task that defines token classes and `structural_betas` (`rewards.tasks.task.Task`) gets a control arm
`{task}_structural`: GIFT with those fixed betas, so a report can show how much of GIFT's gain a simple
structural rule recovers. For Sudoku the classes are the empty and the given (copied) cells, whose probe
entropies `gift entropy-report` measures (docs/embedded_pipeline_report.md, "What the probe sees").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from rewards import TASKS, get_task

StructuralBetaFactory = Callable[..., Callable[[dict], torch.Tensor]]


def structural_beta(task: str, tokenizer, betas: dict[str, float] | None = None) -> Callable[[dict], torch.Tensor]:
    """A `beta_fn(batch) -> (B, L)` from the task's token classes (the task's compact format).

    EOS tokens get `betas["EOS"]`, answer positions of a task class (`Task.token_classes`, reading the
    prompt's and the answer's tokens as strings) that class's beta, every other answer token (tags)
    `betas["other"]`; prompt positions 0. A row where the task finds none of its classes is an error.
    """
    spec = get_task(task)
    if spec.structural_betas is None:
        raise ValueError(f"task {task} defines no structural betas")
    betas = {**spec.structural_betas, **(betas or {})}
    eos = tokenizer.eos_token_id

    def beta_fn(batch: dict) -> torch.Tensor:
        ids, answer = batch["input_ids"], batch["answer_mask"]
        beta = torch.full(ids.shape, betas["other"], dtype=torch.float32, device=ids.device)
        beta[ids == eos] = betas["EOS"]
        for row in range(ids.shape[0]):
            tokens, in_answer = ids[row].tolist(), answer[row].tolist()
            prompt = tokenizer.convert_ids_to_tokens([t for t, a in zip(tokens, in_answer) if not a])
            positions = [i for i, a in enumerate(in_answer) if a]
            try:
                classes = spec.token_classes(prompt, tokenizer.convert_ids_to_tokens([tokens[i] for i in positions]))
            except ValueError:
                classes = {}
            if not classes:
                raise ValueError(f"batch row {row} is not in the compact {task} format (no {task} token classes)")
            for position, name in classes.items():
                beta[row, positions[position]] = betas[name]
        return beta * answer

    return beta_fn


def structural_control(name: str) -> StructuralBetaFactory:
    """The factory of a `{task}_structural` arm, looked up when asked (a task registered later counts)."""
    task = name.removesuffix("_structural")
    if not name.endswith("_structural") or task not in TASKS or TASKS[task].structural_betas is None:
        known = sorted(f"{n}_structural" for n, t in TASKS.items() if t.structural_betas is not None)
        raise ValueError(f"unknown control {name!r}; known: {known}")
    return partial(structural_beta, task)
