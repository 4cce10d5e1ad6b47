"""Configuration of stage two (`gift rl`): trl's `GRPOConfig` plus the diffusion-specific fields.

Every field says what it means once: trl's fields keep trl's help (`trl_field` changes only the default
to d1's), the rollout sampler's options keep the sampler's names and help (`gift.sampler_options`), and
the estimators' options are read from the registry when a config is built (`rl_config_class`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from trl import GRPOConfig

from gift.adapters import DTYPE_NAMES
from gift.estimators import ESTIMATORS
from gift.estimators.registry import estimator_rules
from gift.model_options import model_type_field, torch_dtype_field
from gift.sampler import SAMPLER_CHECKS, SamplerConfig
from gift.sampler_options import CHOICES as SAMPLER_CHOICES
from gift.sampler_options import sampler_field, sampler_options
from rewards import TASKS
from stages.config_args import renamed_keys_message
from stages.train.batching import accumulation_field, apply_global_batch, global_batch, global_batch_field, world_size
from stages.train.fsdp_check import refuse_fsdp_on_cpu
from stages.train.lora import lora_field, parse_target_modules
from stages.train.rl_estimator import ESTIMATOR_CHECKS, estimator_fields, estimator_keys, fill_estimator_defaults
from stages.train.validation import check_config

KL_REFERENCES = ("start", "generation")
ROLLOUTS = "rollouts: "


def trl_field(name: str, default: Any) -> Any:
    """trl's `GRPOConfig` field `name` with its help, and this project's default (d1's where they differ)."""
    return field(default=default, metadata=dict(GRPOConfig.__dataclass_fields__[name].metadata))


@dataclass
class RLConfig(GRPOConfig):
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
        gen_length, block_length, steps, remasking; `temperature` is trl's field (d1: 0.9).
        threshold (parallel decoding by confidence; None = d1's fixed schedule), factor, min_commit (`one`
        or `schedule`: the floor of a parallel step), eos_stop, lookahead and kv_cache (`none`, `prefix`,
        `dual`): `gift eval`'s sampler options, same names (docs/sampler.md). `top_p` (trl's) must stay 1.0:
        no nucleus filtering.
    Policy gradient (docs/rl_algorithms.md):
        rl_algorithm: a registered estimator (`gift.estimators`): `d1` (diffu-GRPO's one-step estimate,
            clipped ratio), `spg` (sandwiched policy gradient), `unigrpo` (MMaDA), `wd1` (ratio-free
            weighted likelihood), `gdpo` (sequence-level ratio on a quadrature ELBO), `coupled`
            (DiffuCoder's coupled-GRPO: complementary mask pairs).
        The estimator's own options (`p_mask_prompt`, `num_t`, `spg_*`, `eubo_beta`, `mix_weight`,
            `unigrpo_*`, `wd1_*`, `gdpo_*`, `coupled_*`, `mask_schedule`,
            `prompt_padding`) come from its settings dataclass, read from the registry when
            the config class is built (`rl_config_class`); unset, each is the estimator's published default,
            and one the estimator does not read is an error.
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
    torch_dtype: str = torch_dtype_field()

    task: str = field(default="sudoku", metadata={"help": " | ".join(TASKS)})
    dataset: str = field(default="synthetic", metadata={"help": "synthetic | hub | a local data file"})
    dataset_split: str = field(default="train", metadata={"help": "split of the task's data (hub or local)"})
    max_prompts: int | None = field(default=None, metadata={"help": "use at most this many prompts"})
    synthetic_seed: int = field(default=0, metadata={"help": "seed of the synthetic task generator"})
    prefill: str | None = field(default=None, metadata={"help": "text appended after the generation prompt"})

    gen_length: int = sampler_field("gen_length", 256, ROLLOUTS)
    block_length: int = sampler_field("block_length", use=ROLLOUTS)
    steps: int = sampler_field("steps", 128, ROLLOUTS)
    remasking: str = sampler_field("remasking", use=ROLLOUTS)
    threshold: float | None = sampler_field("threshold", use=ROLLOUTS)
    factor: float | None = sampler_field("factor", use=ROLLOUTS)
    kv_cache: str = sampler_field("kv_cache", use=ROLLOUTS)
    min_commit: str = sampler_field("min_commit", use=ROLLOUTS)
    eos_stop: bool = sampler_field("eos_stop", use=ROLLOUTS)
    lookahead: int = sampler_field("lookahead", use=ROLLOUTS)
    rl_algorithm: str = field(default="d1", metadata={"help": "a registered estimator (gift.estimators)"})
    logps_chunk_size: int = field(default=1024, metadata={"help": "rows per fp32 log-softmax chunk"})

    use_lora: bool = lora_field("use_lora", True)
    lora_r: int = lora_field("lora_r", 128)
    lora_alpha: int = lora_field("lora_alpha", 64)
    lora_dropout: float = lora_field("lora_dropout", 0.05)
    lora_target_modules: list[str] = lora_field("lora_target_modules", ["all-linear"])

    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint"})
    global_batch_size: int | None = global_batch_field("completions")
    gradient_accumulation_steps: int | None = accumulation_field()

    # trl turns gradient checkpointing on by default; it only re-runs forwards for small models and LLaDA's
    # hub code has no HF hook for it. Recipes that need it set `activation_checkpointing: true`.
    gradient_checkpointing: bool | None = trl_field("gradient_checkpointing", None)
    # d1's defaults where they differ from trl's.
    learning_rate: float = trl_field("learning_rate", 3e-6)
    lr_scheduler_type: str = trl_field("lr_scheduler_type", "constant")
    max_grad_norm: float = trl_field("max_grad_norm", 0.2)
    adam_beta2: float = trl_field("adam_beta2", 0.99)
    weight_decay: float = trl_field("weight_decay", 0.1)
    kl_reference: str | None = field(
        default=None, metadata={"help": "KL to: start (d1) or generation (proximal); unset: the estimator's"}
    )
    num_generations: int = trl_field("num_generations", 6)
    per_device_train_batch_size: int = trl_field("per_device_train_batch_size", 6)
    num_iterations: int = trl_field("num_iterations", 12)
    temperature: float = trl_field("temperature", 0.9)
    scale_rewards: str = trl_field("scale_rewards", "none")
    logging_steps: float = trl_field("logging_steps", 1)
    save_steps: float = trl_field("save_steps", 96)
    output_dir: str | None = trl_field("output_dir", None)

    # Keys of older stage-two recipes, before the rollout sampler's options took the sampler's own names: refused
    # with the new name (a key dropped instead would silently run the default).
    RENAMED_KEYS = {
        "diffusion_steps": "steps",
        "sampler_threshold": "threshold",
        "sampler_factor": "factor",
        "sampler_min_commit": "min_commit",
        "sampler_lookahead": "lookahead",
        "sampler_eos_stop": "eos_stop",
    }

    def __new__(cls, *args: Any, **kwargs: Any):
        renamed = renamed_keys_message(kwargs, RLConfig.RENAMED_KEYS)
        if renamed:
            raise TypeError(f"renamed stage-two option(s): {renamed}")
        # `RLConfig(...)` builds the class that holds the registered estimators' options (`rl_config_class`).
        return super().__new__(rl_config_class() if cls is RLConfig else cls)

    def __reduce__(self):  # pickled (trl saves training_args.bin) as its values, rebuilt the same way
        return _rebuild, (self.__dict__.copy(),)

    # The named choices of its string options, checked by `check_config` (None: unset); the class built per
    # registry state adds rl_algorithm's (`_config_class`); the sampler's options keep the sampler's choices.
    CHOICES = {"torch_dtype": DTYPE_NAMES, "kl_reference": KL_REFERENCES, **SAMPLER_CHOICES}

    def __post_init__(self):
        fill_estimator_defaults(self)  # unset beta/epsilon/loss_type/kl_reference: the estimator's
        # Before anything is loaded: choices, ranges, then the rules across options (its own, the estimator's).
        # The sampler's options keep its rules and names: its ranges, choices, split and `SAMPLER_CHECKS` here.
        checks = (_full_distribution, _generation_boundary, *ESTIMATOR_CHECKS, *SAMPLER_CHECKS)
        check_config(self, estimator_rules(), checks)
        self.lora_target_modules = parse_target_modules(self.lora_target_modules)
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
        refuse_fsdp_on_cpu(self)
        super().__post_init__()

    def sampler_config(self) -> SamplerConfig:
        """The rollout sampler's settings (the same options, already checked when this config was built)."""
        return SamplerConfig(**{name: getattr(self, name) for name in sampler_options()})


def _full_distribution(config: RLConfig) -> str | None:
    if config.top_p != 1.0:  # trl's field; the diffusion sampler draws from the whole distribution
        return (
            f"top_p {config.top_p}: rollouts sample from the full distribution (no nucleus "
            "filtering); leave top_p at 1.0"
        )
    return None


def _generation_boundary(config: RLConfig) -> str | None:
    if config.save_steps >= 1 and int(config.save_steps) % config.num_iterations:
        return (
            f"save_steps ({int(config.save_steps)}) must be a multiple of num_iterations "
            f"({config.num_iterations}) so a resumed run restarts at a generation boundary"
        )
    return None


@cache
def _config_class(estimators: tuple) -> type:
    names = tuple(name for name, _ in estimators)
    algorithm = (
        "rl_algorithm",
        str,
        field(default=RLConfig.rl_algorithm, metadata={"help": f"{' | '.join(names)} (gift.estimators)"}),
    )
    cls = dataclasses.make_dataclass("RLConfig", [algorithm, *estimator_fields()], bases=(RLConfig,))
    cls.__module__, cls.__doc__ = __name__, RLConfig.__doc__
    cls.CHOICES = {**RLConfig.CHOICES, "rl_algorithm": names}
    return cls


def rl_config_class() -> type:
    """`RLConfig` with a field per option of the estimators registered now (one class per registry state)."""
    return _config_class(tuple(ESTIMATORS.items()))


def _rebuild(values: dict[str, Any]) -> RLConfig:
    config = object.__new__(rl_config_class())
    config.__dict__.update(values)
    return config


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
        raise ValueError(
            f"a frozen control needs max_steps (got {steps}) to be a positive multiple of num_iterations ({mu})"
        )
    dropped = estimator_keys()
    kept = {key: value for key, value in settings.items() if key not in dropped}
    return {
        **kept,
        "learning_rate": 1e-12,
        "beta": 0.0,
        "num_iterations": 1,
        "max_steps": steps // mu,
        "save_steps": steps // mu,
    }
