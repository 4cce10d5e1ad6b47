"""The task registry: a task name gives its reward functions, columns, metric, prompt and loader."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewards import countdown, gsm8k, math_task, sudoku
from rewards.data import loaders

RewardFunc = Callable[..., list[float]]


@dataclass(frozen=True)
class Task:
    """Everything stage two and evaluation need to know about one task.

    reward_funcs: trl-style `fn(prompts, completions, **columns) -> list[float]`, summed by the trainer.
    columns: dataset columns the rewards and the metric read.
    metric: `fn(completions, **columns) -> {"accuracy": ..., "n": ..., ...}`.
    max_reward: the largest possible sum of the rewards.
    load: the real-set loader (`split`, `path`, `limit` keywords; Sudoku's file is its split).
    test_subset: d1 evaluates this many rows drawn from the test file (`d1_test_subset`), None: all.
    train_holdout: d1's RL leaves out the last rows of its seeded shuffle (`d1_train_rows`).
    train_options: extra `load` keywords for RL training rows (Countdown: 3-number problems only).
    """

    name: str
    reward_funcs: tuple[RewardFunc, ...]
    columns: tuple[str, ...]
    metric: Callable[..., dict[str, float]]
    max_reward: float
    load: Callable[..., list[dict[str, Any]]]
    test_subset: int | None = None
    train_holdout: int = 0
    train_options: Mapping[str, Any] = field(default_factory=dict)


def _d1_file_task(name: str, module: Any, reward: RewardFunc, metric: Callable[..., dict[str, float]],
                  load: Callable[..., list[dict[str, Any]]], **train_options: Any) -> Task:
    """A task read from d1's own files (Sudoku, Countdown): one reward in [0, 1], d1's 256-row test
    subset and the training rows d1's RL holds out."""
    return Task(name, (reward,), module.COLUMNS, metric, 1.0, load, test_subset=loaders.D1_TEST_SUBSET,
                train_holdout=loaders.D1_HOLDOUT, train_options=train_options)


TASKS: dict[str, Task] = {
    "sudoku": _d1_file_task("sudoku", sudoku, sudoku.sudoku_reward, sudoku.sudoku_metric, loaders.load_sudoku),
    "countdown": _d1_file_task("countdown", countdown, countdown.countdown_reward, countdown.countdown_metric,
                               loaders.load_countdown, num_numbers=loaders.D1_COUNTDOWN_NUMBERS),
    "gsm8k": Task(
        "gsm8k",
        (gsm8k.gsm8k_correctness_reward, gsm8k.gsm8k_format_reward, gsm8k.gsm8k_integer_reward),
        gsm8k.COLUMNS,
        gsm8k.gsm8k_metric,
        3.0,
        loaders.load_gsm8k,
    ),
    "math": Task(
        "math",
        (math_task.math_correctness_reward, math_task.math_format_reward),
        math_task.COLUMNS,
        math_task.math_metric,
        2.5,
        loaders.load_math500,
    ),
}


def get_task(name: str) -> Task:
    """The registered task, or a ValueError naming the known tasks."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}") from None


def get_reward_funcs(name: str) -> list[RewardFunc]:
    """The task's reward functions, in the order the trainer should log them."""
    return list(get_task(name).reward_funcs)


def get_columns(name: str) -> tuple[str, ...]:
    """The dataset columns the task's rewards need."""
    return get_task(name).columns


def get_metric(name: str) -> Callable[..., dict[str, float]]:
    """The task's evaluation metric over completions and ground-truth columns."""
    return get_task(name).metric
