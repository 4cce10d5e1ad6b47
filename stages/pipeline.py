"""`gift pipeline`: the two-stage comparison from one base model, end to end.

Launch:
    gift pipeline --config configs/embedded/pipeline.yaml            # laptop CPU, ~10 minutes
    gift pipeline --config configs/embedded/pipeline_quick.yaml      # CI-sized smoke run
    gift pipeline --config configs/llada/pipeline_sudoku.yaml        # LLaDA-8B on GPUs

Steps (each is skipped when its output is complete, and resumed from its last checkpoint when a
previous run died in the middle): base model -> stage zero (embedded pre-training on the task) ->
stage one per arm and seed -> stage two per arm and seed -> evaluation of every checkpoint ->
reward-curve figure -> report. Console output of each training run goes to `<run>/console.log`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import yaml

from gift.checkpoint import FINAL_DIR, resolve_checkpoint
from stages.pipeline_config import PipelineConfig, load_pipeline_config
from stages.run_dir import last_complete_checkpoint

STATE_FILE = "pipeline_state.json"


class PipelineState:
    """Wall time of every finished step, kept across reruns in `pipeline_state.json`."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"steps": {}}

    def record(self, name: str, seconds: float, **extra) -> None:
        self.data["steps"][name] = {"seconds": round(seconds, 2), **extra}
        if not _process_state().is_main_process:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2))
        tmp.replace(self.path)


def _recipe(path: str | None, config_path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    candidates = [Path(path)] + ([Path(config_path).parent / path] if config_path else [])
    for candidate in candidates:
        if candidate.is_file():
            return yaml.safe_load(candidate.read_text()) or {}
    raise FileNotFoundError(f"recipe {path} not found (looked in {', '.join(map(str, candidates))})")


def _train_step(name: str, run_dir: Path, state: PipelineState, train: Callable[[bool], Path], log) -> Path:
    """Run (or resume, or skip) one training run whose final checkpoint is `run_dir/final`."""
    if resolve_checkpoint(run_dir / FINAL_DIR) is not None:
        log(f"skip  {name}: {run_dir / FINAL_DIR} exists")
        return run_dir / FINAL_DIR
    resume = run_dir.exists() and last_complete_checkpoint(run_dir) is not None
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # died before its first complete checkpoint: nothing valid to keep
    log(f"{'resume' if resume else 'run  '} {name} -> {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(run_dir / "console.log", "a") as console, contextlib.redirect_stdout(console):
        final = train(resume)
    state.record(name, time.perf_counter() - started, resumed=resume)
    return final


class Pipeline:
    def __init__(self, config: PipelineConfig, log=print):
        self.cfg = config
        self.log = log if _process_state().is_main_process else (lambda message: None)
        self.out = Path(config.output_dir)
        self.state: PipelineState | None = None

    # --- models -------------------------------------------------------------------------------------
    def base(self) -> str:
        """The starting model: written with `gift init-model` for an embedded preset."""
        cfg = self.cfg
        if not cfg.base_model.startswith("embedded"):
            return cfg.base_model
        from gift.embedded_model import init_model

        target = self.out / "base"
        with _process_state().main_process_first():  # one writer under a multi-process launch
            if not (target / "config.json").is_file():
                init_model(target, cfg.base_model.partition(":")[2] or "tiny", seed=0)
        return str(target)

    def pretrain(self, base: str) -> str:
        """Stage zero: plain masked-diffusion training on the task, so the arms start from a base that
        fills part of the puzzle already (EMBEDDED-CALIBRATION.md: 60-67% of empty cells)."""
        if not self.cfg.pretrain_steps:
            return base
        settings = {**self._stage_one_settings(), "objective": "sft", "normaliser": None, "max_steps": self.cfg.pretrain_steps,
                    **self.cfg.pretrain}
        return str(self._cold_start("stage zero (pre-training)", self.out / "pretrain", settings, base, seed=0))

    def _stage_one_settings(self) -> dict[str, Any]:
        return {**_recipe(self.cfg.stage_one_recipe, self.cfg.config_path), **self.cfg.stage_one}

    def _cold_start(self, name: str, run_dir: Path, settings: dict, model: str, seed: int, beta_fn=None) -> Path:
        from stages.cold_start import run_cold_start
        from stages.cold_start_config import ColdStartConfig

        def train(resume: bool) -> Path:
            values = {**settings, "model_name_or_path": model, "output_dir": str(run_dir), "seed": seed,
                      "resume": resume, "disable_tqdm": True, "model_type": self.cfg.model_type,
                      "trust_remote_code": self.cfg.trust_remote_code}
            return run_cold_start(ColdStartConfig(**values), beta_fn=beta_fn)

        return _train_step(name, run_dir, self.state, train, self.log)

    def stage_one(self, base: str, arm, seed: int) -> Path:
        beta_fn = None
        if arm.control:
            from transformers import AutoTokenizer

            from stages.controls import CONTROLS

            beta_fn = CONTROLS[arm.control](AutoTokenizer.from_pretrained(base, trust_remote_code=self.cfg.trust_remote_code))
        settings = {**self._stage_one_settings(), **arm.overrides}
        return self._cold_start(f"stage one: {arm.name} seed {seed}", self.arm_dir(arm.name, seed) / "stage1",
                                settings, base, seed, beta_fn)

    def rl_start(self, arm_name: str, seed: int) -> Path:
        run = self.arm_dir(arm_name, seed) / "stage1"
        if self.cfg.rl_from_step is None:
            return run / FINAL_DIR
        start = run / f"checkpoint-{self.cfg.rl_from_step}"
        if resolve_checkpoint(start) is None:
            raise FileNotFoundError(f"rl_from_step {self.cfg.rl_from_step}: {start} is not a complete checkpoint; "
                                    "make the stage-one save_steps divide it")
        return start

    def stage_two(self, arm, seed: int) -> Path:
        from stages.rl import run_rl
        from stages.rl_config import RLConfig

        run_dir = self.arm_dir(arm.name, seed) / "stage2"
        settings = {**_recipe(self.cfg.stage_two_recipe, self.cfg.config_path), **self.cfg.stage_two}

        def train(resume: bool) -> Path:
            values = {**settings, "model": str(self.rl_start(arm.name, seed)), "output_dir": str(run_dir), "seed": seed,
                      "task": self.cfg.task, "resume": resume, "disable_tqdm": True, "model_type": self.cfg.model_type,
                      "trust_remote_code": self.cfg.trust_remote_code}
            return run_rl(RLConfig(**values))

        return _train_step(f"stage two: {arm.name} seed {seed}", run_dir, self.state, train, self.log)

    def arm_dir(self, arm: str, seed: int) -> Path:
        return self.out / f"seed{seed}" / arm

    # --- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, label: str, checkpoint: str | Path, eval_dir: Path) -> dict:
        """Generate and score one checkpoint (skipped when its scores exist)."""
        scores_file = eval_dir / "scores.json"
        if scores_file.is_file():
            return json.loads(scores_file.read_text())
        from gift.checkpoint import load_model
        from stages.evaluate import evaluate
        from stages.score import score_files, write_scores

        self.log(f"eval  {label}")
        started = time.perf_counter()
        settings = {"gen_lengths": [256], "limit": None, "data": "synthetic", **self.cfg.eval}
        gen_lengths = settings.pop("gen_lengths")
        evaluate(load_model(str(checkpoint), self.cfg.model_type, self.cfg.trust_remote_code), self.cfg.task,
                 gen_lengths, output_dir=eval_dir, **settings)
        scores = score_files(eval_dir)
        write_scores(scores, eval_dir / "scores")
        self.state.record(f"eval: {label}", time.perf_counter() - started)
        return scores

    def entropy(self, base: str) -> dict | None:
        """The probe's entropy per token (and per token class where one is known) on the base model."""
        if not self.cfg.entropy_examples:
            return None
        out = self.out / "entropy"
        if (out / "entropy_report.json").is_file():
            return json.loads((out / "entropy_report.json").read_text())
        from stages.entropy_report import default_token_class, entropy_report, load_examples

        settings = self._stage_one_settings()
        data = settings.get("dataset", "synthetic:sudoku")
        self.log(f"probe entropy of the base model on {data}")
        return entropy_report(base, load_examples(data, self.cfg.entropy_examples), out,
                              max_length=settings.get("max_length"), token_class=default_token_class(data),
                              model_type=self.cfg.model_type, trust_remote_code=self.cfg.trust_remote_code)

    # --- the whole run --------------------------------------------------------------------------------
    def validate(self) -> None:
        """Build every stage's config once, so a bad key or value fails before anything is written."""
        from rewards import get_task
        from stages.cold_start_config import ColdStartConfig
        from stages.rl_config import RLConfig

        get_task(self.cfg.task)
        placeholder = str(self.out / "validate")
        for arm in self.cfg.arms:
            try:
                ColdStartConfig(**{**self._stage_one_settings(), **arm.overrides, "output_dir": placeholder})
                if arm.rl:
                    RLConfig(**{**_recipe(self.cfg.stage_two_recipe, self.cfg.config_path), **self.cfg.stage_two,
                                "output_dir": placeholder, "task": self.cfg.task})
            except (TypeError, ValueError) as err:
                raise ValueError(f"pipeline arm {arm.name!r}: {err}") from err
        unknown_eval = set(self.cfg.eval) - {"gen_lengths", "limit", "data", "block_length", "steps", "batch_size",
                                              "temperature", "remasking", "prompt_style", "prefill"}
        if unknown_eval:
            raise ValueError(f"pipeline eval: unknown keys {sorted(unknown_eval)}")

    def run(self) -> Path:
        cfg = self.cfg
        self.validate()
        self.out.mkdir(parents=True, exist_ok=True)
        if _process_state().is_main_process:
            (self.out / "pipeline_config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
        self.state = PipelineState(self.out / STATE_FILE)
        base = self.pretrain(self.base())
        evaluations = {"base": self.evaluate("base", base, self.out / "pretrain" / "eval" if cfg.pretrain_steps
                                             else self.out / "base_eval")}
        rl_runs: list[tuple[str, Path]] = []
        for seed in cfg.seeds:
            for arm in cfg.arms:
                final = self.stage_one(base, arm, seed)
                evaluations[f"stage1/{arm.name}/seed{seed}"] = self.evaluate(
                    f"stage one {arm.name} seed {seed}", final, final.parent / "eval")
            for arm in cfg.arms:
                if not arm.rl:
                    continue
                if cfg.rl_from_step is not None:
                    start = self.rl_start(arm.name, seed)
                    evaluations[f"rl_start/{arm.name}/seed{seed}"] = self.evaluate(
                        f"stage one {arm.name} seed {seed} @ step {cfg.rl_from_step}", start, start / "eval")
                final = self.stage_two(arm, seed)
                rl_runs.append((arm.name, final.parent))
                evaluations[f"stage2/{arm.name}/seed{seed}"] = self.evaluate(
                    f"stage two {arm.name} seed {seed}", final, final.parent / "eval")
        if not _process_state().is_main_process:  # figure, entropy probe and report: once
            return self.out / "report.md"
        figure = None
        if rl_runs:
            from stages.curves import plot_reward_curves

            figure, _ = plot_reward_curves(rl_runs, self.out / "reward_curves.png", smoothing=cfg.smoothing,
                                           title=f"diffu-GRPO reward on {cfg.task}: cold starts compared")
        from stages.report import write_report

        report = write_report(self.out, cfg, evaluations, rl_runs, figure, self.state.data, self.entropy(base))
        self.log(f"report: {report}\nfigure: {figure}")
        return report


def _process_state():
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def run_pipeline(config: PipelineConfig, log=print) -> Path:
    """Run every step of the pipeline (skipping finished ones) and return the report's path."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight loading/saving bars; the pipeline prints one line per step
    hf_logging.set_verbosity_error()
    return Pipeline(config, log).run()


def main(argv: list[str] | None = None) -> Path:
    """`gift pipeline --config PATH [--output_dir DIR] [--seeds 0 1 2]`."""
    parser = argparse.ArgumentParser(prog="gift pipeline", description=main.__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--output_dir")
    parser.add_argument("--seeds", type=int, nargs="+")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("output_dir", args.output_dir), ("seeds", args.seeds)) if v is not None}
    return run_pipeline(load_pipeline_config(args.config, overrides))


if __name__ == "__main__":
    main()
