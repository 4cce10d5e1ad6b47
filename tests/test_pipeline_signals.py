"""`gift pipeline` stopped by SIGTERM, SIGKILL (the OOM killer) or Ctrl-C leaves no process behind within
5 s, and starts no queued job; a single run stopped by SIGTERM says so in one line and releases its lock
(docs/reliability.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from stages.runs.folder import LOCK_NAME

REPO = Path(__file__).resolve().parents[1]


def _marked_pids(mark: str) -> list[int]:
    """Processes whose environment carries `mark` (the command and every process it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    if (entry / "stat").read_text().split(") ")[1][0] != "Z":  # a zombie is gone already
                        pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _start(argv: list[str], tmp_path: Path, mark: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "GIFT_TEST_MARK": mark}
    return subprocess.Popen(
        [sys.executable, "-m", "stages.cli", *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as a terminal's foreground command has it: a test run started in the background (`cmd &`) ignores
        # SIGINT, and an ignored signal is inherited, so the Ctrl-C case would test nothing but that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _pipeline_config(tmp_path: Path) -> Path:
    """Two long stage-one jobs (and a third queued) in two workers: killed long before they could end."""
    config = {
        "output_dir": str(tmp_path / "p"),
        "task": "sudoku",
        "base_model": "embedded:tiny",
        "workers": 2,
        "stage_one": {
            "max_steps": 10000,
            "save_steps": 10000,
            "synthetic_examples": 64,
            "per_device_train_batch_size": 4,
        },
        "arms": [{"name": name, "overrides": {"objective": "sft"}, "rl": False} for name in ("a", "b", "c")],
        "seeds": [0],
        "eval": {"gen_lengths": [24], "block_length": 8, "limit": 2, "batch_size": 2, "data": "synthetic"},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL", "Ctrl-C"])
def test_a_killed_pipeline_leaves_no_process_behind(tmp_path, how):
    mark = uuid.uuid4().hex
    proc = _start(["pipeline", "--config", str(_pipeline_config(tmp_path))], tmp_path, mark)
    try:
        # the main process and its two workers (the base evaluation runs first, then the jobs start)
        assert _wait_for(
            lambda: len(_marked_pids(mark)) >= 3 and any((tmp_path / "p" / "seed0").glob("*/*/gift_run.lock")), 240
        ), proc.stderr.read() if proc.poll() is not None else "workers never started"
        if how == "Ctrl-C":  # the terminal sends SIGINT to the whole foreground group
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(getattr(signal, how))
        assert _wait_for(lambda: proc.poll() is not None and not _marked_pids(mark), 5), (
            f"left running: {_marked_pids(mark)}"
        )
        stderr = proc.stderr.read()
    finally:
        for pid in _marked_pids(mark):
            os.kill(pid, signal.SIGKILL)
    if how != "SIGKILL":
        assert not (tmp_path / "p" / LOCK_NAME).exists()
        lines = [line for line in stderr.splitlines() if line.startswith("gift pipeline:")]
        assert len(lines) == 1 and ("stopped by SIGTERM" in lines[0] if how == "SIGTERM" else "interrupted" in lines[0])
    assert not (tmp_path / "p" / "seed0" / "c").exists(), "a queued job started"


def test_a_single_run_stopped_by_sigterm_says_so_and_releases_its_lock(tmp_path, base_dir):
    mark = uuid.uuid4().hex
    run = tmp_path / "run"
    proc = _start(
        [
            "cold-start",
            "--config",
            str(REPO / "configs/embedded/sft_sudoku.yaml"),
            "--model_name_or_path",
            str(base_dir),
            "--output_dir",
            str(run),
            "--max_steps",
            "100000",
            "--synthetic_examples",
            "64",
            "--per_device_train_batch_size",
            "4",
        ],
        tmp_path,
        mark,
    )
    try:
        assert _wait_for(lambda: (run / LOCK_NAME).exists() and (run / "gift_run.json").exists(), 120)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in proc.stderr.read().splitlines() if line.startswith("gift cold-start:")]
    assert lines == [
        "gift cold-start: stopped by SIGTERM; a training run resumes with --resume, a pipeline by running it again"
    ]
    assert not (run / LOCK_NAME).exists()
