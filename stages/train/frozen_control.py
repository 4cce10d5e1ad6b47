"""A stage-two run's frozen control: the run's rollouts and rewards on the starting model, without learning.

`frozen_settings` (stages/train/rl_config.py) gives the control one step per generation batch, so it draws
every prompt batch and rollout seed its run drew. This trainer then only rolls out and scores each batch: no
log-probability pass, no backward and no optimizer update (no gradient reaches the optimizer, so the
weights stay bit-for-bit those of the start). Its `metrics.jsonl` holds one reward line per generation batch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stages.train.rl import DiffuGRPOTrainer, run_rl
from stages.train.rl_config import RLConfig
from stages.train.trl_private import advance_micro_step, step_metrics


class FrozenControlTrainer(DiffuGRPOTrainer):
    """Rollouts and rewards through trl's loop (same prompt sampler, same rollout seeds), nothing trained."""

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        model.train()  # as HF's step does: trl logs the train-mode metrics, and rollouts run in this mode
        self._prepare_inputs(inputs)  # generates and scores the batch; sets the rollout metrics
        metrics = step_metrics(self, training=True)
        for key, value in self._rollout_metrics.items():
            metrics[key].append(value)
        advance_micro_step(self)
        return torch.zeros((), device=self.accelerator.device)

    def _all_iteration_logps(self, model, batch: dict) -> torch.Tensor:
        raise RuntimeError("a frozen control computes no log-probabilities (frozen_settings: num_iterations 1, beta 0)")


def run_frozen_control(config: RLConfig) -> Path:
    """Run `config` (from `frozen_settings`) as a frozen control; returns its final checkpoint directory."""
    return run_rl(config, trainer_class=FrozenControlTrainer)
