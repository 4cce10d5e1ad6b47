"""A training run's hold on its directory: `guard_run` wraps `run_cold_start`/`run_rl`:

    @guard_run("cold_start")
    def run_cold_start(config, ...): ...

The directory must be new, empty, or a run of the same stage (`stages.runs.folder`); the run holds its lock
(`stages.runs.lock`) while it writes. Resume boundaries (`--resume`): no checkpoint yet -> start from
step 0; a checkpoint -> continue from it (refused if the config changed in a way that alters training,
`stages.runs.manifest`); the last checkpoint already at max_steps (killed during the final save) ->
publish `final/` from it without training; `final/` present -> "already complete", nothing is changed.
"""

from __future__ import annotations

import functools
import logging
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from gift.checkpoint import FINAL_DIR, RUN_MARKER, explain_disk_full, explain_unreadable_weights, resolve_checkpoint
from stages.config_args import non_utf8_message
from stages.runs.discovery import last_complete_checkpoint, publish_final_from, reached_max_steps
from stages.runs.folder import LOCK_NAME, check_folder, is_run_dir, mark_folder
from stages.runs.lock import RunDirError, acquire_lock, check_not_locked, release_lock
from stages.runs.manifest import check_config_drift, resolve_source_paths
from stages.runs.process_state import is_main_process
from stages.runs.resume_state import check_resume_state

logger = logging.getLogger(__name__)


def check_output_dir(output_dir: str | Path, resume: bool, stage: str | None = None) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run (or a resume before the first checkpoint).

    Refuses an output path that is a file or a dangling link, a non-empty directory that is not a run of
    this tool (of `stage`, when given), a fresh run over an existing one, and `--resume` where there is no run.
    """
    out = check_folder(output_dir, stage or "run")
    previous = last_complete_checkpoint(out) if out.is_dir() else None
    if resume:
        if previous is None and not is_run_dir(out):
            raise FileNotFoundError(
                f"--resume: no complete checkpoint-N in {out} (no run there); drop --resume to start a new run"
            )
        return previous
    if previous is not None or (out / FINAL_DIR).exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --output_dir")
    return None


class RunDirectory:
    """Holds a run directory for one training call: lock, marker, resume boundaries, config drift.

    `finished` is the final checkpoint when there is nothing to train (already complete, or just
    published from the last checkpoint). A directory this call created is removed again if the run fails
    before writing anything but the lock and the marker.
    """

    def __init__(self, config, stage: str):
        self.config, self.stage = config, stage
        self.out = Path(config.output_dir)
        self.lock: Path | None = None
        self.created = False
        self.finished: Path | None = None
        self.resume_from: Path | None = None  # the checkpoint a `--resume` continues from (None: step 0)

    def __enter__(self) -> RunDirectory:
        config, out = self.config, self.out
        resume = bool(getattr(config, "resume", False))
        if out.is_dir() and is_main_process():  # (the other ranks see rank 0's lock: their own run's)
            check_not_locked(out)  # "in use" first: "already holds a run" would invite a --resume into it
        check_folder(out, self.stage)  # refusals before anything is written (a file, a foreign directory)
        if is_main_process():
            self.created = not out.exists()
            try:
                out.mkdir(parents=True, exist_ok=True)
                self.lock = acquire_lock(out)
            except (RunDirError, OSError) as err:
                self._release(failed=True)
                if isinstance(err, RunDirError):
                    raise
                raise RunDirError(
                    f"--output_dir {out}: cannot write there ({err.strerror or err}); choose a writable --output_dir"
                ) from err
        try:
            previous = check_output_dir(out, resume, self.stage)  # read once, now that no other writer can change it
            final = resolve_checkpoint(out / FINAL_DIR)
            if resume and final is not None:
                check_config_drift(final, config)
                logger.info("%s: the run is already complete (%s); nothing to do", out, final)
                self.finished = final
            elif resume and previous is None:
                logger.info("%s: no complete checkpoint yet: the run starts again from step 0", out)
            elif resume:
                check_config_drift(previous, config)
                if reached_max_steps(previous):
                    if is_main_process():
                        logger.info(
                            "%s reached max_steps: publishing %s/ from it without training", previous, FINAL_DIR
                        )
                        publish_final_from(previous, self.stage)
                    self.finished = out / FINAL_DIR
                self.resume_from = previous
            if self.finished is None and is_main_process():
                mark_folder(out, self.stage)
        except BaseException as err:
            self._release(failed=isinstance(err, Exception))
            raise
        return self

    def _release(self, failed: bool) -> None:
        # Failed before writing anything: leave no trace. Decided and removed while our lock is held, so the
        # folder cannot meanwhile have become another run's.
        ours = {RUN_MARKER, LOCK_NAME} if self.lock is not None else {RUN_MARKER}
        if failed and self.created and self.out.is_dir() and {p.name for p in self.out.iterdir()} <= ours:
            shutil.rmtree(self.out, ignore_errors=True)
        if self.lock is not None:
            release_lock(self.lock)
            self.lock = None

    def __exit__(self, exc_type, exc, tb) -> None:
        # An error (not a kill: KeyboardInterrupt) before anything was written leaves no directory behind.
        self._release(failed=isinstance(exc, Exception))


def _name_non_utf8_file(config, err: UnicodeDecodeError) -> Exception:
    """A `ValueError` naming the data file and line that is not UTF-8, or `err` itself if none is found."""
    for option in ("dataset", "data", "train_file"):
        source = getattr(config, option, None)
        if isinstance(source, str) and Path(source).is_file() and (bad := non_utf8_message(source)):
            return ValueError(f"{bad}; save the file as UTF-8")
    return err


def guard_run(stage: str) -> Callable:
    """Decorator for `run_X(config, ..., resume_from=None)`: the run holds its directory (`RunDirectory`)
    while it trains and is handed the checkpoint to continue from (`resume_from`, None for step 0); with
    nothing to train it returns the final checkpoint at once. A full disk is named as such."""

    def wrap(run: Callable[..., Path]) -> Callable[..., Path]:
        @functools.wraps(run)
        def guarded(config, *args, **kwargs) -> Path:
            resolve_source_paths(config)
            with RunDirectory(config, stage) as held:
                if held.finished is not None:
                    return held.finished
                # A resumed checkpoint's weights are read by HF's trainer: name the file if they are broken.
                resumed = held.resume_from
                if resumed is not None:
                    check_resume_state(resumed)
                with explain_disk_full(held.out), explain_unreadable_weights(resumed) if resumed else nullcontext():
                    try:
                        return run(config, *args, resume_from=resumed, **kwargs)
                    except UnicodeDecodeError as err:  # raised without the file's name: find it
                        raise _name_non_utf8_file(config, err) from err

        return guarded

    return wrap
