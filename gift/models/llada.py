"""LLaDA (LLaDA-8B-Base/Instruct, LLaDA-1.5) as a bidirectional transformers Llama.

The official model is an OLMo-style code base configured as a Llama decoder: pre-norm RMSNorm blocks,
rotary attention (half-split rotation, theta from the config), a SwiGLU MLP, untied output layer, no
biases. Only the names differ:

| official (`model.transformer.`)  | native (LlamaForCausalLM)              |
|----------------------------------|----------------------------------------|
| `wte`                            | `model.embed_tokens`                   |
| `blocks.N.{q,k,v}_proj`          | `model.layers.N.self_attn.{q,k,v}_proj`|
| `blocks.N.attn_out`              | `model.layers.N.self_attn.o_proj`      |
| `blocks.N.ff_proj` (gate)        | `model.layers.N.mlp.gate_proj`         |
| `blocks.N.up_proj`               | `model.layers.N.mlp.up_proj`           |
| `blocks.N.ff_out` (down)         | `model.layers.N.mlp.down_proj`         |
| `blocks.N.attn_norm`, `ff_norm`  | `input_layernorm`, `post_attention_layernorm` |
| `ln_f`, `ff_out`                 | `model.norm`, `lm_head`                |

The official forward ignores the attention mask; the native one honours it unless the config says
`honour_attention_mask: false` (see gift.adapters).

Two details of the official code that a plain Llama does differently, kept by `prepare_native`:
- its input embedding has no `padding_idx` (Llama takes one from `pad_token_id`, which LLaDA sets to EOS:
  the EOS row would never be trained);
- `rope_full_precision: true` (LLaDA-8B's setting, and the official default) rotates fp32 copies of q and k
  with fp32 sin/cos and casts the result back; Llama rotates in the activation dtype (1-2% of max|logit|
  apart in bf16).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama

from gift.models import FAMILY_KEY, UnsupportedConfigError, checked_load, official_value, require

MASK_ID = 126336  # LLaDA's <|mdm_mask|>; official configs carry it as mask_token_id
EOS_ID = 126081
OFFICIAL_MODEL_TYPE = "llada"

KEY_MAPPING = {
    r"^model\.transformer\.wte\.": "model.embed_tokens.",
    r"^model\.transformer\.ln_f\.": "model.norm.",
    r"^model\.transformer\.ff_out\.": "lm_head.",
    r"^model\.transformer\.blocks\.(\d+)\.q_proj\.": r"model.layers.\1.self_attn.q_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.k_proj\.": r"model.layers.\1.self_attn.k_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.v_proj\.": r"model.layers.\1.self_attn.v_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_out\.": r"model.layers.\1.self_attn.o_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.": r"model.layers.\1.mlp.gate_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.up_proj\.": r"model.layers.\1.mlp.up_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_out\.": r"model.layers.\1.mlp.down_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.": r"model.layers.\1.input_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.": r"model.layers.\1.post_attention_layernorm.",
}

# Official options whose other values select code the native model does not have.
_FIXED = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "rope": True,
    "alibi": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "input_emb_norm": False,
    "scale_logits": False,
    "attention_layer_norm": False,
    "clip_qkv": None,
    "layer_norm_with_affine": True,
    "bias_for_layer_norm": False,
}


def native_config(official: dict, source: str = "config.json") -> LlamaConfig:
    """The bidirectional `LlamaConfig` equivalent to an official LLaDA `config.json`."""
    for key in ("d_model", "n_heads", "n_layers", "vocab_size"):
        official_value(official, key, source, "llada")
    for key, expected in _FIXED.items():
        require(official, key, expected, f"{source}/config.json")
    # block_group_size > 1 stores the blocks under other weight names (block_groups.G.I); the compute is the same.
    require(official, "block_group_size", 1, f"{source}/config.json")
    heads = official["n_heads"]
    kv_heads = official.get("n_kv_heads") or (1 if official.get("multi_query_attention") else heads)
    config = LlamaConfig(
        vocab_size=official.get("embedding_size") or official["vocab_size"],  # rows of wte / ff_out
        hidden_size=official["d_model"],
        intermediate_size=mlp_hidden_size(official, source),
        num_hidden_layers=official["n_layers"],
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=official.get("max_sequence_length", 4096),
        rms_norm_eps=official.get("rms_norm_eps", 1e-5),
        rope_parameters={"rope_type": "default", "rope_theta": float(official.get("rope_theta", 10000.0))},
        tie_word_embeddings=bool(official.get("weight_tying", False)),
        attention_bias=False,
        mlp_bias=False,
        pad_token_id=None,  # Llama would make it the embedding's padding_idx; the adapter reads the official one
        eos_token_id=official.get("eos_token_id", EOS_ID),
        bos_token_id=None,
        is_causal=False,
    )
    config.mask_token_id = official.get("mask_token_id", MASK_ID)
    config.sequence_pad_token_id = official.get("pad_token_id", EOS_ID)
    config.rope_full_precision = bool(official.get("rope_full_precision", True))
    config.honour_attention_mask = official.get("honour_attention_mask", True)
    setattr(config, FAMILY_KEY, "llada")
    return config


def mlp_hidden_size(official: dict, source: str) -> int:
    """The MLP width: `mlp_hidden_size`, or (null or absent, as the official code reads it) `mlp_ratio x d_model`."""
    width = official.get("mlp_hidden_size")
    if width is None:
        width = official.get("mlp_ratio", 4) * official["d_model"]
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise UnsupportedConfigError(
            f"{source}/config.json: mlp_hidden_size (or mlp_ratio x d_model) is {width!r}; expected a positive integer"
        )
    return width


def _rotate_in_input_dtype(original):
    """Llama's rotary application with its result cast to q's / k's dtype: a no-op when sin/cos have that dtype,
    the official full-precision RoPE when they are fp32 and q, k are not (the products then run in fp32)."""
    if getattr(original, "casts_back", False):
        return original

    def rotate(q, k, cos, sin, *args, **kwargs):
        q_embed, k_embed = original(q, k, cos, sin, *args, **kwargs)
        return q_embed.to(q.dtype), k_embed.to(k.dtype)

    rotate.casts_back = True
    return rotate


modeling_llama.apply_rotary_pos_emb = _rotate_in_input_dtype(modeling_llama.apply_rotary_pos_emb)


def _fp32_rotary(module, args, kwargs):
    """Forward pre-hook of the rotary embedding: it returns sin/cos in the dtype of its first argument (read for
    dtype and device only), so hand it a one-element fp32 tensor on the same device."""
    hidden = args[0] if args else kwargs.pop("x")
    return (hidden.new_zeros(1, dtype=torch.float32), *args[1:]), kwargs


def prepare_native(model: torch.nn.Module) -> None:
    """Make a loaded native LLaDA compute as the official code does (see the module docstring)."""
    body = model.get_base_model().model if hasattr(model, "get_base_model") else model.model
    body.embed_tokens.padding_idx = None
    config = model.config
    if getattr(config, "rope_full_precision", False) and not getattr(body.rotary_emb, "_gift_fp32", False):
        body.rotary_emb.register_forward_pre_hook(_fp32_rotary, with_kwargs=True)
        body.rotary_emb._gift_fp32 = True


def load_official(directory: str | Path, config: LlamaConfig, dtype: torch.dtype | None) -> LlamaForCausalLM:
    """An official-layout LLaDA directory (safetensors, official names) as a native model of `config`."""
    return checked_load(LlamaForCausalLM, directory, config, dtype, key_mapping=KEY_MAPPING)
