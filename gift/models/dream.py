"""Dream (Dream-v0-Base/Instruct-7B) as a bidirectional transformers Qwen2.

The official model is Qwen2's decoder (biased q/k/v projections, RMSNorm, rotary attention, SwiGLU)
with the causal mask removed; its config keys and weight names are Qwen2's, so the mapping is the
config class alone. Its logits are shifted: position i scores token i+1 (gift.adapters realigns
them). The official tokenizer class (`DreamTokenizer`, hub code) is Qwen2's byte-level BPE, read here
with transformers' own `Qwen2Tokenizer` from the same vocab.json / merges.txt.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from gift.models import FAMILY_KEY, checked_load, official_value, require

OFFICIAL_MODEL_TYPE = "dream"
TOKENIZER_CLASS = "Qwen2Tokenizer"  # stands in for the hub's DreamTokenizer

_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "rms_norm_eps",
    "tie_word_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "attention_dropout",
)


def native_config(official: dict, source: str = "config.json") -> Qwen2Config:
    """The bidirectional `Qwen2Config` equivalent to an official Dream `config.json`."""
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        official_value(official, key, source, "dream")
    for key, expected in (("hidden_act", "silu"), ("use_sliding_window", False), ("rope_scaling", None)):
        require(official, key, expected, f"{source}/config.json")
    values = {key: official[key] for key in _CONFIG_KEYS if key in official}
    config = Qwen2Config(
        **values,
        rope_parameters={"rope_type": "default", "rope_theta": float(official.get("rope_theta", 10000.0))},
        use_sliding_window=False,
        is_causal=False,
    )
    config.mask_token_id = official.get("mask_token_id")
    setattr(config, FAMILY_KEY, "dream")
    return config


def load_official(directory: str | Path, config: Qwen2Config, dtype: torch.dtype | None) -> Qwen2ForCausalLM:
    """An official-layout Dream directory (safetensors, Qwen2 names) as a native model of `config`."""
    return checked_load(Qwen2ForCausalLM, directory, config, dtype)
