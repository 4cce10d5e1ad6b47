"""A run's manifests: the one written into every checkpoint, and the config check of `--resume`
(which keys may change on resume, and the drift that refuses it)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from gift.checkpoint import (
    FINAL_DIR,
    MANIFEST_NAME,
    LoadedModel,
    Manifest,
    manifest_for,
    publish_checkpoint,
    read_manifest,
    staging_dir,
    write_manifest,
)
from gift.lora_targets import parse_target_modules
from gift.stored_paths import CONFIG_PATH_KEYS, store_relative
from stages.runs.drift import config_drift
from stages.runs.folder import read_marker

# Config keys a resumed run may change: they touch logging, saving and I/O, never the trained weights.
HARMLESS_KEYS = frozenset(
    {
        "output_dir",
        "resume",
        "resume_from_checkpoint",
        "overwrite_output_dir",
        "logging_steps",
        "logging_strategy",
        "logging_first_step",
        "logging_nan_inf_filter",
        "logging_dir",
        "log_level",
        "log_level_replica",
        "log_on_each_node",
        "report_to",
        "run_name",
        "project",
        "trackio_space_id",
        "trackio_bucket_id",
        "trackio_static_space_id",
        "disable_tqdm",
        "save_steps",
        "save_strategy",
        "save_total_limit",
        "save_on_each_node",
        "save_only_model",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
        "dataloader_multiprocessing_context",
        "skip_memory_metrics",
        "push_to_hub",
        "hub_model_id",
        "hub_strategy",
        "hub_token",
        "hub_private_repo",
        "hub_always_push",
        "hub_revision",
        "ddp_timeout",
        "local_rank",
        "per_device_eval_batch_size",
        "eval_accumulation_steps",
        "log_completions",
        "num_completions_to_print",
        "wandb_log_unique_prompts",
        "log_unique_prompts",
        "include_num_input_tokens_seen",
    }
)
# Config keys naming a local model or data file (or a hub id / `embedded:` / `synthetic:` source).
SOURCE_KEYS = ("model", "model_name_or_path", "dataset")
# Keys whose accepted spellings changed: each maps a saved or current value to today's form.
_CANONICAL_SPELLINGS: dict[str, Callable[[Any], Any]] = {"lora_target_modules": parse_target_modules}


class ConfigDriftError(ValueError):
    """`--resume` with a config that differs from the run's in keys that alter training."""


def resolve_source_paths(config: Any) -> None:
    """Make the config's local model and data paths absolute, so the run records (and `--resume` compares)
    the files it read, whatever the working directory: `./runs/x`, `runs/x` and `/abs/runs/x` are one path,
    and the same relative path from another directory is another one."""
    for key in SOURCE_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, str):
            setattr(config, key, absolute_source(value))


def canonical_spelling(key: str, value: Any) -> Any:
    """A saved or current value in the one form the configs hold today, so an older spelling of the same
    setting is no drift (stage two saved `lora_target_modules` as `'all-linear'` before it became a list)."""
    if key in SOURCE_KEYS and isinstance(value, str):  # a run older than resolve_source_paths: as seen from here
        return absolute_source(value)
    if key in _CANONICAL_SPELLINGS:
        try:
            return _CANONICAL_SPELLINGS[key](value)
        except (TypeError, ValueError):  # not a valid spelling: compared as written, so the diff names it
            return value
    return value


def moved_sources(saved: dict[str, Any], config) -> dict[str, Any]:
    """`saved` with each model or data path that lies in the run's own folder tree (a pipeline folder's `base/`,
    a stage-one `final/`) taken as the current one when it sits at the same place in that tree: a run beside its
    model, or a pipeline folder written before its paths were stored relative to it (`relative_to_pipeline`),
    moved or copied elsewhere finishes and reruns. The tree is the deepest folder holding both the current
    `output_dir` and the current path."""
    out = getattr(config, "output_dir", None)
    if not isinstance(out, str):
        return saved
    moved = dict(saved)
    for key in SOURCE_KEYS:
        before, now = saved.get(key), getattr(config, key, None)
        if not (isinstance(before, str) and isinstance(now, str) and before != now and Path(now).is_absolute()):
            continue
        tree = Path(os.path.commonpath([Path(out).resolve(), Path(now)]))
        inside = Path(now).relative_to(tree).parts
        if len(tree.parts) > 2 and inside and Path(before).parts[-len(inside) :] == inside:
            moved[key] = now
    return moved


def check_config_drift(checkpoint: Path, config) -> None:
    diffs = config_drift(
        moved_sources(read_manifest(checkpoint).config, config), config, HARMLESS_KEYS, canonical_spelling
    )
    if diffs:
        raise ConfigDriftError(
            f"--resume: the config differs from the run's ({checkpoint / MANIFEST_NAME}) in keys that alter "
            f"training: {'; '.join(diffs)}. Resume with the run's settings, or start a new run in another --output_dir"
        )


class CheckpointManifestCallback(TrainerCallback):
    """Makes every HF `checkpoint-N` a checkpoint of this project: extra files, then the manifest, last; keeps
    the save and logging interval of this run's config on resume."""

    def __init__(self, make_manifest: Callable[[dict], Manifest], extra_files: dict[str, Path] | None = None):
        self.make_manifest, self.extra_files = make_manifest, extra_files or {}

    def on_train_begin(self, args, state, control, **kwargs):
        # HF restores a resumed run's save/logging interval from its trainer state; this run's config wins
        # (`save_steps` may change on --resume: the checkpoints follow the new value from the resumed step).
        state.compute_steps(args, state.max_steps)

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


def manifest_maker(
    loaded: LoadedModel, stage: str, source: str, objective: str | None, config: Any, parent_is_source: bool = False
) -> Callable[[dict], Manifest]:
    """The run's manifest as a function of its metrics, for every `checkpoint-N/` and for `final/`.

    The base model is the starting checkpoint's own base, or the starting point itself when a LoRA adapter
    is trained on top of it. `parent_is_source`: the parent is `source` as given (stage two names the
    checkpoint or run directory it was pointed at), not the directory the weights were read from.
    """
    source = absolute_source(source)
    base_model = source if config.use_lora else (loaded.manifest.base_model if loaded.manifest else source)
    resolved = {k: v for k, v in config.to_dict().items() if not k.startswith("_")}
    pipeline = enclosing_pipeline(config.output_dir)

    def make_manifest(metrics: dict) -> Manifest:
        manifest = manifest_for(loaded, stage, base_model, objective, config.use_lora, resolved, metrics)
        if parent_is_source:
            manifest.parent = source
        return manifest if pipeline is None else relative_to_pipeline(manifest, pipeline, config.output_dir)

    return make_manifest


def enclosing_pipeline(run_dir: str | Path) -> Path | None:
    """The pipeline folder a run folder lies in (its nearest ancestor marked `pipeline`), or None. Only the
    marker is read: an ancestor may be a system folder that cannot be listed."""
    for folder in Path(run_dir).resolve().parents:
        if (read_marker(folder) or {}).get("stage") == "pipeline":
            return folder
    return None


def relative_to_pipeline(manifest: Manifest, pipeline: Path, run_dir: str | Path) -> Manifest:
    """The manifest of a checkpoint in `run_dir/` (`final/`, `checkpoint-N/`) with every model, data and run path
    inside the pipeline folder stored relative to the checkpoint (`../../../base`), so the folder can be moved
    or copied; `gift.checkpoint.read_manifest` resolves them against the checkpoint it reads."""
    start = Path(run_dir) / FINAL_DIR  # every checkpoint of the run sits one level below it

    def rel(value):
        return store_relative(value, pipeline, start)

    config = {**manifest.config, **{k: rel(manifest.config[k]) for k in CONFIG_PATH_KEYS if k in manifest.config}}
    return dataclasses.replace(
        manifest, base_model=rel(manifest.base_model), parent=rel(manifest.parent), config=config
    )
