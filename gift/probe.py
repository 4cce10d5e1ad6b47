"""GIFT's probe pass: mask the whole answer, keep the prompt, read per-token uncertainty (no gradient)."""

from __future__ import annotations

import torch

from gift.adapters import ModelAdapter
from gift.objective import beta_from_signal, chunked_entropy, chunked_nll

SIGNALS = ("entropy", "nll")


def probe_signal(
    model: torch.nn.Module,
    adapter: ModelAdapter,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    answer_mask: torch.Tensor,
    signal: str = "entropy",
    chunk_size: int = 256,
) -> torch.Tensor:
    """Entropy (or gold-token NLL) in nats at every answer position of the fully masked answer; 0 elsewhere.

    The model runs in eval mode (no dropout) and its previous mode is restored, so the probe is a
    deterministic function of the weights. It runs under `inference_mode` (no autograd records, no
    version counters) and returns an ordinary tensor (a copy), safe to use in the training step's graph.
    On a native transformers decoder the LM head runs on the answer positions only, chunk by chunk
    (`split_head`); the values are those of the full logits (same rows, same head).
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown beta_from {signal!r}; choose one of {', '.join(SIGNALS)}")
    was_training = model.training
    model.eval()
    # FSDP2 keeps its all-gather buffers across forwards: made under inference_mode they could not be reused.
    no_autograd = torch.no_grad if _fsdp2_sharded(next(model.parameters())) else torch.inference_mode
    try:
        with no_autograd():
            # masked_fill writes into the one copy of the ids; no full-size mask tensor is built.
            probe_ids = input_ids.masked_fill(answer_mask, adapter.mask_token_id)
            split = split_head(model, adapter)
            if split is None:
                values, head = adapter.logits(model, probe_ids, attention_mask), None
            else:  # prompt positions never reach the LM head, and no (B, L, V) tensor is built
                body, head = split
                hidden = body(**adapter.model_inputs(probe_ids, attention_mask)).last_hidden_state
                values = adapter.align(hidden)  # a shifted model's head reads position i - 1 for token i
            if signal == "entropy":
                out = chunked_entropy(values, answer_mask, chunk_size, head)
            else:
                out = chunked_nll(values, input_ids, answer_mask, chunk_size, head)
    finally:
        model.train(was_training)
    return out.clone()  # an inference tensor may not enter autograd; the (B, L) copy is cheap


def split_head(model: torch.nn.Module, adapter: ModelAdapter) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(body, LM head) of a native transformers decoder, whose logits are `head(body(...).last_hidden_state)`.

    None for any other model: the probe then takes the full logits from the adapter. A peft-wrapped model splits
    through its base model, whose layers carry the adapters.
    """
    base = adapter.native_decoder(model)
    if base is None:
        return None
    body, head = getattr(base, "model", None), base.get_output_embeddings()
    if body is None or head is None or _fsdp2_sharded(head.weight):
        return None  # FSDP2 gathers the root's own weights (embeddings, head) only inside the whole model's forward
    return body, head


def _fsdp2_sharded(weight: torch.Tensor) -> bool:
    """Whether FSDP2 (`fully_shard`) holds this weight as a DTensor shard between forwards."""
    from torch.distributed.tensor import DTensor

    return isinstance(weight, DTensor)


def probe_betas(model, adapter, batch: dict, signal: str = "entropy", chunk_size: int = 256) -> torch.Tensor:
    """`beta_i = sqrt(signal_i)` for a collated batch (keys input_ids, attention_mask, answer_mask)."""
    raw = probe_signal(
        model, adapter, batch["input_ids"], batch["attention_mask"], batch["answer_mask"], signal, chunk_size
    )
    with torch.no_grad():
        return beta_from_signal(raw)
