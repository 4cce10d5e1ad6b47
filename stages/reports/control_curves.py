"""The stage-two figure of a pipeline run: each arm's reward beside its frozen control's, and the gain over it.

A stage-two run takes `num_iterations` optimizer steps on each generation batch and logs that batch's reward
at each of them; its frozen control draws the same batches on the starting model, one step per batch. Both
are read per generation batch k and drawn at the run's step k * num_iterations:

- left panel: the run (solid) and its control (dashed), seeds' EMAs averaged inside a min-max band;
- right panel: run minus control, batch by batch (what learning added on the same prompts and rollout
  noise), seeds' EMAs averaged inside a min-max band, with the zero line.

Without controls the figure is `curves.plot_reward_curves`' one panel. CSV beside the PNG: one row per
label, seed, series (`run`, `control`, `gain`) and step, raw and smoothed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from stages.reports.curves import aggregate_runs, metric_series, plot_reward_curves, read_metrics, time_weighted_ema
from stages.run_record import StageTwoRun

# How to read the figure, in the report and the README.
CONTROL_FIGURE_TEXT = (
    "Left: each stage-two arm's reward per generation batch (solid) beside its frozen control (dashed), which "
    "draws the same prompts and rollout noise from the same start without learning, so the control's drift is "
    "what the order of the prompts alone does. Right: the run minus its control on the same batches, the part "
    "of the reward that learning added (mean over seeds inside a min-max band; above zero means it learned)."
)


def _per_batch(values: list[float], steps_per_batch: int) -> list[float]:
    """Mean of each consecutive block of `steps_per_batch` logged values (one block per generation batch)."""
    return [
        sum(values[i : i + steps_per_batch]) / steps_per_batch
        for i in range(0, len(values) - steps_per_batch + 1, steps_per_batch)
    ]


def batch_series(run: StageTwoRun) -> dict[str, tuple[list[int], list[float]]]:
    """Per generation batch: the run's reward, its control's and their difference, at the run's steps."""
    mu = run.num_iterations // run.control.steps_per_batch
    _, trained = metric_series(read_metrics(run.run_dir), "reward_mean", run.run_dir)
    _, control = metric_series(read_metrics(run.control.run_dir), "reward_mean", run.control.run_dir)
    trained = _per_batch(trained, mu)
    batches = min(len(trained), len(control))
    steps = [mu * (k + 1) for k in range(batches)]
    trained, control = trained[:batches], control[:batches]
    return {
        "run": (steps, trained),
        "control": (steps, control),
        "gain": (steps, [a - b for a, b in zip(trained, control)]),
    }


def _collect(runs: list[StageTwoRun], smoothing: float) -> tuple[list[list], dict[str, dict[str, dict]]]:
    """CSV rows and, per label and series, the seeds' aggregate (steps, mean, low, high)."""
    rows, smoothed = [], {}
    for run in runs:
        for name, (steps, raw) in batch_series(run).items():
            ema = time_weighted_ema(steps, raw, smoothing)
            smoothed.setdefault(run.label, {}).setdefault(name, []).append((steps, ema))
            rows += [[run.label, run.seed, name, s, repr(r), repr(e)] for s, r, e in zip(steps, raw, ema)]
    arms = {
        label: {name: {**aggregate_runs(curves), "n": len(curves)} for name, curves in by_series.items()}
        for label, by_series in smoothed.items()
    }
    return rows, arms


def _draw(arms: dict[str, dict[str, dict]], output: Path, smoothing: float, title: str | None) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5.2), dpi=120, layout="constrained")
    left, right = fig.subplots(1, 2)
    for i, (label, series) in enumerate(arms.items()):
        color, seeds = f"C{i % 10}", series["run"]["n"]
        panels = (
            (left, "run", "-", f"{label}: run"),
            (left, "control", "--", f"{label}: frozen control"),
            (right, "gain", "-", f"{label}: run - control"),
        )
        for ax, name, style, text in panels:
            agg = series[name]
            ax.plot(
                agg["steps"],
                agg["mean"],
                color=color,
                linestyle=style,
                linewidth=2.0,
                label=text + (f" (mean of {seeds} seeds)" if seeds > 1 else ""),
            )
            ax.fill_between(agg["steps"], agg["low"], agg["high"], color=color, alpha=0.15, linewidth=0)
    right.axhline(0.0, color="0.3", linewidth=0.8)
    for ax, ylabel in ((left, "reward"), (right, "gain over the frozen control")):
        ax.set_xlabel("stage-two step", fontsize=11)
        ax.set_ylabel(ylabel, fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=9, loc="best")
    left.set_title("reward per generation batch (EMA, band: min-max over seeds)", fontsize=11)
    right.set_title("learning: run minus its control on the same batches", fontsize=11)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.savefig(output)


def plot_stage_two(
    runs: list[StageTwoRun], output: str | Path, smoothing: float = 0.9, title: str | None = None
) -> Path:
    """Draw the stage-two figure into `output` (PNG) with its CSV beside it; return the PNG's path."""
    output = Path(output)
    if not all(run.control is not None for run in runs):
        labelled = [(run.label, run.run_dir) for run in runs]  # the CSV names them inside the pipeline folder
        return plot_reward_curves(labelled, output, smoothing, title=title, relative_to=output.parent)[0]
    rows, arms = _collect(runs, smoothing)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output.with_suffix(".csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "seed", "series", "step", "raw", "smoothed"])
        writer.writerows(rows)
    _draw(arms, output, smoothing, title)
    return output
