"""What a pipeline run ran, as data: written by `gift pipeline` to `<output_dir>/run_record.json` and read by
its report, so the report never rebuilds a run's folder from a naming convention or parses a seed out of a path.

The first arm is the reference every other arm is compared with in the report. Each stage-one run names its arm,
seed, folder and step count; each stage-two run its label, arm, algorithm, seed, folder, starting checkpoint, steps
and `num_iterations` (updates per generation batch), and its frozen control's folder and steps per generation batch
when the pipeline ran one. The recipes are stored as the runs used them: the `base:` chain merged and the pipeline's
overrides applied. Run folders inside the pipeline folder are stored relative to it (`./seed0/sft/stage1`) and read
back as paths under the folder where the record is now, so a moved or copied folder's record names its own runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gift.files import atomic_write_text
from gift.stored_paths import resolve_stored, store_relative

RECORD_FILE = "run_record.json"
STAGES = ("stage zero", "stage one", "stage two", "frozen control", "evaluation")  # rows of the wall-time split


@dataclass(frozen=True)
class StageOneRun:
    arm: str
    seed: int
    run_dir: str
    max_steps: int | None


@dataclass(frozen=True)
class FrozenControl:
    """A stage-two run's control: the same generation batches, one step (no update) per batch."""

    run_dir: str
    max_steps: int
    steps_per_batch: int = 1


@dataclass(frozen=True)
class StageTwoRun:
    label: str  # `arm`, or `arm:algorithm` when the pipeline compares algorithms
    arm: str
    algorithm: str | None
    seed: int
    run_dir: str
    start: str  # the stage-one checkpoint it started from
    max_steps: int | None
    num_iterations: int  # optimizer steps per generation batch
    control: FrozenControl | None = None


@dataclass
class RunRecord:
    task: str
    seeds: list[int]
    arms: list[str]
    workers: int  # worker processes the (arm, seed) jobs ran in
    cores: int  # cores the pipeline could use where it ran
    stage_one: list[StageOneRun] = field(default_factory=list)
    stage_two: list[StageTwoRun] = field(default_factory=list)
    stage_one_recipe: dict[str, Any] = field(default_factory=dict)  # shared by the arms, before arm overrides
    stage_two_recipes: dict[str, dict[str, Any]] = field(default_factory=dict)  # per stage-two label
    # Scores of every evaluated checkpoint by key (`base`, `stage1/ARM/seedS`, `rl_start/ARM/seedS`,
    # `stage2/LABEL/seedS`): the `cells` of `gift score` (one per task and generation length).
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stage_one_runs(self, arm: str) -> list[StageOneRun]:
        return [run for run in self.stage_one if run.arm == arm]

    def steps(self) -> dict[str, int | None]:
        """Stage-one and stage-two step counts (None when the runs disagree or none ran)."""

        def one(values: set) -> int | None:
            return values.pop() if len(values) == 1 else None

        return {
            "stage_one_steps": one({r.max_steps for r in self.stage_one}),
            "stage_two_steps": one({r.max_steps for r in self.stage_two}),
        }

    def to_json(self, folder: str | Path | None = None) -> str:
        """The record as JSON; with `folder` (where it is written) its run folders inside it stored relative."""
        data = asdict(self)
        if folder is not None:
            data = _run_paths(data, lambda path: store_relative(path, folder, folder))
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: str | Path | None = None) -> RunRecord:
        """The record of `data`; with `folder` (where it was read) its relative run folders resolved against it."""
        if folder is not None and isinstance(data, dict):
            data = _run_paths(data, lambda path: resolve_stored(path, folder))
        two = [
            StageTwoRun(**{**r, "control": FrozenControl(**r["control"]) if r.get("control") else None})
            for r in data.get("stage_two", [])
        ]
        return cls(
            task=data["task"],
            seeds=list(data["seeds"]),
            arms=list(data["arms"]),
            workers=data["workers"],
            cores=data["cores"],
            stage_one=[StageOneRun(**r) for r in data.get("stage_one", [])],
            stage_two=two,
            stage_one_recipe=data.get("stage_one_recipe", {}),
            stage_two_recipes=data.get("stage_two_recipes", {}),
            evaluations=data.get("evaluations", {}),
        )


def _run_paths(data: dict[str, Any], convert) -> dict[str, Any]:
    """`data` (a record as a dict) with `convert` applied to every run folder, starting checkpoint and scored file."""

    def run(entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        entry = {**entry, **{k: convert(entry[k]) for k in keys if k in entry}}
        if isinstance(entry.get("control"), dict):
            entry["control"] = run(entry["control"], ("run_dir",))
        return entry

    def cells(scores: dict[str, Any]) -> dict[str, Any]:
        return {**scores, "cells": [{**c, "files": [convert(f) for f in c.get("files", [])]} for c in scores["cells"]]}

    return {
        **data,
        "stage_one": [run(r, ("run_dir",)) for r in data.get("stage_one", [])],
        "stage_two": [run(r, ("run_dir", "start")) for r in data.get("stage_two", [])],
        "evaluations": {key: cells(scores) for key, scores in data.get("evaluations", {}).items()},
    }


def write_record(record: RunRecord, out: Path) -> Path:
    path = Path(out) / RECORD_FILE
    atomic_write_text(path, record.to_json(out))
    return path


def read_record(out: Path) -> RunRecord:
    """The record of the pipeline run in `out`; a missing or malformed file is named in the error."""
    path = Path(out) / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record; run `gift pipeline` on this folder first")
    try:
        return RunRecord.from_dict(json.loads(path.read_text()), out)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a pipeline run record ({err})") from err
