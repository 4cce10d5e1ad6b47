"""Configuration of stage two (`gift rl`): trl's `GRPOConfig` plus the diffusion-specific fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig

from gift.adapters import DTYPE_NAMES
from gift.estimators import ESTIMATORS
from gift.model_options import model_type_field
from gift.options import check_option
from gift.sampler import SamplerConfig
from gift.sampler_options import HELP, default
from rewards import TASKS
from stages.train.batching import apply_global_batch, global_batch, world_size
from stages.train.lora import parse_target_modules
from stages.train.rl_estimator import EstimatorOptions, resolve_estimator
from stages.train.validation import check_numbers


KL_REFERENCES = ("start", "generation")
# The rollout sampler's options (`gift.sampler_options`) -> the fields that set them in a stage-two recipe.
ROLLOUT_OPTIONS = {"gen_length": "gen_length", "block_length": "block_length", "steps": "diffusion_steps",
                   "temperature": "temperature", "remasking": "remasking", "threshold": "sampler_threshold",
                   "factor": "sampler_factor", "kv_cache": "kv_cache", "min_commit": "sampler_min_commit",
                   "lookahead": "sampler_lookahead", "eos_stop": "sampler_eos_stop"}
# What only the policy update reads: a frozen control (rollouts and rewards) ignores them.
ESTIMATOR_KEYS = frozenset({"rl_algorithm", "beta", "epsilon", "loss_type", "kl_reference",
                            *EstimatorOptions.__dataclass_fields__})
# trl's own defaults, for the trainer fields an estimator does not read (it has no ratio or no KL).
TRL_DEFAULTS = {name: GRPOConfig.__dataclass_fields__[name].default for name in ("beta", "epsilon", "loss_type")}


@dataclass
class RLConfig(GRPOConfig, EstimatorOptions):
    """diffu-GRPO (d1) from a stage-one checkpoint.

    Model:
        model: a stage-one checkpoint (merged weights or a LoRA adapter: loaded directly), a checkpoint
            run directory, `embedded[:PRESET]`, or a local/hub model of a known type (LLaDA-8B-Instruct
            with `model_type: llada` is d1's "from the instruct model" row; it loads natively, no hub code).
        model_type, trust_remote_code (trl's field), torch_dtype.
    Task and data:
        task: sudoku | countdown | gsm8k | math (its rule-based rewards are summed).
        dataset: `synthetic` (the embedded compact format), a local file for the task's loader, or `hub`
            (the task's hub set). dataset_split, max_prompts, prefill (appended after the generation prompt).
    Rollouts (the project's sampler, `gift.sampler`):
        gen_length, block_length, diffusion_steps, remasking; `temperature` is trl's field (d1: 0.9).
        sampler_threshold (parallel decoding by confidence; None = d1's fixed schedule), sampler_factor,
        sampler_min_commit (`one` or `schedule`: the floor of a parallel step), sampler_eos_stop,
        sampler_lookahead and kv_cache (`none`, `prefix`, `dual`): `gift eval`'s sampler options under these
        names (`ROLLOUT_OPTIONS`; docs/sampler.md). `top_p` (trl's) must stay 1.0: no nucleus filtering.
    Policy gradient (docs/rl_algorithms.md):
        rl_algorithm: a registered estimator (`gift.estimators`): `d1` (diffu-GRPO's one-step estimate,
            clipped ratio), `spg` (sandwiched policy gradient), `unigrpo` (MMaDA), `wd1` (ratio-free
            weighted likelihood), `gdpo` (sequence-level ratio on a quadrature ELBO), `coupled`
            (DiffuCoder's coupled-GRPO: complementary mask pairs).
        The estimator's own options (`p_mask_prompt`, `num_t`, `spg_*`, `eubo_beta`, `mix_weight`,
            `unigrpo_*`, `wd1_*`, `gdpo_*`, `coupled_*`, `mask_schedule`) come from its settings dataclass (`EstimatorOptions`); unset,
            each is the estimator's published default, and one the estimator does not read is an error.
        beta, epsilon, loss_type, kl_reference: unset, the estimator's defaults (d1: 0.04, 0.5, bnpo,
            `start`). kl_reference: what beta's KL is taken to: `start` (the starting model) or
            `generation` (the policy that generated the batch). num_iterations (mu) and scale_rewards
            ("none" = d1: advantage = reward - group mean; "group" divides by the group std) are trl's.
    LoRA: use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules (a list as in stage one;
        `[all-linear]` = d1).
    Run: global_batch_size (completions per optimizer step; derives gradient_accumulation_steps),
        resume (continue from the last complete checkpoint; save_steps must be a multiple of
        num_iterations so a resumed run restarts at a generation boundary), metrics.jsonl in output_dir.
    """

    model: str = field(default="embedded:tiny", metadata={"help": "stage-one checkpoint or model source"})
    model_type: str | None = model_type_field()
    torch_dtype: str = field(default="float32", metadata={"help": "auto | float32 | bfloat16 | float16"})

    task: str = field(default="sudoku", metadata={"help": " | ".join(TASKS)})
    dataset: str = field(default="synthetic", metadata={"help": "synthetic | hub | a local data file"})
    dataset_split: str = field(default="train")
    max_prompts: int | None = field(default=None, metadata={"help": "use at most this many prompts"})
    synthetic_seed: int = field(default=0)
    prefill: str | None = field(default=None, metadata={"help": "text appended after the generation prompt"})

    gen_length: int = field(default=256)
    block_length: int = field(default=32)
    diffusion_steps: int = field(default=128)
    remasking: str = field(default="low_confidence")
    sampler_threshold: float | None = field(default=default("threshold"), metadata={"help": "rollouts: " + HELP["threshold"]})
    sampler_factor: float | None = field(default=default("factor"), metadata={"help": "rollouts: " + HELP["factor"]})
    kv_cache: str = field(default=default("kv_cache"), metadata={"help": "rollouts: " + HELP["kv_cache"]})
    sampler_min_commit: str = field(default=default("min_commit"), metadata={"help": "rollouts: " + HELP["min_commit"]})
    sampler_eos_stop: bool = field(default=default("eos_stop"), metadata={"help": "rollouts: " + HELP["eos_stop"]})
    sampler_lookahead: int = field(default=default("lookahead"), metadata={"help": "rollouts: " + HELP["lookahead"]})
    rl_algorithm: str = field(default="d1", metadata={"help": f"{' | '.join(ESTIMATORS)} (gift.estimators)"})
    loss_type: str | None = field(default=None, metadata={"help": "d1: bnpo (token mean over the micro-batch) | grpo"})
    logps_chunk_size: int = field(default=1024, metadata={"help": "rows per fp32 log-softmax chunk"})

    use_lora: bool = field(default=True)
    lora_r: int = field(default=128)
    lora_alpha: int = field(default=64)
    lora_dropout: float = field(default=0.05)
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["all-linear"], metadata={"help": "module names, or all-linear; a comma string on the CLI"})

    resume: bool = field(default=False)
    global_batch_size: int | None = field(
        default=None, metadata={"help": "completions per optimizer step over all processes; derives accumulation"})
    # None = unset (HF's 1, or derived from global_batch_size); a value given on purpose must match the derived one.
    gradient_accumulation_steps: int | None = field(
        default=None, metadata={"help": "default 1; with global_batch_size derived, and a different value is an error"})

    # trl turns gradient checkpointing on by default; it only re-runs forwards for small models and LLaDA's
    # hub code has no HF hook for it. Recipes that need it set `activation_checkpointing: true`.
    gradient_checkpointing: bool | None = field(default=None)
    # d1's defaults where they differ from trl's.
    learning_rate: float = field(default=3e-6)
    lr_scheduler_type: str = field(default="constant")
    max_grad_norm: float = field(default=0.2)
    adam_beta2: float = field(default=0.99)
    weight_decay: float = field(default=0.1)
    beta: float | None = field(default=None, metadata={"help": "KL weight; unset: the estimator's (d1 0.04)"})
    kl_reference: str | None = field(
        default=None, metadata={"help": "KL to: start (d1) or generation (proximal); unset: the estimator's"})
    epsilon: float | None = field(default=None, metadata={"help": "clip range; unset: the estimator's (d1 0.5)"})
    num_generations: int = field(default=6)
    per_device_train_batch_size: int = field(default=6)
    num_iterations: int = field(default=12)
    temperature: float = field(default=0.9)
    scale_rewards: str = field(default="none")
    logging_steps: float = field(default=1)
    save_steps: float = field(default=96)
    output_dir: str | None = field(default=None)

    def __post_init__(self):
        if not self.output_dir:
            raise ValueError("output_dir is required (--output_dir DIR)")
        check_option("torch_dtype", self.torch_dtype, DTYPE_NAMES)
        self.lora_target_modules = parse_target_modules(self.lora_target_modules)
        if self.kl_reference is not None:
            check_option("kl_reference", self.kl_reference, KL_REFERENCES)
        if self.top_p != 1.0:  # trl's field; the diffusion sampler draws from the whole distribution
            raise ValueError(f"top_p {self.top_p}: rollouts sample from the full distribution (no nucleus "
                             "filtering); leave top_p at 1.0")
        # Ranges are check_numbers'; these are the checks across fields.
        if self.num_iterations < 1:
            raise ValueError(f"num_iterations must be >= 1, got {self.num_iterations}")
        if self.save_steps >= 1 and int(self.save_steps) % self.num_iterations:
            raise ValueError(f"save_steps ({int(self.save_steps)}) must be a multiple of num_iterations "
                             f"({self.num_iterations}) so a resumed run restarts at a generation boundary")
        check_numbers(self)  # before anything is loaded: steps, rates, sizes, lengths
        resolve_estimator(self, TRL_DEFAULTS)  # its defaults for beta/epsilon/..., options and capabilities
        self.sampler_config()  # the rollout sampler's own checks, in this config's option names
        apply_global_batch(self)
        processes = world_size()
        completions = global_batch(self.per_device_train_batch_size, self.gradient_accumulation_steps, processes)
        if completions % self.num_generations:
            raise ValueError(
                f"the global batch ({self.per_device_train_batch_size} per device x {self.gradient_accumulation_steps} "
                f"accumulation x {processes} processes = {completions} completions) is not divisible by "
                f"num_generations ({self.num_generations}): each prompt's group must fit in one batch"
            )
        import torch

        if not torch.cuda.is_available():
            self.use_cpu = True
            if self.bf16 is None:  # trl would turn bf16 on; CPU autocast in bf16 is slow and lossy
                self.bf16 = False
        super().__post_init__()


    def sampler_config(self) -> SamplerConfig:
        """The rollout sampler's settings; a bad value is a `ValueError` naming this config's option."""
        values = {option: getattr(self, name) for option, name in ROLLOUT_OPTIONS.items()}
        try:
            return SamplerConfig(**values)
        except ValueError as err:
            message = str(err)
            for option, name in ROLLOUT_OPTIONS.items():
                message = re.sub(rf"(?<![\w-]){option}(?!\w)", name, message)
            raise ValueError(message) from None


def frozen_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Stage-two settings of a run's frozen control: the same start, seed, prompts and rollout noise, but
    no learning. Prompt batches and rollout seeds depend on the generation index only, so one step per
    generation batch (`num_iterations` 1) with `max_steps / num_iterations` steps sees every batch the
    run saw; learning rate 1e-12 (rates must be > 0) and beta 0 skip the reference pass. The estimator and
    its options are dropped: a control only rolls out and scores, so runs of every estimator from one start
    share it.
    """
    steps, mu = settings.get("max_steps", -1), settings.get("num_iterations", RLConfig.num_iterations)
    if not isinstance(steps, int) or steps < 1 or steps % mu:
        raise ValueError(f"a frozen control needs max_steps (got {steps}) to be a positive multiple of "
                         f"num_iterations ({mu})")
    kept = {key: value for key, value in settings.items() if key not in ESTIMATOR_KEYS}
    return {**kept, "learning_rate": 1e-12, "beta": 0.0, "num_iterations": 1, "max_steps": steps // mu,
            "save_steps": steps // mu}
