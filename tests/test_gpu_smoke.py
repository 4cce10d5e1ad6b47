"""scripts/gpu_smoke.sh end to end in its CPU dry mode (tiny model): every stage it measures on a GPU runs and
the JSON it writes has every figure beside its docs/scaling.md prediction."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_smoke_dry_run_writes_the_json(tmp_path):
    env = {
        **os.environ,
        "PYTHON": os.environ.get("PYTHON", __import__("sys").executable),
        "OMP_NUM_THREADS": "1",
        "WORKDIR": str(tmp_path / "work"),
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        ["bash", "scripts/gpu_smoke.sh", "--dry-run", str(tmp_path / "out.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "out.json").read_text())
    assert results["dry_run"] is True and results["device"] == "cpu"
    for objective in ("gift", "sft"):
        assert results["stage_one"][objective]["median_step_s"] > 0 and results["stage_one"][objective]["steps"] == 2
    assert results["stage_one"]["gift_over_sft_time"] > 0 and results["stage_two"]["step_s_incl_load"] > 0
    assert results["rollouts"]["tokens_per_s_none"] > 0 and results["rollouts"]["tokens_per_s_dual"] > 0
    predicted = results["predicted"]
    assert predicted["gift_over_sft_time"] == 1.25 and predicted["parameters"] > 0


def test_gpu_smoke_refuses_without_a_gpu_unless_dry(tmp_path):
    env = {**os.environ, "PYTHON": __import__("sys").executable, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        ["bash", "scripts/gpu_smoke.sh", str(tmp_path / "out.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "use --dry-run" in proc.stderr and not (tmp_path / "out.json").exists()


def test_predictions_match_the_parameter_count_of_the_model_they_describe(tmp_path):
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import gpu_smoke
    import official_layout as layout

    from gift.checkpoint import load_model

    dims = dict(layout.LLADA_DIMS, n_kv_heads=2)
    model = load_model(str(layout.write_official_llada(tmp_path / "m", **dims))).model
    assert gpu_smoke.predictions(dims, 16)["parameters"] == sum(p.numel() for p in model.parameters())
    assert 1.0e9 < gpu_smoke.predictions(gpu_smoke.GPU_DIMS, 4096)["parameters"] < 1.3e9
