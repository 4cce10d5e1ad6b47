"""Render the estimator comparison of docs/rl_comparison.md from a pipeline results file.

    python scripts/render_rl_comparison.py docs/results/rl_algorithms.json \
        --grid docs/results/rl_algorithms_grid.json          # rewrite the doc's block (with the rate grid)
    python scripts/render_rl_comparison.py docs/results/rl_algorithms_three_seeds.json \
        --block rl-comparison-three-seeds                     # the earlier, d1-tuned run's block
    ... --check                                               # exit 1 if the block differs

Each block between its two markers in docs/rl_comparison.md is generated; everything else is prose.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stages.reports import stats  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "rl_comparison.md"
BLOCK = "rl-comparison"


def markers(block: str = BLOCK) -> tuple[str, str]:
    """The first and last line of a generated block of the doc."""
    return f"<!-- {block}:start -->", f"<!-- {block}:end -->"


def gains_by_algorithm(results: dict) -> dict[str, list[dict]]:
    """algorithm -> every run's record (arm, seed, rise, gain over its frozen control, ...)."""
    table: dict[str, list[dict]] = {}
    for label, runs in results["rl"].items():
        arm, _, algorithm = label.partition(":")
        table.setdefault(algorithm, []).extend({**run, "arm": arm} for run in runs)
    return table


def _per_seed(values: dict[tuple[str, int], float]) -> dict[int, float]:
    """Per seed, the mean over the arms started from it: the seed is the unit (the two arms of one seed share
    its data order and its stage-zero base, so they are not independent draws)."""
    seeds: dict[int, list[float]] = {}
    for (_, seed), value in values.items():
        seeds.setdefault(seed, []).append(value)
    return {seed: statistics.mean(v) for seed, v in sorted(seeds.items())}


def _accuracy_by_start(results: dict, stage: str, label: str, metric: str) -> dict[int, float]:
    cell = results["accuracy"].get(stage, {}).get(label, {}).get(metric)
    return dict(zip(cell["seeds"], cell["values"])) if cell else {}


def measures(results: dict) -> dict[str, dict[str, dict[tuple[str, int], float]]]:
    """Per estimator, per start (arm, seed): `gain` over the frozen control and held-out accuracy `change`
    (greedy, stage two minus the RL-start checkpoint)."""
    metric, table, out = results["metrics"][0], gains_by_algorithm(results), {}
    for algorithm, runs in table.items():
        gain = {(r["arm"], r["seed"]): r["gain"] for r in runs if "gain" in r}
        change = {}
        for arm in sorted({r["arm"] for r in runs}):
            after = _accuracy_by_start(results, "stage2", f"{arm}:{algorithm}", metric)
            start = _accuracy_by_start(results, "rl_start", arm, metric)
            change.update({(arm, s): after[s] - start[s] for s in after if s in start})
        out[algorithm] = {"gain": gain, "change": change}
    return out


def comparisons(results: dict) -> dict[str, dict[str, dict]]:
    """Per measure: each estimator's interval over seeds, and each estimator minus the first (the reference)
    seed by seed with t and sign-flip p-values and Holm's correction over the estimators compared with it."""
    table = measures(results)
    reference, *others = table
    out = {}
    for measure in ("change", "gain"):
        alone = {name: stats.interval(list(_per_seed(m[measure]).values())) for name, m in table.items() if m[measure]}
        versus = {
            name: stats.paired(_per_seed(table[name][measure]), _per_seed(table[reference][measure])) for name in others
        }
        versus = {name: g for name, g in versus.items() if g is not None}
        stats.holm_family(versus)
        out[measure] = {"alone": alone, "versus": versus, "reference": reference}
    return out


_TITLES = {
    "change": "held-out greedy {metric} after stage two minus at the RL start (points; the primary measure)",
    "gain": "in-sample gain over the frozen control (last-20% reward minus the control's, x100)",
}


def _summary_lines(results: dict, metric: str) -> list[str]:
    table = comparisons(results)
    seeds = len(results["seeds"])
    lines = [
        f"Unit: the seed ({seeds} seeds; per seed the mean over the arms started from it). Intervals are 95% t "
        "intervals over seeds; p-values are two-sided (t test, and the exact sign-flip test over the seeds); "
        f"Holm's correction covers the {len(table['change']['versus'])} estimators compared with "
        f"{table['change']['reference']} on each measure. An estimator differs only where the whole interval "
        "lies on one side of zero.",
        "",
    ]
    for measure, parts in table.items():
        title = _TITLES[measure].format(metric=metric)
        lines += [
            f"**{title[0].upper() + title[1:]}**",
            "",
            f"| estimator | mean [95% interval] | reading | minus {parts['reference']} [95% interval] | t p "
            "| sign-flip p | Holm p | reading |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, alone in parts["alone"].items():
            row = f"| {name} | {stats.format_interval(alone)} | {_MOVES[stats.direction(alone)]} |"
            g = parts["versus"].get(name)
            if g is None:
                row += " (reference) | | | | |"
            else:
                row += (
                    f" {stats.format_interval(g)} | {g['t_p']:.3f} | {g['sign_flip_p']:.3f} | {g['holm_p']:.3f} | "
                    f"{stats.verdict(g, name, parts['reference']).split(':', 1)[0]} |"
                )
            lines.append(row)
        lines.append("")
    return lines[:-1]


_MOVES = {1: "rises", -1: "falls", 0: "no change shown", None: "one seed"}


def _grid_lines(grid: dict) -> list[str]:
    """The learning-rate grid (entries labelled `NAME@RATE`, validation puzzles) and the rate chosen per estimator
    by `scripts.fair_comparison.select_learning_rates`, the rule the comparison ran with."""
    from scripts.fair_comparison import select_learning_rates

    metric = grid["metrics"][0]
    labels = list(dict.fromkeys(label.split(":", 1)[1] for label in grid["rl_labels"]))
    entries = [
        {"name": label.split("@")[0], "label": label, "learning_rate": float(label.split("@")[1])} for label in labels
    ]
    chosen = select_learning_rates(grid, entries)
    rates = list(dict.fromkeys(label.split("@")[1] for label in labels))
    start = statistics.mean(v for arm in grid["accuracy"]["rl_start"].values() for v in arm[metric]["values"])
    seeds = ", ".join(map(str, grid["seeds"]))
    lines = [
        f"Validation {metric} % after {grid['stage_two_steps']} stage-two steps (seed {seeds}; "
        f"mean of the {len(grid['arms'])} starts; at the RL start {start * 100:.1f}); the chosen rate in bold:",
        "",
        f"| estimator | {' | '.join(rates)} | chosen |",
        "|---|" + "---|" * (len(rates) + 1),
    ]
    for name, pick in chosen.items():
        cells = []
        for rate in rates:
            value = pick["validation"].get(f"{name}@{rate}")
            text = "" if value is None else f"{value * 100:.1f}"
            cells.append(f"**{text}**" if value is not None and float(rate) == pick["learning_rate"] else text)
        rate = next(rate for rate in rates if float(rate) == pick["learning_rate"])
        lines.append(f"| {name} | {' | '.join(cells)} | {rate} |")
    return lines


def _paired_lines(results: dict) -> list[str]:
    """Each estimator's gain minus the first estimator's, start by start (for reading; not independent draws)."""
    table = gains_by_algorithm(results)
    baseline, *others = table
    by_start = {name: {(r["arm"], r["seed"]): r["gain"] for r in runs} for name, runs in table.items()}
    starts = [(r["arm"], r["seed"]) for r in table[baseline]]
    lines = [
        f"Per start ({', '.join(f'{arm} {seed}' for arm, seed in starts)}), each estimator's gain minus "
        f"{baseline}'s on the same start, prompts and control (x100; the two starts of one seed share its "
        "data order and base, so the seed, not the start, is the unit above):",
        "",
        f"| estimator | minus {baseline}, per start | mean |",
        "|---|---|---|",
    ]
    for name in others:
        diffs = [
            (by_start[name][start] - by_start[baseline][start]) * 100 for start in starts if start in by_start[name]
        ]
        lines.append(f"| {name} | {', '.join(f'{d:+.1f}' for d in diffs)} | {statistics.mean(diffs):+.1f} |")
    return lines


def _run_lines(results: dict) -> list[str]:
    lines = ["| run | seed | control first 10% | control last 20% | run last 20% | gain |", "|---|---|---|---|---|---|"]
    for label, runs in results["rl"].items():
        for r in runs:
            lines.append(
                f"| {label} | {r['seed']} | {r['frozen_first10'] * 100:.1f} | {r['frozen_last20'] * 100:.1f} | "
                f"{r['last20'] * 100:.1f} | {r['gain'] * 100:+.1f} |"
            )
    return lines


def _accuracy_lines(results: dict, metric: str) -> list[str]:
    accuracy = results["accuracy"]
    lines = [f"| checkpoint | {metric} % (mean ± sd over seeds) |", "|---|---|"]
    for stage, title in (
        ("rl_start", f"stage one @ step {results['rl_from_step']} (RL start)"),
        ("stage2", "stage two"),
    ):
        for label, cells in accuracy.get(stage, {}).items():
            cell = cells[metric]
            lines.append(f"| {title}: {label} | {cell['mean'] * 100:.1f} ± {cell['sd'] * 100:.1f} |")
    return lines


def render(results: dict, grid: dict | None = None, block: str = BLOCK) -> str:
    """The doc's block: `results` of the comparison; `grid` (optional) the learning-rate grid's results."""
    metric = results["metrics"][0]
    start, end = markers(block)
    return "\n".join(
        [
            start,
            "",
            *([*_grid_lines(grid), ""] if grid else []),
            *_summary_lines(results, metric),
            "",
            *_paired_lines(results),
            "",
            "Every run against its frozen control "
            "(mean training reward x100; the control draws the same prompts with the same rollout noise "
            "and does not learn):",
            "",
            *_run_lines(results),
            "",
            "Greedy accuracy on the held-out puzzles:",
            "",
            *_accuracy_lines(results, metric),
            "",
            end,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--grid", type=Path, help="the learning-rate grid's results file (its table and choice)")
    parser.add_argument("--block", default=BLOCK, help=f"the block's marker name (default {BLOCK})")
    parser.add_argument("--check", action="store_true", help="exit 1 when the doc's block is not the rendering")
    args = parser.parse_args(argv)
    grid = json.loads(args.grid.read_text()) if args.grid else None
    block = render(json.loads(args.results.read_text()), grid, args.block)
    text = DOC.read_text()
    start, end = markers(args.block)
    if start not in text or end not in text:
        raise SystemExit(f"{DOC}: no block {args.block!r} (lines {start} ... {end})")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    updated = head + block + tail
    if args.check:
        return 0 if updated == text else 1
    DOC.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
