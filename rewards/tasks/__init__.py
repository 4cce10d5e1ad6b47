"""One module per task, each the whole task: its rules (rewards, metric), its generator, hub id or published files,
d1's prompt, its loader, and `TASK`, a `rewards.tasks.task.Task`; `rewards.registry` lists them.

A new task is a module here (copy `sudoku.py` or `gsm8k.py`) and one line in the registry, or a module anywhere
and `rewards.registry.register_task`.
"""
