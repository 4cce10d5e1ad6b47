"""The task registry: a task name gives its `Task` (one module per built-in task in rewards/tasks/), the one
place anything looks a task up or lists the tasks."""

from __future__ import annotations

from collections.abc import Callable

from rewards.tasks import countdown, gsm8k, math, sudoku
from rewards.tasks.task import RewardFunc, Task

# The built-in tasks, in d1's table order (GSM8K, MATH-500, Countdown, Sudoku): every list of tasks reads this one
# (help texts, the score table's rows), tasks registered later follow in their order.
TASKS: dict[str, Task] = {t.name: t for t in (gsm8k.TASK, math.TASK, countdown.TASK, sudoku.TASK)}


def register_task(task: Task, replace: bool = False) -> Task:
    """Add `task` under its name (a `ValueError` if the name is taken, unless `replace`); returns it."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task takes a rewards.tasks.task.Task, got {type(task).__name__}")
    if task.name in TASKS and not replace and TASKS[task.name] is not task:
        raise ValueError(f"task {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove a task added with `register_task` (tests add toy tasks and take them out again)."""
    TASKS.pop(name, None)


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
