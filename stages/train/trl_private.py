"""What `DiffuGRPOTrainer` relies on in trl's `GRPOTrainer` beyond its public API, named once.

trl's trainer has no public hook for generation, the loss or its logged metrics, so the subclass overrides
or calls these methods and reads these attributes. `check_trl` (run when a trainer is built, and by
tests/test_trl_private.py) fails loudly naming whatever the installed trl no longer has, instead of a
trainer that silently does something else; the accessors below are the only places the attributes are
read or written.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Methods overridden (generation and scoring, the loss, logging) or called (the reward functions).
HOOKS = ("_generate_and_score_completions", "_compute_loss", "_calculate_rewards", "_prepare_inputs", "log")
# What GRPOTrainer.__init__ must contain for the accessors below to mean what they say: the micro-step
# counter (`_step`, which inner iteration a micro-batch is), the per-mode metric lists (`_metrics`), and
# the reference model decided from `args.beta` (`reference_built_by_us` hides it).
INIT_STATE = ("self._step = 0", "self._metrics = ", "self.beta = args.beta")


def check_trl(trainer_class: type | None = None) -> None:
    """Raise `RuntimeError` naming every private method or attribute of trl's GRPOTrainer this project uses
    that the installed trl lacks."""
    import trl
    from trl import GRPOTrainer

    trainer_class = trainer_class or GRPOTrainer
    missing = [name for name in HOOKS if not callable(getattr(trainer_class, name, None))]
    source = inspect.getsource(trainer_class.__init__)
    missing += [line for line in INIT_STATE if line not in source]
    if missing:
        raise RuntimeError(
            f"trl {trl.__version__}: GRPOTrainer has no {', '.join(missing)}; DiffuGRPOTrainer "
            "relies on it (stages/train/trl_private.py). Install the tested trl (see pyproject.toml)."
        )


def micro_step(trainer: Any) -> int:
    """Micro-batches trained so far (trl counts them to pick the buffered generation batch)."""
    return trainer._step


def advance_micro_step(trainer: Any) -> None:
    """Count one micro-batch as trl's own `training_step` does (the frozen control replaces that step)."""
    trainer._step += 1


def step_metrics(trainer: Any, training: bool) -> dict[str, list]:
    """trl's lists of this step's metric values, averaged into the next `log` call."""
    return trainer._metrics["train" if training else "eval"]


@contextmanager
def reference_built_by_us(args: Any) -> Iterator[float]:
    """Around `GRPOTrainer.__init__`: `args.beta` reads 0 so trl builds no reference model (it would reload
    the full-weight model from its id, wrong for a stage-one adapter merged in memory); yields the beta."""
    beta, args.beta = args.beta, 0.0
    try:
        yield beta
    finally:
        args.beta = beta
