"""Stage one: cold-start fine-tuning with GIFT or masked-diffusion SFT.

Launch:
    gift cold-start --config configs/embedded/gift_sudoku.yaml --output_dir runs/gift   # CPU, embedded
    gift cold-start --config configs/embedded/sft_sudoku.yaml --max_steps 20 --output_dir runs/sft
    accelerate launch --config_file configs/accelerate/ddp.yaml -m stages.train.cold_start \
        --config configs/llada/s1k_lora.yaml                                           # 8 GPUs
    gift cold-start --config ... --output_dir runs/gift --resume                       # after a crash

The run directory holds HF `checkpoint-N/` folders (each also a valid checkpoint of this project, for
resuming and for starting stage two early) and the final checkpoint in `final/`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback

from gift.checkpoint import LoadedModel, load_model
from gift.data import DiffusionCollator, build_examples, tokenize_examples
from gift.loss import diffusion_loss
from gift.probe import probe_betas
from gift.schedules import GiftSchedule, UniformSchedule
from stages.config_args import UsageError, config_parser, parse_config
from stages.runs.guard import guard_run
from stages.runs.manifest import CheckpointManifestCallback, manifest_maker, save_final
from stages.train.cold_start_config import ColdStartConfig
from stages.train.divergence import DivergenceStop
from stages.train.lora import lora_config
from stages.train.resume_check import CheckedResume

logger = logging.getLogger(__name__)
BETA_CACHE_NAME = "beta_cache.safetensors"


class ColdStartTrainer(DivergenceStop, CheckedResume, Trainer):
    """`transformers.Trainer` with the masked-diffusion loss; the training loop is HF's own."""

    def __init__(self, *args, adapter, schedule: UniformSchedule, config: ColdStartConfig, **kwargs):
        super().__init__(*args, args=config, **kwargs)
        self.adapter, self.schedule, self.config = adapter, schedule, config
        self.loss_is_scaled_for_ga = False  # our loss is a per-micro-batch mean: let HF divide by accumulation
        self._stats: dict[str, list[float]] = defaultdict(list)
        self.add_callback(_StepTimer(self._stats))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        cfg = self.config
        self.schedule.step = self.state.global_step  # beta_refresh_steps > 1 probes at multiples of k
        out = diffusion_loss(
            model, self.adapter, inputs, self.schedule, cfg.normaliser, cfg.eps, cfg.min_rate, cfg.resample_empty
        )
        for key, value in asdict(out.stats).items():
            if not (isinstance(value, float) and math.isnan(value)):
                self._stats[key].append(float(value))
        return (out.loss, None) if return_outputs else out.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._stats:
            for key, values in self._stats.items():
                # Counts are summed over the logging window, everything else averaged.
                logs[key] = sum(values) if key in ("clamp_count", "empty_sequences") else sum(values) / len(values)
            self._stats.clear()
        super().log(logs, start_time)


class _StepTimer(TrainerCallback):
    def __init__(self, stats):
        self.stats, self.start = stats, None

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.start is not None:
            self.stats["step_time"].append(time.perf_counter() - self.start)


@torch.no_grad()
def build_beta_cache(
    model, adapter, features: list[dict], collator: DiffusionCollator, config: ColdStartConfig
) -> torch.Tensor:
    """Per-example betas of the starting model, (N, max_length): the fixed forward process."""
    fixed = DiffusionCollator(collator.pad_token_id, collator.max_length, "max_length", collator.train_on_pad_tail)
    cache = torch.zeros(len(features), config.max_length)
    device = next(model.parameters()).device
    step = max(config.per_device_train_batch_size, 1) * 4
    for start in range(0, len(features), step):
        batch = {k: v.to(device) for k, v in fixed(features[start : start + step]).items()}
        cache[batch["index"].cpu()] = probe_betas(
            model, adapter, batch, config.beta_from, config.probe_chunk_size
        ).cpu()
    return cache


@guard_run("cold_start")
def run_cold_start(
    config: ColdStartConfig,
    beta_fn: Callable[[dict], torch.Tensor] | None = None,
    callbacks: list[TrainerCallback] | None = None,
    *,
    resume_from: Path | None = None,
) -> Path:
    """Train stage one and return the final checkpoint directory.

    `beta_fn` (batch -> per-token beta) replaces the probe, for control arms such as a structural beta.
    `resume_from`: the checkpoint `--resume` continues from, handed over by `guard_run`.
    """
    loaded: LoadedModel = load_model(
        config.model_name_or_path, config.model_type, config.trust_remote_code, config.torch_dtype, merge_adapter=True
    )
    model, tokenizer, adapter = loaded.model, loaded.tokenizer, loaded.adapter
    n_examples, features = _training_features(config, tokenizer, adapter)
    collator = DiffusionCollator(adapter.pad_token_id, config.max_length, config.pad_to, config.train_on_pad_tail)

    if config.use_lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(config))
        if config.gradient_checkpointing:
            model.enable_input_require_grads()

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    schedule, cache_file = _schedule(config, beta_fn, model, adapter, features, collator, resume_from)
    extra_files = {BETA_CACHE_NAME: cache_file} if cache_file else None
    make_manifest = manifest_maker(loaded, "cold_start", config.model_name_or_path, config.objective, config)
    trainer = ColdStartTrainer(
        model=model,
        adapter=adapter,
        schedule=schedule,
        config=config,
        train_dataset=features,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[CheckpointManifestCallback(make_manifest, extra_files), *(callbacks or [])],
    )
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    metrics = {
        **result.metrics,
        "global_step": trainer.state.global_step,
        "examples": len(features),
        "dropped_too_long": n_examples - len(features),
    }
    final = save_final(trainer, tokenizer, make_manifest(metrics), extra_files)
    if trainer.is_world_process_zero():
        (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in trainer.state.log_history))
    return final


def _training_features(config: ColdStartConfig, tokenizer, adapter) -> tuple[int, list[dict]]:
    """The number of examples read and their tokenized features (too_long=drop may drop some, logged)."""
    examples = build_examples(
        config.dataset,
        split=config.dataset_split,
        subset=config.dataset_subset,
        dataset_format=config.dataset_format,
        prompt_field=config.prompt_field,
        answer_field=config.answer_field,
        max_examples=config.max_examples,
        synthetic_examples=config.synthetic_examples,
        synthetic_seed=config.synthetic_seed,
    )
    features = tokenize_examples(
        examples,
        tokenizer,
        adapter.eos_token_id,
        config.max_length,
        config.system_prompt,
        config.too_long,
        source=config.dataset,
    )
    if len(features) < len(examples):
        logger.warning(
            "too_long=drop: dropped %d of %d examples longer than max_length %d",
            len(examples) - len(features),
            len(examples),
            config.max_length,
        )
    return len(examples), features


def _schedule(
    config: ColdStartConfig,
    beta_fn,
    model,
    adapter,
    features: list[dict],
    collator: DiffusionCollator,
    resume_from: Path | None,
) -> tuple[UniformSchedule, Path | None]:
    """The masking schedule of the run, and the beta cache file it wrote (`beta_source: cached`) or None."""
    if config.objective == "sft":
        return UniformSchedule(), None
    beta_source = "custom" if beta_fn is not None else config.beta_source
    schedule = GiftSchedule(
        beta_source,
        config.beta_from,
        config.beta_ref,
        config.beta_ref_floor,
        config.pad_tail_schedule,
        config.probe_chunk_size,
        beta_fn=beta_fn,
        beta_refresh_steps=config.beta_refresh_steps if beta_source == "live" else 1,
    )
    if beta_source == "live" and config.beta_refresh_steps > 1:
        # Steps between refreshes reuse each example's last probed beta: seed them with the starting
        # model's (a one-off probe, as `cached`); every live probe then overwrites its examples' rows.
        schedule.cache = _starting_betas(model, adapter, features, collator, config)
    if beta_source != "cached":
        return schedule, None
    cache_file = Path(config.output_dir) / BETA_CACHE_NAME
    if resume_from is not None and (resume_from / BETA_CACHE_NAME).is_file():
        schedule.cache = load_file(resume_from / BETA_CACHE_NAME)["beta"]  # betas of the STARTING model
    else:
        schedule.cache = _starting_betas(model, adapter, features, collator, config)
    save_file({"beta": schedule.cache.contiguous()}, str(cache_file))
    return schedule, cache_file


def _starting_betas(
    model, adapter, features: list[dict], collator: DiffusionCollator, config: ColdStartConfig
) -> torch.Tensor:
    """`build_beta_cache` of the starting model, on the accelerator (not the CPU the weights were loaded on)."""
    started = time.perf_counter()
    model.to(config.device)
    cache = build_beta_cache(model, adapter, features, collator, config)
    logger.info("betas of the starting model: %d examples in %.1fs", len(features), time.perf_counter() - started)
    return cache


def make_parser():
    return config_parser(ColdStartConfig)


def main(argv: list[str] | None = None) -> Path:
    """`gift cold-start --config PATH [--key value ...]`."""
    final = run_cold_start(parse_config(make_parser(), argv))
    print(f"checkpoint: {final}")
    return final


if __name__ == "__main__":
    try:
        main()
    # `accelerate launch -m stages.train.cold_start`: a bad option is one line, not a traceback
    except UsageError as err:
        raise SystemExit(f"stages.train.cold_start: error: {err}") from None
