"""What every stage-two estimator shares: the settings declaration, the noised forward pass, the loss pieces.

An estimator decides three things (docs/rl_algorithms.md):

1. `advantages`: the per-completion weights of the policy gradient (reward minus group mean by default).
2. `draw_noise`: which positions of `[prompt; completion]` are replaced by the mask token for each inner
   iteration and Monte-Carlo draw, as a bool tensor (B, mu, K, P + L). It is drawn once per generation
   batch, so the current, old and reference policies of an iteration see the same noised sequence.
3. `loss`: the surrogate maximised, from the per-token log-probabilities (B, K, L) read at the
   completion positions of the noised sequences.

Its options are one dataclass (`settings_type`) whose fields are declared with `option(...)`: the
default is the published one, the metadata carries the help text, the range rule or choices, the rules
across options that involve it (`checks`) and, where the flat command-line name differs from the field
name (`spg_min_t` for SPG's `min_t`), that name. The stage-two config checks all of them when it is built
(`stages.train.validation.check_config`); nothing is re-checked later.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gift.diffu_grpo import LOSS_TYPES, GRPOLossOutput, diffu_grpo_loss, group_advantages
from gift.options import NON_NEGATIVE, POSITIVE, POSITIVE_INT, PROBABILITY, UNIT, Rule  # noqa: F401 (estimators' rules)

# A rule across a settings dataclass's options (and the completion length): the error message, or None.
SettingsCheck = Callable[[Any, int], str | None]

# The trainer's own fields (trl's `GRPOConfig`) an estimator may give its defaults for: a settings field of one
# of these names is that field (`gift rl --beta` sets the estimator's `beta`), unset = the estimator's default.
TRAINER_FIELDS = ("beta", "epsilon", "loss_type")

# Which inner update reads which of the mu mask sets drawn for a generation batch (docs/rl_algorithms.md,
# "Masks across inner updates"): `per_update`, update j reads set j (new masks every update); `official`, the
# set the estimator's official trainer reads (d1, SPG, wd1, coupled-GRPO: `_step % num_iterations` with
# `_step` counting micro-batches, so the number of distinct sets depends on the micro-batch count).
MASK_SCHEDULES = ("per_update", "official")


def option(
    default: Any,
    help: str,
    rule: Rule | None = None,
    choices: tuple | None = None,
    flag: str | None = None,
    trainer: bool | None = None,
    default_from: str | None = None,
    checks: tuple[SettingsCheck, ...] = (),
) -> Any:
    """A settings field. `flag`: its flat `gift rl` option name when it differs from the field name.
    `trainer`: optional, and must agree with `TRAINER_FIELDS` (whether the flag is one of the trainer's own
    fields is read from there). `default_from`: a default of None means the stage-two config's field of
    that name (SPG's blocks are the sampler's). `checks`: the rules between this option and others,
    `check(settings, gen_length) -> message or None` (`not_above`)."""
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "rule": rule,
            "choices": choices,
            "flag": flag,
            "trainer": trainer,
            "default_from": default_from,
            "checks": checks,
        },
    )


def mask_schedule_option(default: str) -> Any:
    """The `mask_schedule` field every estimator with mu mask sets declares (one flag, one type)."""
    return option(
        default,
        "which inner update reads which mask set: per_update (update j: set j) | official "
        "(the official trainer's micro-batch indexing)",
        choices=MASK_SCHEDULES,
    )


def loss_type_option() -> Any:
    """The `loss_type` field of the estimators reducing d1's token losses (`gift.diffu_grpo.aggregate`)."""
    return option(
        "bnpo",
        "bnpo (token mean over the micro-batch) | grpo (per-sequence mean, then batch)",
        choices=LOSS_TYPES,
        trainer=True,
    )


def not_above(low: str, high: str, low_flag: str, high_flag: str) -> SettingsCheck:
    """The rule `settings.low <= settings.high`, its message naming the two options by their flags."""

    def check(settings: Any, gen_length: int) -> str | None:
        lo, hi = getattr(settings, low), getattr(settings, high)
        return f"{low_flag} ({lo}) must not exceed {high_flag} ({hi})" if lo > hi else None

    return check


def settings_problem(settings: Any, gen_length: int) -> str | None:
    """The message of the first rule across options (`option(checks=...)`) that `settings` break, else None."""
    for field in dataclasses.fields(settings):
        for check in field.metadata.get("checks", ()):
            message = check(settings, gen_length)
            if message:
                return message
    return None


def official_mask_set(micro_batch: int, num_iterations: int) -> int:
    """The mask set d1's, SPG's, wd1's and DiffuCoder's trainers read for the `micro_batch`-th micro-batch
    (0-based) since a generation, up to a relabelling of the iid sets. With g micro-batches per optimizer
    step, update j of slot a reads (j g + a) mod mu, so updates j and j' share a set when (j - j') g is a
    multiple of mu: mu / gcd(g, mu) distinct sets (g = 4, mu = 4: one set for all four updates). Their code
    bumps `_step` before reading `_step % num_iterations` (labels shifted by one); the sharing is the same,
    and without the shift one micro-batch per step (g = 1) gives exactly `per_update`'s sets."""
    return micro_batch % num_iterations


def flag_of(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or field.name


@dataclass
class NoSettings:
    """An estimator without options."""


EstimatorLoss = GRPOLossOutput  # loss, kl, clip_ratio (0 for the estimators without them)


class Estimator:
    """Base class: d1-style advantages, no old-policy ratio, no KL.

    Capabilities, checked where the stage-two config is validated:
        uses_old_logps: reads the policy that generated the batch (a clipped ratio) when mu > 1;
        supports_kl: has a KL term (`beta` may be non-zero);
        default_kl_reference: what that KL is taken to unless the user says (`start` or `generation`);
        reads_scale_rewards: its advantages follow `scale_rewards` (False: it sets its own scaling).
    """

    name: ClassVar[str] = "base"
    settings_type: ClassVar[type] = NoSettings
    uses_old_logps: ClassVar[bool] = False
    supports_kl: ClassVar[bool] = False
    default_kl_reference: ClassVar[str] = "start"
    reads_scale_rewards: ClassVar[bool] = True

    def __init__(self, settings: Any = None):
        self.settings = settings if settings is not None else self.settings_type()

    @classmethod
    def check_settings(cls, settings: Any, gen_length: int) -> None:
        """Raise ValueError for settings that are valid one by one but not together (the rules declared with
        the settings' fields: `option(checks=...)`)."""
        message = settings_problem(settings, gen_length)
        if message:
            raise ValueError(message)

    def advantages(self, rewards: torch.Tensor, num_generations: int, scale: bool) -> torch.Tensor:
        """(N,) per-completion weights of the policy gradient; reward minus group mean by default."""
        return group_advantages(rewards, num_generations, scale=scale)[0]

    def scored(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor, pad_token_id: int) -> torch.Tensor:
        """(B, L) the completion positions the estimator masks and scores (default: up to and including the
        first EOS); the positions outside it are always masked and never scored."""
        return completion_mask

    def attention(self, prompt_attention: torch.Tensor) -> torch.Tensor:
        """(B, P) the prompt's attention mask in the log-prob passes (default: the padding is not attended)."""
        return prompt_attention

    def shape_rewards(self, rewards: torch.Tensor, lengths: torch.Tensor, gen_length: int) -> torch.Tensor:
        """(N,) the rewards the advantages are taken from, given each completion's length (default: as is)."""
        return rewards

    def mask_set(self, micro_batch: int, steps_per_generation: int, num_iterations: int) -> int:
        """Which of the mu mask sets the `micro_batch`-th micro-batch since its generation batch reads
        (`steps_per_generation` micro-batches per update). Follows the settings' `mask_schedule` (none:
        `per_update`); `official_schedule` says what `official` is for this estimator."""
        if getattr(self.settings, "mask_schedule", "per_update") == "official":
            return self.official_schedule(micro_batch, steps_per_generation, num_iterations)
        return (micro_batch // steps_per_generation) % num_iterations

    def official_schedule(self, micro_batch: int, steps_per_generation: int, num_iterations: int) -> int:
        """`mask_schedule: official`: the official trainer's indexing (d1's by default: `official_mask_set`)."""
        return official_mask_set(micro_batch, num_iterations)

    def draw_noise(
        self,
        prompt_attention: torch.Tensor,
        completion_mask: torch.Tensor,
        num_iterations: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The masks (B, mu, K, P + L); or (masks, rates) where the loss also needs each copy's masking rate
        (B, mu, K): the trainer then passes that iteration's rates to `loss` as `rates=`."""
        raise NotImplementedError

    def loss(
        self,
        logps: torch.Tensor,
        noise: torch.Tensor,
        old: torch.Tensor | None,
        ref: torch.Tensor | None,
        advantages: torch.Tensor,
        completion_mask: torch.Tensor,
    ) -> EstimatorLoss:
        raise NotImplementedError


def clipped_ratio_loss(
    logps: torch.Tensor,
    old: torch.Tensor | None,
    ref: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float,
    beta: float,
    loss_type: str,
) -> EstimatorLoss:
    """d1's clipped ratio and k3 KL per token (`gift.diffu_grpo.diffu_grpo_loss`) over `mask` (B, L)."""
    return diffu_grpo_loss(logps, old, ref, advantages, mask, epsilon, beta, loss_type)


def random_subset(candidates: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Bool mask choosing `counts[...]` positions uniformly among the True `candidates` of the last axis."""
    scores = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    scores = scores.masked_fill(~candidates, float("inf"))
    ranks = scores.argsort(-1).argsort(-1)
    return candidates & (ranks < counts.unsqueeze(-1))
