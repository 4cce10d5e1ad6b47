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
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown beta_from {signal!r}; choose one of {', '.join(SIGNALS)}")
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            # masked_fill writes into the one copy of the ids; no full-size mask tensor is built.
            probe_ids = input_ids.masked_fill(answer_mask, adapter.mask_token_id)
            logits = adapter.logits(model, probe_ids, attention_mask)
            if signal == "entropy":
                out = chunked_entropy(logits, answer_mask, chunk_size)
            else:
                out = chunked_nll(logits, input_ids, answer_mask, chunk_size)
    finally:
        model.train(was_training)
    return out.clone()  # an inference tensor may not enter autograd; the (B, L) copy is cheap


def probe_betas(model, adapter, batch: dict, signal: str = "entropy", chunk_size: int = 256) -> torch.Tensor:
    """`beta_i = sqrt(signal_i)` for a collated batch (keys input_ids, attention_mask, answer_mask)."""
    raw = probe_signal(model, adapter, batch["input_ids"], batch["attention_mask"], batch["answer_mask"], signal, chunk_size)
    with torch.no_grad():
        return beta_from_signal(raw)
