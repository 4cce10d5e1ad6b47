"""Run folders, one concept for every command: what makes a folder the tool's (the marker rule, `folder`),
the lock that gives it to one process (`lock`), a training run's hold, resume boundaries and the checkpoint it
continues from (`guard`), what a run holds (`discovery`), its manifests (`manifest`), the one config-drift rule
of `--resume` and of pipeline reruns (`drift`), the pipeline's hold (`pipeline_guard`), which process writes
(`process_state`) and stage two's `metrics.jsonl` on resume (`metrics_file`).

Training, evaluation, the reports and the pipeline import this package; it imports none of them
(tests/test_import_graph.py)."""
