"""d1's diffu-GRPO estimator (Zhao et al. 2025, arXiv 2504.12216; github dllm-reasoning/d1).

log pi(y_j | x) is read in ONE forward pass with every completion token masked and each real prompt
token masked with probability `p_mask_prompt` (a fresh prompt mask per inner iteration); the surrogate
is GRPO's clipped ratio per token plus a k3 KL to the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gift.diffu_grpo import draw_prompt_masks
from gift.estimators.base import (
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    Estimator,
    EstimatorLoss,
    clipped_ratio_loss,
    loss_type_option,
    mask_schedule_option,
    option,
)
from gift.estimators.registry import register

PROMPT_PADDING = ("excluded", "official")
PADDING_HELP = (
    "excluded (left padding never masked, attention-masked) | official (d1's code: padding masked with "
    "p_mask_prompt like a prompt token, no attention mask; equal when a micro-batch holds one prompt)"
)


@dataclass
class D1Settings:
    p_mask_prompt: float = option(
        0.15, "probability that a real prompt token is masked in the log-prob estimate", PROBABILITY
    )
    loss_type: str = loss_type_option()
    epsilon: float = option(0.5, "clip range of the ratio", POSITIVE, trainer=True)
    beta: float = option(0.04, "weight of the k3 KL", NON_NEGATIVE, trainer=True)
    mask_schedule: str = mask_schedule_option("official")
    prompt_padding: str = option("excluded", PADDING_HELP, choices=PROMPT_PADDING)


class D1(Estimator):
    name = "d1"
    settings_type = D1Settings
    uses_old_logps = True
    supports_kl = True

    def draw_noise(self, prompt_attention, completion_mask, num_iterations, generator=None) -> torch.Tensor:
        # d1 masks the whole completion, so it draws only the prompt masks (not completion_noise_frame's
        # draws): a seeded d1 run takes the same numbers from the generator as d1's own code.
        prompt_noise = draw_prompt_masks(
            self.attention(prompt_attention), self.settings.p_mask_prompt, num_iterations, generator
        )
        completion = torch.ones(
            (*prompt_noise.shape[:2], completion_mask.shape[1]), dtype=torch.bool, device=prompt_noise.device
        )
        return torch.cat([prompt_noise, completion], dim=2).unsqueeze(2)  # K = 1

    def attention(self, prompt_attention) -> torch.Tensor:
        # d1's get_logits calls the model without an attention mask: the padding is attended (and maskable).
        if getattr(self.settings, "prompt_padding", "excluded") == "official":
            return torch.ones_like(prompt_attention)
        return prompt_attention

    def loss(self, logps, noise, old, ref, advantages, completion_mask) -> EstimatorLoss:
        s = self.settings
        pick = lambda x: None if x is None else x[:, 0]  # noqa: E731
        return clipped_ratio_loss(
            logps[:, 0], pick(old), pick(ref), advantages, completion_mask.bool(), s.epsilon, s.beta, s.loss_type
        )


register(D1)
