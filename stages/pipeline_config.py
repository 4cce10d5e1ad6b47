"""Configuration of `gift pipeline`: one base model, stage one per arm and seed, stage two, evaluation."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gift.model_options import ModelSource
from gift.structural_control import structural_control
from stages.yaml_keys import load_yaml


@dataclass
class Arm:
    """A named stage-one variant. `overrides` are `ColdStartConfig` fields (e.g. objective, beta_source,
    normaliser); `control` names a STRUCTURAL control arm (`gift.structural_control`: per-token betas by
    token class, no probe), not the frozen no-learning runs of stage two (`frozen_control`); `rl: false`
    skips stage two for this arm; `seeds` runs the arm on a subset of the pipeline's seeds (e.g. the
    controls on one seed when the budget is short; None: all of them)."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    control: str | None = None  # the structural control's name, e.g. `sudoku_structural`
    rl: bool = True
    seeds: list[int] | None = None


@dataclass
class PipelineConfig:
    """`gift pipeline --config PATH`.

    output_dir: where every step writes; a rerun skips finished steps and resumes unfinished ones.
    task: the task of stage two and of the evaluation (a registered task: `rewards.TASKS`).
    base_model: `embedded:PRESET` (written with `gift init-model`), a checkpoint, or a local/hub model.
    pretrain_steps: stage zero for the embedded base: masked-diffusion SFT on the task before the arms
        split (0: none). pretrain: ColdStartConfig overrides for it.
    stage_one_recipe / stage_one: the stage-one YAML shared by every arm, and overrides on top of it.
    arms: the stage-one variants (`Arm`); every arm runs once per seed with the same data and steps.
    seeds: stage-one and stage-two seeds.
    rl_from_step: stage two starts from stage-one `checkpoint-N` (earlier checkpoints leave the reward
        curves room to separate); None: from the final checkpoint.
    stage_two_recipe / stage_two: the stage-two YAML and overrides.
    rl_algorithms: stage-two estimators to compare (`gift rl --rl_algorithm`), each run from the same
        stage-one checkpoints; curves and tables group by (arm, algorithm). None: the recipe's one. An
        entry is a name (`spg`) or a mapping with `name` and stage-two overrides for that algorithm only
        (`{name: wd1, beta: 0}`); `label` names the entry instead of `name` where one estimator runs with
        several settings, e.g. a learning-rate grid (`{name: d1, label: d1@3e-5, learning_rate: 3.0e-5}`).
    frozen_control: also run every stage-two run's frozen control: the same start, prompts and rollout
        noise without learning (learning rate 1e-12, beta 0, one step per generation batch). The report
        then gives each run's gain over its control, which the order of the prompts does not move.
    workers: independent (arm, seed) jobs run in this many worker processes, one thread each when
        workers > 1 (on 2 cores two 1-thread processes beat one 2-thread process: docs/embedded_pipeline.md);
        `auto`: one per core this process may use (`os.sched_getaffinity`), at most one per job.
    eval: `gift eval` settings (gen_lengths, limit, data, block_length, steps, batch_size).
    smoothing: EMA factor of the reward-curve figure.
    entropy_examples: examples of the stage-one data probed for the entropy report of the base model
        (which tokens GIFT would mask more; 0: no report).
    """

    output_dir: str
    task: str = "sudoku"
    base_model: str = "embedded:tiny"
    model_type: str | None = None
    trust_remote_code: bool = False
    pretrain_steps: int = 0
    pretrain: dict[str, Any] = field(default_factory=dict)
    stage_one_recipe: str | None = None
    stage_one: dict[str, Any] = field(default_factory=dict)
    arms: list[Arm] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    rl_from_step: int | None = None
    stage_two_recipe: str | None = None
    stage_two: dict[str, Any] = field(default_factory=dict)
    rl_algorithms: list[Any] | None = None
    frozen_control: bool = False
    workers: int | str = 1
    eval: dict[str, Any] = field(default_factory=dict)
    smoothing: float = 0.9
    entropy_examples: int = 256
    config_path: str | None = None

    def __post_init__(self):
        if not self.arms:
            raise ValueError("pipeline: `arms` is empty; list at least one stage-one variant")
        self.arms = [a if isinstance(a, Arm) else _arm(a, i) for i, a in enumerate(self.arms)]
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline: arm names must be unique, got {names}")
        for arm in self.arms:
            if arm.control is not None:
                try:
                    structural_control(arm.control)
                except ValueError as err:
                    raise ValueError(f"pipeline: arm {arm.name!r}: {err}") from None
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"pipeline: seeds must be a non-empty list of distinct integers, got {self.seeds}")
        for arm in self.arms:
            if arm.seeds is not None and (not arm.seeds or not set(arm.seeds) <= set(self.seeds)):
                raise ValueError(
                    f"pipeline: arm {arm.name!r}: seeds {arm.seeds} must be a non-empty subset of {self.seeds}"
                )
        if self.rl_algorithms is not None:
            names = [_algorithm(entry, i)[0] for i, entry in enumerate(self.rl_algorithms)]
            if not names or len(set(names)) != len(names):
                raise ValueError(f"pipeline: rl_algorithms must be a non-empty list of distinct names, got {names}")
        if not isinstance(self.frozen_control, bool):
            raise ValueError(f"pipeline: frozen_control must be true or false, got {self.frozen_control!r}")
        if self.workers != "auto" and (
            not isinstance(self.workers, int) or isinstance(self.workers, bool) or self.workers < 1
        ):
            raise ValueError(f"pipeline: workers must be a positive integer or auto, got {self.workers!r}")
        if not 0 <= self.smoothing < 1:
            raise ValueError(f"pipeline: smoothing must lie in [0, 1), got {self.smoothing}")

    def model_source(self, source: str | Path | None = None) -> ModelSource:
        """A model of this pipeline's family: `source` (a checkpoint of a run), or the base model."""
        return ModelSource(str(source or self.base_model), self.model_type, self.trust_remote_code)

    def worker_count(self, jobs: int) -> int:
        """Worker processes for `jobs` independent jobs: `workers`, or with `auto` one per available core."""
        if self.workers == "auto":
            return max(1, min(available_cores(), jobs))
        return min(self.workers, jobs)

    def arm_seeds(self, arm: Arm) -> list[int]:
        """The seeds an arm runs on, in the pipeline's order."""
        return [s for s in self.seeds if arm.seeds is None or s in arm.seeds]

    def algorithms(self) -> list[str | None]:
        """Stage-two algorithms; [None] when the recipe's own is used."""
        return [_algorithm(e, i)[0] for i, e in enumerate(self.rl_algorithms)] if self.rl_algorithms else [None]

    def algorithm_overrides(self, algorithm: str | None) -> dict[str, Any]:
        """Stage-two settings of one algorithm entry (by label): `rl_algorithm` plus the entry's own overrides."""
        if algorithm is None:
            return {}
        for i, entry in enumerate(self.rl_algorithms or []):
            label, overrides = _algorithm(entry, i)
            if label == algorithm:
                return {
                    **{k: v for k, v in overrides.items() if k != "label"},
                    "rl_algorithm": entry if isinstance(entry, str) else entry["name"],
                }
        raise KeyError(algorithm)

    def rl_label(self, arm: str, algorithm: str | None) -> str:
        """How a stage-two arm is named in keys, curves and tables: `arm` or `arm:algorithm`."""
        return arm if algorithm is None else f"{arm}:{algorithm}"


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _algorithm(entry: Any, index: int) -> tuple[str, dict[str, Any]]:
    """(label, overrides) of one `rl_algorithms` entry; the label is `label` when given, else `name`."""
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        label = entry.get("label", entry["name"])
        if not isinstance(label, str) or not re.fullmatch(r"[A-Za-z0-9_.@+-]+", label):
            raise ValueError(
                f"pipeline: rl_algorithms[{index}]: label must be letters, digits and _.@+- "
                f"(it names folders and `arm:label`), got {label!r}"
            )
        return label, {k: v for k, v in entry.items() if k != "name"}
    raise ValueError(f"pipeline: rl_algorithms[{index}] must be a name or a mapping with a `name`, got {entry!r}")


def _arm(data: Any, index: int) -> Arm:
    if not isinstance(data, dict) or "name" not in data:
        raise ValueError(f"pipeline: arms[{index}] must be a mapping with a `name`")
    unknown = set(data) - {f.name for f in fields(Arm)}
    if unknown:
        raise ValueError(f"pipeline: arms[{index}] ({data['name']}): unknown keys {sorted(unknown)}")
    return Arm(**data)


def load_pipeline_config(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read a pipeline YAML; unknown keys are errors naming the file and the key."""
    data = load_yaml(Path(path).read_text(encoding="utf-8"), path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping")
    data.update(overrides or {})
    unknown = set(data) - {f.name for f in fields(PipelineConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown pipeline keys {sorted(unknown)}")
    data.setdefault("config_path", str(path))  # recipes may be given relative to the pipeline file
    return PipelineConfig(**data)
