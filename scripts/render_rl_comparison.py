"""Render the estimator comparison of docs/rl_comparison.md from a pipeline results file.

    python scripts/render_rl_comparison.py docs/results/rl_algorithms.json            # rewrite the doc's block
    python scripts/render_rl_comparison.py docs/results/rl_algorithms.json --check    # exit 1 if it differs

The block between the two markers in docs/rl_comparison.md is generated; everything else is prose.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "rl_comparison.md"
START, END = "<!-- rl-comparison:start -->", "<!-- rl-comparison:end -->"


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def gains_by_algorithm(results: dict) -> dict[str, list[dict]]:
    """algorithm -> every run's record (arm, seed, rise, gain over its frozen control, ...)."""
    table: dict[str, list[dict]] = {}
    for label, runs in results["rl"].items():
        arm, _, algorithm = label.partition(":")
        table.setdefault(algorithm, []).extend({**run, "arm": arm} for run in runs)
    return table


def _summary_lines(results: dict, metric: str) -> list[str]:
    accuracy, table = results["accuracy"], gains_by_algorithm(results)
    runs_each = len(next(iter(table.values())))
    lines = [f"| estimator | gain over frozen control (x100), mean ± sd of {runs_each} runs "
             f"| runs with gain > 0 | greedy {metric} after − RL start, sft / gift (points) |",
             "|---|---|---|---|"]
    for algorithm, runs in table.items():
        mean, sd = _mean_sd([r["gain"] for r in runs])
        deltas = []
        for arm in ("sft", "gift"):
            after = accuracy["stage2"].get(f"{arm}:{algorithm}", {}).get(metric)
            start = accuracy["rl_start"].get(arm, {}).get(metric)
            deltas.append("-" if not after or not start else f"{(after['mean'] - start['mean']) * 100:+.1f}")
        positive = sum(r["gain"] > 0 for r in runs)
        lines.append(f"| {algorithm} | {mean * 100:+.1f} ± {sd * 100:.1f} | {positive}/{len(runs)} | {' / '.join(deltas)} |")
    return lines


def _paired_lines(results: dict) -> list[str]:
    """Each estimator's gain minus the first estimator's on the same start (same prompts, same control)."""
    table = gains_by_algorithm(results)
    baseline, *others = table
    by_start = {name: {(r["arm"], r["seed"]): r["gain"] for r in runs} for name, runs in table.items()}
    starts = [(r["arm"], r["seed"]) for r in table[baseline]]
    lines = [f"Per start ({', '.join(f'{arm} {seed}' for arm, seed in starts)}), each estimator's gain minus "
             f"{baseline}'s on the same start, prompts and control (x100):", "",
             f"| estimator | minus {baseline}, per start | mean | starts above {baseline} |", "|---|---|---|---|"]
    for name in others:
        diffs = [(by_start[name][start] - by_start[baseline][start]) * 100 for start in starts if start in by_start[name]]
        lines.append(f"| {name} | {', '.join(f'{d:+.1f}' for d in diffs)} | {statistics.mean(diffs):+.1f} | "
                     f"{sum(d > 0 for d in diffs)}/{len(diffs)} |")
    return lines


def _run_lines(results: dict) -> list[str]:
    lines = ["| run | seed | control first 10% | control last 20% | run last 20% | gain |", "|---|---|---|---|---|---|"]
    for label, runs in results["rl"].items():
        for r in runs:
            lines.append(f"| {label} | {r['seed']} | {r['frozen_first10'] * 100:.1f} | {r['frozen_last20'] * 100:.1f} | "
                         f"{r['last20'] * 100:.1f} | {r['gain'] * 100:+.1f} |")
    return lines


def _accuracy_lines(results: dict, metric: str) -> list[str]:
    accuracy = results["accuracy"]
    lines = [f"| checkpoint | {metric} % (mean ± sd over seeds) |", "|---|---|"]
    for stage, title in (("rl_start", f"stage one @ step {results['rl_from_step']} (RL start)"), ("stage2", "stage two")):
        for label, cells in accuracy.get(stage, {}).items():
            cell = cells[metric]
            lines.append(f"| {title}: {label} | {cell['mean'] * 100:.1f} ± {cell['sd'] * 100:.1f} |")
    return lines


def render(results: dict) -> str:
    metric = results["metrics"][0]
    return "\n".join([START, "", *_summary_lines(results, metric), "", *_paired_lines(results), "",
                      "Every run against its frozen control "
                      "(mean training reward x100; the control draws the same prompts with the same rollout noise "
                      "and does not learn):", "", *_run_lines(results), "", "Greedy accuracy on the held-out "
                      "puzzles:", "", *_accuracy_lines(results, metric), "", END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--check", action="store_true", help="exit 1 when the doc's block is not the rendering")
    args = parser.parse_args(argv)
    block = render(json.loads(args.results.read_text()))
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    updated = head + block + tail
    if args.check:
        return 0 if updated == text else 1
    DOC.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
