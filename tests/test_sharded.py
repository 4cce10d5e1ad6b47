"""Sharded training through `accelerate launch` with the project's configs, 2 CPU processes (gloo).

DeepSpeed ZeRO-3 (`configs/accelerate/zero3.yaml`, `DS_ACCELERATOR=cpu`: DeepSpeed's CPU accelerator, gloo
without oneCCL) runs unchanged except `--num_processes 2 --mixed_precision no` (fp32 parity). Tiny LLaDA /
Dream in the official hub layout (tests/official_layout.py).

FSDP: accelerate 1.15 turns its FSDP plugin on only for GPU-type launches (accelerate/state.py: FSDP is
selected inside the MULTI_GPU / NPU / XPU / ... branch), so `accelerate launch` with `configs/accelerate/fsdp.yaml`
on CPU would train plain data parallel (MULTI_CPU): it is refused in one line (tested here with the real launch).
What CPU can check is checked: FSDP2 itself (`fully_shard` per decoder layer and root, gloo) on the native LLaDA
and Dream through the project's GIFT step (live probe on the sharded model, loss, AdamW) equals the unsharded
steps (tests/dist_scripts/fsdp2_gift_steps.py).

Matrix: ZeRO-3 x LLaDA full, both stages (GIFT probe, rollouts with gathered parameters, KL reference,
`--resume` from the sharded checkpoint), parity against DDP with the same global batch; ZeRO-3 x Dream
LoRA, both stages (stage two straight from the LoRA run equals stage two from its `gift merge` output), `gift
merge` of the sharded LoRA, `gift eval`; FSDP2 x LLaDA and Dream full, GIFT steps, parity; fsdp.yaml on CPU refused.

Parity is against DDP (torchrun, 2 processes): the masking noise is drawn per process from the run seed,
so a 1-process run with the same global batch draws other noise for the second example; DDP over 2
processes is the unsharded run with exactly the same examples and noise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import official_layout as layout
import pytest
import torch
from helpers import CPU_FLAGS as CPU
from safetensors.torch import load_file

from gift.checkpoint import load_model, read_manifest
from stages.cli import main as gift

pytestmark = pytest.mark.skipif(not shutil.which("c++"), reason="DeepSpeed's CPU communication op is compiled once")

ROOT = Path(__file__).resolve().parents[1]
STAGE_ONE = [
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
    "--save_steps",
    "1",
    "--logging_steps",
    "1",
    *CPU,
]
STAGE_TWO = [
    "--dataset",
    "synthetic",
    "--gen_length",
    "16",
    "--block_length",
    "8",
    "--steps",
    "8",
    "--num_generations",
    "2",
    "--per_device_train_batch_size",
    "2",
    "--global_batch_size",
    "4",
    "--num_iterations",
    "1",
    "--max_steps",
    "2",
    "--save_steps",
    "1",
    *CPU,
]
WEIGHT_TOL = 1e-5  # fp32, after 3 AdamW steps: sharded reductions sum in another order than DDP's all-reduce
LOSS_RTOL = 1e-5


def _env() -> dict:
    return {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "DS_ACCELERATOR": "cpu",
        "WANDB_DISABLED": "true",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }


def _port() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def launch(
    config: str | None,
    module: str,
    args: list[str],
    timeout: int = 300,
    script: list[str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file configs/accelerate/CONFIG` (None: torchrun: DDP, or `script`), 2 processes;
    `check`: a failed launch fails the test."""
    if config is None:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            _port(),
            *(script or ["-m", module, *args]),
        ]
    else:
        cmd = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            f"configs/accelerate/{config}.yaml",
            "--num_processes",
            "2",
            "--mixed_precision",
            "no",
            "--main_process_port",
            _port(),
            "-m",
            module,
            *args,
        ]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd[:8])} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def losses(run: Path) -> list[float]:
    return [row["loss"] for row in map(json.loads, (run / "train_log.jsonl").read_text().splitlines()) if "loss" in row]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "final" / "model.safetensors")


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], tol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= tol, worst


@pytest.mark.slow
def test_zero3_llada_full_both_stages(tmp_path):
    base = layout.write_official_llada(tmp_path / "base", seed=7)
    # lr 1e-3 (the recipe's 1e-5 would move weights by ~3e-5 in 3 steps: less than a meaningful parity bound)
    argv = [
        "--config",
        "configs/llada/s1k_full.yaml",
        "--model_name_or_path",
        str(base),
        *STAGE_ONE,
        "--max_steps",
        "3",
        "--learning_rate",
        "1e-3",
    ]
    zero3, ddp = tmp_path / "zero3", tmp_path / "ddp"
    launch("zero3", "stages.train.cold_start", [*argv, "--output_dir", str(zero3)])
    launch(None, "stages.train.cold_start", [*argv, "--output_dir", str(ddp)])

    # The one checkpoint format: full weights gathered into model.safetensors beside the manifest; the
    # sharded DeepSpeed state (global_stepN) is what --resume reads.
    assert read_manifest(zero3).metrics["global_step"] == 3 and (zero3 / "checkpoint-2" / "global_step2").is_dir()
    assert losses(zero3) == pytest.approx(losses(ddp), rel=LOSS_RTOL) and len(losses(zero3)) == 3
    straight = weights(zero3)
    assert_close(straight, weights(ddp), WEIGHT_TOL)
    start = load_model(str(base)).model.state_dict()
    assert max((straight[k] - start[k]).abs().max().item() for k in straight) > 100 * WEIGHT_TOL  # it trained

    # --resume from the sharded checkpoint-2 reproduces the uninterrupted run.
    for name in ("final", "checkpoint-3"):
        shutil.rmtree(zero3 / name)
    launch("zero3", "stages.train.cold_start", [*argv, "--output_dir", str(zero3), "--resume", "true"])
    assert_close(weights(zero3), straight, 1e-6)

    # Stage two under ZeRO-3 from what stage one wrote: rollouts (parameters gathered), KL reference, save.
    rl = tmp_path / "rl"
    launch(
        "zero3",
        "stages.train.rl",
        [
            "--config",
            "configs/llada/grpo_sudoku.yaml",
            "--model",
            str(zero3),
            "--use_lora",
            "false",
            "--beta",
            "0.04",
            "--output_dir",
            str(rl),
            *STAGE_TWO,
        ],
    )
    assert read_manifest(rl).metrics["global_step"] == 2
    assert [json.loads(line)["step"] for line in (rl / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert load_model(str(rl)).adapter.kind == "llada"


@pytest.mark.slow
@pytest.mark.parametrize("writer", [layout.write_official_llada, layout.write_official_dream], ids=["llada", "dream"])
def test_fsdp2_gift_steps_equal_the_unsharded_steps(tmp_path, writer):
    base = writer(tmp_path / "base", seed=7)
    out = tmp_path / "fsdp2.json"
    launch(None, "", [], script=[str(ROOT / "tests" / "dist_scripts" / "fsdp2_gift_steps.py"), str(base), str(out)])
    ranks = [json.loads(Path(f"{out}.rank{r}").read_text()) for r in range(2)]
    for record in ranks:
        assert record["sharded"]  # each rank held only its shard of some weights
        assert all(sharded == pytest.approx(plain, rel=LOSS_RTOL) for sharded, plain in record["losses"])
        assert record["max_weight_diff"] <= WEIGHT_TOL and record["max_change"] > 100 * WEIGHT_TOL


@pytest.mark.slow
def test_fsdp_yaml_on_cpu_is_refused_in_one_line(tmp_path):
    # accelerate 1.15 would run this launch as unsharded data parallel (MULTI_CPU); it is refused before loading.
    out = tmp_path / "fsdp"
    argv = ["--config", "configs/llada/s1k_lora.yaml", "--model_name_or_path", "embedded", "--output_dir", str(out)]
    proc = launch("fsdp", "stages.train.cold_start", argv, check=False)
    refusals = [line for line in proc.stderr.splitlines() if "FSDP was requested" in line]
    # one line per process that got to print it (the launcher stops the other when the first exits)
    assert proc.returncode != 0 and 1 <= len(refusals) <= 2, proc.stderr[-3000:]
    assert "UsageError" not in proc.stderr and "stages.train.cold_start: error: FSDP was requested" in proc.stderr
    assert all("this run is on CPU" in line and "zero3.yaml" in line for line in refusals)
    assert not out.exists()


@pytest.mark.slow
def test_zero3_dream_lora_both_stages_merge_and_eval(tmp_path):
    base = layout.write_official_dream(tmp_path / "base", seed=7)
    run = tmp_path / "zero3"
    launch(
        "zero3",
        "stages.train.cold_start",
        [
            "--config",
            "configs/dream/s1k_lora.yaml",
            "--model_name_or_path",
            str(base),
            *STAGE_ONE,
            "--max_steps",
            "2",
            "--lora_r",
            "4",
            "--lora_alpha",
            "8",
            "--output_dir",
            str(run),
        ],
    )
    manifest = read_manifest(run)
    assert manifest.adapter and manifest.metrics["global_step"] == 2 and len(losses(run)) == 2
    assert (run / "checkpoint-2" / "global_step2").is_dir()  # DeepSpeed's partitioned state: it ran sharded
    loaded = load_model(str(run))
    assert hasattr(loaded.model, "peft_config")
    lora = {k: v for k, v in loaded.model.state_dict().items() if "lora_B" in k}
    assert lora and any(v.abs().max() > 0 for v in lora.values())  # B starts at zero: the adapter trained

    merged = tmp_path / "merged"
    assert gift(["merge", "--checkpoint", str(run), "--output_dir", str(merged)]) == 0
    # Stage two straight from the LoRA run: the adapter is merged at load into a base loaded whole (ZeRO-3
    # would partition it first), then DeepSpeed partitions the merged model. It must train exactly as stage
    # two from the `gift merge` output does.
    rl = {name: tmp_path / f"rl_{name}" for name in ("straight", "merged")}
    for name, source in (("straight", run), ("merged", merged)):
        launch(
            "zero3",
            "stages.train.rl",
            [
                "--config",
                "configs/llada/grpo_sudoku.yaml",
                "--model",
                str(source),
                "--lora_r",
                "4",
                "--lora_alpha",
                "8",
                "--output_dir",
                str(rl[name]),
                *STAGE_TWO,
            ],
        )
    metrics = {
        name: [
            {k: v for k, v in json.loads(line).items() if k != "wall_time"}
            for line in (path / "metrics.jsonl").read_text().splitlines()
        ]
        for name, path in rl.items()
    }
    assert [row["step"] for row in metrics["straight"]] == [1, 2]
    assert len(metrics["merged"]) == 2
    for straight, from_merged in zip(metrics["straight"], metrics["merged"]):
        assert straight == pytest.approx(from_merged, rel=1e-6)
    assert read_manifest(rl["straight"]).metrics["global_step"] == 2
    trained = {name: load_model(str(path), merge_adapter=True).model.state_dict() for name, path in rl.items()}
    assert_close(trained["straight"], trained["merged"], 1e-6)
    out = tmp_path / "eval"
    assert (
        gift(
            [
                "eval",
                "--model",
                str(merged),
                "--task",
                "sudoku",
                "--data",
                "synthetic",
                "--limit",
                "2",
                "--gen_length",
                "16",
                "--block_length",
                "8",
                "--batch_size",
                "2",
                "--dtype",
                "float32",
                "--output_dir",
                str(out),
            ]
        )
        == 0
    )
    assert sum(len(p.read_text().splitlines()) for p in out.glob("*.jsonl")) == 2
