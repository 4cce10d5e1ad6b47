"""The markdown report of a pipeline run: accuracy table, reward curves, costs, verdicts, config.

Everything comes from the run's typed record (`stages.run_record.RunRecord`: runs and evaluations); arm names
are read from it (the first arm is the reference), and every verdict from a 95% interval over seeds
(`stages.reports.verdicts`)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from rewards import get_task
from stages.reports import verdicts
from stages.reports.verdicts import mean_sd as _mean_sd
from stages.reports.verdicts import stage_titles
from stages.reports.wall_time import machine, machine_line, wall_time
from stages.run_record import RunRecord


def _cell(scores: dict, key: str) -> float | None:
    cells = scores.get("cells", [])
    values = [c[key] for c in cells if key in c]
    return sum(values) / len(values) if values else None


def _metric_names(task: str) -> list[str]:
    """The metric keys the task's report tabulates (`Task.report_metrics`; the first is the headline)."""
    return list(get_task(task).report_metrics)


def _step_time(run_dir: Path) -> float | None:
    log = run_dir / "train_log.jsonl"
    if not log.is_file():
        return None
    times = [r["step_time"] for r in map(json.loads, log.read_text().splitlines()) if "step_time" in r]
    times = times[len(times) // 10 :]  # skip the warm-up steps
    return statistics.median(times) if times else None


def _final_reward(rl_dir: Path, tail: float = 0.2) -> float | None:
    """Mean raw reward over the last `tail` of a stage-two run."""
    rewards = _rewards(rl_dir)
    last = rewards[-max(1, int(len(rewards) * tail)) :]
    return sum(last) / len(last) if last else None


def _entropy_section(entropy: dict | None) -> list[str]:
    if not entropy:
        return []
    lines = [
        "",
        "## What the probe sees (base model)",
        "",
        "GIFT masks a token more often the higher its probe entropy H (beta = sqrt(H)). Full table and figure: "
        "`entropy/entropy_report.md`, `entropy/entropy_report.png`.",
        "",
    ]
    if entropy.get("classes"):
        lines += ["| token class | count | mean entropy (nats) | mean beta |", "|---|---|---|---|"]
        lines += [
            f"| {name} | {c['count']} | {c['mean_entropy']:.3f} | {c['mean_beta']:.3f} |"
            for name, c in entropy["classes"].items()
        ]
    else:
        lines += ["| highest-entropy tokens | mean entropy (nats) |", "|---|---|"]
        lines += [f"| `{t['token']}` | {t['mean_entropy']:.3f} |" for t in entropy.get("high", [])[:10]]
    return lines


def _stats(values: list[float]) -> dict[str, Any]:
    return {
        "values": values,
        "mean": statistics.mean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def _rewards(rl_dir: Path) -> list[float]:
    path = rl_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [r["reward_mean"] for r in map(json.loads, path.read_text().splitlines()) if "reward_mean" in r]


def reward_rise(rewards: list[float]) -> dict[str, float] | None:
    """Mean raw reward over the first 10% and the last 20% of a stage-two run, and the rise between them
    (which the order of the prompts moves as much as learning does: `frozen_gain` is the measure of learning)."""
    if not rewards:
        return None
    first = rewards[: max(1, len(rewards) // 10)]
    last = rewards[-max(1, len(rewards) // 5) :]
    return {
        "first10": statistics.mean(first),
        "last20": statistics.mean(last),
        "rise": statistics.mean(last) - statistics.mean(first),
        "steps": len(rewards),
    }


def frozen_gain(rewards: list[float], frozen: list[float], mu: int) -> dict[str, float] | None:
    """A run's reward windows read on its frozen control (same prompts and rollout noise, no learning;
    one step per generation batch, where the run takes `mu` steps; None unless the control saw exactly the
    run's batches).

    `frozen_rise` is what the order of the prompts alone gives; `gain` is the run's last-20% reward minus
    the control's over the same generation batches: the part of the reward that learning added.
    """
    if not rewards or len(rewards) != mu * len(frozen):
        return None
    first, last = max(1, len(rewards) // 10), max(1, len(rewards) // 5)
    first_control, last_control = frozen[: -(-first // mu)], frozen[(len(rewards) - last) // mu :]
    trained_last = statistics.mean(rewards[-last:])
    return {
        "frozen_first10": statistics.mean(first_control),
        "frozen_last20": statistics.mean(last_control),
        "frozen_rise": statistics.mean(last_control) - statistics.mean(first_control),
        "gain": trained_last - statistics.mean(last_control),
    }


def rl_labels(cfg) -> list[str]:
    """Stage-two arm labels in config order: `arm`, or `arm:algorithm` with `rl_algorithms`."""
    return [cfg.rl_label(a.name, alg) for a in cfg.arms if a.rl for alg in cfg.algorithms()]


def _stage_labels(cfg) -> dict[str, list[str]]:
    """The labels evaluated at each stage: every arm at stage one and at the RL start, `rl_labels` at stage two."""
    arms = [a.name for a in cfg.arms]
    return {"stage1": arms, "rl_start": arms, "stage2": rl_labels(cfg)}


def _accuracy(cfg, evaluations: dict[str, dict], metrics: list[str]) -> dict[str, Any]:
    """Accuracy of every checkpoint (per metric: values and seeds, mean and sd over seeds), by stage and label."""
    accuracy: dict[str, Any] = {"base": {m: _cell(evaluations["base"], m) for m in metrics}}
    for prefix, labels in _stage_labels(cfg).items():
        for label in labels:
            runs = {s: evaluations[key] for s in cfg.seeds if (key := f"{prefix}/{label}/seed{s}") in evaluations}
            if not runs:
                continue
            accuracy.setdefault(prefix, {})[label] = {
                m: {**_stats([_cell(r, m) for r in runs.values()]), "seeds": list(runs)} for m in metrics
            }
    return accuracy


def _reward_rises(record: RunRecord) -> dict[str, list[dict]]:
    """Each stage-two run's `reward_rise` and gain over its frozen control, by label, with its seed."""
    rl: dict[str, list[dict]] = {}
    for run in record.stage_two:
        rewards = _rewards(Path(run.run_dir))
        rise = reward_rise(rewards)
        if rise is not None:
            control = None
            if run.control is not None:
                mu = run.num_iterations // run.control.steps_per_batch
                control = frozen_gain(rewards, _rewards(Path(run.control.run_dir)), mu)
            rl.setdefault(run.label, []).append({"seed": run.seed, **rise, **(control or {})})
    return rl


def _arm_step_times(record: RunRecord, arm: str) -> list[float]:
    return [t for run in record.stage_one_runs(arm) if (t := _step_time(Path(run.run_dir))) is not None]


def _step_time_table(record: RunRecord) -> dict[str, dict[str, float | None]]:
    """Per arm with logs: its median stage-one step time (mean over seeds) and the ratio to the reference arm's
    (the first arm; the README's column is named after it)."""
    sft_time = _arm_step_times(record, record.arms[0])
    table = {}
    for arm in record.arms:
        times = _arm_step_times(record, arm)
        if times:
            table[arm] = {
                "median_s": statistics.mean(times),
                "vs_sft": statistics.mean(times) / statistics.mean(sft_time) if sft_time else None,
            }
    return table


def collect_results(cfg, record: RunRecord, state: dict[str, Any], entropy: dict | None = None) -> dict[str, Any]:
    """Every number of the report, machine-readable (`results.json`; the README is rendered from it): per-seed
    values, the paired intervals read from them (`gaps`, `learning`), and the machine that produced them."""
    metrics = _metric_names(cfg.task)
    accuracy = _accuracy(cfg, record.evaluations, metrics)
    step_time = _step_time_table(record)
    reference = record.arms[0]
    stage_one_step = (step_time.get(reference) or next(iter(step_time.values()), {})).get("median_s")
    results = {
        "schema": verdicts.SCHEMA,
        "config": cfg.config_path,
        "task": cfg.task,
        "base_model": cfg.base_model,
        "pretrain_steps": cfg.pretrain_steps,
        "seeds": list(cfg.seeds),
        "seed_count": len(cfg.seeds),
        "arms": list(record.arms),
        "reference_arm": reference,
        "arm_seeds": {a.name: cfg.arm_seeds(a) for a in cfg.arms},
        "rl_labels": rl_labels(cfg),
        "rl_arms": {run.label: run.arm for run in record.stage_two},
        "rl_from_step": cfg.rl_from_step,
        **record.steps(),
        "workers": record.workers,
        "metrics": metrics,
        "accuracy": accuracy,
        "rl": _reward_rises(record),
        "step_time": step_time,
        "wall_time": wall_time(state, record, stage_one_step, record.workers),
        "machine": machine(),
        "entropy_classes": (entropy or {}).get("classes"),
    }
    return {**results, "gaps": verdicts.gaps(results), "learning": verdicts.learning(results)}


def _final_rewards(record: RunRecord) -> dict[str, list[float]]:
    """Per stage-two label, each run's mean raw reward over its last 20% of steps."""
    rewards: dict[str, list[float]] = {}
    for run in record.stage_two:
        value = _final_reward(Path(run.run_dir))
        if value is not None:
            rewards.setdefault(run.label, []).append(value)
    return rewards


def _accuracy_lines(results: dict[str, Any], seeds: list[int]) -> list[str]:
    metrics, accuracy = results["metrics"], results["accuracy"]
    lines = [
        "## Accuracy of every checkpoint",
        "",
        "Percent, mean ± sd over seeds (greedy decoding; " + ", ".join(metrics) + ").",
        "",
        "| checkpoint | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    lines.append("| base | " + " | ".join(_mean_sd([accuracy["base"][m]]) for m in metrics) + " |")
    for prefix, title in stage_titles(results["rl_from_step"]).items():
        for label, by_metric in accuracy.get(prefix, {}).items():
            n = by_metric[metrics[0]]["n"]
            note = "" if n == len(seeds) else f" ({n} seed{'s' if n > 1 else ''})"
            lines.append(
                f"| {title}: {label}{note} | " + " | ".join(_mean_sd(by_metric[m]["values"]) for m in metrics) + " |"
            )
    return lines


def _reward_lines(results: dict[str, Any], rewards: dict[str, list[float]], figure: str, smoothing: float) -> list[str]:
    from stages.reports.control_curves import CONTROL_FIGURE_TEXT

    has_control = any("gain" in r for runs in results["rl"].values() for r in runs)
    lines = [
        "",
        "## Reward curves (stage two)",
        "",
        f"![reward curves]({figure})",
        "",
        *([CONTROL_FIGURE_TEXT, ""] if has_control else []),
        f"Raw reward per step (faint) and its time-weighted EMA (bold, smoothing {smoothing}); "
        "final reward = mean raw reward over the last 20% of steps:",
        "",
        "| arm | final reward (x100) |",
        "|---|---|",
    ]
    lines += [f"| {arm} | {_mean_sd(v)} |" for arm, v in rewards.items()]
    lines += [
        "",
        "Rise of every stage-two run: mean raw reward over its last 20% of steps minus its first 10% "
        "(x100; it moves with the order of the prompts as well as with learning):",
        "",
        "| run | seed | first 10% | last 20% | rise |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {label} | {r['seed']} | {100 * r['first10']:.1f} | {100 * r['last20']:.1f} | {100 * r['rise']:+.1f} |"
        for label, runs in results["rl"].items()
        for r in runs
    ]
    controlled = [(label, r) for label, runs in results["rl"].items() for r in runs if "gain" in r]
    if controlled:
        lines += [
            "",
            "Each run against its frozen control (the same start, prompts and rollout noise, no learning; x100): "
            "the control's rise is the order of the prompts alone, the gain is the run's last-20% reward minus "
            "the control's over the same batches:",
            "",
            "| run | seed | control first 10% | control last 20% | control rise | gain over control |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {label} | {r['seed']} | {100 * r['frozen_first10']:.1f} | {100 * r['frozen_last20']:.1f} | "
            f"{100 * r['frozen_rise']:+.1f} | {100 * r['gain']:+.1f} |"
            for label, r in controlled
        ]
    return lines


def _verdict_lines(results: dict[str, Any], has_control: bool) -> list[str]:
    reference = results.get("reference_arm", results["arms"][0])
    lines = ["", "## Verdicts", ""]
    if results["gaps"]:
        lines += [
            f"Each arm minus `{reference}`, seed by seed (same base, data order and seed; percentage points, "
            "x100 for rewards): mean with its 95% t interval over seeds, the t test's and the exact sign-flip "
            "test's two-sided p, and Holm's correction over the arms compared at that row. An arm is ahead only "
            "when the whole interval lies on its side of zero.",
            "",
        ] + verdicts.gap_lines(results["gaps"])
        lines += ["", verdicts.plain_verdict(results["gaps"])]
    if any(results.get("learning", {}).values()):
        lines += [
            "",
            "What stage two learned, per arm (mean over seeds with its 95% interval): the gain over the "
            "frozen control (last-20% reward minus the control's over the same batches, x100), and the "
            "held-out greedy accuracy after stage two minus at its RL start (points):",
            "",
        ]
        lines += verdicts.learning_lines(results["learning"], results["metrics"][0])
    if has_control:
        lines += [
            "",
            "Control arms set beta by token class without any entropy. Where a control comes close to "
            "`gift`, most of GIFT's gain on this task is structural (which tokens are hard), not something only "
            "the entropy probe can find; read the comparison with that in mind.",
        ]
    return lines


def _cost_lines(step_time: dict[str, dict], state: dict[str, Any], wall: dict[str, Any] | None = None) -> list[str]:
    reference = next(iter(step_time), "sft")  # the reference arm runs first
    lines = ["", "## Cost", "", f"| arm | stage-one step time (median s) | vs {reference} |", "|---|---|---|"]
    for arm, t in step_time.items():
        ratio = "-" if t["vs_sft"] is None else f"{t['vs_sft']:.2f}"
        lines.append(f"| {arm} | {t['median_s']:.3f} | {ratio} |")
    lines += ["", "| step | wall time (s) |", "|---|---|"]
    lines += [
        f"| {name} | {info['seconds']:.1f}{' (resumed)' if info.get('resumed') else ''} |"
        for name, info in state.get("steps", {}).items()
    ]
    total = sum(info["seconds"] for info in state.get("steps", {}).values())
    return lines + [f"| total | {total:.1f} |"] + _stage_lines(wall)


def _stage_lines(wall: dict[str, Any] | None) -> list[str]:
    """Work by stage, the cores and workers, and seconds per step (absent from results written before them)."""
    if not wall or "by_stage_s" not in wall:
        return []
    lines = [
        "",
        f"By stage, on {wall['cores']} core(s) in {wall['workers']} worker process(es) (seconds of work; "
        "seconds per step: stage one's median step, stage two's optimizer step, the control's generation batch):",
        "",
        "| stage | work (s) | s per step |",
        "|---|---|---|",
    ]
    per_step = wall["seconds_per_step"]
    lines += [
        f"| {stage} | {seconds:.1f} | {'-' if per_step.get(stage) is None else f'{per_step[stage]:.2f}'} |"
        for stage, seconds in wall["by_stage_s"].items()
    ]
    return lines


def format_report(
    results: dict[str, Any],
    cfg,
    rewards: dict[str, list[float]],
    figure: Path | None,
    state: dict[str, Any],
    entropy: dict | None,
    config_yaml: str,
) -> str:
    """`report.md` from `collect_results`' numbers, the runs' final rewards, the state and the resolved config."""
    header = (
        f"Base model `{cfg.base_model}`"
        + (f", pre-trained {cfg.pretrain_steps} steps on the task" if cfg.pretrain_steps else "")
        + f"; arms {', '.join(f'`{a}`' for a in results['arms'])}; seeds {cfg.seeds}."
    )
    lines = [f"# Pipeline report: {cfg.task}", "", header, ""] + _accuracy_lines(results, cfg.seeds)
    if figure is not None:
        lines += _reward_lines(results, rewards, figure.name, cfg.smoothing)
    lines += _verdict_lines(results, any(a.control for a in cfg.arms))
    lines += _entropy_section(entropy)
    lines += _cost_lines(results["step_time"], state, results.get("wall_time"))
    lines += ["", machine_line(results.get("machine"))]
    lines += ["", "## Config", "", "```yaml", config_yaml.rstrip(), "```", ""]
    return "\n".join(lines)


def write_report(
    out: Path, cfg, record: RunRecord, figure: Path | None, state: dict[str, Any], entropy: dict | None = None
) -> Path:
    """Write `out/report.md` and `out/results.json` (the same numbers, machine-readable); return the report's path."""
    results = collect_results(cfg, record, state, entropy)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    text = format_report(
        results, cfg, _final_rewards(record), figure, state, entropy, (out / "pipeline_config.yaml").read_text()
    )
    path = out / "report.md"
    path.write_text(text)
    return path
