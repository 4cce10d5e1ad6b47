"""Rule-based rewards, evaluation metrics, prompts and task data for Sudoku, Countdown, GSM8K, MATH-500: one
module per task (rewards/tasks/: rules, generator, loader, prompt and its `Task`), looked up by name
(`get_task`); `register_task` adds one.

Importable without torch, transformers or trl; `datasets` and `math_verify` are imported lazily.

    from rewards import get_reward_funcs, get_metric, task_messages
    funcs = get_reward_funcs("sudoku")      # trl reward signature: fn(prompts, completions, **columns)
    messages = task_messages("sudoku", {"puzzle": "0340...", ...})   # the one prompt builder (d1 wording)
"""

from rewards.columns import MissingColumnError
from rewards.extract import answer_block, completion_text, final_answer, last_boxed, last_number
from rewards.prompts import REASONING_PREFILL, SYSTEM_PROMPTS, task_messages, task_prompt, task_question
from rewards.registry import TASKS, get_columns, get_metric, get_reward_funcs, get_task, register_task
from rewards.tasks.countdown import COUNTDOWN_SYSTEM, countdown_metric, countdown_question, countdown_reward
from rewards.tasks.gsm8k import (
    GSM8K_SYSTEM,
    gsm8k_correctness_reward,
    gsm8k_format_reward,
    gsm8k_integer_reward,
    gsm8k_metric,
    gsm8k_question,
)
from rewards.tasks.math import MATH_SYSTEM, math_correctness_reward, math_format_reward, math_metric, math_question
from rewards.tasks.sudoku import SUDOKU_SYSTEM, sudoku_metric, sudoku_question, sudoku_reward
from rewards.tasks.task import Task

__all__ = [
    "COUNTDOWN_SYSTEM",
    "GSM8K_SYSTEM",
    "MATH_SYSTEM",
    "SUDOKU_SYSTEM",
    "REASONING_PREFILL",
    "SYSTEM_PROMPTS",
    "TASKS",
    "MissingColumnError",
    "Task",
    "answer_block",
    "completion_text",
    "countdown_metric",
    "countdown_question",
    "countdown_reward",
    "final_answer",
    "get_columns",
    "get_metric",
    "get_reward_funcs",
    "get_task",
    "gsm8k_correctness_reward",
    "gsm8k_format_reward",
    "gsm8k_integer_reward",
    "gsm8k_metric",
    "gsm8k_question",
    "last_boxed",
    "last_number",
    "math_correctness_reward",
    "math_format_reward",
    "math_metric",
    "math_question",
    "register_task",
    "sudoku_metric",
    "sudoku_question",
    "sudoku_reward",
    "task_messages",
    "task_prompt",
    "task_question",
]
