"""Divergence stops a run at once: a non-finite loss or gradient norm is refused before the optimizer step
that would write it into the weights, so every checkpoint on disk holds finite weights (the last one stays
the run's resumable checkpoint) and no final checkpoint is written from a diverged model.

Both stages' trainers take `DivergenceStop` first in their bases; it hooks HF's per-micro-batch
`training_step` and the per-step gradient norm (`Trainer._get_grad_norm`, called just before
`optimizer.step`). No value is changed: a run that stays finite is byte-identical.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch


class DivergenceError(ValueError):
    """Training produced a non-finite loss or gradient norm; the message names the step and the last checkpoint."""


def last_checkpoint_name(output_dir: str | Path) -> str:
    """`checkpoint-N` of the last complete checkpoint in `output_dir`, or a phrase saying there is none."""
    from stages.runs.discovery import last_complete_checkpoint

    last = last_complete_checkpoint(Path(output_dir))
    return (
        f"{last} (the last finite weights) stays the run's resumable checkpoint"
        if last
        else "no checkpoint had been written yet"
    )


class DivergenceStop:
    """Mixin for an HF `Trainer`: raise `DivergenceError` naming the step instead of applying a non-finite update."""

    _step_loss: torch.Tensor | None = None

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Summed over the micro-batches of one optimizer step (no host sync here: read at the step's end).
        self._step_loss = loss.detach() if self._step_loss is None else self._step_loss + loss.detach()
        return loss

    def _get_grad_norm(self, model, grad_norm=None):
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        loss, self._step_loss = self._step_loss, None
        loss_value = float(loss) if loss is not None else 0.0
        norm_value = float(grad_norm) if grad_norm is not None else 0.0
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            step = self.state.global_step + 1
            raise DivergenceError(
                f"training diverged at step {step} (loss {loss_value:.4g}, gradient norm {norm_value:.4g}): stopped "
                f"before that update and wrote no final checkpoint; {last_checkpoint_name(self.args.output_dir)} "
                "(lower the learning rate and start a new run)"
            )
        return grad_norm
