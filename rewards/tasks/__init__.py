"""One module per task, each defining `TASK`, a `rewards.tasks.task.Task`; `rewards.registry` lists them.

A new task is a module here (or anywhere: `rewards.registry.register_task`) and nothing else.
"""
