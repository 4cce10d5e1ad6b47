"""The markdown report of a pipeline run: accuracy table, reward curves, costs, verdict, config."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any



def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def _cell(scores: dict, key: str) -> float | None:
    cells = scores.get("cells", [])
    values = [c[key] for c in cells if key in c]
    return sum(values) / len(values) if values else None


def _metric_names(evaluations: dict[str, dict]) -> list[str]:
    first = next(iter(evaluations.values()))["cells"][0]
    return ["cell_accuracy", "solved"] if "cell_accuracy" in first else ["accuracy"]


def _step_time(run_dir: Path) -> float | None:
    log = run_dir / "train_log.jsonl"
    if not log.is_file():
        return None
    times = [r["step_time"] for r in map(json.loads, log.read_text().splitlines()) if "step_time" in r]
    times = times[len(times) // 10 :]  # skip the warm-up steps
    return statistics.median(times) if times else None


def _final_reward(rl_dir: Path, tail: float = 0.2) -> float | None:
    """Mean raw reward over the last `tail` of a stage-two run."""
    path = rl_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    rewards = [r["reward_mean"] for r in map(json.loads, path.read_text().splitlines()) if "reward_mean" in r]
    last = rewards[-max(1, int(len(rewards) * tail)) :]
    return sum(last) / len(last) if last else None


def _verdict(label: str, per_arm: dict[str, list[float]], unit: str) -> str:
    ranked = sorted(((statistics.mean(v), k, v) for k, v in per_arm.items() if v), reverse=True)
    if len(ranked) < 2:
        return ""
    (best, winner, values), (second, runner_up, _) = ranked[0], ranked[1]
    seeds = len(values)
    spread = max((statistics.stdev(v) for _, _, v in ranked if len(v) > 1), default=None)
    line = (f"- **{label}**: `{winner}` is highest ({best * unit:.1f}), ahead of `{runner_up}` by "
            f"{(best - second) * unit:.1f} over {seeds} seed{'s' if seeds > 1 else ''}")
    if "sft" in per_arm and winner != "sft":
        line += f"; vs `sft`: {(best - statistics.mean(per_arm['sft'])) * unit:+.1f}"
    if spread is None:
        line += ". One seed: no estimate of seed noise, treat the gap as indicative only."
    elif best - second <= spread:
        line += f". The gap is within the seed spread (largest sd {spread * unit:.1f}): not a clear win."
    else:
        line += f". Largest seed sd {spread * unit:.1f}."
    return line


def _entropy_section(entropy: dict | None) -> list[str]:
    if not entropy:
        return []
    lines = ["", "## What the probe sees (base model)", "",
             "GIFT masks a token more often the higher its probe entropy H (beta = sqrt(H)). Full table and figure: "
             "`entropy/entropy_report.md`, `entropy/entropy_report.png`.", ""]
    if entropy.get("classes"):
        lines += ["| token class | count | mean entropy (nats) | mean beta |", "|---|---|---|---|"]
        lines += [f"| {name} | {c['count']} | {c['mean_entropy']:.3f} | {c['mean_beta']:.3f} |"
                  for name, c in entropy["classes"].items()]
    else:
        lines += ["| highest-entropy tokens | mean entropy (nats) |", "|---|---|"]
        lines += [f"| `{t['token']}` | {t['mean_entropy']:.3f} |" for t in entropy.get("high", [])[:10]]
    return lines


def write_report(out: Path, cfg, evaluations: dict[str, dict], rl_runs: list[tuple[str, Path]], figure: Path | None,
                 state: dict[str, Any], entropy: dict | None = None) -> Path:
    """Write `out/report.md` and return its path."""
    metrics = _metric_names(evaluations)
    arms = [a.name for a in cfg.arms]
    lines = [f"# Pipeline report: {cfg.task}", "",
             f"Base model `{cfg.base_model}`" + (f", pre-trained {cfg.pretrain_steps} steps on the task" if cfg.pretrain_steps else "")
             + f"; arms {', '.join(f'`{a}`' for a in arms)}; seeds {cfg.seeds}.", ""]

    lines += ["## Accuracy of every checkpoint", "",
              "Percent, mean ± sd over seeds (greedy decoding; " + ", ".join(metrics) + ").", "",
              "| checkpoint | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    lines.append("| base | " + " | ".join(_mean_sd([_cell(evaluations["base"], m)]) for m in metrics) + " |")
    groups = [("stage one", "stage1"), (f"stage one @ step {cfg.rl_from_step} (RL start)", "rl_start"), ("stage two", "stage2")]
    per_stage: dict[str, dict[str, list[float]]] = {}
    for title, prefix in groups:
        for arm in arms:
            runs = [evaluations[f"{prefix}/{arm}/seed{s}"] for s in cfg.seeds if f"{prefix}/{arm}/seed{s}" in evaluations]
            if not runs:
                continue
            values = {m: [_cell(r, m) for r in runs] for m in metrics}
            per_stage.setdefault(prefix, {})[arm] = values[metrics[0]]
            lines.append(f"| {title}: {arm} | " + " | ".join(_mean_sd(values[m]) for m in metrics) + " |")

    rewards: dict[str, list[float]] = {}
    for arm, run in rl_runs:
        value = _final_reward(run)
        if value is not None:
            rewards.setdefault(arm, []).append(value)
    if figure is not None:
        lines += ["", "## Reward curves (stage two)", "", f"![reward curves]({figure.name})", "",
                  f"Raw reward per step (faint) and its time-weighted EMA (bold, smoothing {cfg.smoothing}); "
                  "final reward = mean raw reward over the last 20% of steps:", "",
                  "| arm | final reward (x100) |", "|---|---|"]
        lines += [f"| {arm} | {_mean_sd(v)} |" for arm, v in rewards.items()]

    lines += ["", "## Verdict", ""]
    for prefix, label in (("stage1", f"stage one, {metrics[0]}"), ("stage2", f"after stage two, {metrics[0]}")):
        if prefix in per_stage:
            lines.append(_verdict(label, per_stage[prefix], 100))
    if rewards:
        lines.append(_verdict("stage-two final reward (x100)", rewards, 100))
    if any(a.control for a in cfg.arms):
        lines += ["", "Control arms set beta by token class without any entropy. Where a control comes close to "
                  "`gift`, most of GIFT's gain on this task is structural (which tokens are hard), not something only "
                  "the entropy probe can find; read the comparison with that in mind."]

    lines += _entropy_section(entropy)

    sft_time = [t for s in cfg.seeds if (t := _step_time(out / f"seed{s}" / "sft" / "stage1")) is not None]
    lines += ["", "## Cost", "", "| arm | stage-one step time (median s) | vs sft |", "|---|---|---|"]
    for arm in arms:
        times = [t for s in cfg.seeds if (t := _step_time(out / f"seed{s}" / arm / "stage1")) is not None]
        if times:
            ratio = f"{statistics.mean(times) / statistics.mean(sft_time):.2f}" if sft_time else "-"
            lines.append(f"| {arm} | {statistics.mean(times):.3f} | {ratio} |")
    lines += ["", "| step | wall time (s) |", "|---|---|"]
    lines += [f"| {name} | {info['seconds']:.1f}{' (resumed)' if info.get('resumed') else ''} |"
              for name, info in state.get("steps", {}).items()]
    total = sum(info["seconds"] for info in state.get("steps", {}).values())
    lines += [f"| total | {total:.1f} |", "", "## Config", "", "```yaml",
              (out / "pipeline_config.yaml").read_text().rstrip(), "```", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
