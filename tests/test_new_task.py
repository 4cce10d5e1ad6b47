"""A new task is one module (tests/toy_parity_task.py) and one `register_task` call: `gift eval`,
`gift score` and a short `gift rl` then run on it with the embedded model, and nothing else changes."""

from __future__ import annotations

import json

import pytest
import toy_parity_task

from rewards import TASKS, get_task, register_task, task_prompt
from rewards.registry import unregister_task
from rewards.tasks.task import Task
from stages.cli import main as gift


@pytest.fixture
def parity(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    register_task(toy_parity_task.TASK)
    yield toy_parity_task.TASK
    unregister_task("parity")


def test_registering_a_task_makes_it_known_and_a_second_one_of_that_name_is_refused(parity):
    assert get_task("parity") is parity and "parity" in TASKS
    assert task_prompt("parity", {"bits": "0110"}) == parity.system_prompt + "\n\nBits: 0110"
    with pytest.raises(ValueError, match="already registered"):
        register_task(Task(**{**parity.__dict__, "max_reward": 2.0}))


def test_a_task_without_a_protocol_size_is_refused_when_defined():
    with pytest.raises(ValueError, match="protocol_size must be a positive integer"):
        Task(**{**toy_parity_task.TASK.__dict__, "protocol_size": 0})


@pytest.mark.slow
def test_eval_score_and_rl_run_on_a_registered_toy_task(parity, base_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert (
        gift(
            [
                "eval",
                "--model",
                str(base_dir),
                "--task",
                "parity",
                "--data",
                "synthetic",
                "--limit",
                "6",
                "--gen_length",
                "8",
                "--block_length",
                "8",
                "--batch_size",
                "6",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    records = [json.loads(line) for line in (out / "parity_8.jsonl").read_text().splitlines()]
    expected = toy_parity_task.synthetic_rows("test", 6)
    assert [(r["prompt"], r["bits"], r["parity"]) for r in records] == [
        (row["bits"], row["bits"], row["bits"].count("1") % 2) for row in expected
    ]
    config = json.loads((out / "eval_config.json").read_text())["parity"]
    assert config["protocol_size"] == 64 and config["prompt_style"] == "compact"

    assert gift(["score", str(out)]) == 0
    scores = json.loads((out / "scores.json").read_text())
    (cell,) = scores["cells"]
    truth = [r["parity"] for r in records]
    assert (cell["task"], cell["n"]) == ("parity", 6)
    assert (
        cell["accuracy"] == toy_parity_task.parity_metric([r["completion"] for r in records], parity=truth)["accuracy"]
    )

    run = tmp_path / "rl"
    assert (
        gift(
            [
                "rl",
                "--model",
                str(base_dir),
                "--task",
                "parity",
                "--dataset",
                "synthetic",
                "--output_dir",
                str(run),
                "--gen_length",
                "8",
                "--block_length",
                "8",
                "--steps",
                "4",
                "--num_generations",
                "4",
                "--per_device_train_batch_size",
                "4",
                "--num_iterations",
                "1",
                "--max_steps",
                "2",
                "--save_steps",
                "2",
                "--max_prompts",
                "8",
                "--use_lora",
                "false",
                "--report_to",
                "none",
                "--disable_tqdm",
                "true",
            ]
        )
        == 0
    )
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert all("reward/parity_reward" in line for line in lines)
    assert (run / "final").is_dir()


def test_a_task_parse_that_reads_a_missing_field_is_an_error_naming_file_and_line(tmp_path):
    from stages.evaluation.score import GenerationFileError, score_files

    def needs_width(row):
        if len(str(row["bits"])) != int(row["width"]):  # `width` is not one of the task's columns
            raise ValueError("wrong width")

    register_task(Task(**{**toy_parity_task.TASK.__dict__, "check_ground_truth": needs_width}))
    try:
        path = tmp_path / "parity_8.jsonl"
        path.write_text(json.dumps({"task": "parity", "completion": "x", "bits": "01", "parity": 1}) + "\n")
        with pytest.raises(GenerationFileError, match=r"parity_8.jsonl:1: missing field 'width'"):
            score_files(path)
        with pytest.raises(GenerationFileError, match="no scorable lines"):
            score_files(path, skip_bad=True)  # the line is skipped, and listed, not scored
    finally:
        unregister_task("parity")
