"""Every command on tiny LLaDA and Dream checkpoints in the official hub layout, through the README's recipes.

The recipes are the ones the README gives for LLaDA-8B / Dream-7B, shrunk by command-line overrides only
(sizes, steps, a synthetic data set, fp32 on CPU); the checkpoints load natively, without hub code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import official_layout as layout
import pytest
import torch
from helpers import CPU_FLAGS as CPU

from gift.checkpoint import load_model, read_manifest
from stages.cli import main as gift

FAMILIES = ("llada", "dream")
WRITERS = {"llada": layout.write_official_llada, "dream": layout.write_official_dream}
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
    "2",
    "--global_batch_size",
    "2",
    "--max_steps",
    "2",
    "--save_steps",
    "1",
    "--logging_steps",
    "1",
    "--lora_r",
    "4",
    "--lora_alpha",
    "8",
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
    "2",
    "--num_iterations",
    "1",
    "--max_steps",
    "1",
    "--save_steps",
    "1",
    "--lora_r",
    "4",
    "--lora_alpha",
    "8",
    *CPU,
]
ESTIMATOR_FLAGS = {
    "d1": ["--config", "configs/llada/grpo_sudoku.yaml"],
    "spg": ["--config", "configs/llada/spg_sudoku.yaml"],
    "unigrpo": ["--config", "configs/llada/grpo_sudoku.yaml", "--rl_algorithm", "unigrpo", "--num_t", "2"],
    "wd1": ["--config", "configs/llada/grpo_sudoku.yaml", "--rl_algorithm", "wd1", "--beta", "0"],
    "coupled": ["--config", "configs/llada/grpo_sudoku.yaml", "--rl_algorithm", "coupled"],
}


def stage_one_argv(kind: str, lora: bool, base: Path, out: Path, *extra: str) -> list[str]:
    """`gift cold-start` of the family's s1k recipe (LoRA or full) on `base`, shrunk by STAGE_ONE, then `extra`."""
    recipe = f"configs/{kind}/s1k_{'lora' if lora else 'full'}.yaml"
    return [
        "cold-start",
        "--config",
        recipe,
        "--model_name_or_path",
        str(base),
        "--output_dir",
        str(out),
        *STAGE_ONE,
        *extra,
    ]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """(kind, official-layout base, GIFT+LoRA stage-one run) for one family."""
    kind = request.param
    root = tmp_path_factory.mktemp(kind)
    base = WRITERS[kind](root / "base", seed=7)
    run = root / "gift-lora"
    assert gift(stage_one_argv(kind, True, base, run)) == 0
    return kind, base, run


def test_cold_start_lora_gift_writes_an_adapter_on_the_official_base(family):
    kind, base, run = family
    manifest = read_manifest(run)
    assert manifest.model_type == kind and manifest.adapter and manifest.objective == "gift"
    assert manifest.base_model == str(base) and manifest.metrics["global_step"] == 2
    loaded = load_model(str(run))
    assert hasattr(loaded.model, "peft_config") and loaded.adapter.kind == kind


@pytest.mark.slow
@pytest.mark.parametrize("objective,lora", [("sft", True), ("gift", False), ("sft", False)])
def test_cold_start_objective_by_parameters(family, tmp_path, objective, lora):
    kind, base, _ = family
    run = tmp_path / "run"
    assert gift(stage_one_argv(kind, lora, base, run, "--objective", objective)) == 0
    manifest = read_manifest(run)
    assert (manifest.objective, manifest.adapter, manifest.model_type) == (objective, lora, kind)
    if not lora:  # full weights are saved in native form and load back with the same family facts
        config = json.loads((run / "final" / "config.json").read_text())
        assert config["diffusion_family"] == kind and config["is_causal"] is False
        assert load_model(str(run)).adapter == load_model(str(base)).adapter


def test_cold_start_resume_reproduces_the_uninterrupted_run(family, tmp_path):
    kind, base, _ = family
    run = tmp_path / "run"
    argv = stage_one_argv(kind, False, base, run, "--max_steps", "3")
    assert gift(argv) == 0
    straight = load_model(str(run)).model.state_dict()
    # As if killed after step 2: the last checkpoint and the final model never got written.
    for name in ("final", "checkpoint-3"):
        shutil.rmtree(run / name)
    assert gift([*argv, "--resume", "true"]) == 0
    assert read_manifest(run).metrics["global_step"] == 3
    resumed = load_model(str(run)).model.state_dict()
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", sorted(ESTIMATOR_FLAGS))
@pytest.mark.parametrize("start", ["lora", "full"])
def test_rl_with_each_estimator_from_each_stage_one(family, tmp_path_factory, tmp_path, estimator, start):
    kind, base, lora_run = family
    if start == "lora":
        stage_one = lora_run
    else:
        stage_one = tmp_path_factory.getbasetemp() / f"{kind}-full-stage-one"
        if not (stage_one / "final").is_dir():
            assert gift(stage_one_argv(kind, False, base, stage_one)) == 0
    out = tmp_path / "rl"
    # UniGRPO's published KL is to the generating policy, which needs two updates per generation batch.
    mu = ["--num_iterations", "2", "--max_steps", "2", "--save_steps", "2"] if estimator == "unigrpo" else []
    assert (
        gift(["rl", *ESTIMATOR_FLAGS[estimator], "--model", str(stage_one), "--output_dir", str(out), *STAGE_TWO, *mu])
        == 0
    )
    manifest = read_manifest(out)
    assert manifest.stage == "rl" and manifest.model_type == kind and manifest.config["rl_algorithm"] == estimator
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == (2 if mu else 1) and 0 <= metrics[0]["reward_mean"] <= 1


def test_merge_round_trip_keeps_the_logits(family, tmp_path):
    kind, _, run = family
    assert gift(["merge", "--checkpoint", str(run), "--output_dir", str(tmp_path / "merged")]) == 0
    adapter_model, merged = load_model(str(run)), load_model(str(tmp_path / "merged"))
    assert read_manifest(tmp_path / "merged").merged and not hasattr(merged.model, "peft_config")
    ids = torch.tensor([adapter_model.tokenizer("1.3. .2.1 answer", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        expected = adapter_model.adapter.logits(adapter_model.model, ids)
        assert (merged.adapter.logits(merged.model, ids) - expected).abs().max() <= 1e-5


def test_eval_score_and_entropy_report(family, tmp_path):
    kind, base, run = family
    for model in (base, run):
        out = tmp_path / model.name / "eval"
        assert (
            gift(
                [
                    "eval",
                    "--model",
                    str(model),
                    "--task",
                    "sudoku",
                    "--data",
                    "synthetic",
                    "--limit",
                    "3",
                    "--gen_length",
                    "16",
                    "--block_length",
                    "8",
                    "--batch_size",
                    "2",
                    "--kv_cache",
                    "dual",
                    "--dtype",
                    "float32",
                    "--output_dir",
                    str(out),
                ]
            )
            == 0
        )
        records = [json.loads(line) for path in out.glob("*.jsonl") for line in path.read_text().splitlines()]
        assert len(records) == 3
        assert gift(["score", str(out)]) == 0
        assert 0 <= json.loads((out / "scores.json").read_text())["mean"] <= 1
    report = tmp_path / "entropy"
    assert (
        gift(
            [
                "entropy-report",
                "--model",
                str(run),
                "--data",
                "synthetic:sudoku",
                "--max_examples",
                "4",
                "--max_length",
                "512",
                "--min_count",
                "1",
                "--batch_size",
                "2",
                "--output_dir",
                str(report),
            ]
        )
        == 0
    )
    assert any(report.iterdir())


def as_overrides(flags: list[str]) -> dict:
    """`--key value` command-line flags as a recipe-override mapping (values parsed as YAML scalars)."""
    import yaml

    return {flags[i][2:]: yaml.safe_load(flags[i + 1]) for i in range(0, len(flags), 2)}


@pytest.mark.slow
def test_pipeline_runs_the_llada_recipe_shrunk_by_overrides(family, tmp_path):
    from stages.pipeline import run_pipeline
    from stages.pipeline_config import load_pipeline_config

    kind, base, _ = family
    stage_one = {k: v for k, v in as_overrides(STAGE_ONE).items() if k not in ("report_to",)}
    stage_two = {k: v for k, v in as_overrides(STAGE_TWO).items() if k not in ("report_to",)}
    config = load_pipeline_config(
        "configs/llada/pipeline_sudoku.yaml",
        {
            "output_dir": str(tmp_path / "pipeline"),
            "base_model": str(base),
            "model_type": kind,
            "stage_one": stage_one,
            "stage_two": stage_two,
            "entropy_examples": 4,
            "eval": {"gen_lengths": [16], "block_length": 8, "batch_size": 2, "data": "synthetic", "limit": 2},
        },
    )
    report = run_pipeline(config).read_text()
    for arm in ("sft", "gift"):
        assert f"| stage one: {arm} |" in report and f"| stage two: {arm} |" in report
        assert read_manifest(tmp_path / "pipeline" / "seed42" / arm / "stage2").model_type == kind
