"""Distributed training through the real launcher: `torchrun --nproc_per_node 2`, gloo, CPU only.

(`accelerate launch --cpu --num_processes 2` starts a single process on a machine without GPUs, so
these tests use torchrun, which `accelerate launch` wraps on GPU machines anyway.)

Checked after a few steps of stage one on the embedded model:
- both ranks end with bit-identical parameters, equal to the final checkpoint rank 0 wrote, and
  different from the starting weights;
- the global batch is per-device batch x accumulation x 2 processes: the ranks drew disjoint
  examples, and the epoch progress logged in train_log.jsonl / trainer_state.json advances by
  global batch / dataset size per optimizer step.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gift.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]
RL_SCRIPT = Path(__file__).parent / "dist_scripts" / "rl_rank_dump.py"
SCRIPT = ROOT / "tests" / "dist_scripts" / "cold_start_rank_dump.py"
EXAMPLES = 256
STEPS = 3
NPROC = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: Path, args: list[str], nproc: int = NPROC, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run `script` under `torchrun --nproc_per_node nproc` on CPU (gloo); fails the test with the log on error."""
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_DISABLED": "true",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        str(script),
        *args,
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(
            f"torchrun exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def _param_digests(model: torch.nn.Module) -> dict[str, str]:
    return {
        name: hashlib.sha256(p.detach().float().contiguous().numpy().tobytes()).hexdigest()
        for name, p in model.named_parameters()
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "per_device,accumulation,extra",
    [
        (8, 1, []),
        (4, 2, ["--use_lora", "true", "--lora_r", "4", "--lora_alpha", "8"]),
    ],
    ids=["full-8x1", "lora-4x2"],
)
def test_stage_one_ranks_agree_and_global_batch(tmp_path, base_dir, per_device, accumulation, extra):
    dump, run = tmp_path / "dump", tmp_path / "run"
    torchrun(
        SCRIPT,
        [
            str(dump),
            "--config",
            "configs/embedded/gift_sudoku.yaml",
            "--model_name_or_path",
            str(base_dir),
            "--output_dir",
            str(run),
            "--max_steps",
            str(STEPS),
            "--synthetic_examples",
            str(EXAMPLES),
            "--per_device_train_batch_size",
            str(per_device),
            "--gradient_accumulation_steps",
            str(accumulation),
            "--save_steps",
            str(STEPS),
            "--logging_steps",
            "1",
            "--disable_tqdm",
            "true",
            "--report_to",
            "none",
            *extra,
        ],
    )
    ranks = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(NPROC)]

    # 1. Same weights on every rank, and they are the ones rank 0 saved.
    assert all(r["world_size"] == NPROC and r["global_step"] == STEPS for r in ranks)
    digests = [{k: v["sha256"] for k, v in r["params"].items()} for r in ranks]
    assert digests[0] == digests[1], [k for k in digests[0] if digests[0][k] != digests[1].get(k)]
    saved = _param_digests(load_model(str(run / "final")).model)
    assert saved == digests[0]
    start = load_model(str(base_dir)).model
    start_digests = _param_digests(start)
    trained = {k.removeprefix("base_model.model.").replace(".base_layer", ""): v for k, v in digests[0].items()}
    assert set(start_digests) <= set(trained)
    changed = [k for k, v in start_digests.items() if trained[k] != v]
    if extra:  # LoRA: the base stays frozen, the adapters train
        assert not changed and any("lora_" in k for k in digests[0])
    else:
        assert len(changed) == len(start_digests)

    # 2. Global batch = per-device x accumulation x processes.
    global_batch = per_device * accumulation * NPROC
    micro = STEPS * accumulation  # micro-batches consumed per rank (the loader may prefetch one more)
    seen = [[i for batch in r["batches"][:micro] for i in batch] for r in ranks]
    assert all(len(b) == per_device for r in ranks for b in r["batches"][:micro])
    assert len(set(seen[0]) | set(seen[1])) == STEPS * global_batch  # the ranks drew disjoint examples
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    steps = [row for row in log if "loss" in row]
    assert [row["step"] for row in steps] == list(range(1, STEPS + 1))
    for row in steps:
        assert row["epoch"] == pytest.approx(row["step"] * global_batch / EXAMPLES)
    state = json.loads((run / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    assert state["epoch"] == pytest.approx(STEPS * global_batch / EXAMPLES)


@pytest.mark.slow
def test_stage_two_ranks_agree(tmp_path, base_dir):
    """diffu-GRPO under torchrun: identical parameters on both ranks, rewards gathered over the global batch."""
    dump, run = tmp_path / "dump", tmp_path / "run"
    per_device, steps = 12, 2
    torchrun(
        RL_SCRIPT,
        [
            str(dump),
            "--config",
            "configs/embedded/grpo_sudoku.yaml",
            "--model",
            str(base_dir),
            "--output_dir",
            str(run),
            "--max_steps",
            str(steps),
            "--save_steps",
            str(steps),
            "--per_device_train_batch_size",
            str(per_device),
            "--num_iterations",
            "2",
            "--max_prompts",
            "32",
            "--disable_tqdm",
            "true",
            "--report_to",
            "none",
        ],
    )
    ranks = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(NPROC)]
    assert all(r["world_size"] == NPROC and r["global_step"] == steps for r in ranks)
    assert ranks[0]["params"] == ranks[1]["params"]
    saved = _param_digests(load_model(str(run / "final")).model)
    assert saved == ranks[0]["params"]
    start = _param_digests(load_model(str(base_dir)).model)
    assert all(saved[k] != v for k, v in start.items())
    # num_iterations = 2: one generation batch serves both steps; each rank generates per_device
    # completions, the rewards are gathered over the global batch, each rank trains on its own rows.
    for r in ranks:
        assert r["local_prompts"] == [per_device]
        assert r["gathered_rewards"] == [per_device * NPROC]
        assert r["loss_rows"] == [per_device] * steps
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
