"""`configs/accelerate/multinode.yaml` as two nodes on one machine: two `accelerate launch` processes on localhost
with `--machine_rank 0` and `1`, one training process each (gloo, CPU), stage one on a tiny official LLaDA.

Only the sizes (`--num_processes 2`, `--main_process_ip 127.0.0.1`) and `--mixed_precision no` are overridden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import official_layout as layout
import pytest

from gift.checkpoint import read_manifest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_node_ranks_on_localhost_train_one_run(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    base = layout.write_official_llada(tmp_path / "base", seed=7)
    run = tmp_path / "run"
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    common = [
        "--config_file",
        "configs/accelerate/multinode.yaml",
        "--num_machines",
        "2",
        "--num_processes",
        "2",
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        port,
        "--mixed_precision",
        "no",
        "-m",
        "stages.train.cold_start",
        "--config",
        "configs/llada/s1k_lora.yaml",
        "--model_name_or_path",
        str(base),
        "--output_dir",
        str(run),
        "--dataset",
        "synthetic:sudoku",
        "--synthetic_examples",
        "8",
        "--max_length",
        "512",
        "--pad_to",
        "longest",
        "--per_device_train_batch_size",
        "1",
        "--global_batch_size",
        "2",
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        "--logging_steps",
        "1",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--torch_dtype",
        "float32",
        "--bf16",
        "false",
        "--disable_tqdm",
        "true",
        "--report_to",
        "none",
    ]
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "accelerate.commands.launch", "--machine_rank", str(rank), *common],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (1, 0)
    ]
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-4000:] for log in logs)
    manifest = read_manifest(run)
    assert manifest.adapter and manifest.metrics["global_step"] == 2
    # Global batch 2 from per-device 1 over 2 processes: accumulation 1 was derived (two unconnected single-process
    # runs would each derive 2), and both nodes logged the same all-reduced gradient norms.
    recorded = json.loads((run / "final" / "gift_manifest.json").read_text())["config"]
    assert recorded["gradient_accumulation_steps"] == 1 and recorded["global_batch_size"] == 2
    state = json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["epoch"] == pytest.approx(2 * 2 / 8)
    norms = [
        [line.split("'grad_norm': ")[1].split(",")[0] for line in log.splitlines() if "'grad_norm'" in line]
        for log in logs
    ]
    assert len(norms[0]) == 2 and norms[0] == norms[1]
