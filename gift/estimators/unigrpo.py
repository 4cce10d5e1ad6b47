"""UniGRPO (MMaDA, Yang et al. 2025, arXiv 2505.15809; github Gen-Verse/MMaDA).

Per completion, inner iteration and Monte-Carlo draw, a masking ratio is drawn uniformly and that
fraction of the completion's tokens (at least one) is masked, the rest kept clean; the log-probabilities
of the masked tokens enter GRPO's clipped ratio objective (plus the k3 KL), averaged over the masked
tokens only, then over the `num_t` draws.
"""

from __future__ import annotations

import torch

from gift.estimators.base import Estimator, EstimatorLoss, clipped_ratio_loss, completion_noise_frame


def random_subset(candidates: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Bool mask choosing `counts[...]` positions uniformly among the True `candidates` of the last axis."""
    scores = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    scores = scores.masked_fill(~candidates, float("inf"))
    ranks = scores.argsort(-1).argsort(-1)
    return candidates & (ranks < counts.unsqueeze(-1))


class UniGRPO(Estimator):
    name = "unigrpo"
    uses_old_logps = True
    supports_kl = True

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None) -> torch.Tensor:
        draws = self.settings.num_t
        prompt_noise, after_eos = completion_noise_frame(prompt_attention, completion_mask, num_iterations, draws,
                                                         self.settings.p_mask_prompt, generator)
        scored = ~after_eos
        length = scored.sum(-1)
        ratio = torch.rand(length.shape, generator=generator, device=length.device)
        counts = (ratio * length).floor().long().clamp_max(length - 1) + 1  # 1..length, uniform
        return torch.cat([prompt_noise, after_eos | random_subset(scored, counts, generator)], dim=-1)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        scored = noise & completion_mask.bool().unsqueeze(1)
        parts = [clipped_ratio_loss(logps[:, k], None if old is None else old[:, k], None if ref is None else ref[:, k],
                                    advantages, scored[:, k], self.settings) for k in range(logps.shape[1])]
        count = len(parts)
        return EstimatorLoss(sum(p.loss for p in parts) / count, sum(p.kl for p in parts) / count,
                             sum(p.clip_ratio for p in parts) / count)
