"""Tiny random LLaDA and Dream checkpoints in the official hub layout, built by the tests.

Official `config.json` keys (with `auto_map`, as on the hub), official weight names, safetensors, and a
tokenizer as the hub ships it (LLaDA: a fast tokenizer without a mask token; Dream: Qwen2's byte-level
BPE files under the hub's `DreamTokenizer` class). The weights are seeded normal draws in sorted-name
order, so a checkpoint is a function of (family, dims, seed). Both output layers have more rows than the
tokenizer has tokens, as the real ones do. Each directory also carries the family's published
`generation_config.json` (LLaDA-8B-Instruct's, Dream-v0-Instruct-7B's: greedy `temperature: 0.0`, the
diffusion keys `alg`, `steps`, `eps`), with the tiny ids. Weights are stored in fp32 unless `dtype` says
otherwise (the hub stores bf16; `torch_dtype` in Dream's config follows what is stored).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

LLADA_DIMS = dict(d_model=32, n_heads=4, n_kv_heads=4, n_layers=2, mlp_hidden_size=64, vocab_size=128)
DREAM_DIMS = dict(
    hidden_size=32,
    num_attention_heads=4,
    num_key_value_heads=2,
    num_hidden_layers=2,
    intermediate_size=64,
    vocab_size=272,
)
DREAM_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|beginoftext|>", "<|mask|>")
DREAM_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


def seeded_weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    """Normal(0, 0.2) draws (norm weights: 1 + that) in sorted-name order from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        draw = torch.randn(shapes[name], generator=g) * 0.2
        out[name] = draw + 1 if "norm" in name else draw
    return out


def llada_config(mask_id: int, eos_id: int, **dims) -> dict:
    """An official LLaDA config.json (the 8B-Instruct keys) with tiny dimensions."""
    d = {**LLADA_DIMS, **dims}
    return {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": d["d_model"],
        "embedding_dropout": 0.0,
        "embedding_size": d["vocab_size"],
        "eos_token_id": eos_id,
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": mask_id,
        "max_sequence_length": 1024,
        "mlp_hidden_size": d["mlp_hidden_size"],
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": d["n_heads"],
        "n_kv_heads": d["n_kv_heads"],
        "n_layers": d["n_layers"],
        "pad_token_id": eos_id,
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 500000.0,
        "scale_logits": False,
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": d["vocab_size"],
        "weight_tying": False,
    }


def llada_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    d, vocab = config["d_model"], config["embedding_size"]
    ff = config["mlp_hidden_size"] if config["mlp_hidden_size"] is not None else config["mlp_ratio"] * d  # as official
    kv = config["n_kv_heads"] * d // config["n_heads"]
    shapes = {
        "model.transformer.wte.weight": (vocab, d),
        "model.transformer.ln_f.weight": (d,),
        "model.transformer.ff_out.weight": (vocab, d),
    }
    for n in range(config["n_layers"]):
        block = f"model.transformer.blocks.{n}."
        shapes.update(
            {
                block + "q_proj.weight": (d, d),
                block + "k_proj.weight": (kv, d),
                block + "v_proj.weight": (kv, d),
                block + "attn_out.weight": (d, d),
                block + "ff_proj.weight": (ff, d),
                block + "up_proj.weight": (ff, d),
                block + "ff_out.weight": (d, ff),
                block + "attn_norm.weight": (d,),
                block + "ff_norm.weight": (d,),
            }
        )
    return shapes


def llada_generation_config(eos_id: int, bos_id: int) -> dict:
    """LLaDA-8B-Instruct's published generation_config.json with the tiny ids."""
    return {
        "_from_model_config": True,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "transformers_version": "4.38.2",
    }


def dream_generation_config(eos_id: int, bos_id: int) -> dict:
    """Dream-v0-Instruct-7B's published generation_config.json (greedy: temperature 0.0) with the tiny ids."""
    return {
        "_from_model_config": True,
        "alg": "origin",
        "alg_temp": None,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "eps": 0.001,
        "mask_token_id": None,
        "output_history": False,
        "pad_token_id": eos_id,
        "steps": 512,
        "temperature": 0.0,
        "top_k": None,
        "top_p": None,
        "transformers_version": "4.46.2",
    }


def dream_config(mask_id: int, eos_id: int, bos_id: int, torch_dtype: str = "float32", **dims) -> dict:
    """An official Dream config.json (the v0-Instruct-7B keys) with tiny dimensions."""
    d = {**DREAM_DIMS, **dims}
    return {
        "_name_or_path": "Dream-org/Dream-v0-Instruct-7B",
        "architectures": ["DreamModel"],
        "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "hidden_act": "silu",
        "hidden_size": d["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": d["intermediate_size"],
        "mask_token_id": mask_id,
        "max_position_embeddings": 1024,
        "max_window_layers": d["num_hidden_layers"],
        "model_type": "Dream",
        "num_attention_heads": d["num_attention_heads"],
        "num_hidden_layers": d["num_hidden_layers"],
        "num_key_value_heads": d["num_key_value_heads"],
        "pad_token_id": eos_id,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.46.2",
        "use_cache": True,
        "use_mrope": False,
        "use_sliding_window": False,
        "vocab_size": d["vocab_size"],
    }


def dream_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    d, ff, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * d // config["num_attention_heads"]
    shapes = {"model.embed_tokens.weight": (vocab, d), "model.norm.weight": (d,), "lm_head.weight": (vocab, d)}
    for n in range(config["num_hidden_layers"]):
        layer = f"model.layers.{n}."
        shapes.update(
            {
                layer + "self_attn.q_proj.weight": (d, d),
                layer + "self_attn.q_proj.bias": (d,),
                layer + "self_attn.k_proj.weight": (kv, d),
                layer + "self_attn.k_proj.bias": (kv,),
                layer + "self_attn.v_proj.weight": (kv, d),
                layer + "self_attn.v_proj.bias": (kv,),
                layer + "self_attn.o_proj.weight": (d, d),
                layer + "mlp.gate_proj.weight": (ff, d),
                layer + "mlp.up_proj.weight": (ff, d),
                layer + "mlp.down_proj.weight": (d, ff),
                layer + "input_layernorm.weight": (d,),
                layer + "post_attention_layernorm.weight": (d,),
            }
        )
    return shapes


def write_llada_tokenizer(directory: Path) -> tuple[int, int]:
    """The embedded character tokenizer saved as LLaDA's is (a fast tokenizer, no mask token); (mask id, eos id)."""
    from gift.embedded_tokenizer import build_embedded_tokenizer

    tokenizer = build_embedded_tokenizer()
    mask_id = tokenizer.mask_token_id
    tokenizer.mask_token = None
    tokenizer.save_pretrained(directory)
    return mask_id, tokenizer.eos_token_id


def write_dream_tokenizer(directory: Path) -> dict[str, int]:
    """Qwen2-style byte-level BPE files (vocab.json, merges.txt) under the hub's DreamTokenizer config."""
    from tokenizers.pre_tokenizers import ByteLevel

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {ch: i for i, ch in enumerate(alphabet)}
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    ids = {tok: len(vocab) + i for i, tok in enumerate(DREAM_SPECIALS)}
    settings = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "additional_special_tokens": ["<|beginoftext|>", "<|mask|>"],
        "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
        "bos_token": "<|beginoftext|>",
        "chat_template": DREAM_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "mask_token": "<|mask|>",
        "model_max_length": 512,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "DreamTokenizer",
        "unk_token": None,
        "added_tokens_decoder": {
            str(i): {
                "content": tok,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for tok, i in ids.items()
        },
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(settings, indent=2))
    (directory / "added_tokens.json").write_text(json.dumps(ids))
    return ids


def write_weights(directory: Path, shapes: dict, seed: int, dtype: torch.dtype) -> None:
    weights = {k: v.to(dtype) for k, v in seeded_weights(shapes, seed).items()}
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})


def write_official_llada(
    directory: Path, seed: int = 0, dtype: torch.dtype = torch.float32, config_overrides: dict | None = None, **dims
) -> Path:
    """A tiny LLaDA checkpoint in the official layout (config.json, generation_config.json, tokenizer, weights)."""
    directory.mkdir(parents=True, exist_ok=True)
    mask_id, eos_id = write_llada_tokenizer(directory)
    config = {**llada_config(mask_id, eos_id, **dims), **(config_overrides or {})}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    # The embedded tokenizer has no BOS: the published file's BOS (126080, one below EOS) is stood for by EOS - 1.
    (directory / "generation_config.json").write_text(json.dumps(llada_generation_config(eos_id, eos_id - 1), indent=4))
    write_weights(directory, llada_shapes(config), seed, dtype)
    return directory


def write_official_dream(
    directory: Path, seed: int = 0, dtype: torch.dtype = torch.float32, config_overrides: dict | None = None, **dims
) -> Path:
    """A tiny Dream checkpoint in the official layout (config.json, generation_config.json, tokenizer, weights)."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = write_dream_tokenizer(directory)
    eos = ids["<|endoftext|>"]
    # Published: bos_token_id = eos_token_id (151643) in both files, while the tokenizer's BOS is <|beginoftext|>.
    config = {
        **dream_config(ids["<|mask|>"], eos, eos, torch_dtype=str(dtype).removeprefix("torch."), **dims),
        **(config_overrides or {}),
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    (directory / "generation_config.json").write_text(json.dumps(dream_generation_config(eos, eos), indent=2))
    write_weights(directory, dream_shapes(config), seed, dtype)
    return directory
