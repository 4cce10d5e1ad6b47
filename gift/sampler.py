"""The diffusion sampler shared by evaluation, diffu-GRPO rollouts and chat/demo code.

LLaDA-style semi-autoregressive masked decoding (docs/algorithms.md §4): start from
`[prompt, M x gen_length]`, split the generated part into blocks of `block_length` and decode them left
to right with `steps / num_blocks` steps each. Every step:

1. one forward pass through the model adapter (logits aligned so position i scores token i; Dream's
   shift and mask formats are the adapter's business), with classifier-free guidance when asked;
2. a proposal `x0` for every position of the current block: argmax, or Gumbel-max in fp64 when
   `temperature > 0` (the mask token itself is never proposed);
3. a confidence per position (`low_confidence`, `random`, `entropy`, `margin`); committed positions get
   -inf and positions right of the block are never looked at;
4. commit the k most confident masked positions, k from `commit_schedule` (the block's masked count split
   evenly over its steps, the remainder going to the first steps). Committed tokens never change.

Options make decoding cheaper (all off by default; off, the output is token-identical to the plain
sampler). Parallel decoding by confidence (Fast-dLLM's rule): with `threshold` every masked position of the
block whose confidence exceeds it is committed, at least one per step, and a block ends when it is fully
decoded (`factor` is the variant that commits the n most confident while the n-th exceeds
`1 - factor / (n + 1)`). A block-level KV cache (`kv_cache`): the first step of a block runs the full
forward and keeps the keys/values of the positions left of the block (`prefix`), or left and right of it
(`dual`); the block's later steps run only the block (and, for `prefix`, what follows it) against those.
With bidirectional attention the kept keys/values go stale as the block is decoded, so the cache is an
approximation (exact only for a one-layer model or a causal one; see docs/sampler.md). `lookahead` lets a
threshold call also commit confident tokens of the next blocks, and `eos_stop` ends a row once the text
before its first EOS is decoded (its remaining masks become EOS).

Prompts are left-padded with a real attention mask, so a prompt decodes the same (greedy) alone or in a
batch with prompts of other lengths. Randomness comes only from the caller's `torch.Generator`.

    model, tokenizer = build_embedded_model("tiny")
    sampler = DiffusionSampler(model, adapter_for("embedded", tokenizer), SamplerConfig(gen_length=64))
    out = sampler.generate_chat(["What is 2 + 3?"], tokenizer, prefill="<reasoning>")
    texts = sampler.decode(out, tokenizer)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from gift.adapters import ModelAdapter
from gift.data import prompt_token_ids
from gift.kv_cache import KVCache
from gift.options import (
    COUNT,
    NON_NEGATIVE,
    NON_NEGATIVE_COUNT,
    OPEN_UNIT,
    POSITIVE,
    check_block_split,
    check_option,
    check_rule,
)

logger = logging.getLogger(__name__)

REMASKING = ("low_confidence", "random", "entropy", "margin")
KV_CACHE_MODES = ("none", "prefix", "dual")
MIN_COMMITS = ("one", "schedule")

ChatPrompt = str | Sequence[Mapping[str, str]]


# The rules across the sampler's options: `check(options) -> message or None`, on anything that has the
# options under their names (`SamplerConfig`, stage two's config: `check_config` runs them there).
def _one_parallel_rule(c: Any) -> str | None:
    if c.threshold is not None and c.factor is not None:
        return f"set threshold ({c.threshold}) or factor ({c.factor}), not both"
    return None


def _parallel_needs_confidence(c: Any) -> str | None:
    if (c.threshold is not None or c.factor is not None) and c.remasking != "low_confidence":
        return (
            "threshold/factor decoding compares probabilities: it needs remasking="
            f"'low_confidence', got {c.remasking!r}"
        )
    return None


def _lookahead_needs_threshold(c: Any) -> str | None:
    return (
        f"lookahead={c.lookahead} commits by threshold: set threshold" if c.lookahead and c.threshold is None else None
    )


SAMPLER_CHECKS = (_one_parallel_rule, _parallel_needs_confidence, _lookahead_needs_threshold)


@dataclass(frozen=True)
class SamplerConfig:
    """Decoding settings.

    Lengths:
        gen_length: tokens generated after the prompt; a multiple of `block_length`.
        block_length: tokens per semi-autoregressive block (`block_length == gen_length`: one block).
        steps: denoising steps in total; a multiple of the number of blocks, split evenly over them.
    Proposal and order:
        temperature: 0 for greedy argmax; > 0 samples `x0` by Gumbel-max on `logits / temperature` (fp64).
        remasking: how the positions to commit are chosen. `low_confidence`: softmax probability of the
            proposed token (of the untempered logits, as in LLaDA); `random`: uniform scores;
            `entropy`: minus the entropy of the position's distribution; `margin`: top-1 minus top-2
            probability.
        cfg_scale: classifier-free guidance strength s; 0 disables it. Guided logits are
            `un + (s + 1) * (cond - un)` where `un` sees the prompt masked.
    Parallel decoding (Fast-dLLM; `low_confidence` only; `steps` is then unused):
        threshold: commit every masked position of the block whose confidence is > threshold, and at
            least the most confident one; a block runs until it is fully decoded (<= block_length calls).
        factor: commit the n most confident positions, n the largest count whose i-th most confident
            (i <= n) has confidence >= 1 - factor / (i + 1); at least one. Not together with threshold.
        min_commit: the floor of a parallel call: `one` (Fast-dLLM; a block may take up to block_length
            calls) or `schedule` (at least the fixed schedule's count, so never more calls than `steps`).
        lookahead: with `threshold`, each call also commits the masked positions of the next `lookahead`
            blocks whose confidence is > threshold (no floor there); blocks still finish left to right,
            and a block decoded ahead takes no call of its own. 0 = off.
    Early stop (any decoder):
        eos_stop: once every position before a row's first committed EOS is decoded, its remaining masks
            become EOS and the row takes no further call. Its decoded text (cut at the first EOS) is
            what it would have been without the stop (greedy); only tokens after that EOS differ.
    Cache:
        kv_cache: `none`, `prefix` (keys/values of the positions left of the block, refreshed at every
            block's first step) or `dual` (left and right of the block). Approximate for bidirectional
            models; a model that cannot take a cache decodes without one, with a log line.
    Output:
        return_history: keep the completion after every step (`SamplerOutput.history`).
    """

    # Each option's range rule or choices is declared here, once: `validate` checks them, and so do the
    # configs that expose the option under its name (`sampler_rules`; stage two, `gift eval`).
    gen_length: int = field(default=128, metadata={"rule": COUNT})
    block_length: int = field(default=32, metadata={"rule": COUNT})
    steps: int = field(default=64, metadata={"rule": COUNT})
    temperature: float = field(default=0.0, metadata={"rule": NON_NEGATIVE})
    remasking: str = field(default="low_confidence", metadata={"choices": REMASKING})
    cfg_scale: float = field(default=0.0, metadata={"rule": NON_NEGATIVE})
    threshold: float | None = field(default=None, metadata={"rule": OPEN_UNIT})
    factor: float | None = field(default=None, metadata={"rule": POSITIVE})
    kv_cache: str = field(default="none", metadata={"choices": KV_CACHE_MODES})
    min_commit: str = field(default="one", metadata={"choices": MIN_COMMITS})
    lookahead: int = field(default=0, metadata={"rule": NON_NEGATIVE_COUNT})
    eos_stop: bool = False
    return_history: bool = False

    def __post_init__(self) -> None:
        # Frozen and checked once here: a sampler never re-checks its config per call.
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` naming the offending values."""
        for option in fields(self):
            value = getattr(self, option.name)
            if "rule" in option.metadata and value is not None:
                check_rule(option.name, value, option.metadata["rule"], flag=False)
            if "choices" in option.metadata:
                check_option(option.name, value, option.metadata["choices"])
            if option.name == "steps":  # the lengths are known good: the split, before the other options
                check_block_split(self.gen_length, self.block_length, self.steps)
        for check in SAMPLER_CHECKS:
            message = check(self)
            if message:
                raise ValueError(message)

    @property
    def parallel(self) -> bool:
        """Commit counts chosen by confidence (threshold or factor) instead of the fixed schedule."""
        return self.threshold is not None or self.factor is not None

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        return self.steps // self.num_blocks


@dataclass
class SamplerOutput:
    """What `DiffusionSampler.generate` returns.

    sequences: (B, prompt_length + gen_length), the left-padded prompts followed by the completions.
    completion_ids: (B, gen_length), `sequences[:, prompt_length:]`.
    prompt_length: length of the padded prompt part.
    attention_mask: (B, prompt_length + gen_length), 0 on left padding; what a training forward on
        `sequences` (diffu-GRPO) should use.
    history: with `return_history`, the completion (B, gen_length) after each step (one entry per
        forward pass: `steps` of them without threshold/factor).
    model_calls: (B,) forward passes that decoded something in each sequence: `steps` for every row of
        the fixed schedule; with threshold/factor or eos_stop the passes in which the row's current block
        still had a masked position (a row whose block is done sits out the batch's remaining passes of it).
    forward_passes: forward passes run for the whole batch (a guided pass counts once).
    kv_cache: the cache mode actually used (`none` after a fallback).
    """

    sequences: Tensor
    completion_ids: Tensor
    prompt_length: int
    attention_mask: Tensor
    history: list[Tensor] | None = None
    model_calls: Tensor | None = None
    forward_passes: int = 0
    kv_cache: str = "none"


@dataclass
class _Canvas:
    """The state of one `generate` call: the sequences being decoded and what is counted on the way."""

    x: Tensor
    attn: Tensor
    prompt_len: int
    uncond_prompt: Tensor | None
    calls: Tensor
    history: list[Tensor] | None
    passes: int = 0

    def record(self, active: Tensor | None) -> None:
        """Count one forward pass (for the rows that took part: all of them when `active` is None)."""
        self.calls += 1 if active is None else active.long()
        self.passes += 1
        if self.history is not None:
            self.history.append(self.x[:, self.prompt_len :].clone())

    def output(self, cache_mode: str) -> SamplerOutput:
        x = self.x
        return SamplerOutput(
            sequences=x,
            completion_ids=x[:, self.prompt_len :],
            prompt_length=self.prompt_len,
            attention_mask=self.attn,
            history=self.history,
            model_calls=self.calls,
            forward_passes=self.passes,
            kv_cache=cache_mode,
        )


@dataclass
class _BlockCache:
    """A block's KV cache and the batch rows it was filled with (None: all of them).

    With eos_stop or lookahead a row may be done before its block's first pass, so the cache can hold
    fewer rows than the batch; rows only ever leave a block's passes, never join them.
    """

    kv: KVCache
    rows: Tensor | None = None

    def index(self, rows: Tensor | None, guided: bool) -> Tensor | None:
        """Where the batch rows `rows` sit in the cache (None: all its rows, in order)."""
        if rows is None:
            return None
        local = rows if self.rows is None else torch.searchsorted(self.rows, rows)
        if guided:  # the cache holds [cond; uncond]
            local = torch.cat([local, local + self.kv.batch_size // 2])
        return local


def close_answered(completion: Tensor, eos_id: int, mask_id: int) -> Tensor:
    """Fill in place every masked position of a row whose first EOS has only decoded tokens before it.

    Such a row's text (cut at the first EOS) can no longer change, so its remaining masks become EOS
    and it needs no further pass. (B, G) -> (B,) bool: the rows that are closed.
    """
    is_eos, is_mask = completion == eos_id, completion == mask_id
    first_eos = torch.where(is_eos.any(1), is_eos.int().argmax(1), completion.shape[1])
    before = torch.arange(completion.shape[1], device=completion.device) < first_eos[:, None]
    closed = is_eos.any(1) & ~(is_mask & before).any(1)
    completion.masked_fill_(closed[:, None] & is_mask, eos_id)
    return closed


def commit_schedule(masked_count: Tensor, steps: int) -> Tensor:
    """Tokens to commit at each step of a block: (B,) masked counts -> (B, steps).

    The even split with the remainder going to the first steps: 4 over 3 steps is 2, 1, 1.
    """
    base = torch.div(masked_count, steps, rounding_mode="floor")
    remainder = masked_count - base * steps
    step = torch.arange(steps, device=masked_count.device)
    return base[:, None] + (step[None, :] < remainder[:, None]).long()


def parallel_commit_count(conf: Tensor, threshold: float | None = None, factor: float | None = None) -> Tensor:
    """Tokens to commit this step by confidence, (B, block) -> (B,); -inf marks positions not to decode.

    threshold: the number of confidences > threshold, at least 1. factor: the largest n such that the
    i-th highest confidence is >= 1 - factor / (i + 1) for every i <= n, at least 1. Rows with nothing
    left to decode get 0.
    """
    available = torch.isfinite(conf).sum(1)
    if threshold is not None:
        count = (conf > threshold).sum(1)
    else:
        ranked = conf.sort(dim=1, descending=True).values
        i = torch.arange(1, conf.shape[1] + 1, device=conf.device, dtype=conf.dtype)
        count = (ranked >= 1 - factor / (i + 1)).long().cumprod(1).sum(1)
    return torch.minimum(count.clamp_min(1), available)


def encode_chat_prompts(tokenizer, prompts: Sequence[ChatPrompt], prefill: str | None = None) -> list[list[int]]:
    """Token ids of chat prompts, ready for `generate`.

    Each prompt is a string (one user turn) or a list of `{"role", "content"}` messages. The chat template
    is applied with `add_generation_prompt=True`, then `prefill` (e.g. `"<reasoning>"`) is appended; the
    prefill belongs to the prompt, so it is not part of the decoded completion.
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of prompts, not one string")
    return [prompt_token_ids(tokenizer, prompt, prefill=prefill) for prompt in prompts]


class DiffusionSampler:
    """Semi-autoregressive masked-diffusion decoding through a `ModelAdapter`."""

    def __init__(self, model: torch.nn.Module, adapter: ModelAdapter, config: SamplerConfig | None = None):
        self.model = model
        self.adapter = adapter
        self.config = config or SamplerConfig()
        self._cache_warned = False

    # ------------------------------------------------------------------ inputs

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters (CPU for a parameterless stand-in)."""
        param = next(self.model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def _left_pad(self, prompt_ids, attention_mask) -> tuple[Tensor, Tensor]:
        """(B, P) left-padded prompts and their 0/1 attention mask on the model's device."""
        device = self.device
        if isinstance(prompt_ids, Tensor):
            if prompt_ids.dim() != 2:
                raise ValueError(f"prompt_ids must be (batch, length), got shape {tuple(prompt_ids.shape)}")
            ids = prompt_ids.to(device=device, dtype=torch.long)
            mask = (
                torch.ones_like(ids) if attention_mask is None else attention_mask.to(device=device, dtype=torch.long)
            )
            if mask.shape != ids.shape:
                raise ValueError(f"attention_mask shape {tuple(mask.shape)} != prompt_ids shape {tuple(ids.shape)}")
            if (mask[:, 1:] < mask[:, :-1]).any():
                raise ValueError("prompts must be LEFT-padded (attention_mask 0...0 1...1 in every row)")
            return ids, mask
        if attention_mask is not None:
            raise ValueError("attention_mask is only taken with a tensor of prompt_ids; lists are padded here")
        rows = [list(map(int, row)) for row in prompt_ids]
        if not rows:
            raise ValueError("no prompts given")
        length = max(len(row) for row in rows)
        ids = torch.full((len(rows), length), self.adapter.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, length - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, length - len(row) :] = 1
        return ids.to(device), mask.to(device)

    # ------------------------------------------------------------------ one step

    def _block_logits(
        self,
        x: Tensor,
        attn: Tensor,
        start: int,
        end: int,
        uncond_prompt: Tensor | None,
        cache: _BlockCache | None = None,
        rows: Tensor | None = None,
    ) -> Tensor:
        """Float32 logits (b, end - start, V) of the current block (and lookahead), guided when `cfg_scale > 0`.

        `cache`: the block's KV cache; empty at the block's first step (a full forward fills it), used
        from then on (only the block, or the block and what follows it, is run). `rows`: the batch rows
        that `x`, `attn` and `uncond_prompt` hold (None: all).
        """
        if uncond_prompt is not None:
            # One forward over [cond; uncond]: the unconditional copy sees its prompt masked.
            uncond = torch.cat([uncond_prompt, x[:, uncond_prompt.shape[1] :]], dim=1)
            x, attn = torch.cat([x, uncond]), torch.cat([attn, attn])
        if cache is None:
            logits = self.adapter.logits(self.model, x, attn)[:, start:end]
        elif cache.kv.empty:
            logits = cache.kv.fill(self.model, x, attn, start, end)[:, start:end]
            cache.rows = rows
        else:
            logits = cache.kv.logits(self.model, x, attn, start, end, cache.index(rows, uncond_prompt is not None))
        logits = logits.float()
        if uncond_prompt is None:
            return logits
        cond, un = logits.chunk(2)
        return un + (self.config.cfg_scale + 1.0) * (cond - un)

    def _cache_mode(self) -> str:
        """The configured cache mode if the model can take it, else `none` (logged once per sampler)."""
        mode = self.config.kv_cache
        if mode == "none":
            return mode
        reason = self.adapter.kv_cache_unsupported(self.model, mode)
        if reason is None:
            return mode
        if not self._cache_warned:
            logger.warning("kv_cache=%s is not available (%s); decoding without a cache", mode, reason)
            self._cache_warned = True
        return "none"

    def _propose(self, logits: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Proposal `x0` and confidence, both (B, block), from block logits (B, block, V)."""
        cfg = self.config
        logits = self.adapter.forbid_unproposable(logits)  # never the mask token, nor undecodable padding rows
        if cfg.temperature > 0:
            # Gumbel-max in fp64: argmax(logits / T + G) samples softmax(logits / T).
            uniform = torch.rand(
                logits.shape,
                generator=generator,
                dtype=torch.float64,
                device=generator.device if generator is not None else logits.device,
            )
            gumbel = -torch.log(-torch.log(uniform.to(logits.device).clamp_min(1e-300)))
            x0 = (logits.double() / cfg.temperature + gumbel).argmax(-1)
        else:
            x0 = logits.argmax(-1)

        if cfg.remasking == "random":
            conf = torch.rand(
                x0.shape,
                generator=generator,
                dtype=torch.float64,
                device=generator.device if generator is not None else x0.device,
            )
            return x0, conf.to(x0.device)
        log_probs = torch.log_softmax(logits, dim=-1)
        if cfg.remasking == "low_confidence":
            conf = log_probs.gather(-1, x0[..., None]).squeeze(-1).exp()
        elif cfg.remasking == "entropy":
            probs = log_probs.exp()
            conf = (probs * log_probs).nan_to_num(0.0).sum(-1)  # minus the entropy
        else:  # margin
            top2 = log_probs.topk(2, dim=-1).values.exp()
            conf = top2[..., 0] - top2[..., 1]
        return x0, conf.double()

    @staticmethod
    def _select(conf: Tensor, k: Tensor) -> Tensor:
        """Boolean (B, block): the k[b] highest scores of each row (ties go to the leftmost)."""
        order = torch.sort(conf, dim=1, descending=True, stable=True).indices
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(conf.shape[1], device=conf.device).expand_as(order))
        return ranks < k[:, None]

    # ------------------------------------------------------------------ public

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]] | Tensor,
        attention_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> SamplerOutput:
        """Decode `gen_length` tokens after each prompt.

        `prompt_ids`: lists of token ids of any lengths (left-padded here), or a (B, P) tensor that is
        already left-padded, with its `attention_mask` (None: no padding). `generator` drives all
        sampling (Gumbel noise, `random` remasking); global RNGs are never touched.
        Runs under `no_grad` (not `inference_mode`) so the returned ids can feed a training forward.
        """
        canvas = self._canvas(*self._left_pad(prompt_ids, attention_mask))
        cache_mode = self._cache_mode()
        modes = [(module, module.training) for module in self.model.modules()]
        self.model.eval()
        try:
            for block in range(self.config.num_blocks):
                self._decode_block(canvas, block, cache_mode, generator)
        finally:
            for module, training in modes:
                module.training = training
        return canvas.output(cache_mode)

    def _canvas(self, prompt: Tensor, prompt_mask: Tensor) -> _Canvas:
        """`[prompt, M x gen_length]`, its attention mask and, with guidance, the masked-prompt copy."""
        cfg, mask_id = self.config, self.adapter.mask_token_id
        batch, device = prompt.shape[0], prompt.device
        x = torch.cat([prompt, torch.full((batch, cfg.gen_length), mask_id, dtype=torch.long, device=device)], 1)
        attn = torch.cat([prompt_mask, torch.ones((batch, cfg.gen_length), dtype=torch.long, device=device)], 1)
        uncond_prompt = None
        if cfg.cfg_scale > 0:
            uncond_prompt = torch.where(prompt_mask.bool(), torch.full_like(prompt, mask_id), prompt)
        return _Canvas(
            x,
            attn,
            prompt.shape[1],
            uncond_prompt,
            torch.zeros(batch, dtype=torch.long, device=device),
            [] if cfg.return_history else None,
        )

    def _decode_block(self, canvas: _Canvas, block: int, cache_mode: str, generator: torch.Generator | None) -> None:
        """Run the passes of one block until its schedule is spent or (parallel, eos_stop) it is decoded."""
        cfg = self.config
        start = canvas.prompt_len + block * cfg.block_length
        end = start + cfg.block_length
        # The positions a pass scores: the block, plus `lookahead` blocks that only take confident commits.
        window_end = min(end + cfg.lookahead * cfg.block_length, canvas.x.shape[1])
        schedule = commit_schedule((canvas.x[:, start:end] == self.adapter.mask_token_id).sum(1), cfg.steps_per_block)
        cache = None if cache_mode == "none" else _BlockCache(KVCache(self.adapter, cache_mode))
        # Fixed schedule: steps_per_block passes. By confidence: until the block is decoded, which takes at
        # most block_length passes since every pass commits at least one of its tokens per row (at most
        # steps_per_block with min_commit=schedule: each pass commits >= the schedule).
        last = cfg.block_length if cfg.parallel and cfg.min_commit == "one" else cfg.steps_per_block
        for step in range(last):
            floor = schedule[:, step] if step < schedule.shape[1] else None
            if not self._step(canvas, start, end, window_end, floor, cache, generator):
                break

    def _step(
        self,
        canvas: _Canvas,
        start: int,
        end: int,
        window_end: int,
        floor: Tensor | None,
        cache: _BlockCache | None,
        generator: torch.Generator | None,
    ) -> bool:
        """One forward pass and its commits; False (and no pass) when no row has a mask left in the block."""
        cfg, mask_id = self.config, self.adapter.mask_token_id
        rows, active = None, None
        if cfg.parallel or cfg.eos_stop:
            # Rows whose block is done sit this pass out: the forward runs on the rest only.
            active = (canvas.x[:, start:end] == mask_id).any(1)
            if not active.any():
                return False
            if not active.all():
                rows = active.nonzero().squeeze(1)

        def sub(t: Tensor | None) -> Tensor | None:
            return t if rows is None or t is None else t[rows]

        x = sub(canvas.x)
        logits = self._block_logits(x, sub(canvas.attn), start, window_end, sub(canvas.uncond_prompt), cache, rows)
        x0, conf = self._propose(logits, generator)
        window = x[:, start:window_end]
        masked = window == mask_id
        commit = self._commit(conf.masked_fill(~masked, float("-inf")), masked, end - start, sub(floor))
        if rows is None:
            canvas.x[:, start:window_end] = torch.where(commit, x0, window)
        else:
            canvas.x[rows, start:window_end] = torch.where(commit, x0, window)
        if cfg.eos_stop:
            close_answered(canvas.x[:, canvas.prompt_len :], self.adapter.eos_token_id, mask_id)
        canvas.record(active)
        return True

    def _commit(self, conf: Tensor, masked: Tensor, block: int, floor: Tensor | None) -> Tensor:
        """Boolean (b, window): what this pass commits. conf is -inf where nothing is left to decode.

        The block's first `block` positions take the schedule's count (fixed) or the confidence rule's
        (parallel, at least the floor); lookahead positions right of the block take only confident tokens.
        """
        cfg = self.config
        block_conf = conf[:, :block]
        if cfg.parallel:
            count = parallel_commit_count(block_conf, cfg.threshold, cfg.factor)
            if cfg.min_commit == "schedule":
                count = torch.maximum(count, floor)
        else:
            count = floor
        commit = self._select(block_conf, count) & masked[:, :block]
        if conf.shape[1] == block:
            return commit
        return torch.cat([commit, conf[:, block:] > cfg.threshold], 1)

    def generate_chat(
        self,
        prompts: Sequence[ChatPrompt],
        tokenizer,
        prefill: str | None = None,
        generator: torch.Generator | None = None,
    ) -> SamplerOutput:
        """Apply the chat template (+ `prefill`) to strings or message lists, left-pad and generate."""
        return self.generate(encode_chat_prompts(tokenizer, prompts, prefill), generator=generator)

    def decode(self, output: SamplerOutput, tokenizer, skip_special_tokens: bool = True) -> list[str]:
        """Completion texts, each cut at its first EOS."""
        eos = self.adapter.eos_token_id
        texts = []
        for row in output.completion_ids.tolist():
            if eos in row:
                row = row[: row.index(eos)]
            texts.append(tokenizer.decode(row, skip_special_tokens=skip_special_tokens))
        return texts
