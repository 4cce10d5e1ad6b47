"""FSDP on CPU is refused in one line (accelerate 1.15 would silently train unsharded; docs/scaling.md).

`accelerate launch` with `distributed_type: FSDP` (configs/accelerate/fsdp.yaml) exports ACCELERATE_USE_FSDP=true
to every process; the Trainer's own `--fsdp` option asks for the same. Both stages refuse either on a CPU run
before anything loads. The real 2-process launch is in tests/test_sharded.py.
"""

from __future__ import annotations

import sys

import pytest

from stages import cli

STAGE_ONE = ["cold-start", "--config", "configs/llada/s1k_lora.yaml", "--model_name_or_path", "embedded"]
STAGE_TWO = ["rl", "--config", "configs/llada/grpo_sudoku.yaml", "--model", "embedded"]
MESSAGE = "FSDP was requested (configs/accelerate/fsdp.yaml or --fsdp) but this run is on CPU"


@pytest.mark.parametrize("stage", [STAGE_ONE, STAGE_TWO], ids=["cold-start", "rl"])
@pytest.mark.parametrize("how", ["launcher", "option"])
def test_fsdp_on_cpu_is_refused_in_one_line(stage, how, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gift"])
    monkeypatch.delenv("GIFT_DEBUG", raising=False)
    extra = ["--fsdp", "full_shard"] if how == "option" else []
    if how == "launcher":
        monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    out = tmp_path / "run"
    code = cli.main([*stage, *extra, "--use_cpu", "true", "--output_dir", str(out)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and MESSAGE in errors[0] and "Traceback" not in err, err
    assert "configs/accelerate/zero3.yaml" in errors[0]  # what to use instead
    assert not out.exists()  # refused before the run folder is made


def test_the_refusal_needs_both_fsdp_and_cpu(monkeypatch):
    from stages.train.fsdp_check import fsdp_requested, refuse_fsdp_on_cpu

    class Config:
        use_cpu, fsdp = True, None

    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    assert not fsdp_requested(Config)
    refuse_fsdp_on_cpu(Config)  # plain CPU run (DDP / ZeRO-3 / one process): goes on
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    refuse_fsdp_on_cpu(Config)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    Config.use_cpu = False
    refuse_fsdp_on_cpu(Config)  # a GPU run: accelerate turns FSDP on
    Config.use_cpu = True
    with pytest.raises(ValueError, match="would train unsharded data parallel"):
        refuse_fsdp_on_cpu(Config)
