"""Run folders, one concept for every command: what makes a folder the tool's (the marker rule, `folder`),
the lock that gives it to one process (`lock`), a training run's hold and resume boundaries (`guard`), what a
run holds (`discovery`), its manifests and config drift (`manifest`), the pipeline's hold (`pipeline_guard`),
which process writes (`process_state`) and stage two's `metrics.jsonl` on resume (`metrics_file`)."""
