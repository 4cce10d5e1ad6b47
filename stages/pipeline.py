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
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gift.checkpoint import FINAL_DIR, resolve_checkpoint
from gift.files import atomic_write_text
from gift.stored_paths import store_relative
from stages.pipeline_config import PipelineConfig, available_cores, load_pipeline_config
from stages.recipes import load_recipe
from stages.run_record import FrozenControl, RunRecord, StageOneRun, StageTwoRun, write_record
from stages.runs.folder import is_run_dir
from stages.runs.pipeline_guard import check_finished_stage, hold_pipeline_folder
from stages.runs.process_state import process_state
from stages.runs.stop_signals import stop_workers, worker_init

STATE_FILE = "pipeline_state.json"


class PipelineState:
    """Wall time of every finished step, kept across reruns in `pipeline_state.json`."""

    def __init__(self, path: Path | None):
        self.path = path  # None: kept in memory (a worker process hands its steps back to the main one)
        self.data: dict[str, Any] = json.loads(path.read_text()) if path and path.exists() else {"steps": {}}

    def record(self, name: str, seconds: float, **extra) -> None:
        self.merge({name: {"seconds": round(seconds, 2), **extra}})

    def merge(self, steps: dict[str, Any]) -> None:
        self.data["steps"].update(steps)
        if self.path is None or not process_state().is_main_process:
            return
        atomic_write_text(self.path, json.dumps(self.data, indent=2))


def _recipe(path: str | None, config_path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    candidates = [Path(path)] + ([Path(config_path).parent / path] if config_path else [])
    for candidate in candidates:
        if candidate.is_file():
            return load_recipe(candidate)
    raise FileNotFoundError(f"recipe {path} not found (looked in {', '.join(map(str, candidates))})")


def _train_step(name: str, stage: str, run_dir: Path, state: PipelineState, train: Callable[[bool], Path], log) -> Path:
    """Run (or resume, or skip) one training run whose final checkpoint is `run_dir/final`; `stage` is the
    row of the wall-time table it counts in (one of `stages.run_record.STAGES`)."""
    if resolve_checkpoint(run_dir / FINAL_DIR) is not None:
        check_finished_stage(name, train)  # a stage whose settings changed since it ran is refused
        log(f"skip  {name}: {run_dir / FINAL_DIR} exists")
        return run_dir / FINAL_DIR
    # A run of this tool there is resumed (from step 0 if it died before its first checkpoint); the stage's
    # own checks refuse anything else, so nothing in the folder is deleted here.
    resume = is_run_dir(run_dir)
    log(f"{'resume' if resume else 'run  '} {name} -> {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(run_dir / "console.log", "a") as console, contextlib.redirect_stdout(console):
        final = train(resume)
    state.record(name, time.perf_counter() - started, stage=stage, resumed=resume)
    return final


class Pipeline:
    def __init__(self, config: PipelineConfig, log=print):
        self.cfg = config
        self.log = log if process_state().is_main_process else (lambda message: None)
        self.out = Path(config.output_dir)
        self.state: PipelineState | None = None
        self.workers = 1  # worker processes the (arm, seed) jobs ran in (set by `_run_jobs`)

    # --- models -------------------------------------------------------------------------------------
    def base(self) -> str:
        """The starting model: written with `gift init-model` for an embedded preset."""
        cfg = self.cfg
        if not cfg.base_model.startswith("embedded"):
            return cfg.base_model
        from gift.embedded_model import init_model

        target = self.out / "base"
        with process_state().main_process_first():  # one writer under a multi-process launch
            if not (target / "config.json").is_file():
                init_model(target, cfg.base_model.partition(":")[2] or "tiny", seed=0)
        return str(target)

    def pretrain(self, base: str) -> str:
        """Stage zero: plain masked-diffusion training on the task, so the arms start from a base that
        fills part of the puzzle already (stage zero's figures: docs/embedded_pipeline_report.md)."""
        if not self.cfg.pretrain_steps:
            return base
        settings = {
            **self._stage_one_settings(),
            "objective": "sft",
            "normaliser": None,
            "max_steps": self.cfg.pretrain_steps,
            **self.cfg.pretrain,
        }
        return str(
            self._cold_start("stage zero (pre-training)", "stage zero", self.out / "pretrain", settings, base, seed=0)
        )

    def _stage_one_settings(self) -> dict[str, Any]:
        return {**_recipe(self.cfg.stage_one_recipe, self.cfg.config_path), **self.cfg.stage_one}

    def _cold_start(
        self, name: str, stage: str, run_dir: Path, settings: dict, model: str, seed: int, beta_fn=None
    ) -> Path:
        from stages.train.cold_start import run_cold_start
        from stages.train.cold_start_config import ColdStartConfig

        def train(resume: bool) -> Path:
            values = {
                **settings,
                "model_name_or_path": model,
                "output_dir": str(run_dir),
                "seed": seed,
                "resume": resume,
                "disable_tqdm": True,
                **self.cfg.model_source().options(),
            }
            return run_cold_start(ColdStartConfig(**values), beta_fn=beta_fn)

        return _train_step(name, stage, run_dir, self.state, train, self.log)

    def stage_one(self, base: str, arm, seed: int) -> Path:
        beta_fn = None
        if arm.control:
            from gift.adapters import load_tokenizer
            from gift.structural_control import structural_control

            beta_fn = structural_control(arm.control)(load_tokenizer(base, self.cfg.model_type))
        settings = {**self._stage_one_settings(), **arm.overrides}
        return self._cold_start(
            f"stage one: {arm.name} seed {seed}",
            "stage one",
            self.arm_dir(arm.name, seed) / "stage1",
            settings,
            base,
            seed,
            beta_fn,
        )

    def rl_start(self, arm_name: str, seed: int) -> Path:
        run = self.arm_dir(arm_name, seed) / "stage1"
        if self.cfg.rl_from_step is None:
            return run / FINAL_DIR
        start = run / f"checkpoint-{self.cfg.rl_from_step}"
        if resolve_checkpoint(start) is None:
            raise FileNotFoundError(
                f"rl_from_step {self.cfg.rl_from_step}: {start} is not a complete checkpoint; "
                "make the stage-one save_steps divide it"
            )
        return start

    def _stage_two_settings(self, algorithm: str | None) -> dict[str, Any]:
        settings = {**_recipe(self.cfg.stage_two_recipe, self.cfg.config_path), **self.cfg.stage_two}
        return {**settings, **self.cfg.algorithm_overrides(algorithm)}

    def _control_name(self, algorithm: str | None) -> str:
        """The folder of the frozen control `algorithm`'s runs compare against: `stage2-frozen` when every
        algorithm's control would roll out alike (they share it), else `stage2-<algorithm>-frozen`."""
        from stages.train.rl_config import frozen_settings

        controls = {
            json.dumps(frozen_settings(self._stage_two_settings(a)), sort_keys=True, default=str)
            for a in self.cfg.algorithms()
        }
        return "stage2-frozen" if algorithm is None or len(controls) == 1 else f"stage2-{algorithm}-frozen"

    def stage_two(self, arm, seed: int, algorithm: str | None = None, frozen: bool = False) -> Path:
        """One stage-two run; `frozen`: its control (see `frozen_settings`, `_control_name`)."""
        from stages.train.frozen_control import run_frozen_control
        from stages.train.rl import run_rl
        from stages.train.rl_config import RLConfig, frozen_settings

        run_dir = self.arm_dir(arm.name, seed) / ("stage2" if algorithm is None else f"stage2-{algorithm}")
        settings = self._stage_two_settings(algorithm)
        if frozen:
            run_dir, settings = run_dir.with_name(self._control_name(algorithm)), frozen_settings(settings)

        def train(resume: bool) -> Path:
            values = {
                **settings,
                "model": str(self.rl_start(arm.name, seed)),
                "output_dir": str(run_dir),
                "seed": seed,
                "task": self.cfg.task,
                "resume": resume,
                "disable_tqdm": True,
                **self.cfg.model_source().options(),
            }
            return (run_frozen_control if frozen else run_rl)(RLConfig(**values))

        label = arm.name if frozen and run_dir.name == "stage2-frozen" else self.cfg.rl_label(arm.name, algorithm)
        name = f"stage two: {label}{' (frozen)' if frozen else ''} seed {seed}"
        return _train_step(name, "frozen control" if frozen else "stage two", run_dir, self.state, train, self.log)

    def arm_dir(self, arm: str, seed: int) -> Path:
        return self.out / f"seed{seed}" / arm

    # --- evaluation -----------------------------------------------------------------------------------
    def evaluate(self, label: str, checkpoint: str | Path, eval_dir: Path) -> dict:
        """Generate and score one checkpoint (skipped when its scores exist)."""
        scores_file = eval_dir / "scores.json"
        if scores_file.is_file():  # its files named where they are now (a moved or copied folder)
            return _files_in(json.loads(scores_file.read_text()), eval_dir)
        from stages.evaluation.evaluate import evaluate
        from stages.evaluation.score import score_files, write_scores

        self.log(f"eval  {label}")
        started = time.perf_counter()
        settings = {"gen_lengths": [256], "limit": None, "data": "synthetic", **self.cfg.eval}
        gen_lengths = settings.pop("gen_lengths")
        evaluate(self.cfg.model_source(checkpoint).load(), self.cfg.task, gen_lengths, output_dir=eval_dir, **settings)
        scores = score_files(eval_dir)
        write_scores(scores, eval_dir / "scores")
        self.state.record(f"eval: {label}", time.perf_counter() - started, stage="evaluation")
        return scores

    def entropy(self, base: str) -> dict | None:
        """The probe's entropy per token (and per token class where one is known) on the base model."""
        if not self.cfg.entropy_examples:
            return None
        out = self.out / "entropy"
        if (out / "entropy_report.json").is_file():
            return json.loads((out / "entropy_report.json").read_text())
        from stages.reports.entropy_report import default_token_class, entropy_report, load_examples

        settings = self._stage_one_settings()
        data = settings.get("dataset", "synthetic:sudoku")
        self.log(f"probe entropy of the base model on {data}")
        # Probe what stage one trains on: the EOS tail only where the recipe trains it (d1's layout).
        pad_tail = settings.get("train_on_pad_tail", True) and settings.get("pad_to", "max_length") == "max_length"
        return entropy_report(
            base,
            load_examples(data, self.cfg.entropy_examples),
            out,
            max_length=settings.get("max_length") if pad_tail else None,
            pad_tail=pad_tail,
            token_class=default_token_class(data),
            model_label=store_relative(base, self.out, out),  # `../base` inside the folder: it may move
            **self.cfg.model_source().options(),
        )

    # --- one arm and seed: stage one, its evaluation, stage two per algorithm -------------------------------
    def job(self, base: str, arm, seed: int) -> dict[str, Any]:
        """Everything that depends on one (arm, seed) only; independent of every other job."""
        cfg, evaluations, stage_two, controls = self.cfg, {}, [], {}
        final = self.stage_one(base, arm, seed)
        stage_one = StageOneRun(
            arm.name, seed, str(final.parent), {**self._stage_one_settings(), **arm.overrides}.get("max_steps")
        )
        evaluations[f"stage1/{arm.name}/seed{seed}"] = self.evaluate(
            f"stage one {arm.name} seed {seed}", final, final.parent / "eval"
        )
        if arm.rl and cfg.rl_from_step is not None:
            start = self.rl_start(arm.name, seed)
            key = f"rl_start/{arm.name}/seed{seed}"
            if stage_one.max_steps == cfg.rl_from_step:  # stage one ends at the RL start: one checkpoint, scored once
                evaluations[key] = evaluations[f"stage1/{arm.name}/seed{seed}"]
            else:
                evaluations[key] = self.evaluate(
                    f"stage one {arm.name} seed {seed} @ step {cfg.rl_from_step}", start, start / "eval"
                )
        for algorithm in cfg.algorithms() if arm.rl else []:
            label = cfg.rl_label(arm.name, algorithm)
            final = self.stage_two(arm, seed, algorithm)
            control = None
            if cfg.frozen_control:  # a control shared by several algorithms runs once
                name = self._control_name(algorithm)
                control = controls[name] = controls.get(name) or self.stage_two(arm, seed, algorithm, frozen=True)
            stage_two.append(self._stage_two_run(arm.name, seed, algorithm, final, control))
            evaluations[f"stage2/{label}/seed{seed}"] = self.evaluate(
                f"stage two {label} seed {seed}", final, final.parent / "eval"
            )
        return {"evaluations": evaluations, "stage_one": [stage_one], "stage_two": stage_two}

    def _stage_two_run(
        self, arm: str, seed: int, algorithm: str | None, final: Path, control: Path | None
    ) -> StageTwoRun:
        """The record of one stage-two run (and its frozen control) with the settings it ran with."""
        from stages.train.rl_config import RLConfig, frozen_settings

        settings = self._stage_two_settings(algorithm)
        frozen = None
        if control is not None:
            frozen = FrozenControl(str(control.parent), frozen_settings(settings)["max_steps"])
        return StageTwoRun(
            self.cfg.rl_label(arm, algorithm),
            arm,
            algorithm,
            seed,
            str(final.parent),
            str(self.rl_start(arm, seed)),
            settings.get("max_steps"),
            settings.get("num_iterations", RLConfig.num_iterations),
            frozen,
        )

    def record(self, jobs: list[dict[str, Any]], evaluations: dict[str, dict] | None = None) -> RunRecord:
        """What ran, for the report: every job's runs, stage-two runs in config order (seeds in order), and the
        scores of every evaluated checkpoint."""
        cfg = self.cfg
        stage_two = sorted(
            (run for job in jobs for run in job["stage_two"]),
            key=lambda run: (*self._rl_order(run.label), cfg.seeds.index(run.seed)),
        )
        return RunRecord(
            task=cfg.task,
            seeds=list(cfg.seeds),
            arms=[a.name for a in cfg.arms],
            workers=self.workers,
            cores=available_cores(),
            stage_one=[run for job in jobs for run in job["stage_one"]],
            stage_two=stage_two,
            stage_one_recipe=self._stage_one_settings(),
            stage_two_recipes={
                cfg.rl_label(a.name, alg): self._stage_two_settings(alg)
                for a in cfg.arms
                if a.rl
                for alg in cfg.algorithms()
            },
            evaluations={key: {"cells": scores.get("cells", [])} for key, scores in (evaluations or {}).items()},
        )

    def _figure_title(self) -> str:
        algorithms = [a or self._stage_two_settings(None).get("rl_algorithm", "d1") for a in self.cfg.algorithms()]
        seeds = len(self.cfg.seeds)
        return f"Stage-two reward ({', '.join(algorithms)}) on {self.cfg.task}: cold starts compared" + (
            f", {seeds} seeds" if seeds > 1 else ""
        )

    def _rl_order(self, label: str) -> tuple[int, int]:
        arm, _, algorithm = label.partition(":")
        arms = [a.name for a in self.cfg.arms]
        algorithms = self.cfg.algorithms()
        return arms.index(arm), algorithms.index(algorithm or None)

    def _run_jobs(self, base: str) -> list[dict[str, Any]]:
        """Every (arm, seed) job, inline or in `workers` processes of one thread each (results in job order)."""
        jobs = [(arm, seed) for seed in self.cfg.seeds for arm in self.cfg.arms if seed in self.cfg.arm_seeds(arm)]
        workers = self.cfg.worker_count(len(jobs))
        if workers <= 1 or process_state().num_processes > 1:  # a multi-process launch shares its GPUs instead
            self.workers = 1
            return [self.job(base, arm, seed) for arm, seed in jobs]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.log(f"{len(jobs)} stage-one/two jobs in {workers} worker processes (1 thread each)")
        # RL jobs first: they take longest, so the pool does not end on one long job.
        order = sorted(range(len(jobs)), key=lambda i: not jobs[i][0].rl)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        self.workers = workers
        pool = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init, initargs=(os.getpid(),)
        )
        try:
            futures = {pool.submit(_worker_job, self.cfg, base, jobs[i][0].name, jobs[i][1]): i for i in order}
            for future in futures:
                result = future.result()
                self.state.merge(result.pop("steps"))
                results[futures[future]] = result
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: no queued job starts, the running ones stop now
            stop_workers(pool)
            raise
        except BaseException:  # a failed job: no queued job starts, the running ones finish
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results  # type: ignore[return-value]

    # --- the whole run --------------------------------------------------------------------------------
    def validate(self) -> None:
        """Build every stage's config once, so a bad key or value fails before anything is written."""
        from rewards import get_task
        from stages.train.cold_start_config import ColdStartConfig
        from stages.train.rl_config import RLConfig, frozen_settings

        get_task(self.cfg.task)
        placeholder = str(self.out / "validate")
        for arm in self.cfg.arms:
            try:
                ColdStartConfig(**{**self._stage_one_settings(), **arm.overrides, "output_dir": placeholder})
            except (TypeError, ValueError) as err:
                raise ValueError(f"pipeline arm {arm.name!r}: {err}") from err
        # Stage two's settings do not depend on the arm: one config per algorithm (and its control) is enough.
        for algorithm in self.cfg.algorithms() if any(arm.rl for arm in self.cfg.arms) else []:
            try:
                settings = {**self._stage_two_settings(algorithm), "output_dir": placeholder, "task": self.cfg.task}
                RLConfig(**settings)
                if self.cfg.frozen_control:
                    RLConfig(**frozen_settings(settings))
            except (TypeError, ValueError) as err:
                raise ValueError(f"pipeline stage two{'' if algorithm is None else f' {algorithm}'}: {err}") from err
        from stages.evaluation.evaluate import check_eval_settings

        try:
            check_eval_settings(self.cfg.eval)
        except ValueError as err:
            raise ValueError(f"pipeline eval: {err}") from err

    def run(self) -> Path:
        self.validate()
        with hold_pipeline_folder(self.cfg):  # the folder's lock for the whole run; its config recorded
            return self._run()

    def _run(self) -> Path:
        cfg = self.cfg
        self.state = PipelineState(self.out / STATE_FILE)
        started, ran_before = time.perf_counter(), dict(self.state.data["steps"])
        base = self.pretrain(self.base())
        evaluations = {
            "base": self.evaluate(
                "base", base, self.out / "pretrain" / "eval" if cfg.pretrain_steps else self.out / "base_eval"
            )
        }
        jobs = self._run_jobs(base)
        for result in jobs:
            evaluations.update(result["evaluations"])
        record = self.record(jobs, evaluations)
        if not process_state().is_main_process:  # record, figure, entropy probe and report: once
            return self.out / "report.md"
        write_record(record, self.out)
        figure = None
        if record.stage_two:
            from stages.reports.control_curves import plot_stage_two

            figure = plot_stage_two(
                record.stage_two, self.out / "reward_curves.png", cfg.smoothing, self._figure_title()
            )
        from stages.reports.report import write_report

        entropy = self.entropy(base)
        if self.state.data["steps"] != ran_before:  # wall clock of the last invocation that trained or evaluated
            self.state.data["elapsed_s"] = round(time.perf_counter() - started, 1)
            self.state.merge({})
        report = write_report(self.out, cfg, record, figure, self.state.data, entropy)
        self.log(f"report: {report}\nfigure: {figure}")
        return report


def _files_in(scores: dict[str, Any], eval_dir: Path) -> dict[str, Any]:
    """`gift score`'s scores with each cell's generation files named in `eval_dir`, where they were written."""
    cells = [
        {**c, "files": [str(eval_dir / Path(f).name) for f in c.get("files", [])]} for c in scores.get("cells", [])
    ]
    return {**scores, "cells": cells} if "cells" in scores else scores


def _worker_job(config: PipelineConfig, base: str, arm_name: str, seed: int) -> dict[str, Any]:
    """One (arm, seed) job in a worker process: one thread, its step times handed back to the main process."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(1)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    pipeline = Pipeline(config, log=lambda message: print(message, flush=True))
    pipeline.state = PipelineState(None)
    arm = next(a for a in config.arms if a.name == arm_name)
    result = pipeline.job(base, arm, seed)
    return {**result, "steps": pipeline.state.data["steps"]}


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
