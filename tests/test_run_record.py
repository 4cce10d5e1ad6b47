"""The record a pipeline run hands its report: a round trip through run_record.json, and bad files named."""

import json

import pytest

from stages.run_record import FrozenControl, RunRecord, StageOneRun, StageTwoRun, read_record, write_record


def _record() -> RunRecord:
    control = FrozenControl("out/a/rl-control", max_steps=30)
    return RunRecord(task="sudoku", seeds=[0, 1], arms=["sft", "gift"], workers=2, cores=2,
                     stage_one=[StageOneRun("sft", 0, "out/a/s1", 300), StageOneRun("gift", 1, "out/b/s1", 300)],
                     stage_two=[StageTwoRun("sft", "sft", None, 0, "out/a/rl", "out/a/s1/checkpoint-100", 120, 4, control),
                                StageTwoRun("gift:wd1", "gift", "wd1", 1, "out/b/rl", "out/b/s1/final", 60, 2)],
                     stage_one_recipe={"max_steps": 300}, stage_two_recipes={"sft": {"beta": 0.04}})


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
        "stage_one_steps": None, "stage_two_steps": None}


def test_a_missing_or_foreign_record_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="run_record.json: no run record"):
        read_record(tmp_path)
    (tmp_path / "run_record.json").write_text(json.dumps({"task": "sudoku"}))
    with pytest.raises(ValueError, match=r"run_record.json: not a pipeline run record \('seeds'\)"):
        read_record(tmp_path)
