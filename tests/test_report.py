"""The pipeline report: exact rows from hand-made runs, and report.md is a function of results.json (+ raw rewards)."""

from __future__ import annotations

import json
from pathlib import Path

from stages.pipeline_config import load_pipeline_config
from stages.reports.report import _final_rewards, format_report, write_report
from stages.run_record import RunRecord, StageOneRun, StageTwoRun

QUICK = "configs/embedded/pipeline_quick.yaml"


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / ("metrics.jsonl" if path.name == "stage2" else "train_log.jsonl")).write_text(
        "".join(json.dumps(r) + "\n" for r in rows)
    )


def _run(tmp_path: Path):
    """Two seeds of sft and gift (stage one and two), the structural control on seed 0 only."""
    out = tmp_path / "run"
    cfg = load_pipeline_config(QUICK, {"output_dir": str(out), "seeds": [0, 1]})

    def cell(acc: float) -> dict:
        return {"cells": [{"cell_accuracy": acc, "solved": acc / 2}]}

    evaluations = {
        "base": cell(0.25),
        "stage1/sft/seed0": cell(0.5),
        "stage1/sft/seed1": cell(0.75),
        "stage1/gift/seed0": cell(0.625),
        "stage1/gift/seed1": cell(0.875),
        "stage1/structural/seed0": cell(0.5625),
        "stage2/sft/seed0": cell(0.5),
        "stage2/sft/seed1": cell(0.75),
        "stage2/gift/seed0": cell(0.75),
        "stage2/gift/seed1": cell(1.0),
    }
    # Folders named unlike the pipeline's, so the report can only find them through the record.
    record = RunRecord(
        task="sudoku", seeds=[0, 1], arms=["sft", "gift", "structural"], workers=2, cores=4, evaluations=evaluations
    )
    for seed in (0, 1):
        for arm, step_time in (("sft", 0.25), ("gift", 0.375)):
            _jsonl(out / f"{arm}-s{seed}" / "stage1", [{"step_time": step_time}] * 3)
            run = out / f"{arm}-s{seed}" / "stage2"
            _jsonl(run, [{"step": s, "reward_mean": s / 16, "wall_time": 2.5 * s} for s in range(1, 11)])
            record.stage_one.append(StageOneRun(arm, seed, str(out / f"{arm}-s{seed}" / "stage1"), 12))
            record.stage_two.append(StageTwoRun(arm, arm, None, seed, str(run), "start", 10, 2))
    rl_runs = record
    (out / "pipeline_config.yaml").write_text("task: sudoku\n")
    state = {
        "steps": {
            "stage zero": {"seconds": 1.5, "stage": "stage zero"},
            "stage one: sft seed 0": {"seconds": 2.25, "stage": "stage one", "resumed": True},
            "eval: base": {"seconds": 0.5, "stage": "evaluation"},
        }
    }
    entropy = {"classes": {"empty cell": {"count": 10, "mean_entropy": 1.5, "mean_beta": 1.25}}}
    return out, cfg, rl_runs, state, entropy


def test_report_rows_and_results_json(tmp_path):
    out, cfg, rl_runs, state, entropy = _run(tmp_path)
    report = write_report(out, cfg, rl_runs, out / "reward_curves.png", state, entropy)
    text = report.read_text()
    for row in (
        "| base | 25.0 | 12.5 |",
        "| stage one: sft | 62.5 ± 17.7 | 31.2 ± 8.8 |",
        "| stage one: structural (1 seed) | 56.2 | 28.1 |",
        "| stage two: gift | 87.5 ± 17.7 | 43.8 ± 8.8 |",
        "| sft | 0 | 6.2 | 59.4 | +53.1 |",  # rewards s/16: first 10% = step 1, last 20% = steps 9-10
        # identical differences: sd 0, a zero-width interval; the exact sign-flip p of 2 seeds is 2/4
        "| stage1 cell_accuracy (gift - sft) | 2 | +12.5, +12.5 | +12.5 [+12.5, +12.5] | 0.000 | 0.500 | 0.000 "
        "| `gift` ahead |",
        "| stage1 cell_accuracy (structural - sft) | 1 | +6.2 | +6.2 (n = 1, no interval) | - | - | - "
        "| one seed, no interval |",
        "| stage2 cell_accuracy (gift - sft) | 2 | +25.0, +25.0 | +25.0 [+25.0, +25.0] | 0.000 | 0.500 | 0.000 "
        "| `gift` ahead |",
        "| gift | 0.375 | 1.50 |",
        "| stage one: sft seed 0 | 2.2 (resumed) |",
        "| total | 4.2 |",
        "| stage one | 2.2 | 0.25 |",
        "| stage two | 0.0 | 2.50 |",
        "| frozen control | 0.0 | - |",
        "| empty cell | 10 | 1.500 | 1.250 |",
        "![reward curves](reward_curves.png)",
    ):
        assert row + "\n" in text, row
    assert "What stage two learned" not in text  # no control and no RL-start evaluation: nothing to state
    assert text.endswith("```yaml\ntask: sudoku\n```\n")
    results = json.loads((out / "results.json").read_text())
    assert results["accuracy"]["stage1"]["structural"]["cell_accuracy"]["seeds"] == [0]
    assert results["step_time"]["gift"] == {"median_s": 0.375, "vs_sft": 1.5}
    assert [r["seed"] for r in results["rl"]["gift"]] == [0, 1]
    assert (results["stage_one_steps"], results["stage_two_steps"], results["workers"]) == (12, 10, 2)
    wall = results["wall_time"]
    assert wall["by_stage_s"] == {
        "stage zero": 1.5,
        "stage one": 2.2,
        "stage two": 0.0,
        "frozen control": 0.0,
        "evaluation": 0.5,
    }
    assert wall["seconds_per_step"] == {"stage one": 0.25, "stage two": 2.5, "frozen control": None}
    assert (wall["cores"], wall["workers"]) == (4, 2)
    assert (results["schema"], results["seed_count"], results["reference_arm"]) == (2, 2, "sft")
    assert results["config"] == cfg.config_path == QUICK
    assert results["gaps"]["stage1 cell_accuracy (gift - sft)"]["holm_p"] == 0.0
    assert results["machine"]["torch_cpu_capability"] and isinstance(results["machine"]["vector_extensions"], list)

    # The markdown is formatted from the numbers of results.json alone (read back from disk), the runs' raw
    # final rewards, the state and the config: nothing else.
    again = format_report(
        results, cfg, _final_rewards(rl_runs), out / "reward_curves.png", state, entropy, "task: sudoku\n"
    )
    assert again == text
    no_figure = format_report(results, cfg, {}, None, {}, None, "")
    assert "## Reward curves" not in no_figure and "## What the probe sees" not in no_figure
    assert "| total | 0.0 |" in no_figure
