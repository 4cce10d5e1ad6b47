"""The embedded default: a small bidirectional Llama built from a config, plus its tokenizer.

Nothing is downloaded: `gift init-model --output_dir DIR [--preset tiny]` writes both with
`save_pretrained`, so they load back with `AutoModelForCausalLM` / `AutoTokenizer` alone.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from gift.embedded_tokenizer import build_embedded_tokenizer

# hidden, layers, heads, intermediate. `tiny` (~0.7M parameters) trains in about a minute on 2 CPU
# cores (the embedded Sudoku job); `small` (~5M) is the larger preset; `mid` (~25M with a 32k
# vocabulary) exists for benchmarks that need a realistically wide vocabulary.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256),
    "small": dict(hidden_size=256, num_hidden_layers=6, num_attention_heads=8, intermediate_size=768),
    "mid": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=6, intermediate_size=1024, vocab_size=32000),
}


def embedded_config(preset: str = "tiny", vocab_size: int | None = None, **overrides) -> LlamaConfig:
    """Bidirectional `LlamaConfig` for a preset; `is_causal=False` survives save/load and LoRA merge."""
    if preset not in PRESETS:
        raise ValueError(f"unknown embedded preset {preset!r}; choose one of {sorted(PRESETS)}")
    dims = {**PRESETS[preset], **overrides}  # overrides win, e.g. num_attention_heads
    vocab = dims.pop("vocab_size", None) or vocab_size
    if vocab is None:
        raise ValueError("vocab_size is required for this preset")
    dims.setdefault("num_key_value_heads", dims["num_attention_heads"])
    dims.setdefault("max_position_embeddings", 1024)
    dims.setdefault("tie_word_embeddings", True)
    return LlamaConfig(vocab_size=vocab, is_causal=False, **dims)


def build_embedded_model(
    preset: str = "tiny", seed: int = 0, tokenizer: PreTrainedTokenizerBase | None = None
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """A freshly initialised embedded model and its tokenizer (deterministic given `seed`)."""
    tokenizer = tokenizer or build_embedded_tokenizer()
    config = embedded_config(
        preset,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    config.mask_token_id = tokenizer.mask_token_id
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model, tokenizer


def init_model(output_dir: str | Path, preset: str = "tiny", seed: int = 0) -> Path:
    """Write a fresh embedded model and tokenizer to `output_dir` (`gift init-model`)."""
    model, tokenizer = build_embedded_model(preset, seed=seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
