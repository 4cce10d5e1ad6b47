"""Loaded weights are checked, not trusted: a tensor missing from the file, one the model has no place for,
one of the wrong shape, or one holding NaN/inf is refused in one line naming the file and the tensor.

Tied weights (the embedded model's `lm_head.weight` is its embedding) are stored once and are no gap.
`GIFT_ALLOW_NONFINITE_WEIGHTS=1` lets non-finite weights load (with a warning), to inspect a diverged run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import torch

ALLOW_NONFINITE_ENV = "GIFT_ALLOW_NONFINITE_WEIGHTS"
logger = logging.getLogger(__name__)


class WeightsError(ValueError):
    """A weights file whose tensors do not fit the model, or hold non-finite values (already names the file)."""


def weights_file(directory: str | Path, key: str | None = None) -> str:
    """The safetensors file of `directory` holding `key` (by its header), else the directory's weights files."""
    folder = Path(directory)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if key is not None:
        from safetensors import safe_open

        for file in files:
            try:
                with safe_open(str(file), "pt") as handle:
                    if key in handle.keys():
                        return str(file)
            except Exception:  # an unreadable file is named by explain_unreadable_weights, not here
                continue
    return ", ".join(str(f) for f in files) or str(directory)


def tied_groups(model: torch.nn.Module) -> dict[str, set[str]]:
    """Each state-dict key whose tensor is shared with other keys -> every key of that tensor."""
    by_tensor: dict[int, set[str]] = {}
    state = model.state_dict(keep_vars=True)
    for name, tensor in state.items():
        by_tensor.setdefault(id(tensor), set()).add(name)
    return {name: group for group in by_tensor.values() if len(group) > 1 for name in group}


def untied_missing(model: torch.nn.Module, missing: Iterable[str]) -> list[str]:
    """The missing keys that are really missing: a tied key whose partner was loaded is not."""
    missing = set(missing)
    groups = tied_groups(model)
    return sorted(k for k in missing if not (groups.get(k, {k}) - missing))


def refuse_key_mismatch(
    directory: str | Path,
    model: torch.nn.Module,
    missing: Iterable[str] = (),
    unexpected: Iterable[str] = (),
    mismatched: Iterable = (),
) -> None:
    """Raise `WeightsError` for the first missing, unexpected or wrong-shaped tensor (HF's loading info)."""
    for entry in sorted(mismatched, key=str):
        key, *shapes = entry if isinstance(entry, (tuple, list)) else (entry,)
        shape = f" (file {tuple(shapes[0])}, model {tuple(shapes[1])})" if len(shapes) == 2 else ""
        raise WeightsError(
            f"{weights_file(directory, key)}: tensor {key} has the wrong shape{shape}: the file "
            "does not belong to this model's config.json"
        )
    for key in untied_missing(model, missing):
        raise WeightsError(
            f"{weights_file(directory)}: tensor {key} is missing (the model would start it at random); "
            "the file is incomplete or of another model"
        )
    for key in sorted(unexpected):
        raise WeightsError(
            f"{weights_file(directory, key)}: tensor {key} is not part of this model "
            "(the file is of another model or config.json was changed)"
        )


def refuse_nonfinite(directory: str | Path, model: torch.nn.Module) -> None:
    """Raise `WeightsError` naming the first tensor holding NaN or inf (a diverged run's weights)."""
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()):
            continue
        bad = int((~torch.isfinite(tensor)).sum())
        where = f"{weights_file(directory, name)}: tensor {name} holds {bad} non-finite value(s) (NaN/inf)"
        if os.environ.get(ALLOW_NONFINITE_ENV, "") not in ("", "0"):
            logger.warning("%s; loaded anyway (%s is set)", where, ALLOW_NONFINITE_ENV)
            return
        raise WeightsError(
            f"{where}: the run that wrote it diverged; use an earlier checkpoint "
            f"(or set {ALLOW_NONFINITE_ENV}=1 to load it anyway)"
        )


def refuse_pickle_only(directory: str | Path) -> None:
    """A model folder whose weights exist only as PyTorch pickles (`pytorch_model.bin`, ...) is refused naming the
    file: a pickle can run code when loaded, and this project reads safetensors only."""
    directory = Path(directory)
    if not directory.is_dir() or any(directory.glob("*.safetensors")):
        return
    pickles = sorted(
        p for pattern in ("*.bin", "*.pt", "*.pth") for p in directory.glob(pattern) if p.name != "training_args.bin"
    )
    if pickles:
        raise WeightsError(
            f"{pickles[0]}: weights in PyTorch's pickle format are not loaded (a pickle can run code); "
            "save them as safetensors (model.save_pretrained(DIR, safe_serialization=True) where you "
            "trust the file)"
        )


@contextmanager
def quiet_load_report():
    """transformers prints a multi-line LOAD REPORT for key gaps; the refusal above says it in one line."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_checked(model_class, directory: str | Path, **kwargs) -> torch.nn.Module:
    """`model_class.from_pretrained(directory)` that refuses missing, unexpected and wrong-shaped tensors."""
    with quiet_load_report():
        model, info = model_class.from_pretrained(
            str(directory), use_safetensors=True, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
        )
    refuse_key_mismatch(
        directory, model, info.get("missing_keys", ()), info.get("unexpected_keys", ()), info.get("mismatched_keys", ())
    )
    return model
