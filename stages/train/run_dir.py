"""Run directories shared by both stages: checkpoint discovery, resume checks, manifest callback.

A run directory is one this tool created (it holds `gift_run.json`) or an empty/new one. While a run
writes into it, `gift_run.lock` names the owner (pid, host); a second writer is refused, a lock left by
a dead process on this host is taken over. `guard_run` wraps `run_cold_start`/`run_rl` with all of it:

    @guard_run("cold_start")
    def run_cold_start(config, ...): ...

Resume boundaries (`--resume`): no checkpoint yet -> start from step 0; a checkpoint -> continue from it
(refused if the config changed in a way that alters training); the last checkpoint already at max_steps
(killed during the final save) -> publish `final/` from it without training; `final/` present -> "already
complete", nothing is changed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import socket
import sys
import time
from contextlib import nullcontext
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from gift.checkpoint import (FINAL_DIR, MANIFEST_NAME, RUN_MARKER, TRAINER_STATE, LoadedModel, Manifest,
                             explain_disk_full, explain_unreadable_weights, manifest_for, publish_checkpoint,
                             read_manifest, resolve_checkpoint, staging_dir, write_manifest)
from stages.train.lora import parse_target_modules

logger = logging.getLogger(__name__)
LOCK_NAME = "gift_run.lock"
# Config keys a resumed run may change: they touch logging, saving and I/O, never the trained weights.
HARMLESS_KEYS = frozenset({
    "output_dir", "resume", "resume_from_checkpoint", "overwrite_output_dir", "logging_steps", "logging_strategy",
    "logging_first_step", "logging_nan_inf_filter", "logging_dir", "log_level", "log_level_replica",
    "log_on_each_node", "report_to", "run_name", "project", "trackio_space_id", "trackio_bucket_id",
    "trackio_static_space_id", "disable_tqdm", "save_steps", "save_strategy", "save_total_limit",
    "save_on_each_node", "save_only_model", "dataloader_num_workers", "dataloader_pin_memory",
    "dataloader_persistent_workers", "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
    "skip_memory_metrics", "push_to_hub", "hub_model_id", "hub_strategy", "hub_token", "hub_private_repo",
    "hub_always_push", "hub_revision", "ddp_timeout", "local_rank", "per_device_eval_batch_size",
    "eval_accumulation_steps", "log_completions", "num_completions_to_print", "wandb_log_unique_prompts",
    "log_unique_prompts", "include_num_input_tokens_seen",
})
# Keys whose accepted spellings changed: each maps a saved or current value to today's form.
_CANONICAL_SPELLINGS: dict[str, Callable[[Any], Any]] = {"lora_target_modules": parse_target_modules}
# Files of an HF checkpoint-N that belong to the optimizer state, not to the model (left out of final/).
_TRAINING_STATE = re.compile(r"optimizer\.pt|scheduler\.pt|scaler\.pt|rng_state.*\.pth|trainer_state\.json|"
                             r"training_args\.bin|global_step\d+|latest|zero_to_fp32\.py")


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (not a run, locked, not writable)."""


class ConfigDriftError(ValueError):
    """`--resume` with a config that differs from the run's in keys that alter training."""


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest `checkpoint-N` whose manifest was written (a checkpoint killed mid-save has none)."""
    steps = [(int(m.group(1)), p) for p in Path(output_dir).glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / MANIFEST_NAME).is_file()]
    return max(steps)[1] if steps else None


def is_run_dir(out: Path) -> bool:
    """A directory this tool wrote: the marker, or (runs older than the marker) a checkpoint or final/."""
    return (out / RUN_MARKER).is_file() or (out / FINAL_DIR).exists() or any(out.glob("checkpoint-*"))


def _own_file(name: str) -> bool:
    """Files this tool may put into a run directory before the run's marker: the lock (another run is
    starting there; the lock refuses it) and the pipeline's console log (never written by the run)."""
    return name.startswith(LOCK_NAME) or name == "console.log"


def check_output_dir(output_dir: str | Path, resume: bool) -> Path | None:
    """The checkpoint to resume from, or None for a fresh run (or a resume before the first checkpoint).

    Refuses an output path that is a file, a non-empty directory this tool did not create, a fresh run
    over an existing one, and `--resume` where there is no run.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--output_dir {out}: exists and is not a directory; choose another --output_dir")
    found = sorted(p.name for p in out.iterdir() if not _own_file(p.name)) if out.is_dir() else []
    if found and not is_run_dir(out):
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise FileExistsError(f"--output_dir {out}: not empty ({shown}) and not a run directory of this tool; "
                              "nothing was written: choose a new or empty --output_dir")
    previous = last_complete_checkpoint(out) if out.is_dir() else None
    if resume:
        if previous is None and not (out / RUN_MARKER).is_file() and not (out / FINAL_DIR).is_dir():
            raise FileNotFoundError(f"--resume: no complete checkpoint-N in {out} (no run there); "
                                    "drop --resume to start a new run")
        return previous
    if previous is not None or (out / FINAL_DIR).exists():
        raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --output_dir")
    return None


def checkpoint_step(checkpoint: Path) -> int:
    return int(checkpoint.name.rpartition("-")[2])


def reached_max_steps(checkpoint: Path) -> bool:
    """Whether HF's trainer state says the checkpoint was saved at the run's last step."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return False
    return int(state.get("max_steps") or 0) > 0 and int(state.get("global_step", 0)) >= int(state["max_steps"])


def _canonical_spelling(key: str, value: Any) -> Any:
    """A saved or current value in the one form the configs hold today, so an older spelling of the same
    setting is no drift (stage two saved `lora_target_modules` as `'all-linear'` before it became a list)."""
    if key in _CANONICAL_SPELLINGS:
        try:
            return _CANONICAL_SPELLINGS[key](value)
        except (TypeError, ValueError):  # not a valid spelling: compared as written, so the diff names it
            return value
    return value


def config_drift(saved: dict[str, Any], config) -> list[str]:
    """`key: saved -> now` for every training-relevant key where `config` differs from a run's saved config."""
    now = json.loads(json.dumps({k: v for k, v in config.to_dict().items() if not k.startswith("_")}, default=str))
    defaults = {f.name: f.default for f in fields(config) if f.default is not MISSING}
    diffs = []
    for key in sorted(set(now) | set(saved)):
        if key in HARMLESS_KEYS:
            continue
        if key in saved and key in now:
            before, after = _canonical_spelling(key, saved[key]), _canonical_spelling(key, now[key])
        elif key in now:  # a field newer than the run: fine while it keeps its default
            before, after = json.loads(json.dumps(defaults.get(key, now[key]), default=str)), now[key]
        else:  # a field this version no longer has
            continue
        if before != after:
            diffs.append(f"{key}: {before!r} -> {after!r}")
    return diffs


def check_config_drift(checkpoint: Path, config) -> None:
    diffs = config_drift(read_manifest(checkpoint).config, config)
    if diffs:
        raise ConfigDriftError(
            f"--resume: the config differs from the run's ({checkpoint / MANIFEST_NAME}) in keys that alter "
            f"training: {'; '.join(diffs)}. Resume with the run's settings, or start a new run in another --output_dir")


def publish_final_from(checkpoint: Path, stage: str) -> Path:
    """`final/` from a checkpoint saved at the last step (a run killed during its final save): no training.

    The model, tokenizer and extra files are copied (not the optimizer state); the manifest records it.
    """
    out = checkpoint.parent
    final = out / FINAL_DIR
    staged = staging_dir(final)
    with explain_disk_full(staged):
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        for item in checkpoint.iterdir():
            if item.name == MANIFEST_NAME or _TRAINING_STATE.fullmatch(item.name):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, staged / item.name)
        manifest = read_manifest(checkpoint)
        manifest.metrics = {**manifest.metrics, "global_step": checkpoint_step(checkpoint),
                            "published_from": checkpoint.name}
        manifest.created = ""
        publish_checkpoint(staged, final, None, manifest)
        if stage == "cold_start" and not (out / "train_log.jsonl").exists():
            history = json.loads((checkpoint / TRAINER_STATE).read_text()).get("log_history", [])
            (out / "train_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in history))
    return final


# --- the lock -------------------------------------------------------------------------------------------
_HELD: set[Path] = set()  # lock files this process holds now (a lock of our own pid not in here is stale)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _is_stale(owner: dict, lock: Path) -> bool:
    """A lock whose owner is gone: same host and a dead pid (or our own pid, from an earlier call)."""
    pid, host = owner.get("pid"), owner.get("host")
    if not owner:
        return True
    if host != socket.gethostname() or not isinstance(pid, int):
        return False  # another host's process cannot be checked from here
    return not _pid_alive(pid) or (pid == os.getpid() and lock.resolve() not in _HELD)


def _in_use(out: Path, owner: dict, lock: Path) -> RunDirError:
    return RunDirError(f"{out} is in use by another run (pid {owner.get('pid')} on {owner.get('host')}, since "
                       f"{owner.get('started')}); wait for it to finish or choose another --output_dir (if that "
                       f"process is gone, delete {lock})")


def check_not_locked(out: Path) -> None:
    """Refuse a directory another live run holds, without writing anything (before any other check)."""
    lock = out / LOCK_NAME
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return  # no lock, or one being written: acquire_lock decides
    if isinstance(owner, dict) and not _is_stale(owner, lock):
        raise _in_use(out, owner, lock)


def acquire_lock(out: Path) -> Path:
    """Create `out/gift_run.lock` exclusively (O_EXCL); refuse a live owner, take over a dead one's lock."""
    lock = out / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "command": " ".join(sys.argv)[:500]}
    for _ in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(lock.read_text())
            except FileNotFoundError:
                continue  # released meanwhile: try again
            except ValueError:  # being written this instant, or garbage left long ago
                if time.time() - lock.stat().st_mtime < 30:
                    raise RunDirError(f"{out} is in use by another run (its lock {lock} is being written); "
                                      "wait for it to finish or choose another --output_dir") from None
                owner = {}
            pid, host = owner.get("pid"), owner.get("host")
            if not _is_stale(owner, lock):
                raise _in_use(out, owner, lock)
            # Rename first: of two processes taking over the same stale lock, only one rename succeeds.
            try:
                os.rename(lock, lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}"))
            except FileNotFoundError:
                continue
            lock.with_name(f"{LOCK_NAME}.stale-{os.getpid()}").unlink(missing_ok=True)
            logger.warning("%s: took over a stale lock of pid %s on %s (that process is gone)", out, pid, host)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(me))
        _HELD.add(lock.resolve())
        return lock
    raise RunDirError(f"{out}: could not take the run lock {lock}; retry")


def release_lock(lock: Path) -> None:
    """Remove the lock if this process still owns it."""
    _HELD.discard(lock.resolve())
    try:
        if json.loads(lock.read_text()).get("pid") == os.getpid():
            lock.unlink()
    except (OSError, ValueError):
        pass


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def process_state():
    """accelerate's process state (rank, number of processes, main-process-first); on a machine without
    CUDA a torchrun launch uses gloo on CPU. Imported lazily: building it starts the process group."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def mark_run_dir(out: str | Path, stage: str) -> None:
    """Write the run marker into `out` (created if needed), for callers that create a run directory
    themselves before the run starts (the pipeline keeps its console log there)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / RUN_MARKER).is_file():
        from gift import __version__

        (out / RUN_MARKER).write_text(json.dumps({"tool": "gift", "stage": stage, "version": __version__,
                                                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                                 indent=2) + "\n")


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

    def __enter__(self) -> "RunDirectory":
        config, out = self.config, self.out
        resume = bool(getattr(config, "resume", False))
        if out.is_dir() and _is_main_process():  # (the other ranks see rank 0's lock: their own run's)
            check_not_locked(out)  # "in use" first: "already holds a run" would invite a --resume into it
        check_output_dir(out, resume)  # refusals that need no lock (file, foreign directory, no run)
        if _is_main_process():
            self.created = not out.exists()
            try:
                out.mkdir(parents=True, exist_ok=True)
                self.lock = acquire_lock(out)
            except (RunDirError, OSError) as err:
                self._release(failed=True)
                if isinstance(err, RunDirError):
                    raise
                raise RunDirError(f"--output_dir {out}: cannot write there ({err.strerror or err}); "
                                  "choose a writable --output_dir") from err
        try:
            previous = check_output_dir(out, resume)  # again, now that no other writer can change it
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
                    if _is_main_process():
                        logger.info("%s reached max_steps: publishing %s/ from it without training", previous, FINAL_DIR)
                        publish_final_from(previous, self.stage)
                    self.finished = out / FINAL_DIR
            if self.finished is None and _is_main_process():
                mark_run_dir(out, self.stage)
        except BaseException as err:
            self._release(failed=isinstance(err, Exception))
            raise
        return self

    def _release(self, failed: bool) -> None:
        if self.lock is not None:
            release_lock(self.lock)
            self.lock = None
        if failed and self.created and self.out.is_dir() and {p.name for p in self.out.iterdir()} <= {RUN_MARKER}:
            shutil.rmtree(self.out, ignore_errors=True)  # failed before writing anything: leave no trace

    def __exit__(self, exc_type, exc, tb) -> None:
        # An error (not a kill: KeyboardInterrupt) before anything was written leaves no directory behind.
        self._release(failed=isinstance(exc, Exception))


def _name_non_utf8_file(config, err: UnicodeDecodeError) -> Exception:
    """A `ValueError` naming the data file and line that is not UTF-8, or `err` itself if none is found."""
    from stages.cli import non_utf8_message

    for option in ("dataset", "data", "train_file"):
        source = getattr(config, option, None)
        if isinstance(source, str) and Path(source).is_file() and (bad := non_utf8_message(source)):
            return ValueError(f"{bad}; save the file as UTF-8")
    return err


def guard_run(stage: str) -> Callable:
    """Decorator for `run_X(config, ...)`: the run holds its directory (`RunDirectory`) while it trains;
    with nothing to train it returns the final checkpoint at once. A full disk is named as such."""

    def wrap(run: Callable[..., Path]) -> Callable[..., Path]:
        @functools.wraps(run)
        def guarded(config, *args, **kwargs) -> Path:
            with RunDirectory(config, stage) as held:
                if held.finished is not None:
                    return held.finished
                # A resumed checkpoint's weights are read by HF's trainer: name the file if they are broken.
                resumed = last_complete_checkpoint(held.out) if getattr(config, "resume", False) else None
                with explain_disk_full(held.out), explain_unreadable_weights(resumed) if resumed else nullcontext():
                    try:
                        return run(config, *args, **kwargs)
                    except UnicodeDecodeError as err:  # raised without the file's name: find it
                        raise _name_non_utf8_file(config, err) from err

        return guarded

    return wrap


class CheckpointManifestCallback(TrainerCallback):
    """Makes every HF `checkpoint-N` a checkpoint of this project: extra files, then the manifest, last."""

    def __init__(self, make_manifest: Callable[[dict], Manifest], extra_files: dict[str, Path] | None = None):
        self.make_manifest, self.extra_files = make_manifest, extra_files or {}

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        directory = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        for name, src in self.extra_files.items():
            (directory / name).write_bytes(Path(src).read_bytes())
        last = state.log_history[-1] if state.log_history else {}
        write_manifest(directory, self.make_manifest({"step": state.global_step, **last}))


def save_final(trainer, tokenizer, manifest: Manifest, extra_files: dict[str, Path] | None = None) -> Path:
    """Write the run's final checkpoint to `output_dir/final`, atomically; call it on every rank.

    `trainer.save_model` gathers sharded weights (DeepSpeed ZeRO-3, FSDP) and writes on the main
    process only; the main process then completes and renames the directory (`publish_checkpoint`).
    """
    import shutil

    final = Path(trainer.args.output_dir) / FINAL_DIR
    staged = staging_dir(final)
    if trainer.is_world_process_zero():
        shutil.rmtree(staged, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staged))
    if trainer.is_world_process_zero():
        (staged / "training_args.bin").unlink(missing_ok=True)  # HF's pickle; the manifest holds the config
        publish_checkpoint(staged, final, tokenizer, manifest, extra_files)
    trainer.accelerator.wait_for_everyone()
    return final


def absolute_source(source: str) -> str:
    """A local path made absolute (so manifests stay valid from any working directory); hub ids unchanged."""
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def manifest_maker(loaded: LoadedModel, stage: str, source: str, objective: str | None, config: Any,
                   parent_is_source: bool = False) -> Callable[[dict], Manifest]:
    """The run's manifest as a function of its metrics, for every `checkpoint-N/` and for `final/`.

    The base model is the starting checkpoint's own base, or the starting point itself when a LoRA adapter
    is trained on top of it. `parent_is_source`: the parent is `source` as given (stage two names the
    checkpoint or run directory it was pointed at), not the directory the weights were read from.
    """
    source = absolute_source(source)
    base_model = source if config.use_lora else (loaded.manifest.base_model if loaded.manifest else source)
    resolved = {k: v for k, v in config.to_dict().items() if not k.startswith("_")}

    def make_manifest(metrics: dict) -> Manifest:
        manifest = manifest_for(loaded, stage, base_model, objective, config.use_lora, resolved, metrics)
        if parent_is_source:
            manifest.parent = source
        return manifest

    return make_manifest

