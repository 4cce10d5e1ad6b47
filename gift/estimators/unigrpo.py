"""UniGRPO (MMaDA, Yang et al. 2025, arXiv 2505.15809), as run by the code the MMaDA README points to
(github Gen-Verse/dLLM-RL, `train/rl_llada.py` with `method: random_masking`, `configs/rl_llada.yaml`).

Per completion, inner iteration and Monte-Carlo draw (`num_t`, 35 there): a masking rate t ~ U[min_t,
max_t] (0.1, 0.9), then each completion token masked with probability t; the prompt is never masked; a
draw that masks nothing is dropped. Each draw is one sequence of the objective:

    s = mean_{j masked} min(r_j A, clip(r_j, 1 - eps, 1 + eps) A),   r_j = pi(y_j) / pi_old(y_j)
    kl = sum_{j masked} k3(pi_old, pi)_j
    loss = -mean_draws s + beta * mean_draws kl

with A the reward z-scored within the prompt's group (population std; 0 for a group whose rewards are
all equal), eps 0.2 and beta 0.01, the KL taken to the policy that generated the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.estimators.base import (
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    UNIT,
    Estimator,
    EstimatorLoss,
    mask_schedule_option,
    not_above,
    option,
)
from gift.estimators.registry import register

PAD_RULES = ("unscored", "scored")


@dataclass
class UniGRPOSettings:
    num_t: int = option(35, "Monte-Carlo mask draws per completion", POSITIVE_INT)
    min_t: float = option(
        0.1,
        "least masking rate of a draw",
        UNIT,
        flag="unigrpo_min_t",
        checks=(not_above("min_t", "max_t", "unigrpo_min_t", "unigrpo_max_t"),),
    )
    max_t: float = option(0.9, "largest masking rate of a draw", UNIT, flag="unigrpo_max_t")
    epsilon: float = option(0.2, "clip range of the ratio", POSITIVE, trainer=True)
    beta: float = option(
        0.01, "weight of the k3 KL (summed over each draw's masked tokens)", NON_NEGATIVE, trainer=True
    )
    mask_schedule: str = mask_schedule_option("official")
    pad: str = option(
        "unscored",
        "unscored (dLLM-RL's post_num 0: every pad-id token of a completion, the first EOS "
        "too where EOS and pad share an id, is masked and never scored) | scored (up to and "
        "including the first EOS, as the other estimators)",
        choices=PAD_RULES,
        flag="unigrpo_pad",
    )
    length_margin: int | None = option(
        None,
        "completions at least gen_length minus this long get reward 0 (dLLM-RL: 5); unset: off",
        NON_NEGATIVE,
        flag="unigrpo_length_margin",
    )


def z_scored(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """(N,) reward minus its group's mean over the group's population std (0 where that std is 0)."""
    grouped = rewards.view(-1, num_generations)
    centred = grouped - grouped.mean(1, keepdim=True)
    std = grouped.std(1, unbiased=False, keepdim=True)
    return torch.where(
        std > 0, centred / torch.where(std > 0, std, torch.ones_like(std)), torch.zeros_like(centred)
    ).reshape(-1)


class UniGRPO(Estimator):
    name = "unigrpo"
    settings_type = UniGRPOSettings
    uses_old_logps = True
    supports_kl = True
    default_kl_reference = "generation"
    reads_scale_rewards = False  # its advantages are always z-scored in the group

    def official_schedule(self, micro_batch, steps_per_generation, num_iterations) -> int:
        # dLLM-RL noises its batch once (the old log-probs with it) and makes every pass over it with those
        # masks: all updates read one set.
        return 0

    def scored(self, completion_ids, completion_mask, pad_token_id) -> torch.Tensor:
        if self.settings.pad == "scored":
            return completion_mask
        return completion_mask * (completion_ids != pad_token_id).to(completion_mask.dtype)

    def shape_rewards(self, rewards, lengths, gen_length) -> torch.Tensor:
        # dLLM-RL marks a response that (nearly) ran out of room incorrect (reward/rl_reward.py).
        margin = self.settings.length_margin
        if margin is None:
            return rewards
        return torch.where(lengths.to(rewards.device) >= gen_length - margin, torch.zeros_like(rewards), rewards)

    def advantages(self, rewards, num_generations, scale) -> torch.Tensor:
        return z_scored(rewards, num_generations)

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None) -> torch.Tensor:
        s, device = self.settings, completion_mask.device
        batch, width = completion_mask.shape
        rate = s.min_t + (s.max_t - s.min_t) * torch.rand(
            (batch, num_iterations, s.num_t, 1), generator=generator, device=device
        )
        draw = torch.rand((batch, num_iterations, s.num_t, width), generator=generator, device=device)
        scored = completion_mask.bool()[:, None, None]
        completion = (scored & (draw < rate)) | ~scored
        prompt = torch.zeros(
            (batch, num_iterations, s.num_t, prompt_attention.shape[1]), dtype=torch.bool, device=device
        )
        return torch.cat([prompt, completion], dim=-1)

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        s = self.settings
        masked = (noise & completion_mask.bool().unsqueeze(1)).to(logps.dtype)  # (B, K, L)
        count = masked.sum(-1)
        valid = (count > 0).to(logps.dtype)
        ratio = torch.exp(logps - (logps.detach() if old is None else old))
        adv = advantages[:, None, None]
        surrogate = torch.min(ratio * adv, ratio.clamp(1 - s.epsilon, 1 + s.epsilon) * adv)
        per_draw = (surrogate * masked).sum(-1) / count.clamp_min(1)
        draws = valid.sum().clamp_min(1)
        loss = -(per_draw * valid).sum() / draws
        kl_value = 0.0
        if s.beta != 0.0:
            if ref is None:
                raise ValueError("beta != 0 needs reference log-probabilities")
            delta = ref - logps
            kl = torch.exp(delta) - delta - 1
            loss = loss + s.beta * ((kl * masked).sum(-1) * valid).sum() / draws
            kl_value = float((kl.detach() * masked).sum() / masked.sum().clamp_min(1))
        clipped = ((ratio < 1 - s.epsilon) & (adv < 0)) | ((ratio > 1 + s.epsilon) & (adv > 0))
        clip_ratio = float((clipped.to(logps.dtype) * masked).sum() / masked.sum().clamp_min(1))
        return EstimatorLoss(loss, kl_value, clip_ratio)


register(UniGRPO)
