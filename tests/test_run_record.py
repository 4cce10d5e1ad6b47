"""The record a pipeline run hands its report: a round trip through run_record.json, and bad files named."""

import json

import pytest

from stages.run_record import FrozenControl, RunRecord, StageOneRun, StageTwoRun, read_record, write_record


def _record() -> RunRecord:
    control = FrozenControl("out/a/rl-control", max_steps=30)
    return RunRecord(
        task="sudoku",
        seeds=[0, 1],
        arms=["sft", "gift"],
        workers=2,
        cores=2,
        stage_one=[StageOneRun("sft", 0, "out/a/s1", 300), StageOneRun("gift", 1, "out/b/s1", 300)],
        stage_two=[
            StageTwoRun("sft", "sft", None, 0, "out/a/rl", "out/a/s1/checkpoint-100", 120, 4, control),
            StageTwoRun("gift:wd1", "gift", "wd1", 1, "out/b/rl", "out/b/s1/final", 60, 2),
        ],
        stage_one_recipe={"max_steps": 300},
        stage_two_recipes={"sft": {"beta": 0.04}},
    )


def test_the_record_reads_back_as_written(tmp_path):
    record = _record()
    write_record(record, tmp_path)
    again = read_record(tmp_path)
    assert again == record
    assert again.stage_two[0].control == FrozenControl("out/a/rl-control", 30, 1)
    assert again.stage_two[1].control is None
    assert [run.seed for run in again.stage_one_runs("gift")] == [1]


def test_steps_are_none_when_the_runs_disagree():
    record = _record()
    assert record.steps() == {"stage_one_steps": 300, "stage_two_steps": None}  # 120 and 60
    assert RunRecord(task="sudoku", seeds=[0], arms=["sft"], workers=1, cores=1).steps() == {
        "stage_one_steps": None,
        "stage_two_steps": None,
    }


def test_a_missing_or_foreign_record_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_record.json: no run record"):
        read_record(tmp_path)
    (tmp_path / "run_record.json").write_text(json.dumps({"task": "sudoku"}))
    with pytest.raises(ValueError, match=r"run_record.json: not a pipeline run record \('seeds'\)"):
        read_record(tmp_path)


def test_the_pipeline_records_steps_from_a_recipe_base_chain(tmp_path):
    # A stage-two recipe that states only where it differs: max_steps and num_iterations sit in its base.
    from stages.pipeline import Pipeline
    from stages.pipeline_config import load_pipeline_config

    (tmp_path / "base.yaml").write_text("max_steps: 40\nnum_iterations: 2\nbeta: 0.04\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nbeta: 0.0\n")
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'out'}\narms: [{{name: sft}}]\nstage_two_recipe: child.yaml\nfrozen_control: true\n"
    )
    pipeline = Pipeline(load_pipeline_config(config))
    out = tmp_path / "out" / "seed0" / "sft"
    run = pipeline._stage_two_run("sft", 0, None, out / "stage2" / "final", out / "stage2-frozen" / "final")
    assert (run.max_steps, run.num_iterations, run.control) == (40, 2, FrozenControl(str(out / "stage2-frozen"), 20))
    assert run.start == str(out / "stage1" / "final") and run.run_dir == str(out / "stage2")
    record = pipeline.record([{"stage_one": [], "stage_two": [run]}])
    assert record.stage_two_recipes == {"sft": {"max_steps": 40, "num_iterations": 2, "beta": 0.0}}
