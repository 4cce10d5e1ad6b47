"""The checkpoint format both stages read and write.

A checkpoint is a `save_pretrained` directory (full weights or a PEFT adapter, safetensors), the
tokenizer, and `gift_manifest.json`. The manifest is written last and every write goes to a
temporary name first, so a killed run never leaves a directory that looks like a valid checkpoint.
A stage-one run directory holds its final checkpoint in `final/`; passing the run directory works too.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from gift.adapters import ModelAdapter, ModelLoadError, adapter_for, family, load_pretrained, load_tokenizer
from gift.files import atomic_write_text
from gift.stored_paths import manifest_paths_resolved
from gift.weights_check import WeightsError, refuse_nonfinite, weights_file
from gift.zero3_load import unpartitioned_load

MANIFEST_NAME = "gift_manifest.json"
FORMAT_VERSION = 1
FINAL_DIR = "final"
RUN_MARKER = "gift_run.json"  # written into every folder this tool creates (stages/runs/folder.py)
TRAINER_STATE = "trainer_state.json"  # HF Trainer's file in every checkpoint-N
STAGES = ("base", "cold_start", "rl", "merged")
logger = logging.getLogger(__name__)


class CheckpointError(ModelLoadError):
    """A directory that is not a valid checkpoint of this format, and why."""


class DiskFullError(OSError):
    """A write failed for lack of space; the message names the path and the free space."""


def free_space(path: str | Path) -> str:
    """Free space on the filesystem holding `path` (or its nearest existing parent), e.g. '1.2 GB'."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if free < 1024 or unit == "TB":
            return f"{free:.0f} {unit}" if unit == "B" else f"{free:.1f} {unit}"
        free /= 1024
    return "unknown"


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC, also as torch/safetensors report it (a C++ stream error, the 'unexpected pos' of torch's zip
    writer, or a Rust 'os error 28')."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return any(
        sign in text
        for sign in (
            "No space left on device",
            "os error 28",
            "Disk quota exceeded",
            "basic_ios::clear: iostream error",
            "unexpected pos",
        )
    )


@contextmanager
def explain_disk_full(path: str | Path):
    """Re-raise a full-disk failure of the writes inside as `DiskFullError` naming the path and free space."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as err:
        if not is_disk_full(err):
            raise
        where = getattr(err, "filename", None) or path
        # torch.save reports ENOSPC only as a C++ stream error; say what it most often means
        what = (
            "write failed (iostream error: a full disk?)"
            if "iostream" in str(err)
            else "write failed (torch's archive writer stopped short: a full disk?)"
            if "unexpected pos" in str(err)
            else "no space left on device"
        )
        raise DiskFullError(
            errno.ENOSPC,
            f"{where}: {what}, {free_space(where)} free on that filesystem; nothing "
            "incomplete was published: free some space and rerun (a training run: with --resume)",
        ) from err


def incomplete_reason(path: str | Path) -> str | None:
    """Why `path` looks like a checkpoint or run of this project although it holds no manifest, or None.

    A plain HF model directory (config.json and weights, nothing of ours) gives None.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    in_our_run = (path.parent / RUN_MARKER).is_file() or any(path.parent.glob(f"checkpoint-*/{MANIFEST_NAME}"))
    # An HF trainer checkpoint (its run layout name and trainer state) or a checkpoint slot of one of our runs;
    # a model directory that merely ships a trainer_state.json (some hub repos do) stays a plain model.
    if re.fullmatch(r"checkpoint-\d+|final|\.final\.tmp", path.name) and (
        (path / TRAINER_STATE).is_file() or in_our_run
    ):
        return (
            f"{path} looks like a checkpoint of this project but has no {MANIFEST_NAME}: it is incomplete "
            "(the run was killed while saving it); use the run's last complete checkpoint or resume the run"
        )
    completes = sorted(
        (p for p in path.glob("checkpoint-*") if (p / MANIFEST_NAME).is_file()),
        key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit() else -1,
    )
    if (path / RUN_MARKER).is_file() or completes or any(path.glob("checkpoint-*")):
        hint = (
            f"pass one of its complete checkpoints (latest: {completes[-1]})"
            if completes
            else "it has no complete checkpoint yet"
        )
        return f"{path} is a run directory without a complete {FINAL_DIR}/ (unfinished run): resume the run, or {hint}"
    return None


@dataclass
class Manifest:
    stage: str
    model_type: str
    mask_token_id: int
    shift_logits: bool
    base_model: str
    objective: str | None = None
    parent: str | None = None
    adapter: bool = False  # the directory holds a PEFT adapter on top of `base_model`
    merged: bool = False  # an adapter was merged into these full weights
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    package_version: str = ""
    created: str = ""

    def to_json(self) -> str:
        from gift import __version__

        data = asdict(self)
        data["package_version"] = data["package_version"] or __version__
        data["created"] = data["created"] or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return json.dumps(data, indent=2, sort_keys=True, default=str)


def write_manifest(directory: str | Path, manifest: Manifest) -> None:
    """Write the manifest into an already complete directory (the last file, atomically)."""
    atomic_write_text(Path(directory) / MANIFEST_NAME, manifest.to_json())


def staging_dir(directory: str | Path) -> Path:
    """The temporary name a checkpoint is written under before `publish_checkpoint` renames it."""
    target = Path(directory)
    return target.with_name(f".{target.name}.tmp")


def publish_checkpoint(
    staged: Path,
    directory: str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    manifest: Manifest,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Complete a staged directory holding the weights (tokenizer, extra files, manifest last), then rename
    it into place. An older checkpoint at `directory` is replaced only once the new one is complete.
    `tokenizer=None`: the staged directory already holds the tokenizer files."""
    target = Path(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(staged)
    for name, src in (extra_files or {}).items():
        shutil.copy2(src, staged / name)
    write_manifest(staged, manifest)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(staged, target)
        shutil.rmtree(old)
    else:
        os.rename(staged, target)
    return target


def save_checkpoint(
    directory: str | Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    manifest: Manifest,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write model (or adapter), tokenizer and manifest to a temporary name, then rename into place."""
    staged = staging_dir(directory)
    with explain_disk_full(staged):
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staged, ignore_errors=True)
        model.save_pretrained(staged, safe_serialization=True)
        return publish_checkpoint(staged, directory, tokenizer, manifest, extra_files)


def resolve_checkpoint(path: str | Path) -> Path | None:
    """The checkpoint directory for `path` (itself, or its `final/`), or None if it holds no manifest."""
    path = Path(path)
    for candidate in (path, path / FINAL_DIR):
        if (candidate / MANIFEST_NAME).is_file():
            return candidate
    return None


def read_manifest(path: str | Path) -> Manifest:
    """The manifest of a checkpoint directory; missing, unreadable or unknown-version manifests are errors."""
    directory = resolve_checkpoint(path)
    if directory is None:
        raise CheckpointError(f"{path}: no {MANIFEST_NAME}: not a checkpoint of this project (or an incomplete one)")
    try:
        data = json.loads((directory / MANIFEST_NAME).read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{directory / MANIFEST_NAME}: unreadable manifest ({err.msg})") from err
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory / MANIFEST_NAME}: format_version {version!r} is unknown to this version "
            f"(reads {FORMAT_VERSION})"
        )
    known = Manifest.__dataclass_fields__
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise CheckpointError(f"{directory / MANIFEST_NAME}: unknown fields {unknown}")
    return Manifest(**manifest_paths_resolved(data, directory))  # paths inside a pipeline folder: stored relative


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    adapter: ModelAdapter
    manifest: Manifest | None = None
    path: Path | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else ""


def load_checkpoint(
    path: str | Path,
    trust_remote_code: bool = False,
    dtype: torch.dtype | str | None = None,
    is_trainable: bool = False,
    merge_adapter: bool = False,
) -> LoadedModel:
    """Load a checkpoint (full weights, or an adapter on its base) and check it against its tokenizer.

    `merge_adapter=True` folds an adapter into plain weights in memory (how a LoRA stage-one output
    becomes the starting point of stage two: no manual merge step).
    """
    manifest = read_manifest(path)
    directory = resolve_checkpoint(path)
    family(manifest.model_type)  # an unknown kind fails before anything loads
    if manifest.adapter:
        from peft import PeftModel

        tokenizer = load_tokenizer(str(directory), manifest.model_type)
        # To merge, the base loads whole even under ZeRO-3 (gift/zero3_load.py); DeepSpeed partitions it later.
        with unpartitioned_load() if merge_adapter else nullcontext():
            base = load_model(manifest.base_model, manifest.model_type, trust_remote_code, dtype, merge_adapter=True)
            with explain_unreadable_weights(directory):
                model = PeftModel.from_pretrained(
                    base.model, directory, is_trainable=is_trainable and not merge_adapter
                )
            if merge_adapter:  # plain weights, trainable like any loaded model (peft froze the base's)
                model = model.merge_and_unload().requires_grad_(True)
        refuse_nonfinite(directory, model)
    else:
        with explain_unreadable_weights(directory):
            model, tokenizer, _ = load_pretrained(str(directory), manifest.model_type, trust_remote_code, dtype)
    config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
    adapter = adapter_for(manifest.model_type, tokenizer, config)
    if adapter.mask_token_id != manifest.mask_token_id or adapter.shift_logits != manifest.shift_logits:
        raise CheckpointError(
            f"{directory}: manifest (mask id {manifest.mask_token_id}, shift {manifest.shift_logits}) is inconsistent "
            f"with its tokenizer/model type (mask id {adapter.mask_token_id}, shift {adapter.shift_logits})"
        )
    vocab = model.get_input_embeddings().num_embeddings  # not weight.shape: empty while ZeRO-3 partitions it
    if len(tokenizer) > vocab:
        raise CheckpointError(
            f"{directory}: tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {vocab}"
        )
    return LoadedModel(model, tokenizer, adapter, manifest, directory)


def load_model(
    source: str,
    model_type: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype | str | None = None,
    is_trainable: bool = False,
    merge_adapter: bool = False,
) -> LoadedModel:
    """Any model source: `embedded[:PRESET]` (fresh, seed 0), a checkpoint of this format, or a local/hub model."""
    if source == "embedded" or source.startswith("embedded:"):
        from gift.embedded_model import build_embedded_model

        model, tokenizer = build_embedded_model(source.partition(":")[2] or "tiny", seed=0)
        return LoadedModel(model, tokenizer, adapter_for("embedded", tokenizer))
    if resolve_checkpoint(source) is not None:
        return load_checkpoint(source, trust_remote_code, dtype, is_trainable, merge_adapter)
    reason = incomplete_reason(source)
    if reason is not None:
        raise CheckpointError(reason)
    if not Path(source).exists() and (source.startswith(("/", ".", "~")) or source.count("/") > 1):
        raise CheckpointError(f"{source}: no such model directory or checkpoint (and not a hub id)")
    with explain_unreadable_weights(source):
        model, tokenizer, adapter = load_pretrained(source, model_type, trust_remote_code, dtype)
    if Path(source).exists():
        logger.info(
            "%s: no %s: loaded as a plain %s base model (not a checkpoint of this project)",
            source,
            MANIFEST_NAME,
            adapter.kind,
        )
    return LoadedModel(model, tokenizer, adapter, None, Path(source) if Path(source).exists() else None)


@contextmanager
def explain_unreadable_weights(directory: str | Path):
    """A truncated or corrupt weights file fails inside safetensors without its path: name it."""
    try:
        yield
    except (ModelLoadError, WeightsError):
        raise
    except Exception as err:
        text = f"{type(err).__name__} {err}"
        if "Safetensor" not in text and "safetensors" not in text and "deserializ" not in text:
            raise
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"{weights_file(directory)}: unreadable weights ({first_line}); "
            "the file is truncated or corrupt: copy or save it again"
        ) from err


def merge_checkpoint(source: str | Path, output_dir: str | Path, trust_remote_code: bool = False) -> Path:
    """Merge a LoRA adapter checkpoint into full weights (`gift merge`); the result is a checkpoint too."""
    loaded = load_checkpoint(source, trust_remote_code)
    if not loaded.manifest.adapter:
        raise CheckpointError(f"{loaded.path}: holds full weights already (no adapter to merge)")
    merged = loaded.model.merge_and_unload()
    manifest = Manifest(
        **{
            **asdict(loaded.manifest),
            "adapter": False,
            "merged": True,
            "parent": str(Path(loaded.path).resolve()),
            "package_version": "",
            "created": "",
        }
    )
    return save_checkpoint(output_dir, merged, loaded.tokenizer, manifest)


def manifest_for(
    loaded: LoadedModel,
    stage: str,
    base_model: str,
    objective: str | None,
    adapter: bool,
    config: dict,
    metrics: dict | None = None,
) -> Manifest:
    """A new manifest for a model trained from `loaded`."""
    return Manifest(
        stage=stage,
        model_type=loaded.adapter.kind,
        mask_token_id=loaded.adapter.mask_token_id,
        shift_logits=loaded.adapter.shift_logits,
        base_model=base_model,
        objective=objective,
        parent=str(loaded.path.resolve()) if loaded.path is not None else None,
        adapter=adapter,
        merged=False,
        config=config,
        metrics=metrics or {},
    )
