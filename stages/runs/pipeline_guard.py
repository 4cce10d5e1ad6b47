"""The pipeline's hold on its output folder, for its whole run.

The folder must be new, empty, or one a pipeline created (`stages.runs.folder`); the pipeline takes the
same lock as the training stages (`gift_run.lock`, so two pipelines, or a pipeline and a stage run, never
write the same folder), then checks its config against the one the folder's run was started with. A
rerun with a changed config is refused, naming every changed key: finished stages are never retrained
and the report never names settings that did not run. Keys that change no result may differ.

`config` is the pipeline's `stages.pipeline_config.PipelineConfig` (a dataclass with `output_dir`); it is not
imported here, so that the run folders import nothing from the layers above them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from gift.files import atomic_write_text
from stages.runs.drift import config_drift
from stages.runs.folder import check_folder, check_writable_path, mark_folder
from stages.runs.lock import acquire_lock, check_not_locked, release_lock
from stages.runs.process_state import is_main_process

CONFIG_FILE = "pipeline_config.yaml"
# Keys that change neither a trained model nor a score: where the run is, how it is spread, the figure's EMA.
HARMLESS_KEYS = frozenset({"output_dir", "config_path", "workers", "smoothing"})


class PipelineConfigChanged(ValueError):
    """A rerun into a pipeline folder whose config differs from the one its run was started with."""


def check_config_unchanged(out: Path, config: Any) -> None:
    """Refuse a rerun whose config differs from the folder's `pipeline_config.yaml` (if it has one)."""
    path = out / CONFIG_FILE
    if not path.is_file():
        return
    saved = yaml.safe_load(path.read_text()) or {}
    changes = config_drift(saved, config, HARMLESS_KEYS)
    if changes:
        raise PipelineConfigChanged(
            f"{out}: the config differs from the one this pipeline folder was run with ({path}): {'; '.join(changes)}; "
            "nothing was run: rerun with that config to finish or reuse it, or choose another --output_dir"
        )


@contextmanager
def hold_pipeline_folder(config: Any) -> Iterator[Path]:
    """Check and lock the pipeline's folder, record its config, and keep the lock until the run ends.

    Every refusal comes before anything is written or deleted. Only the main process of a multi-process
    launch holds the lock; the others follow it.
    """
    out = check_writable_path(config.output_dir)
    if not is_main_process():
        yield out
        return
    if out.is_dir():
        check_not_locked(out)  # "in use" before anything else
    check_folder(out, "pipeline")
    check_config_unchanged(out, config)
    out.mkdir(parents=True, exist_ok=True)
    lock = acquire_lock(out)
    try:
        check_folder(out, "pipeline")  # again, now that no other writer can change it
        check_config_unchanged(out, config)
        mark_folder(out, "pipeline")
        # The folder names itself `.`: the file stays true when the folder is moved or copied.
        recorded = yaml.safe_dump({**asdict(config), "output_dir": "."}, sort_keys=False)
        if not (out / CONFIG_FILE).is_file():
            atomic_write_text(out / CONFIG_FILE, recorded)
        yield out
        # A rerun records its harmless changes (workers, smoothing) only once it ran through:
        # a stage refused on the way leaves the file as it was.
        atomic_write_text(out / CONFIG_FILE, recorded)
    finally:
        release_lock(lock)


def check_finished_stage(name: str, train) -> None:
    """A finished stage is resumed, which only compares its config with the one in its `final/` manifest
    ("already complete"; `stages.runs.guard`): a stage whose settings changed since (an edited recipe)
    is refused instead of being reported with settings it did not run."""
    from stages.runs.manifest import ConfigDriftError

    try:
        train(True)
    except ConfigDriftError as err:
        raise PipelineConfigChanged(f"{name}: {err}") from None
