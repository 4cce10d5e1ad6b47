"""SPG: sandwiched policy gradient (Wang et al. 2025, arXiv 2510.09541; github facebookresearch/SPG).

The exact log pi(y | x) of a masked-diffusion model is intractable; SPG maximises a lower bound of it
(the ELBO) for completions with a positive advantage and minimises an upper bound (the EUBO) for the
others, so both pushes move log pi the right way. Per Monte-Carlo draw k the completion is noised
block-wise, mirroring semi-autoregressive decoding: one block b (of those holding the completion) is
chosen uniformly, blocks before it stay clean, a uniform fraction in [min_t, max_t] of b's tokens is
masked (at least one), later blocks are fully masked. With `m_kj` the masked scored tokens and
`t_k = |m_k| / |y|`:

    ELBO = mean_k  mean_{j in m_k} log p_kj
    EUBO = mean_{j: u_j > 0} log(u_j) / beta,   u_j = mean_k p_kj^beta * 1[j in m_k] / t_k
    mix  = w EUBO + (1 - w) ELBO

Loss = -sum_i A_i s_i |y_i| / sum_i |y_i|, s_i = ELBO if A_i > 0 else the negative surrogate. No
old-policy ratio, no clipping, no KL (as in SPG).
"""

from __future__ import annotations

import torch

from gift.estimators.base import Estimator, EstimatorLoss, completion_noise_frame
from gift.estimators.unigrpo import random_subset

NEGATIVE_SURROGATES = ("elbo", "eubo", "mix")


def block_noise(scored: torch.Tensor, block_length: int, min_t: float, max_t: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """SPG's block-wise completion mask for scored positions `scored` (..., L) (a prefix of each row)."""
    length = scored.sum(-1)
    blocks = (length + block_length - 1) // block_length
    pick = torch.rand(length.shape, generator=generator, device=scored.device)
    block = (pick * blocks).floor().long().clamp_max(blocks - 1)
    start = block * block_length
    in_block_len = torch.minimum(length - start, torch.full_like(length, block_length))
    low = (in_block_len * min_t).floor().long().clamp_min(1)
    high = torch.maximum((in_block_len * max_t).floor().long().clamp_max(in_block_len), low)
    draw = torch.rand(length.shape, generator=generator, device=scored.device)
    counts = low + (draw * (high - low + 1)).floor().long().clamp_max(high - low)
    position = torch.arange(scored.shape[-1], device=scored.device)
    in_block = scored & (position >= start.unsqueeze(-1)) & (position < (start + block_length).unsqueeze(-1))
    later = position >= (start + block_length).unsqueeze(-1)
    return later | random_subset(in_block, counts, generator)


def spg_surrogates(logps: torch.Tensor, masked: torch.Tensor, completion_mask: torch.Tensor,
                   eubo_beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(ELBO, EUBO), each (B,), from log-probs (B, K, L) and the masked scored tokens `masked` (B, K, L)."""
    m = (masked & completion_mask.bool().unsqueeze(1)).to(logps.dtype)
    elbo = ((logps * m).sum(-1) / m.sum(-1).clamp_min(1)).mean(1)
    t = m.sum(-1) / completion_mask.to(logps.dtype).sum(-1, keepdim=True).clamp_min(1)
    u = (torch.exp(eubo_beta * logps) * m / t.clamp_min(1e-8).unsqueeze(-1)).mean(1)
    seen = u > 0
    eubo = (torch.where(seen, u, torch.ones_like(u)).log() * seen).sum(-1) / seen.sum(-1).clamp_min(1) / eubo_beta
    return elbo, eubo


class SPG(Estimator):
    name = "spg"

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None) -> torch.Tensor:
        s = self.settings
        prompt_noise, after_eos = completion_noise_frame(prompt_attention, completion_mask, num_iterations, s.num_t,
                                                         s.p_mask_prompt, generator)
        completion = after_eos | block_noise(~after_eos, s.block_length, s.min_t, s.max_t, generator)
        return torch.cat([prompt_noise, completion], dim=-1)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        s = self.settings
        elbo, eubo = spg_surrogates(logps, noise, completion_mask, s.eubo_beta)
        negative = {"elbo": elbo, "eubo": eubo, "mix": s.mix_weight * eubo + (1 - s.mix_weight) * elbo}[s.spg_negative]
        surrogate = torch.where(advantages > 0, elbo, negative)
        length = completion_mask.to(logps.dtype).sum(1)
        return EstimatorLoss(-(advantages * surrogate * length).sum() / length.sum().clamp_min(1))
