"""Model adapters: the one place that knows how masked-diffusion models differ.

Everything else (objectives, sampler, diffu-GRPO) asks the adapter for the mask id, for logits
aligned so that `logits[:, i]` predicts token `i`, and for an attention mask in the form the model
wants. Token ids of LLaDA live here and nowhere else.

| kind     | mask id                | logits shifted | attention mask                | loaded with            |
|----------|------------------------|----------------|-------------------------------|------------------------|
| embedded | tokenizer.mask_token   | no             | 2-D long (+ position ids)     | AutoModelForCausalLM   |
| llada    | 126336                 | no             | 2-D long                      | AutoModel, remote code |
| dream    | tokenizer.mask_token   | yes (i -> i+1) | 4-D bool (+ position ids)     | AutoModel, remote code |
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

LLADA_MASK_ID = 126336
LLADA_EOS_ID = 126081
LLADA_EOT_ID = 126348

KINDS = ("embedded", "llada", "dream")
REMOTE_CODE_KINDS = ("llada", "dream")
# `config.json` model_type -> adapter kind. A bidirectional Llama is what `gift init-model` writes.
_MODEL_TYPE_TO_KIND = {"llama": "embedded", "llada": "llada", "dream": "dream"}


DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")


def resolve_dtype(dtype: "torch.dtype | str | None") -> "torch.dtype | None":
    """A torch dtype from its name; `auto` is bfloat16 on CUDA and float32 otherwise; None keeps the saved one."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPE_NAMES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_NAMES)}")
    if dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, dtype)


class ModelLoadError(ValueError):
    """A model source that this project cannot load, with the reason and the fix."""


@dataclass(frozen=True)
class ModelAdapter:
    """Per-model facts and the aligned forward pass."""

    kind: str
    mask_token_id: int
    eos_token_id: int
    pad_token_id: int
    shift_logits: bool = False
    attention_mask_format: str = "2d"  # "2d" (0/1 long) or "4d_bool" (Dream)
    pass_position_ids: bool = True

    def model_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> dict:
        """Keyword arguments for `model(**...)`; `attention_mask` is 2-D, 1 = real token."""
        inputs: dict = {"input_ids": input_ids}
        if attention_mask is None:
            return inputs
        mask2d = attention_mask.to(torch.long)
        if self.attention_mask_format == "4d_bool":
            keep = mask2d.bool()
            inputs["attention_mask"] = keep[:, None, :, None] & keep[:, None, None, :]
        else:
            inputs["attention_mask"] = mask2d
        if self.pass_position_ids:
            # Left padding: real tokens start at position 0 whatever the pad length.
            inputs["position_ids"] = (mask2d.cumsum(-1) - 1).clamp(min=0)
        return inputs

    def logits(
        self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of shape (batch, seq, vocab) where position i scores token i."""
        logits = model(**self.model_inputs(input_ids, attention_mask)).logits
        if self.shift_logits:
            # Dream predicts token i+1 at position i; position 0 is never a target (it is prompt).
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits

    def kv_cache_unsupported(self, model: torch.nn.Module, mode: str = "prefix") -> str | None:
        """None if the sampler's block KV cache (`prefix` or `dual`) can run on `model`, else the reason.

        Only the embedded kind has a cache path: a transformers Llama whose forward takes a cache. LLaDA's
        hub code takes none, and Dream's shifted logits would need their own block bookkeeping.
        """
        if self.kind != "embedded" or self.shift_logits:
            return f"no cache path for {self.kind} models"
        base = self.transformers_llama(model)
        if base is None:
            return f"{type(_base_model(model)).__name__} is not a transformers Llama"
        if _cache_kwarg(base) is None:
            return f"{type(base).__name__}.forward takes no cache argument"
        if mode == "dual" and getattr(base.config, "is_causal", True):
            return "the dual cache needs bidirectional attention (is_causal=False)"
        return None

    def transformers_llama(self, model: torch.nn.Module) -> torch.nn.Module | None:
        """The transformers Llama under `model` (through a peft wrapper) for the embedded kind, else None.

        Only there do the project's fast paths (block KV cache, the probe's answer-only LM head) know the
        model's inner layout; LLaDA's and Dream's hub code and Dream's shifted logits keep the plain path.
        """
        if self.kind != "embedded" or self.shift_logits:
            return None
        base = _base_model(model)
        return base if getattr(getattr(base, "config", None), "model_type", None) == "llama" else None


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _cache_kwarg(model: torch.nn.Module) -> str | None:
    """The forward's name for a KV cache: `cache` (transformers >= 5.x) or `past_key_values`."""
    params = inspect.signature(_base_model(model).forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


class KVCache:
    """Keys/values of one block's context, for the sampler's cached steps (`kv_cache: prefix | dual`).

    `fill` runs the full forward at the block's first step and keeps, per layer, the keys/values of the
    positions left of the block (`prefix`) or left and right of it (`dual`), RoPE already applied.
    `logits` then runs only the block (`dual`) or the block and everything right of it (`prefix`) against
    them. Attention is bidirectional and position-free beyond RoPE, so the kept keys can sit in any order
    as long as the 2-D padding mask follows the same order. Exact when nothing they depend on changed:
    always for layer 1 (it reads token embeddings only) and for a causal model's prefix; stale in deeper
    layers of a bidirectional model once the block's tokens change (the approximation Fast-dLLM makes).
    """

    def __init__(self, adapter: ModelAdapter, mode: str):
        if mode not in ("prefix", "dual"):
            raise ValueError(f"unknown kv cache mode {mode!r}; choose prefix or dual")
        self.adapter, self.mode = adapter, mode
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.batch_size = 0

    @property
    def empty(self) -> bool:
        return self.layers is None

    def fill(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             start: int, end: int) -> torch.Tensor:
        """Full-sequence logits (B, L, V); keeps the context's keys/values for the block [start, end)."""
        out = model(**self.adapter.model_inputs(input_ids, attention_mask), use_cache=True)
        cache = out["cache"] if "cache" in out else out["past_key_values"]
        layers = []
        for layer in cache.layers:
            keys, values = layer.keys, layer.values
            if self.mode == "prefix":
                layers.append((keys[:, :, :start], values[:, :, :start]))
            else:
                layers.append((torch.cat([keys[:, :, :start], keys[:, :, end:]], 2),
                               torch.cat([values[:, :, :start], values[:, :, end:]], 2)))
        self.layers, self.batch_size = layers, input_ids.shape[0]
        return out.logits

    def logits(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               start: int, end: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (b, end - start, V) of the block from the kept keys/values (`fill` first).

        `rows`: which of the filled batch's rows `input_ids` holds (None: all of them, in order).
        """
        from transformers import DynamicCache

        if self.layers is None:
            raise RuntimeError("KVCache.logits before fill")
        mask = attention_mask.to(torch.long)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if self.mode == "prefix":
            query, query_pos, order = input_ids[:, start:], positions[:, start:], mask
        else:
            query, query_pos = input_ids[:, start:end], positions[:, start:end]
            order = torch.cat([mask[:, :start], mask[:, end:], mask[:, start:end]], 1)
        # A fresh cache object per call: the forward appends the query's keys to it, never to ours.
        layers = self.layers if rows is None else [(k[rows], v[rows]) for k, v in self.layers]
        past = DynamicCache(ddp_cache_data=layers)
        out = model(input_ids=query, attention_mask=order, position_ids=query_pos, use_cache=True,
                    **{_cache_kwarg(model): past})
        return out.logits[:, : end - start]


def adapter_for(kind: str, tokenizer: PreTrainedTokenizerBase) -> ModelAdapter:
    """The adapter of a model kind, reading what it can from the tokenizer."""
    if kind not in KINDS:
        raise ModelLoadError(f"unknown model_type {kind!r}; known types: {', '.join(KINDS)}")
    if kind == "llada":
        return ModelAdapter("llada", LLADA_MASK_ID, LLADA_EOS_ID, LLADA_EOS_ID, pass_position_ids=False)
    if tokenizer.mask_token_id is None:
        raise ModelLoadError(
            f"the tokenizer ({type(tokenizer).__name__}, {getattr(tokenizer, 'name_or_path', '?')}) has no mask "
            "token; a masked-diffusion model needs one (set tokenizer.mask_token)"
        )
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if eos is None:
        raise ModelLoadError("the tokenizer has no EOS token; the answer tail is filled with EOS")
    if kind == "dream":
        return ModelAdapter("dream", tokenizer.mask_token_id, eos, pad, shift_logits=True,
                            attention_mask_format="4d_bool")
    return ModelAdapter("embedded", tokenizer.mask_token_id, eos, pad)


def read_model_type(name_or_path: str, trust_remote_code: bool = False) -> str:
    """Adapter kind from a local dir's or hub repo's `config.json`, without running remote code."""
    local = Path(name_or_path) / "config.json"
    if local.is_file():
        config = json.loads(local.read_text())
    elif Path(name_or_path).exists():
        raise ModelLoadError(f"{name_or_path} has no config.json: not a model directory")
    else:
        from huggingface_hub import hf_hub_download  # only for hub ids

        try:
            config = json.loads(Path(hf_hub_download(name_or_path, "config.json")).read_text())
        except Exception as err:  # offline, unknown repo, gated...
            raise ModelLoadError(f"could not read config.json of {name_or_path!r} from the hub: {err}") from err
    model_type = str(config.get("model_type", "")).lower()
    kind = _MODEL_TYPE_TO_KIND.get(model_type)
    if kind == "embedded" and config.get("is_causal", True):
        kind = None  # a causal Llama is not a masked-diffusion model
    if kind is None:
        raise ModelLoadError(
            f"{name_or_path}: model_type {config.get('model_type')!r} is not a known masked-diffusion model "
            f"(known: bidirectional llama with is_causal=false, llada, dream). Pass --model_type to override."
        )
    return kind


def load_pretrained(
    name_or_path: str,
    model_type: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelAdapter]:
    """Load a plain (non-checkpoint) model: a local dir or a hub id, embedded, LLaDA or Dream."""
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    kind = model_type or read_model_type(name_or_path)
    if kind in REMOTE_CODE_KINDS and not trust_remote_code:
        raise ModelLoadError(
            f"{name_or_path} is a {kind} model whose modeling code ships on the hub as remote code; "
            "pass --trust_remote_code to run it (never enabled silently)"
        )
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
    adapter = adapter_for(kind, tokenizer)  # fails early on a tokenizer without a mask token
    auto = AutoModel if kind in REMOTE_CODE_KINDS else AutoModelForCausalLM
    dtype = resolve_dtype(dtype)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    model = auto.from_pretrained(name_or_path, trust_remote_code=trust_remote_code, use_safetensors=True, **kwargs)
    if kind == "embedded" and getattr(model.config, "is_causal", True):
        raise ModelLoadError(f"{name_or_path}: config has is_causal=true; a masked-diffusion model must be bidirectional")
    return model, tokenizer, adapter
