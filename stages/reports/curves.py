"""`gift curves`: RL reward curves (raw + time-weighted EMA) from stage-two `metrics.jsonl` files.

    gift curves runs/gift-rl runs/sft-rl --output report/reward.png
    gift curves runs/gift-s0 runs/gift-s1 runs/sft-s0 runs/sft-s1 \
        --label GIFT --label GIFT --label SFT --label SFT --band std --output report/reward.png
    gift curves runs/*-rl --metric reward/sudoku_reward --smoothing 0.95 --skip_bad --output curves.png

Every run contributes its raw metric (faint, thin line) and its time-weighted EMA (bold). Runs that
share a label are seeds of one arm: the arm is drawn as the mean of the seeds' smoothed curves (bold)
inside a band (min-max over seeds, or mean +- 1 sd with `--band std`) instead of one bold line per
seed. The paper's Figure 3 draws GIFT- vs SFT-cold-started RL reward this way.

Time-weighted EMA (TensorBoard's debiased EMA, with the decay raised to the step gap):

    decay_k = a ** (step_k - step_{k-1})        (first point: gap counted from step 0, at least 1)
    m_k     = decay_k * m_{k-1} + (1 - decay_k) * x_k,        m_{-1} = 0
    w_k     = decay_k * w_{k-1} + (1 - decay_k),              w_{-1} = 0
    ema_k   = m_k / w_k

so the first point is not pulled toward 0 (ema_0 = x_0), a constant series stays constant, `a = 0`
returns the raw series, and a run logged every 2nd step is smoothed like the same run logged every
step (the old value decays by `a` per optimizer step, not per logged point).

Outputs: the PNG; `STEM.csv` beside it with one row per run and logged step (`label, run, step, raw,
smoothed`); `STEM_aggregate.csv` with one row per label and step (`label, n_runs, step, mean, low,
high, band`): the mean of the seeds' smoothed values and the band edges (for a one-run label
mean = low = high = its smoothed value). Seeds logged at different steps are compared on the union
of their steps inside the range all of them cover, each seed's EMA linearly interpolated there.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gift.stored_paths import store_relative
from stages.runs.own_outputs import first_line_is, refuse_foreign_outputs, text_containing

CURVE_HEADER = ["label", "run", "step", "raw", "smoothed"]
AGGREGATE_HEADER = ["label", "n_runs", "step", "mean", "low", "high", "band"]
METRICS_FILE = "metrics.jsonl"  # what stage two (stages/train/rl.py) writes in its run directory
BANDS = ("minmax", "std")
BAND_TEXT = {"minmax": "band: min-max over seeds", "std": "band: mean ± 1 sd over seeds"}


class MetricsFileError(ValueError):
    """A metrics file that cannot be plotted; the message names the file (and line)."""


# --------------------------------------------------------------------------- EMA


def time_weighted_ema(steps: Sequence[float], values: Sequence[float], smoothing: float) -> list[float]:
    """Debiased EMA whose old value decays by `smoothing ** gap` (gap = steps since the previous point).

    Steps must be strictly increasing; the first point's gap is counted from step 0 (at least 1), so
    a run logged every k steps from step k is debiased exactly like one logged every step.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values")
    out: list[float] = []
    moment = weight = 0.0
    previous = None
    for step, value in zip(steps, values):
        if previous is None:
            gap = max(float(step), 1.0)
        else:
            gap = float(step) - previous
            if gap <= 0:
                raise ValueError(f"steps must be strictly increasing (step {step} follows {previous:g})")
        previous = float(step)
        decay = smoothing**gap
        moment = decay * moment + (1.0 - decay) * float(value)
        weight = decay * weight + (1.0 - decay)
        out.append(moment / weight)
    return out


# --------------------------------------------------------------------------- reading


def metrics_path(run_dir: str | Path) -> Path:
    """`RUN_DIR/metrics.jsonl`, or the path itself when it is a file."""
    path = Path(run_dir)
    return path if path.is_file() else path / METRICS_FILE


def read_metrics(run_dir: str | Path, skip_bad: bool = False, warn=None) -> list[dict]:
    """The JSON lines of a run's `metrics.jsonl` (blank lines ignored), in file order.

    A missing or empty file, a line that is not a JSON object, or one without an integer `step` is a
    `MetricsFileError` naming the file (and line); with `skip_bad` bad lines are skipped and reported
    through `warn` (default `warnings.warn`). A missing or empty file is always an error here.
    """
    warn = warn or (lambda msg: warnings.warn(msg, stacklevel=3))
    path = metrics_path(run_dir)
    if not path.is_file():
        raise MetricsFileError(f"{path}: no such metrics file (is {run_dir} a stage-two run directory?)")
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            problem = None
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                problem = f"not valid JSON ({err.msg})"
            else:
                if not isinstance(row, dict):
                    problem = f"expected a JSON object, got {type(row).__name__}"
                elif isinstance(row.get("step"), bool) or not isinstance(row.get("step"), int):
                    problem = f"no integer 'step' (got {row.get('step')!r})"
            if problem:
                message = f"{path}:{line_no}: {problem}"
                if not skip_bad:
                    raise MetricsFileError(message + " (pass --skip_bad to skip bad lines)")
                warn(f"skipped {message}")
                continue
            rows.append(row)
    if not rows:
        raise MetricsFileError(f"{path}: no metrics lines (empty file)")
    return rows


def metric_series(
    rows: list[dict], metric: str, source: str = "metrics", skip_bad: bool = False, warn=None
) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric, sorted by step; a repeated step keeps its last line.

    A line without the metric, or with a non-finite or non-numeric value, is an error naming the
    source and step (skipped with a warning under `skip_bad`).
    """
    warn = warn or (lambda msg: warnings.warn(msg, stacklevel=3))
    by_step: dict[int, float] = {}
    for row in rows:
        value = row.get(metric)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok:
            message = f"{source}: step {row['step']}: {metric!r} is {'missing' if metric not in row else repr(value)}"
            if not skip_bad:
                present = sorted(k for k in row if k not in ("step", "wall_time"))
                raise MetricsFileError(f"{message} (metrics present: {present}; pass --skip_bad to skip)")
            warn(f"skipped {message}")
            continue
        by_step[row["step"]] = float(value)  # a resumed run that did not rewind: the later line wins
    if not by_step:
        raise MetricsFileError(f"{source}: no usable {metric!r} values")
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


# --------------------------------------------------------------------------- aggregation


def aggregate_runs(series: list[tuple[list[int], list[float]]], band: str = "minmax") -> dict[str, list]:
    """Mean and band edges of several runs' smoothed series on a common step grid.

    The grid is the union of the runs' steps inside the range every run covers; each run is linearly
    interpolated there (exact at its own logged steps). Returns steps, mean, low, high.
    """
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; choose one of {', '.join(BANDS)}")
    start = max(s[0][0] for s in series)
    end = min(s[0][-1] for s in series)
    grid = sorted({step for steps, _ in series for step in steps if start <= step <= end})
    if not grid:
        raise MetricsFileError(f"the runs' step ranges do not overlap (latest start {start}, earliest end {end})")
    stacked = np.stack([np.interp(grid, steps, values) for steps, values in series])
    mean = stacked.mean(axis=0)
    if band == "minmax":
        low, high = stacked.min(axis=0), stacked.max(axis=0)
    else:
        sd = stacked.std(axis=0, ddof=1) if len(series) > 1 else np.zeros_like(mean)
        low, high = mean - sd, mean + sd
    return {"steps": grid, "mean": mean.tolist(), "low": low.tolist(), "high": high.tolist()}


def aggregate_csv_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f"{output.stem}_aggregate.csv")


# --------------------------------------------------------------------------- compute: curves and arms


def load_curves(
    runs: list[tuple[str, str | Path]], metric: str, smoothing: float, skip_bad: bool, warn: Callable[[str], None]
) -> list[dict]:
    """Each run's (label, run, steps, raw, smoothed) in `runs` order; every read error before anything is written.

    With `skip_bad` an unreadable run is skipped (reported through `warn`); a call left with no run raises.
    """
    curves: list[dict] = []
    for label, run_dir in runs:
        try:
            rows = read_metrics(run_dir, skip_bad, warn)
            steps, raw = metric_series(rows, metric, str(metrics_path(run_dir)), skip_bad, warn)
        except MetricsFileError as err:
            if not skip_bad:
                raise
            warn(f"skipped run {run_dir}: {err}")
            continue
        curves.append(
            {
                "label": str(label),
                "run": str(run_dir),
                "steps": steps,
                "raw": raw,
                "smoothed": time_weighted_ema(steps, raw, smoothing),
            }
        )
    if not curves:
        raise MetricsFileError("no readable runs left to plot")
    return curves


def aggregate_arms(curves: list[dict], band: str) -> dict[str, dict]:
    """Runs grouped by label (first-seen order): label -> {runs, steps, mean, low, high} of the seeds' EMAs."""
    members: dict[str, list[dict]] = {}
    for curve in curves:
        members.setdefault(curve["label"], []).append(curve)
    return {
        label: {"runs": runs, **aggregate_runs([(c["steps"], c["smoothed"]) for c in runs], band)}
        for label, runs in members.items()
    }


# --------------------------------------------------------------------------- format and write: CSVs


def curve_rows(curves: list[dict]) -> list[list]:
    """Rows of `STEM.csv`: label, run, step, raw, smoothed (floats as `repr`, so they read back exactly)."""
    return [
        [c["label"], c["run"], step, repr(raw), repr(smooth)]
        for c in curves
        for step, raw, smooth in zip(c["steps"], c["raw"], c["smoothed"])
    ]


def aggregate_rows(arms: dict[str, dict], band: str) -> list[list]:
    """Rows of `STEM_aggregate.csv`: label, n_runs, step, mean, low, high, band."""
    return [
        [label, len(arm["runs"]), step, repr(arm["mean"][i]), repr(arm["low"][i]), repr(arm["high"][i]), band]
        for label, arm in arms.items()
        for i, step in enumerate(arm["steps"])
    ]


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------- draw


def draw_curves(
    arms: dict[str, dict], output: Path, metric: str, smoothing: float, band: str, title: str | None
) -> None:
    """The figure: raw runs faint, a one-run arm's EMA bold, a seeded arm's mean EMA bold inside its band."""
    from matplotlib.figure import Figure

    # matplotlib's object API: no pyplot state, no backend switch.
    fig = Figure(figsize=(9, 5.5), dpi=120, layout="constrained")
    ax = fig.add_subplot()
    any_band = False
    for i, (label, arm) in enumerate(arms.items()):
        color = f"C{i % 10}"
        for c in arm["runs"]:
            ax.plot(c["steps"], c["raw"], color=color, alpha=0.25, linewidth=0.8)
        if len(arm["runs"]) == 1:
            only = arm["runs"][0]
            ax.plot(only["steps"], only["smoothed"], color=color, linewidth=2.2, label=label)
        else:
            any_band = True
            ax.plot(
                arm["steps"],
                arm["mean"],
                color=color,
                linewidth=2.2,
                label=f"{label} (mean of {len(arm['runs'])} seeds)",
            )
            ax.fill_between(arm["steps"], arm["low"], arm["high"], color=color, alpha=0.2, linewidth=0)
    # Legend entries for the line kinds (drawn once, in grey).
    ax.plot([], [], color="0.5", alpha=0.4, linewidth=0.8, label="raw (per run)")
    if any_band:
        ax.fill_between([], [], [], color="0.5", alpha=0.2, linewidth=0, label=BAND_TEXT[band])
    ylabel = "reward" if metric == "reward_mean" else metric
    ax.set_xlabel("step", fontsize=12)
    ax.set_ylabel(ylabel, fontsize=12)
    ax.tick_params(labelsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=10, loc="best")
    if title is None:
        title = f"{ylabel}: time-weighted EMA (smoothing {smoothing:g})"
        if any_band:
            title += f"; {BAND_TEXT[band]}"
    ax.set_title(title, fontsize=13)
    fig.savefig(output)


# --------------------------------------------------------------------------- the whole step


def plot_reward_curves(
    runs: list[tuple[str, str | Path]],
    output: str | Path,
    smoothing: float = 0.9,
    metric: str = "reward_mean",
    title: str | None = None,
    band: str = "minmax",
    skip_bad: bool = False,
    warn=None,
    relative_to: str | Path | None = None,
) -> tuple[Path, Path]:
    """Draw the runs' curves into `output` (PNG) and write the CSVs; return (png, csv).

    `runs` is a list of (label, run_dir); runs sharing a label are seeds of one arm. With `skip_bad`,
    bad lines and unreadable runs are skipped (reported through `warn`) instead of raising
    `MetricsFileError`; a call left with no run still raises. The per-label aggregate goes to
    `aggregate_csv_path(output)`. `relative_to`: a folder whose runs the CSV names relative to it (a pipeline's).
    """
    if not runs:
        raise ValueError("no runs to plot")
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; choose one of {', '.join(BANDS)}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
    warn = warn or (lambda msg: warnings.warn(msg, stacklevel=2))
    curves = load_curves(runs, metric, smoothing, skip_bad, warn)
    if relative_to is not None:  # so the CSV still names its runs once the folder moves
        curves = [{**c, "run": store_relative(c["run"], relative_to, relative_to)} for c in curves]
    arms = aggregate_arms(curves, band)
    output = Path(output)
    csv_path = output.with_suffix(".csv")
    refuse_foreign_outputs(
        {
            output: text_containing("Matplotlib"),
            csv_path: first_line_is(",".join(CURVE_HEADER)),
            aggregate_csv_path(output): first_line_is(",".join(AGGREGATE_HEADER)),
        },
        "gift curves",
        "--output",
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(csv_path, CURVE_HEADER, curve_rows(curves))
    _write_csv(aggregate_csv_path(output), AGGREGATE_HEADER, aggregate_rows(arms, band))
    draw_curves(arms, output, metric, smoothing, band, title)
    return output, csv_path


# --------------------------------------------------------------------------- CLI


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gift curves", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="stage-two run directories (or metrics.jsonl files)"
    )
    parser.add_argument(
        "--label",
        action="append",
        default=None,
        help="legend label, once per RUN_DIR in order; runs sharing a label are seeds of one arm "
        "(default: the run directory names)",
    )
    parser.add_argument("--smoothing", type=float, default=0.9, help="EMA smoothing factor a in [0, 1) (0.9)")
    parser.add_argument("--metric", default="reward_mean", help="metrics.jsonl key to plot (reward_mean)")
    parser.add_argument(
        "--band",
        choices=BANDS,
        default="minmax",
        help="band around the seed mean: minmax (default) or std (mean +- 1 sd)",
    )
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument(
        "--skip_bad", action="store_true", help="skip broken lines and unreadable runs (with a warning)"
    )
    parser.add_argument("--output", required=True, help="PNG to write; the CSVs go beside it (same stem)")
    return parser


def default_labels(run_dirs: Sequence[str]) -> list[str]:
    """Run directory names (a metrics.jsonl path is named by its directory)."""
    out = []
    for raw in run_dirs:
        path = Path(raw)
        path = path.parent if path.name == METRICS_FILE or path.is_file() else path
        out.append(path.resolve().name or str(raw))
    return out


def _repeated_runs(run_dirs: list[str]) -> list[str]:
    """Arguments naming a metrics file already named by an earlier one (`A A`, `./A A/`, `A A/metrics.jsonl`)."""
    seen: dict[Path, str] = {}
    repeated = []
    for arg in run_dirs:
        path = Path(arg).resolve()
        metrics = path / METRICS_FILE if path.is_dir() else path
        if metrics in seen:
            repeated.append(f"{arg} (already given as {seen[metrics]})")
        seen.setdefault(metrics, arg)
    return repeated


def main(argv: list[str] | None = None) -> tuple[Path, Path]:
    """`gift curves RUN_DIR... [--label L ...] [--smoothing 0.9] [--metric reward_mean] --output FILE.png`."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.label is not None and len(args.label) != len(args.run_dirs):
        parser.error(
            f"--label given {len(args.label)} time(s) for {len(args.run_dirs)} run dir(s); "
            "give it once per RUN_DIR, in order, or not at all"
        )
    if not 0.0 <= args.smoothing < 1.0:
        parser.error(f"--smoothing must lie in [0, 1), got {args.smoothing}")
    repeated = _repeated_runs(args.run_dirs)
    if repeated:
        parser.error(
            f"{'; '.join(repeated)}: the same run given more than once (each RUN_DIR counts as one seed); "
            "give every run once"
        )
    labels = args.label or default_labels(args.run_dirs)

    def warn(message: str) -> None:
        print(f"gift curves: warning: {message}", file=sys.stderr)

    try:
        png, csv_path = plot_reward_curves(
            list(zip(labels, args.run_dirs)),
            Path(args.output),
            args.smoothing,
            args.metric,
            args.title,
            args.band,
            args.skip_bad,
            warn,
        )
    except MetricsFileError as err:
        raise SystemExit(f"gift curves: error: {err}") from None
    print(f"wrote {png}, {csv_path} and {aggregate_csv_path(png)}")
    return png, csv_path


if __name__ == "__main__":
    main(sys.argv[1:])
