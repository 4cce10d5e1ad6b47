"""The one prompt builder: d1's evaluation prompts, per task.

`task_messages(task, row)` is the only place a task's prompt text is made. RL rows
(`stages/train/rl_data.py`), `gift eval` (`stages/evaluation/evaluate.py`, d1 style) and anything else that prompts a
model on a real task call it; `gift.data.prompt_token_ids` then applies the chat template once and
appends `REASONING_PREFILL`, so training and evaluation see the same tokens.

The wording is d1's evaluation protocol (github.com/dllm-reasoning/d1, `eval/gsm8k.py`,
`eval/math500.py`, `eval/countdown.py`, `eval/sudoku.py`): a task-specific system text merged into the
single user turn as `SYSTEM + "\\n\\n" + question`, then the chat template's generation prompt, then
`<reasoning>` prefilled (d1's `add_reasoning=True`). Each task's system text and question builder live in
its module (`rewards/tasks/`), d1's strings character for character: changing them would change the tokens
d1's numbers were measured with.

The embedded synthetic tasks keep their own compact format (`Task.compact_prompt`); they do not come
through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rewards.registry import TASKS

REASONING_PREFILL = "<reasoning>"

# The built-in tasks' d1 system texts by name (a task registered later is read from `TASKS` directly).
SYSTEM_PROMPTS: dict[str, str] = {name: task.system_prompt for name, task in TASKS.items()}


# The output format alone, with no task in it: the system turn of the s1K cold-start recipes
# (`system_prompt: format`), whose questions come from many fields.
FORMAT_SYSTEM = """Respond in the following format:
<reasoning>
...
</reasoning>
<answer>
...
</answer>"""

# Texts a recipe may name instead of pasting them (`system_prompt: format`).
NAMED_SYSTEM_PROMPTS: dict[str, str] = {"format": FORMAT_SYSTEM}


def resolve_system_prompt(value: str | None) -> str | None:
    """The system text a `system_prompt` option stands for: a name in `NAMED_SYSTEM_PROMPTS`, or the
    text itself. A single word that names nothing is refused (a one-word system turn is a typo)."""
    if value in NAMED_SYSTEM_PROMPTS:
        return NAMED_SYSTEM_PROMPTS[value]
    if value and len(value.split()) == 1:
        raise ValueError(
            f"system_prompt {value!r} is neither a named prompt ({', '.join(NAMED_SYSTEM_PROMPTS)}) nor a sentence"
        )
    return value


def task_question(task: str, row: Mapping[str, Any]) -> str:
    """The question part of `task`'s prompt for one row."""
    if task not in TASKS:
        raise ValueError(f"no prompt for task {task!r}; known tasks: {sorted(TASKS)}")
    return TASKS[task].question(row)


def task_prompt(task: str, row: Mapping[str, Any]) -> str:
    """The user turn: the task's system text, a blank line, the question (d1's merged turn)."""
    question = task_question(task, row)  # raises for an unknown task or a missing column
    return TASKS[task].system_prompt + "\n\n" + question


def task_messages(task: str, row: Mapping[str, Any]) -> list[dict[str, str]]:
    """Chat messages for one row: a single user turn (d1 has no system turn in train or eval)."""
    return [{"role": "user", "content": task_prompt(task, row)}]
