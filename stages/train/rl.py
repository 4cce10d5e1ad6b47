"""Stage two: RL from a stage-one checkpoint (d1's diffu-GRPO, SPG, UniGRPO, wd1, GDPO or coupled-GRPO), as a
subclass of trl's `GRPOTrainer`.

Launch:
    gift rl --config configs/embedded/grpo_sudoku.yaml --model runs/gift --output_dir runs/gift-rl   # CPU
    accelerate launch --config_file configs/accelerate/ddp.yaml -m stages.train.rl \
        --config configs/llada/grpo_sudoku.yaml --model runs/llada-gift --output_dir runs/llada-gift-rl  # 8 GPUs
    gift rl --config ... --output_dir runs/gift-rl --resume                                             # after a crash
    gift rl --config configs/llada/spg_sudoku.yaml --model runs/llada-gift --output_dir runs/llada-gift-spg  # SPG

trl keeps the training loop, the prompt sampler (each prompt repeated `num_generations` times), the
generation-batch buffering, the reward calls and the logging; this subclass replaces generation (the
project's diffusion sampler), the masks of the log-probability estimate and the surrogate loss (the
estimator named by `rl_algorithm`, `gift.estimators`; docs/rl_algorithms.md). Every optimizer step appends
one JSON line to `metrics.jsonl` in the run directory.
"""

from __future__ import annotations

import copy
import json
import time
import warnings
from pathlib import Path

import torch
from accelerate.utils import gather, is_peft_model
from trl import GRPOTrainer

from gift.adapters import ModelAdapter
from gift.checkpoint import load_model
from gift.diffu_grpo import completion_mask_until_eos, group_advantages
from gift.estimators import build_estimator, masked_logps
from gift.sampler import DiffusionSampler, encode_chat_prompts
from rewards import get_task
from stages.config_args import UsageError, config_parser, parse_config
from stages.runs.discovery import checkpoint_step
from stages.runs.guard import guard_run
from stages.runs.manifest import CheckpointManifestCallback, manifest_maker, save_final
from stages.runs.metrics_file import rewind as rewind_metrics
from stages.train.divergence import DivergenceStop
from stages.train.lora import lora_config
from stages.train.resume_check import CheckedResume
from stages.train.rl_config import RLConfig, rl_config_class
from stages.train.rl_data import rl_rows
from stages.train.rl_estimator import estimator_settings
from stages.train.rl_start import check_rollouts_fit
from stages.train.trl_private import check_trl, micro_step, reference_built_by_us, step_metrics

# trl's unwrap_model_for_generation reads the deprecated `is_gradient_checkpointing` on every rollout; the
# warning says nothing a user can act on and repeats once per worker process.
warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*deprecated", category=FutureWarning)

METRICS_FILE = "metrics.jsonl"
METRIC_KEYS = (
    "loss",
    "reward_mean",
    "reward_std",
    "frac_reward_zero_std",
    "kl",
    "clip_ratio",
    "completion_length",
    "learning_rate",
    "grad_norm",
)


def _seed(*parts: int) -> int:
    """A 63-bit seed from integers (run seed, process, generation index...), stable across runs."""
    value = 0
    for part in parts:
        value = (value * 1_000_003 + int(part)) % (2**63 - 1)
    return value


def _frozen_copy(model, args: RLConfig):
    """A copy of the starting policy; under ZeRO-3 (parameters partitioned at load, nothing to deep-copy) the
    same source loaded again, which DeepSpeed then partitions as it did the policy."""
    if not any(hasattr(p, "ds_id") for p in model.parameters()):
        return copy.deepcopy(model)
    return load_model(args.model, args.model_type, args.trust_remote_code, args.torch_dtype, merge_adapter=True).model


class DiffuGRPOTrainer(DivergenceStop, CheckedResume, GRPOTrainer):
    """GRPO with a masked-diffusion sampler; the log-probability estimate and surrogate come from
    `args.rl_algorithm` (a registered estimator: `gift.estimators`)."""

    loss_is_scaled_for_ga = False  # our loss is a per-micro-batch mean: let HF divide by accumulation

    def __init__(
        self, model, adapter: ModelAdapter, args: RLConfig, metrics_path: Path, wall_offset: float = 0.0, **kwargs
    ):
        check_trl()
        beta = args.beta
        # The reference is copied before trl's __init__: trl replaces `model.forward` with a closure over the
        # model's own bound forward, so a copy taken afterwards would run the *trained* weights.
        reference = (
            _frozen_copy(model, args).eval().requires_grad_(False)
            if beta != 0.0 and args.kl_reference == "start" and not is_peft_model(model)
            else None
        )
        with reference_built_by_us(args):
            super().__init__(model=model, args=args, **kwargs)
        self.beta = beta
        self.adapter = adapter
        self.estimator = build_estimator(args.rl_algorithm, estimator_settings(args))
        self.sampler_config = args.sampler_config()
        if reference is not None:
            if self.is_deepspeed_enabled:
                from trl.models import prepare_deepspeed

                self.ref_model = prepare_deepspeed(reference, self.accelerator)
            else:
                self.ref_model = self.accelerator.prepare_model(reference, evaluation_mode=True)
        self.metrics_path, self.wall_offset, self.wall_start = metrics_path, wall_offset, time.time()
        self._rollout_metrics: dict[str, float] = {}

    # --- rollouts, rewards, advantages, old/ref log-probs: once per generation batch --------------
    def _generate_and_score_completions(self, inputs: list[dict]) -> dict[str, torch.Tensor]:
        args, device = self.args, self.accelerator.device
        rank = self.accelerator.process_index
        generation = self.state.global_step // self.num_iterations
        prompts = [row["prompt"] for row in inputs]

        # 1. Rollouts with the project's sampler; its noise comes from a generator seeded by (seed, rank,
        #    generation), so a resumed run redraws exactly what the uninterrupted one drew.
        rollout_rng = torch.Generator(device).manual_seed(_seed(args.seed, rank, generation, 1))
        from trl.models import unwrap_model_for_generation

        with unwrap_model_for_generation(self.model_wrapped, self.accelerator) as unwrapped:
            sampler = DiffusionSampler(unwrapped, self.adapter, self.sampler_config)
            out = sampler.generate(
                encode_chat_prompts(self.processing_class, prompts, args.prefill), generator=rollout_rng
            )
        plen = out.prompt_length
        prompt_ids, prompt_attention = out.sequences[:, :plen], out.attention_mask[:, :plen]
        completion_ids = out.completion_ids
        completion_mask = completion_mask_until_eos(completion_ids, self.adapter.eos_token_id)
        scored = self.estimator.scored(completion_ids, completion_mask, self.adapter.pad_token_id)
        texts = sampler.decode(out, self.processing_class)

        # 2. Rewards (trl calls the reward functions with the dataset columns and gathers over processes).
        rewards_per_func = self._calculate_rewards(inputs, prompts, texts, completion_ids.tolist())
        rewards = (rewards_per_func * self.reward_weights.to(device).unsqueeze(0)).nansum(dim=1)

        # 3. Advantages over each prompt's group of num_generations completions (wd1: its group weights),
        #    then this process's rows.
        #    The estimator may reshape the rewards it learns from (UniGRPO's length rule); the logged rewards
        #    stay the task's, comparable with a frozen control's.
        shaped = self.estimator.shape_rewards(rewards, gather(completion_mask.sum(1)), completion_ids.shape[1])
        advantages = self.estimator.advantages(shaped, self.num_generations, scale=args.scale_rewards != "none")
        group_std = group_advantages(rewards, self.num_generations)[1]
        rows = slice(rank * len(prompts), (rank + 1) * len(prompts))

        # 4. The estimator's masks, one set per inner iteration (B, mu, K, P + L); old and reference
        #    log-probs under the same masks.
        mask_rng = torch.Generator(device).manual_seed(_seed(args.seed, rank, generation, 2))
        noise = self.estimator.draw_noise(prompt_attention, scored, self.num_iterations, mask_rng)
        noise, rates = noise if isinstance(noise, tuple) else (noise, None)  # rates: (B, mu, K) masking rates
        batch = {
            "prompt_ids": prompt_ids,
            "prompt_attention": prompt_attention,
            "completion_ids": completion_ids,
            "completion_mask": scored,
            "advantages": advantages[rows],
            "noise": noise,
        }
        if rates is not None:
            batch["noise_rates"] = rates
        with torch.no_grad():
            if self.num_iterations > 1 and self.estimator.uses_old_logps:  # mu = 1: the ratio is 1
                batch["old_logps"] = self._all_iteration_logps(self.model, batch)
            if self.beta != 0.0:
                batch["ref_logps"] = self._reference_logps(batch)

        # 5. Metrics of this generation batch: every step trained on it logs them (see log()).
        self._rollout_metrics = self._batch_metrics(rewards, rewards_per_func, group_std, completion_mask)
        return batch

    def _batch_metrics(self, rewards, rewards_per_func, group_std, completion_mask) -> dict[str, float]:
        """Reward statistics and completion length of one generation batch (all processes)."""
        return {
            "reward_mean": rewards.mean().item(),
            "reward_std": group_std.mean().item(),
            "frac_reward_zero_std": (group_std < 1e-6).float().mean().item(),
            **{
                f"reward/{name}": torch.nanmean(rewards_per_func[:, i]).item()
                for i, name in enumerate(self.reward_func_names)
            },
            "completion_length": gather(completion_mask.sum(1).float()).mean().item(),
        }

    def _all_iteration_logps(self, model, batch: dict) -> torch.Tensor:
        """(B, mu, K, L) log-probs under each mask set some update reads (`mask_schedule`); NaN for the others."""
        spg = self.args.steps_per_generation
        read = sorted({self.estimator.mask_set(m, spg, self.num_iterations) for m in range(spg * self.num_iterations)})
        logps = {k: self._logps(model, batch, k) for k in read}
        unread = torch.full_like(logps[read[0]], float("nan"))
        return torch.stack([logps.get(k, unread) for k in range(self.num_iterations)], dim=1)

    def _reference_logps(self, batch: dict) -> torch.Tensor:
        if self.args.kl_reference == "generation":  # the policy that generated the batch (mu > 1: checked)
            return batch["old_logps"]
        if self.ref_model is not None:
            return self._all_iteration_logps(self.ref_model, batch)
        with self.accelerator.unwrap_model(self.model).disable_adapter():  # LoRA: the starting model
            return self._all_iteration_logps(self.model, batch)

    def _logps(self, model, batch: dict, iteration: int) -> torch.Tensor:
        return masked_logps(
            model,
            self.adapter,
            batch["prompt_ids"],
            self.estimator.attention(batch["prompt_attention"]),
            batch["completion_ids"],
            batch["noise"][:, iteration],
            self.args.logps_chunk_size,
        )

    # --- the policy-gradient step ------------------------------------------------------------------
    def _compute_loss(self, model, inputs: dict) -> torch.Tensor:
        # trl's _step counts micro-batches; a generation batch serves steps_per_generation x mu of them.
        per_generation = self.args.steps_per_generation * self.num_iterations
        iteration = self.estimator.mask_set(
            micro_step(self) % per_generation, self.args.steps_per_generation, self.num_iterations
        )
        logps = self._logps(model, inputs, iteration)
        old = inputs["old_logps"][:, iteration] if "old_logps" in inputs else None
        ref = inputs["ref_logps"][:, iteration] if "ref_logps" in inputs else None
        completion_noise = inputs["noise"][:, iteration, :, inputs["prompt_ids"].shape[1] :]
        extra = {"rates": inputs["noise_rates"][:, iteration]} if "noise_rates" in inputs else {}
        out = self.estimator.loss(
            logps, completion_noise, old, ref, inputs["advantages"], inputs["completion_mask"], **extra
        )
        metrics = step_metrics(self, self.model.training)
        metrics["kl"].append(out.kl)
        metrics["clip_ratio"].append(out.clip_ratio)
        for key, value in self._rollout_metrics.items():
            metrics[key].append(value)
        return out.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)  # trl folds its averaged metrics into `logs`
        if "loss" in logs and self.is_world_process_zero():
            line = {
                "step": self.state.global_step,
                "wall_time": round(self.wall_offset + time.time() - self.wall_start, 3),
            }
            line.update({k: v for k, v in logs.items() if k in METRIC_KEYS or k.startswith("reward/")})
            with open(self.metrics_path, "a") as handle:
                handle.write(json.dumps(line) + "\n")


@guard_run("rl")
def run_rl(
    config: RLConfig, callbacks=None, trainer_class: type | None = None, *, resume_from: Path | None = None
) -> Path:
    """Train stage two and return the final checkpoint directory. Bad input fails before training.
    `trainer_class`: a `DiffuGRPOTrainer` subclass (the frozen control's, `stages.train.frozen_control`);
    `resume_from`: the checkpoint `--resume` continues from, handed over by `guard_run`."""
    task = get_task(config.task)
    rows = rl_rows(config.task, config.dataset, config.dataset_split, config.max_prompts, config.synthetic_seed)
    loaded = load_model(
        config.model, config.model_type, config.trust_remote_code, config.torch_dtype, merge_adapter=True
    )
    check_rollouts_fit(loaded, rows, config)
    peft_config = None
    if config.use_lora:
        peft_config = lora_config(config, task_type="CAUSAL_LM")
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / METRICS_FILE
    wall_offset = rewind_metrics(metrics_path, checkpoint_step(resume_from)) if resume_from else 0.0
    if not resume_from:
        metrics_path.unlink(missing_ok=True)

    make_manifest = manifest_maker(loaded, "rl", config.model, config.rl_algorithm, config, parent_is_source=True)
    import datasets

    trainer = (trainer_class or DiffuGRPOTrainer)(
        model=loaded.model,
        adapter=loaded.adapter,
        args=config,
        metrics_path=metrics_path,
        wall_offset=wall_offset,
        reward_funcs=list(task.reward_funcs),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=loaded.tokenizer,
        peft_config=peft_config,
        callbacks=[CheckpointManifestCallback(make_manifest), *(callbacks or [])],
    )
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    return save_final(
        trainer, loaded.tokenizer, make_manifest({**result.metrics, "global_step": trainer.state.global_step})
    )


def make_parser():
    """`gift rl`'s parser, with a flag for every option of the estimators registered now."""
    return config_parser(rl_config_class())


def main(argv: list[str] | None = None) -> Path:
    """`gift rl --config PATH --model CHECKPOINT [--key value ...]`."""
    config = parse_config(make_parser(), argv)
    final = run_rl(config)
    print(f"checkpoint: {final}\nmetrics: {Path(config.output_dir) / METRICS_FILE}")
    return final


if __name__ == "__main__":
    try:
        main()
    except UsageError as err:  # `accelerate launch -m stages.train.rl`: a bad option is one line, not a traceback
        raise SystemExit(f"stages.train.rl: error: {err}") from None
