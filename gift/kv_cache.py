"""The sampler's block KV cache over a native transformers decoder (`kv_cache: prefix | dual`)."""

from __future__ import annotations

import torch

from gift.adapters import ModelAdapter, cache_kwarg


class KVCache:
    """Keys/values of one block's context, for the sampler's cached steps (`kv_cache: prefix | dual`).

    `fill` runs the full forward at the block's first step and keeps, per layer, the keys/values of the
    positions left of the block (`prefix`) or left and right of it (`dual`), RoPE already applied.
    `logits` then runs only the block (`dual`) or the block and everything right of it (`prefix`) against
    them. Attention is bidirectional and position-free beyond RoPE, so the kept keys can sit in any order
    as long as the 2-D padding mask follows the same order. Exact when nothing they depend on changed:
    always for layer 1 (it reads token embeddings only) and for a causal model's prefix; stale in deeper
    layers of a bidirectional model once the block's tokens change (the approximation Fast-dLLM makes).

    A shifted model (Dream) scores token i at position i - 1, so its queries start one position
    earlier: the block's left neighbour is recomputed instead of kept.
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

    def _query_start(self, start: int) -> int:
        if self.adapter.shift_logits and start < 1:
            raise ValueError("a shifted model's block cannot start at position 0 (no position scores it)")
        return start - 1 if self.adapter.shift_logits else start

    def fill(
        self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, start: int, end: int
    ) -> torch.Tensor:
        """Full-sequence aligned logits (B, L, V); keeps the context's keys/values for the block [start, end)."""
        out = model(**self.adapter.model_inputs(input_ids, attention_mask), use_cache=True)
        cache = out["cache"] if "cache" in out else out["past_key_values"]
        lo = self._query_start(start)
        layers = []
        for layer in cache.layers:
            keys, values = layer.keys, layer.values
            if self.mode == "prefix":
                layers.append((keys[:, :, :lo], values[:, :, :lo]))
            else:
                layers.append(
                    (
                        torch.cat([keys[:, :, :lo], keys[:, :, end:]], 2),
                        torch.cat([values[:, :, :lo], values[:, :, end:]], 2),
                    )
                )
        self.layers, self.batch_size = layers, input_ids.shape[0]
        return self.adapter.align(out.logits)

    def logits(
        self,
        model: torch.nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        start: int,
        end: int,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (b, end - start, V) of the block from the kept keys/values (`fill` first).

        `rows`: which of the filled batch's rows `input_ids` holds (None: all of them, in order).
        """
        from transformers import DynamicCache

        if self.layers is None:
            raise RuntimeError("KVCache.logits before fill")
        mask = attention_mask.to(torch.long)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        lo = self._query_start(start)
        if self.mode == "prefix":
            query, query_pos, order = input_ids[:, lo:], positions[:, lo:], mask
        else:
            query, query_pos = input_ids[:, lo:end], positions[:, lo:end]
            order = torch.cat([mask[:, :lo], mask[:, end:], mask[:, lo:end]], 1)
        # A fresh cache object per call: the forward appends the query's keys to it, never to ours.
        layers = self.layers if rows is None else [(k[rows], v[rows]) for k, v in self.layers]
        past = DynamicCache(ddp_cache_data=layers)
        out = model(
            input_ids=query, attention_mask=order, position_ids=query_pos, use_cache=True, **{cache_kwarg(model): past}
        )
        # Unshifted: output j scores token lo + j = start + j. Shifted: output j scores lo + j + 1 = start + j.
        return out.logits[:, : end - start]
