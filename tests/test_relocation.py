"""A folder tree holding a run and the model it trains from (a pipeline folder: `base/`, stage folders) can be
moved or copied: the resume compares the model path by its place in the tree (docs/reliability.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import copy_task_rows, write_jsonl
from transformers import TrainerCallback

from gift.checkpoint import FINAL_DIR
from stages.runs.manifest import ConfigDriftError
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig


class _Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt("simulated kill")


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


def test_a_moved_folder_tree_resumes_and_another_model_is_still_refused(tmp_path, base_dir):
    tree = tmp_path / "d"
    shutil.copytree(base_dir, tree / "base")
    write_jsonl(tree / "data.jsonl", copy_task_rows(16))
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(tree), callbacks=[_Kill()])
    moved = tmp_path / "d2"
    shutil.move(tree, moved)
    assert run_cold_start(_config(moved, resume=True)) == moved / "stage1" / FINAL_DIR
    other = tmp_path / "elsewhere"
    shutil.copytree(base_dir, other)
    with pytest.raises(ConfigDriftError, match="model_name_or_path"):
        run_cold_start(_config(moved, model_name_or_path=str(other), resume=True))
