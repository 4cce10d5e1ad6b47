"""SPG: sandwiched policy gradient (Wang et al. 2025, arXiv 2510.09541; github facebookresearch/SPG).

The exact log pi(y | x) of a masked-diffusion model is intractable; SPG maximises a lower bound of it
(the ELBO) for completions with a positive advantage and minimises an upper bound (the EUBO) for the
others, so both pushes move log pi the right way.

Masks (SPG's `block_random`), per completion, inner iteration and Monte-Carlo draw k: the `num_t` draws
take distinct blocks (a random permutation of the generation's blocks, folded onto the blocks the
completion reaches); in the chosen block a uniform count in [max(floor(n min_t), 1), floor(n max_t)] of
its n completion tokens is masked, every later block is fully masked, and everything before the block
(the prompt and the earlier completion blocks) is masked token by token with probability
`p_mask_prompt`. Every masked completion token is scored, the earlier blocks' included. With `m_kj`
the masked scored tokens and `t_k = |m_k| / |y|`:

    ELBO = mean_k  mean_{j in m_k} log p_kj
    EUBO = mean_{j: u_j > 0} log(u_j) / beta,   u_j = mean_k p_kj^beta * 1[j in m_k] / t_k
    mix  = w EUBO + (1 - w) ELBO

Loss = -sum_i A_i s_i |y_i| / sum_i |y_i|, s_i = ELBO if A_i > 0 else the negative surrogate. No
old-policy ratio, no clipping, no KL (as in SPG).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.estimators.base import (
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    UNIT,
    Estimator,
    EstimatorLoss,
    mask_schedule_option,
    not_above,
    option,
    random_subset,
)
from gift.estimators.registry import register

NEGATIVE_SURROGATES = ("elbo", "eubo", "mix")


def _sandwich(s: SPGSettings, gen_length: int) -> str | None:
    if s.num_t < 2 and s.negative != "elbo":
        return (
            f"spg_negative {s.negative} needs num_t >= 2: with one draw EUBO - ELBO is the constant "
            "-log(t)/eubo_beta, so the sandwich is the ELBO both ways (use num_t 2, SPG's value)"
        )
    return None


def _distinct_blocks(s: SPGSettings, gen_length: int) -> str | None:
    if not s.block_length:
        return None
    if gen_length % s.block_length:
        return f"gen_length {gen_length} is not divisible by spg_block_length {s.block_length}"
    blocks = gen_length // s.block_length
    if s.num_t > blocks:
        return f"num_t ({s.num_t}) exceeds the {blocks} blocks of the completion: SPG draws distinct blocks"
    return None


@dataclass
class SPGSettings:
    num_t: int = option(2, "Monte-Carlo mask draws per completion (distinct blocks)", POSITIVE_INT)
    block_length: int | None = option(
        None,
        "mask blocks (default: the sampler's block_length)",
        POSITIVE_INT,
        flag="spg_block_length",
        default_from="block_length",
        checks=(_distinct_blocks,),
    )
    min_t: float = option(
        0.0,
        "least masked fraction of the partly masked block",
        UNIT,
        flag="spg_min_t",
        checks=(not_above("min_t", "max_t", "spg_min_t", "spg_max_t"),),
    )
    max_t: float = option(1.0, "largest masked fraction of that block", UNIT, flag="spg_max_t")
    negative: str = option(
        "mix",
        "surrogate of completions with A <= 0: elbo | eubo | mix",
        choices=NEGATIVE_SURROGATES,
        flag="spg_negative",
        checks=(_sandwich,),
    )
    eubo_beta: float = option(1.0, "beta of the upper bound (EUBO)", POSITIVE)
    mix_weight: float = option(0.5, "weight of the EUBO in the mix", UNIT)
    p_mask_prompt: float = option(0.15, "masking probability of everything before the partly masked block", PROBABILITY)
    mask_schedule: str = mask_schedule_option("official")


def block_noise(
    completion_mask: torch.Tensor,
    draws: int,
    block_length: int,
    min_t: float,
    max_t: float,
    p_before: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SPG's block-wise completion masks (..., K, L) for `completion_mask` (..., L), and the (..., K)
    start position of each draw's partly masked block (everything before it: masked with `p_before`)."""
    length = completion_mask.sum(-1, keepdim=True).expand(*completion_mask.shape[:-1], draws)
    width = completion_mask.shape[-1]
    num_blocks = width // block_length
    reached = (length - 1).clamp_min(0) // block_length + 1
    order = torch.rand(
        (*completion_mask.shape[:-1], num_blocks), generator=generator, device=completion_mask.device
    ).argsort(-1)[..., :draws]  # distinct blocks
    block = order % reached
    start = block * block_length
    in_block = torch.minimum(length - start, torch.full_like(length, block_length)).clamp_min(1)
    low = (in_block * min_t).floor().long().clamp_min(1)
    high = torch.maximum((in_block * max_t).floor().long().clamp_max(in_block), low)
    pick = torch.rand(length.shape, generator=generator, device=completion_mask.device)
    counts = low + (pick * (high - low + 1)).floor().long().clamp_max(high - low)
    position = torch.arange(width, device=completion_mask.device)
    begin, end = start.unsqueeze(-1), (start + in_block).unsqueeze(-1)
    chosen = random_subset((position >= begin) & (position < end), counts, generator)
    before = (position < begin) & (
        torch.rand((*start.shape, width), generator=generator, device=completion_mask.device) < p_before
    )
    return chosen | (position >= (start + block_length).unsqueeze(-1)) | before, start


def spg_surrogates(
    logps: torch.Tensor, masked: torch.Tensor, completion_mask: torch.Tensor, eubo_beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
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
    settings_type = SPGSettings

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None) -> torch.Tensor:
        s = self.settings
        prompt_draw = torch.rand(
            (prompt_attention.shape[0], num_iterations, s.num_t, prompt_attention.shape[1]),
            generator=generator,
            device=prompt_attention.device,
        )
        prompt_noise = (prompt_draw < s.p_mask_prompt) & prompt_attention.bool()[:, None, None]
        scored = completion_mask.bool()[:, None].expand(-1, num_iterations, -1)
        completion, _ = block_noise(scored, s.num_t, s.block_length, s.min_t, s.max_t, s.p_mask_prompt, generator)
        after_eos = ~completion_mask.bool()[:, None, None]
        return torch.cat([prompt_noise, completion | after_eos], dim=-1)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        s = self.settings
        elbo, eubo = spg_surrogates(logps, noise, completion_mask, s.eubo_beta)
        negative = {"elbo": elbo, "eubo": eubo, "mix": s.mix_weight * eubo + (1 - s.mix_weight) * elbo}[s.negative]
        surrogate = torch.where(advantages > 0, elbo, negative)
        length = completion_mask.to(logps.dtype).sum(1)
        return EstimatorLoss(-(advantages * surrogate * length).sum() / length.sum().clamp_min(1))


register(SPG)
