"""Native implementations of the masked-diffusion architectures the project trains at scale.

Each module maps one family's official hub layout (its `config.json` keys and weight names) onto a
transformers decoder run with `is_causal=False`, so the official checkpoints load without their hub
code and get what transformers decoders have: sdpa attention, gradient checkpointing, a KV cache,
`GenerationMixin` (peft's CAUSAL_LM wrapper needs it). `gift.adapters.FAMILIES` says which module
serves which family.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from pathlib import Path

import torch

# The key a native config carries to say which diffusion family it is (a native LLaDA is a Llama).
FAMILY_KEY = "diffusion_family"


class UnsupportedConfigError(ValueError):
    """An official config uses a feature the native implementation does not have."""


def require(config: dict, key: str, expected, source: str) -> None:
    """Stop on an official config value the native model would silently get wrong."""
    value = config.get(key, expected)
    if value != expected:
        raise UnsupportedConfigError(
            f"{source}: has {key}={value!r}; the native implementation supports {key}={expected!r} only"
        )


def official_value(config: dict, key: str, source: str, family: str):
    """A required key of an official config; missing, it is one error line naming the file and key."""
    if key not in config:
        raise UnsupportedConfigError(f"{source}: config.json has no {key!r}: not an official {family} config")
    return config[key]


def checked_load(model_class, directory, config, dtype, **kwargs):
    """`model_class.from_pretrained` that refuses a checkpoint whose weight names do not all map."""
    model, info = model_class.from_pretrained(
        str(directory),
        config=config,
        use_safetensors=True,
        dtype=dtype if dtype is not None else torch.float32,
        output_loading_info=True,
        **kwargs,
    )
    missing, unexpected = sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", []))
    if missing or unexpected:
        raise UnsupportedConfigError(
            f"{directory}: weights do not match the official layout "
            f"(missing {missing[:4]}, unexpected {unexpected[:4]})"
        )
    # transformers would rename the weights back to the official names at save_pretrained; every save of
    # this project (checkpoints, `gift convert`) writes the native form, which loads with plain transformers.
    model._weight_conversions = None
    greedy_generation_config(model)
    return model


def greedy_generation_config(model) -> None:
    """Drop sampling flags a greedy `generation_config.json` carries (Dream's published one: `temperature: 0.0`).

    The official generation code reads 0.0 as greedy; transformers reads it as a sampling flag without
    `do_sample` and refuses to save the config once anything in it changed (the Trainer aligns
    `bos_token_id` with the tokenizer's), so a full fine-tuning run failed at its first checkpoint. This
    project samples with its own diffusion sampler; the flags are unused, and greedy stays greedy.
    """
    config = getattr(model, "generation_config", None)
    if config is None or getattr(config, "do_sample", False):
        return
    for flag in ("temperature", "top_p", "top_k"):
        if getattr(config, flag, None) is not None:
            setattr(config, flag, None)


_SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64}


def stored_dtype(directory: str | Path) -> torch.dtype | None:
    """The floating dtype most weights of a directory's `*.safetensors` files are stored in (read from the
    headers only); None when there are none."""
    counts: Counter = Counter()
    for path in sorted(Path(directory).glob("*.safetensors")):
        with open(path, "rb") as handle:
            header = json.loads(handle.read(struct.unpack("<Q", handle.read(8))[0]))
        counts.update(
            _SAFETENSORS_DTYPES[entry["dtype"]]
            for name, entry in header.items()
            if name != "__metadata__" and entry["dtype"] in _SAFETENSORS_DTYPES
        )
    return counts.most_common(1)[0][0] if counts else None
