"""A folder tree holding runs and the model they train from can be moved or copied (docs/reliability.md, case 44).

A pipeline folder stores the paths inside it relative to itself (checkpoint manifests, `run_record.json`,
`pipeline_config.yaml`, the figure's CSV), so a moved or copied folder finishes and reruns with nothing to
translate. A folder tree written before that (absolute paths), or a run beside its model outside a pipeline,
is still resumed: the resume compares a model path by its place in the tree (`moved_sources`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers import copy_task_rows, kill_at_step, write_jsonl

from gift.checkpoint import FINAL_DIR, MANIFEST_NAME, read_manifest
from gift.stored_paths import resolve_stored, store_relative
from stages.run_record import RunRecord, StageOneRun, StageTwoRun, read_record, write_record
from stages.runs import manifest as manifest_module
from stages.runs.folder import mark_folder
from stages.runs.manifest import ConfigDriftError
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig


def _config(tree: Path, **overrides) -> ColdStartConfig:
    return ColdStartConfig(
        **{
            **dict(
                model_name_or_path=str(tree / "base"),
                dataset=str(tree / "data.jsonl"),
                output_dir=str(tree / "stage1"),
                max_length=24,
                per_device_train_batch_size=8,
                max_steps=4,
                save_steps=2,
                seed=0,
                logging_steps=1,
                disable_tqdm=True,
                objective="sft",
            ),
            **overrides,
        }
    )


def _killed_run(tree: Path, base_dir: Path, pipeline: bool) -> None:
    """`tree/base`, `tree/data.jsonl` and `tree/stage1` killed after `checkpoint-2`; `tree` marked as a pipeline's."""
    shutil.copytree(base_dir, tree / "base")
    write_jsonl(tree / "data.jsonl", copy_task_rows(16))
    if pipeline:
        mark_folder(tree, "pipeline")
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(tree), callbacks=[kill_at_step(3)])


def _no_moved_sources(monkeypatch) -> None:
    """Resume with the saved paths as stored: only a relative path can follow a moved folder."""
    monkeypatch.setattr(manifest_module, "moved_sources", lambda saved, config: saved)


def test_stored_paths_are_relative_only_inside_the_folder(tmp_path):
    (tmp_path / "d" / "base").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    start = tmp_path / "d" / "run" / "final"  # need not exist yet
    assert store_relative(str(tmp_path / "d" / "base"), tmp_path / "d", start) == "../../base"
    assert store_relative(str(tmp_path / "d"), tmp_path / "d", tmp_path / "d") == "."
    assert store_relative(str(tmp_path / "d" / "base"), tmp_path / "d", tmp_path / "d") == "./base"
    for kept in (str(tmp_path / "outside"), "org/model", "embedded:tiny", "synthetic:sudoku", None):
        assert store_relative(kept, tmp_path / "d", start) == kept
    assert resolve_stored("../../base", tmp_path / "d2" / "run" / "final") == str((tmp_path / "d2" / "base").resolve())
    for kept in ("/abs/base", "org/model", "runs/base", "embedded:tiny", None):  # read as written
        assert resolve_stored(kept, tmp_path) == kept


def test_a_moved_pipeline_folder_resumes_from_its_relative_manifest(tmp_path, base_dir, monkeypatch):
    tree = tmp_path / "d"
    _killed_run(tree, base_dir, pipeline=True)
    stored = json.loads((tree / "stage1" / "checkpoint-2" / MANIFEST_NAME).read_text())
    assert (stored["base_model"], stored["parent"]) == ("../../base", "../../base")
    assert {k: stored["config"][k] for k in ("model_name_or_path", "dataset", "output_dir")} == {
        "model_name_or_path": "../../base",
        "dataset": "../../data.jsonl",
        "output_dir": "..",
    }
    _no_moved_sources(monkeypatch)
    moved = tmp_path / "d2"
    shutil.move(tree, moved)
    assert read_manifest(moved / "stage1" / "checkpoint-2").base_model == str((moved / "base").resolve())
    assert run_cold_start(_config(moved, resume=True)) == moved / "stage1" / FINAL_DIR
    copy = tmp_path / "d3"
    shutil.copytree(moved, copy)  # a copy of a finished folder: "already complete", nothing changes
    assert run_cold_start(_config(copy, resume=True)) == copy / "stage1" / FINAL_DIR
    other = tmp_path / "elsewhere"
    shutil.copytree(base_dir, other)
    with pytest.raises(ConfigDriftError, match="model_name_or_path"):
        run_cold_start(_config(moved, model_name_or_path=str(other), resume=True))


def test_an_old_style_folder_tree_with_absolute_paths_still_resumes_when_moved(tmp_path, base_dir):
    """Folders written before the paths were stored relative: `moved_sources` places the old absolute path."""
    tree = tmp_path / "d"
    _killed_run(tree, base_dir, pipeline=True)
    manifest = tree / "stage1" / "checkpoint-2" / MANIFEST_NAME
    absolute = {**read_manifest(manifest.parent).__dict__}  # the paths as an older version wrote them
    manifest.write_text(json.dumps(absolute, indent=2, sort_keys=True))
    assert json.loads(manifest.read_text())["base_model"] == str((tree / "base").resolve())
    moved = tmp_path / "d2"
    shutil.move(tree, moved)
    assert run_cold_start(_config(moved, resume=True)) == moved / "stage1" / FINAL_DIR


def test_a_moved_folder_tree_resumes_and_another_model_is_still_refused(tmp_path, base_dir):
    tree = tmp_path / "d"
    _killed_run(tree, base_dir, pipeline=False)  # a run beside its model, no pipeline: absolute paths
    assert read_manifest(tree / "stage1" / "checkpoint-2").base_model == str((tree / "base").resolve())
    moved = tmp_path / "d2"
    shutil.move(tree, moved)
    assert run_cold_start(_config(moved, resume=True)) == moved / "stage1" / FINAL_DIR
    other = tmp_path / "elsewhere"
    shutil.copytree(base_dir, other)
    with pytest.raises(ConfigDriftError, match="model_name_or_path"):
        run_cold_start(_config(moved, model_name_or_path=str(other), resume=True))


def test_the_run_record_names_the_runs_of_the_folder_it_is_in(tmp_path):
    out = tmp_path / "d"
    for run in ("seed0/sft/stage1/checkpoint-2", "seed0/sft/stage2"):
        (out / run).mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    record = RunRecord(
        task="sudoku",
        seeds=[0],
        arms=["sft"],
        workers=1,
        cores=1,
        stage_one=[StageOneRun("sft", 0, str(out / "seed0/sft/stage1"), 2)],
        stage_two=[
            StageTwoRun("sft", "sft", None, 0, str(out / "seed0/sft/stage2"), str(tmp_path / "elsewhere"), 2, 1),
        ],
    )
    write_record(record, out)
    stored = json.loads((out / "run_record.json").read_text())
    assert stored["stage_one"][0]["run_dir"] == "./seed0/sft/stage1"
    assert stored["stage_two"][0]["run_dir"] == "./seed0/sft/stage2"
    assert stored["stage_two"][0]["start"] == str(tmp_path / "elsewhere")  # outside the folder: as it was
    moved = tmp_path / "d2"
    shutil.move(out, moved)
    again = read_record(moved)
    assert again.stage_one[0].run_dir == str((moved / "seed0/sft/stage1").resolve())
    assert again.stage_two[0].run_dir == str((moved / "seed0/sft/stage2").resolve())
    assert again.stage_two[0].start == str(tmp_path / "elsewhere")


# --- a whole pipeline folder ----------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _pipeline(out: Path, **changes):
    from stages.pipeline_config import load_pipeline_config

    settings = {
        "output_dir": str(out),
        "pretrain_steps": 0,
        "entropy_examples": 4,
        "rl_from_step": 2,
        "stage_one": {"max_steps": 2, "save_steps": 2, "synthetic_examples": 64, "per_device_train_batch_size": 8},
        "stage_two": {
            "max_steps": 2,
            "save_steps": 1,
            "per_device_train_batch_size": 6,
            "num_iterations": 1,
            "max_prompts": 8,
        },
        "arms": [{"name": "sft", "overrides": {"objective": "sft"}}],
        "eval": {"gen_lengths": [8], "block_length": 8, "limit": 4, "batch_size": 4, "data": "synthetic"},
    }
    return load_pipeline_config("configs/embedded/pipeline_quick.yaml", {**settings, **changes})


@pytest.mark.slow
def test_a_moved_or_copied_pipeline_folder_finishes_and_reruns(tmp_path, monkeypatch):
    from stages.pipeline import run_pipeline

    _no_moved_sources(monkeypatch)  # the relative paths alone carry the move
    first = tmp_path / "d"
    run_pipeline(_pipeline(first), log=lambda message: None)
    # stage one ends at the RL start (step 2): that checkpoint is scored once and read under both rows
    assert not (first / "seed0/sft/stage1/checkpoint-2/eval").exists()
    accuracy = json.loads((first / "results.json").read_text())["accuracy"]
    assert accuracy["rl_start"] == accuracy["stage1"] and accuracy["stage1"]
    stage2 = Path("seed0/sft/stage2")
    shutil.copytree(first, tmp_path / "copy")
    moved = tmp_path / "d2"
    shutil.move(first, moved)
    # the report and its files name the folder's own paths, so they stay true once moved
    files = ("report.md", "reward_curves.csv", "run_record.json", "pipeline_config.yaml", "entropy/entropy_report.md")
    for name in files:
        assert str(first) not in (moved / name).read_text(), name
    assert "output_dir: .\n" in (moved / "pipeline_config.yaml").read_text()
    assert read_record(moved).stage_two[0].run_dir == str((moved / stage2).resolve())
    # unfinished: stage one's evaluation died before its first file, stage two after checkpoint-1
    stage1_eval = moved / "seed0/sft/stage1/eval"
    assert json.loads((stage1_eval / "gift_run.json").read_text())["model"] == "../final"
    for path in stage1_eval.iterdir():
        if path.name != "gift_run.json":
            path.unlink()
    for name in (FINAL_DIR, "checkpoint-2", "eval"):
        shutil.rmtree(moved / stage2 / name)
    for name in ("run_record.json", "report.md"):
        (moved / name).unlink()
    messages: list[str] = []
    run_pipeline(_pipeline(moved), log=messages.append)
    assert "eval  stage one sft seed 0" in messages, messages
    assert any(m.startswith("resume stage two: sft seed 0") for m in messages), messages
    assert (moved / stage2 / FINAL_DIR / MANIFEST_NAME).is_file()
    assert read_manifest(moved / stage2 / FINAL_DIR).config["model"] == str(
        (moved / "seed0/sft/stage1/checkpoint-2").resolve()
    )
    copy = tmp_path / "copy"
    before = _tree(copy)
    with pytest.raises(ValueError, match=r"stage_two.max_steps: 2 -> 3; nothing was run"):
        run_pipeline(_pipeline(copy, stage_two={**_pipeline(copy).stage_two, "max_steps": 3}))
    assert _tree(copy) == before  # a refused rerun rewrites nothing
    messages.clear()
    run_pipeline(_pipeline(copy), log=messages.append)
    assert [m.split(":")[0] for m in messages if not m.startswith("report")] == ["skip  stage one", "skip  stage two"]
    assert _tree(copy)["run_record.json"] == before["run_record.json"]
    assert _tree(copy)["pipeline_config.yaml"] == before["pipeline_config.yaml"]
