"""Model families and adapters: the one place that knows how masked-diffusion models differ.

Everything else (objectives, sampler, diffu-GRPO) asks the adapter for the mask id, for logits
aligned so that `logits[:, i]` predicts token `i`, and for the model's inputs. Each family is ONE
entry of `FAMILIES`: how its official layout is recognised and loaded, where its mask id comes from,
whether its logits are shifted. All three run as native transformers decoders with `is_causal=False`
(gift.models), so the fast paths (sdpa, KV cache, the probe's answer-only head, gradient
checkpointing) apply to each of them.

| family   | official layout         | native form      | mask id                         | logits shifted |
|----------|-------------------------|------------------|---------------------------------|----------------|
| embedded | (is the native form)    | Llama            | tokenizer.mask_token            | no             |
| llada    | model_type `llada`      | Llama            | config mask_token_id (126336)   | no             |
| dream    | model_type `Dream`      | Qwen2            | tokenizer.mask_token            | yes (i -> i+1) |
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from gift.models import FAMILY_KEY, UnsupportedConfigError, dream, llada
from gift.weights_check import load_checked, refuse_nonfinite, refuse_pickle_only

LLADA_MASK_ID = llada.MASK_ID

DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
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
class ModelFamily:
    """Everything that differs between model families, in one entry."""

    name: str
    native_model_type: str  # transformers model_type of the native form
    official_model_type: str | None = None  # config.json model_type of the official hub layout (lower case)
    native_config: Callable[[dict, str], PretrainedConfig] | None = None  # official config.json -> native config
    load_official: Callable[[str | Path, PretrainedConfig, torch.dtype | None], PreTrainedModel] | None = None
    shift_logits: bool = False  # position i scores token i + 1
    mask_id_in_config: bool = False  # the tokenizer has no mask token; config.json says it (with this default)
    default_mask_id: int | None = None
    default_eos_id: int | None = None
    tokenizer_class: str | None = None  # read the tokenizer with this class when the official one is hub code
    prepare: Callable[[PreTrainedModel], None] | None = None  # run on every loaded model (official or native form)


FAMILIES: dict[str, ModelFamily] = {
    "embedded": ModelFamily("embedded", native_model_type="llama"),
    "llada": ModelFamily(
        "llada",
        native_model_type="llama",
        official_model_type=llada.OFFICIAL_MODEL_TYPE,
        native_config=llada.native_config,
        load_official=llada.load_official,
        mask_id_in_config=True,
        default_mask_id=llada.MASK_ID,
        default_eos_id=llada.EOS_ID,
        prepare=llada.prepare_native,
    ),
    "dream": ModelFamily(
        "dream",
        native_model_type="qwen2",
        official_model_type=dream.OFFICIAL_MODEL_TYPE,
        native_config=dream.native_config,
        load_official=dream.load_official,
        shift_logits=True,
        tokenizer_class=dream.TOKENIZER_CLASS,
    ),
}
KINDS = tuple(FAMILIES)


def family(kind: str) -> ModelFamily:
    """The registry entry of a model kind; an unknown kind is a load error naming the known ones."""
    if kind not in FAMILIES:
        raise ModelLoadError(f"unknown model_type {kind!r}; known types: {', '.join(KINDS)}")
    return FAMILIES[kind]


@dataclass(frozen=True)
class ModelAdapter:
    """Per-model facts and the aligned forward pass."""

    kind: str
    mask_token_id: int
    eos_token_id: int
    pad_token_id: int
    shift_logits: bool = False
    pass_position_ids: bool = True
    # False reproduces official LLaDA, whose attention ignores padding (a padded row then differs from itself alone).
    honour_attention_mask: bool = True
    decodable_vocab: int | None = None  # ids from here on are padding rows of the output layer: never sampled

    def model_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> dict:
        """Keyword arguments for `model(**...)`; `attention_mask` is 2-D, 1 = real token."""
        inputs: dict = {"input_ids": input_ids}
        if attention_mask is None or not self.honour_attention_mask:
            return inputs
        mask2d = attention_mask.to(torch.long)
        inputs["attention_mask"] = mask2d
        if self.pass_position_ids:
            # Left padding: real tokens start at position 0 whatever the pad length.
            inputs["position_ids"] = (mask2d.cumsum(-1) - 1).clamp(min=0)
        return inputs

    def align(self, logits: torch.Tensor) -> torch.Tensor:
        """Model output realigned so that position i scores token i."""
        if not self.shift_logits:
            return logits
        # Dream predicts token i+1 at position i; position 0 is never a target (it is prompt).
        return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)

    def logits(
        self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of shape (batch, seq, vocab) where position i scores token i."""
        return self.align(model(**self.model_inputs(input_ids, attention_mask)).logits)

    def forbid_unproposable(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits` (out of place: they may be a view) with the ids a sampler must never propose at -inf, in one
        copy: the mask token, and the padding rows of the output layer that the tokenizer cannot decode."""
        vocab = logits.shape[-1]
        ids = [self.mask_token_id] if 0 <= self.mask_token_id < vocab else []
        if self.decodable_vocab is not None and vocab > self.decodable_vocab:
            ids += range(self.decodable_vocab, vocab)
        return logits.index_fill(-1, torch.tensor(ids, device=logits.device), float("-inf")) if ids else logits

    def kv_cache_unsupported(self, model: torch.nn.Module, mode: str = "prefix") -> str | None:
        """None if the sampler's block KV cache (`prefix` or `dual`) can run on `model`, else the reason."""
        base = self.native_decoder(model)
        if base is None:
            return f"{type(_base_model(model)).__name__} is not a native transformers decoder"
        if not self.honour_attention_mask:
            return "the cache path always honours the attention mask (honour_attention_mask is false)"
        if cache_kwarg(base) is None:
            return f"{type(base).__name__}.forward takes no cache argument"
        if mode == "dual" and getattr(base.config, "is_causal", True):
            return "the dual cache needs bidirectional attention (is_causal=False)"
        return None

    def native_decoder(self, model: torch.nn.Module) -> torch.nn.Module | None:
        """The native transformers decoder under `model` (through a peft wrapper), else None.

        Only there do the project's fast paths (block KV cache, the probe's answer-only LM head) know the
        model's inner layout (`.model` body, `lm_head`).
        """
        base = _base_model(model)
        model_type = getattr(getattr(base, "config", None), "model_type", None)
        return base if model_type == family(self.kind).native_model_type else None


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model under a peft wrapper (the model itself otherwise)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def cache_kwarg(model: torch.nn.Module) -> str | None:
    """The forward's name for a KV cache: `cache` (transformers >= 5.x) or `past_key_values`."""
    params = inspect.signature(_base_model(model).forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def _setting(config, key: str, default=None):
    """`key` of a config given as a dict or a transformers config object (default when absent or None)."""
    value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
    return default if value is None else value


def adapter_for(kind: str, tokenizer: PreTrainedTokenizerBase | None, config=None) -> ModelAdapter:
    """The adapter of a model kind, from its tokenizer and (LLaDA's mask id, mask option) its config."""
    fam = family(kind)
    config = config if config is not None else {}
    decodable = len(tokenizer) if tokenizer is not None else None
    honour = bool(_setting(config, "honour_attention_mask", True))
    if fam.mask_id_in_config:
        eos = _setting(config, "eos_token_id", fam.default_eos_id)
        return ModelAdapter(
            kind,
            int(_setting(config, "mask_token_id", fam.default_mask_id)),
            eos,
            _setting(config, "sequence_pad_token_id", _setting(config, "pad_token_id", eos)),
            shift_logits=fam.shift_logits,
            honour_attention_mask=honour,
            decodable_vocab=decodable,
        )
    if tokenizer.mask_token_id is None:
        raise ModelLoadError(
            f"the tokenizer ({type(tokenizer).__name__}, {getattr(tokenizer, 'name_or_path', '?')}) has no mask "
            "token; a masked-diffusion model needs one (set tokenizer.mask_token)"
        )
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if eos is None:
        raise ModelLoadError("the tokenizer has no EOS token; the answer tail is filled with EOS")
    return ModelAdapter(
        kind,
        tokenizer.mask_token_id,
        eos,
        pad,
        shift_logits=fam.shift_logits,
        honour_attention_mask=honour,
        decodable_vocab=decodable,
    )


def read_config(name_or_path: str) -> dict:
    """`config.json` of a local dir or hub repo, without running remote code."""
    local = Path(name_or_path) / "config.json"
    if local.is_file():
        return json.loads(local.read_text())
    if Path(name_or_path).exists():
        raise ModelLoadError(f"{name_or_path} has no config.json: not a model directory")
    from huggingface_hub import hf_hub_download  # only for hub ids

    try:
        return json.loads(Path(hf_hub_download(name_or_path, "config.json")).read_text())
    except Exception as err:  # offline, unknown repo, gated...
        raise ModelLoadError(f"could not read config.json of {name_or_path!r} from the hub: {err}") from err


def kind_of_config(config: dict, source: str) -> str:
    """Family of a `config.json`: its native marker, an official model_type, or a bidirectional Llama."""
    marked = config.get(FAMILY_KEY)
    if marked in FAMILIES:
        return marked
    model_type = str(config.get("model_type", "")).lower()
    for name, fam in FAMILIES.items():
        if fam.official_model_type == model_type:
            return name
    if model_type == FAMILIES["embedded"].native_model_type and not config.get("is_causal", True):
        return "embedded"
    known = ", ".join(
        [
            "bidirectional llama with is_causal=false",
            *(f.official_model_type for f in FAMILIES.values() if f.official_model_type),
        ]
    )
    raise ModelLoadError(
        f"{source}: model_type {config.get('model_type')!r} is not a known masked-diffusion model "
        f"(known: {known}). Pass --model_type to override."
    )


def read_model_type(name_or_path: str, trust_remote_code: bool = False) -> str:
    """Adapter kind from a local dir's or hub repo's `config.json`, without running remote code."""
    return kind_of_config(read_config(name_or_path), name_or_path)


def _is_official(fam: ModelFamily, config: dict) -> bool:
    return fam.official_model_type is not None and str(config.get("model_type", "")).lower() == fam.official_model_type


def _local_dir(name_or_path: str) -> str:
    """A local directory for `name_or_path` (hub ids are downloaded: the native loaders read files)."""
    if Path(name_or_path).exists():
        return name_or_path
    from huggingface_hub import snapshot_download

    return snapshot_download(name_or_path, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])


# A tokenizer's vocabulary lives in one of these (fast tokenizers, sentencepiece, BPE/WordPiece, tiktoken).
_VOCAB_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "*.tiktoken")


def load_tokenizer(directory: str, kind: str | None = None) -> PreTrainedTokenizerBase:
    """The tokenizer of a model directory, never through hub code.

    The class `tokenizer_config.json` names is used when transformers has it (so an `auto_map` in the
    model's config.json is never consulted); an official class that is hub code (Dream's) is replaced
    by the family's transformers class, which reads the same files (`kind` None: the one config.json names).
    """
    import transformers

    if kind is None and (Path(directory) / "config.json").is_file():
        kind = kind_of_config(read_config(directory), directory)

    local = Path(directory)
    if local.is_dir() and not any(any(local.glob(pattern)) for pattern in _VOCAB_FILES):
        # transformers would blame a missing sentencepiece / tiktoken install instead
        raise ModelLoadError(
            f"{directory}: no tokenizer files ({', '.join(_VOCAB_FILES[:3])}...): copy the model's "
            "tokenizer files into it"
        )
    settings = Path(directory) / "tokenizer_config.json"
    named = json.loads(settings.read_text()).get("tokenizer_class") if settings.is_file() else None
    cls = getattr(transformers, named, None) if named else None
    if cls is None and named:
        cls = getattr(transformers, family(kind).tokenizer_class or "", None) if kind else None
    return (cls or transformers.AutoTokenizer).from_pretrained(directory)


def load_pretrained(
    name_or_path: str,
    model_type: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype | str | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, ModelAdapter]:
    """Load a plain (non-checkpoint) model, official hub layout or native form, as a native model."""
    from transformers import AutoModelForCausalLM

    config = read_config(name_or_path)
    kind = model_type or kind_of_config(config, name_or_path)
    fam = family(kind)
    official = _is_official(fam, config)
    if official and trust_remote_code:
        raise ModelLoadError(
            f"{name_or_path}: the hub code of {kind} does not run on the pinned transformers; this "
            f"project loads it natively (gift.models.{kind}): drop trust_remote_code"
        )
    try:
        native = fam.native_config(config, name_or_path) if official else None
    except UnsupportedConfigError as err:
        raise ModelLoadError(str(err)) from err
    directory = _local_dir(name_or_path)
    refuse_pickle_only(directory)
    tokenizer = load_tokenizer(directory, kind)
    adapter = adapter_for(kind, tokenizer, config)  # fails early on a tokenizer without a mask token
    dtype = resolve_dtype(dtype)
    if official:
        try:
            model = fam.load_official(directory, native, dtype)
        except UnsupportedConfigError as err:
            raise ModelLoadError(str(err)) from err
    else:
        kwargs = {"dtype": dtype} if dtype is not None else {}
        model = load_checked(AutoModelForCausalLM, directory, **kwargs)
    if model.config.model_type != fam.native_model_type or getattr(model.config, "is_causal", True):
        raise ModelLoadError(
            f"{name_or_path}: a {kind} model must be a bidirectional {fam.native_model_type} "
            f"(is_causal=false); config.json has model_type {model.config.model_type!r}, "
            f"is_causal {getattr(model.config, 'is_causal', True)}"
        )
    if fam.prepare is not None:
        fam.prepare(model)
    refuse_nonfinite(directory, model)
    return model, tokenizer, adapter
