"""The verdicts of a pipeline run, computed from the per-seed numbers of its `results.json` and shared by the
report (report.md) and the README block (readme_results.py).

Every verdict is read from a 95% interval over seeds (`stages.reports.stats`), never from a same-sign rule:
- `gaps`: each arm minus the reference arm (the first arm of the pipeline), seed by seed on the same seeds, at
  stage one, at the RL start, after stage two (per algorithm) and on the final reward; Holm's correction over
  the arms compared with the reference at each row;
- `learning`: per stage-two arm, its gain over its frozen control (mean over seeds with its interval) and the
  held-out greedy accuracy change from its RL start (stage two minus the RL-start checkpoint, seed by seed).

The functions take only the results dict, so a results file written before the intervals existed (schema 1)
renders with the same tables: `upgrade` recomputes them from the per-seed values it already holds.
"""

from __future__ import annotations

import statistics
from typing import Any

from stages.reports import stats

SCHEMA = 2


def stage_titles(rl_from_step: int | None) -> dict[str, str]:
    """How the report and the README name each stage's checkpoints."""
    return {"stage1": "stage one", "rl_start": f"stage one @ step {rl_from_step} (RL start)", "stage2": "stage two"}


def mean_sd(values: list[float], unit: float = 100) -> str:
    """`mean ± sd` of `values` times `unit` (the value alone for one, `-` for none)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{unit * values[0]:.1f}"
    return f"{unit * statistics.mean(values):.1f} ± {unit * statistics.stdev(values):.1f}"


def _by_seed(by_metric: dict[str, Any], metric: str) -> dict[int, float]:
    entry = by_metric[metric]
    return dict(zip(entry["seeds"], entry["values"]))


def rl_arm(results: dict[str, Any], label: str) -> str:
    """The stage-one arm a stage-two label started from (`arm` or `arm:algorithm`)."""
    return results.get("rl_arms", {}).get(label, label.split(":", 1)[0])


def _reference_label(results: dict[str, Any], label: str, reference: str) -> str:
    arm = rl_arm(results, label)
    return reference + label[len(arm) :]


def gaps(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every arm minus the reference arm, paired by seed, with interval, p-values and Holm over each row's arms."""
    arms, metric, acc = results["arms"], results["metrics"][0], results["accuracy"]
    reference = results.get("reference_arm", arms[0])
    out: dict[str, dict[str, Any]] = {}
    for prefix in ("stage1", "rl_start"):
        table = acc.get(prefix, {})
        row = {
            f"{prefix} {metric} ({arm} - {reference})": stats.paired(
                _by_seed(table[arm], metric), _by_seed(table[reference], metric)
            )
            for arm in arms
            if arm != reference and arm in table and reference in table
        }
        out.update(_family(row, prefix))
    stage2, rl = acc.get("stage2", {}), results.get("rl", {})
    for name, data, pick in (
        ("stage2 " + metric, stage2, lambda lab: _by_seed(stage2[lab], metric)),
        ("final reward", rl, lambda lab: {r["seed"]: r["last20"] for r in rl[lab]}),
    ):
        row = {}
        for label in data:
            other = _reference_label(results, label, reference)
            if rl_arm(results, label) != reference and other in data:
                row[f"{name} ({label} - {other})"] = stats.paired(pick(label), pick(other))
        out.update(_family(row, name))
    return out


def _family(row: dict[str, dict | None], family: str) -> dict[str, dict[str, Any]]:
    """The comparisons of one row with Holm-adjusted p-values (t test) and the row's family name."""
    kept = {name: {**g, "family": family} for name, g in row.items() if g is not None}
    stats.holm_family(kept)
    return kept


def learning(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage-two label: gain over its frozen control and held-out accuracy change from its RL start."""
    metric, acc, out = results["metrics"][0], results["accuracy"], {}
    for label, runs in results.get("rl", {}).items():
        entry: dict[str, Any] = {}
        gains = [r["gain"] for r in runs if "gain" in r]
        if gains:
            entry["gain"] = stats.interval(gains)
        arm = rl_arm(results, label)
        if label in acc.get("stage2", {}) and arm in acc.get("rl_start", {}):
            entry["heldout_change"] = stats.paired(
                _by_seed(acc["stage2"][label], metric), _by_seed(acc["rl_start"][arm], metric)
            )
        out[label] = entry
    return out


def upgrade(results: dict[str, Any]) -> dict[str, Any]:
    """`results` with the interval tables (a schema-1 file held the per-seed values, not the intervals)."""
    if results.get("schema", 1) >= SCHEMA:
        return results
    return {
        **results,
        "schema": SCHEMA,
        "seed_count": len(results["seeds"]),
        "gaps": gaps(results),
        "learning": learning(results),
    }


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def gap_lines(table: dict[str, dict[str, Any]], unit: float = 100) -> list[str]:
    """The comparison table: per-seed differences, mean with 95% interval, p-values and the reading."""
    lines = [
        "| comparison | seeds | per seed | mean [95% interval] | t p | sign-flip p | Holm p | reading |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, g in table.items():
        first, second = name.rsplit("(", 1)[1].rstrip(")").split(" - ")
        per_seed = ", ".join(f"{d * unit:+.1f}" for d in g["diffs"])
        reading = stats.verdict(g, f"`{first}`", f"`{second}`", unit).split(":", 1)[0]
        lines.append(
            f"| {name} | {g['n']} | {per_seed} | {stats.format_interval(g, unit)} | {_p(g['t_p'])} | "
            f"{_p(g['sign_flip_p'])} | {_p(g.get('holm_p'))} | {reading} |"
        )
    return lines


_MOVES = {1: "rises", -1: "falls", 0: "no change shown", None: "one seed, no interval"}


def learning_lines(table: dict[str, dict[str, Any]], metric: str, unit: float = 100) -> list[str]:
    """Per stage-two arm: gain over the frozen control (x100) and held-out accuracy change (points)."""
    lines = [
        f"| stage-two arm | gain over frozen control (x100) | reading | held-out {metric} change from the RL "
        "start (points) | reading |",
        "|---|---|---|---|---|",
    ]
    for label, entry in table.items():
        cells = []
        for key in ("gain", "heldout_change"):
            g = entry.get(key)
            cells += ["-", "-"] if g is None else [stats.format_interval(g, unit), _MOVES[stats.direction(g)]]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return lines


def plain_verdict(table: dict[str, dict[str, Any]], unit: float = 100) -> str:
    """One reading per comparison, from its interval only."""
    parts = []
    for name, g in table.items():
        if g.get("lo") is None:
            continue  # one seed: the table shows it; nothing to read
        first, second = name.rsplit("(", 1)[1].rstrip(")").split(" - ")
        parts.append(f"{name.rsplit(' (', 1)[0]}, {stats.verdict(g, first, second, unit)}")
    if not parts:
        return "In words: no comparison has two seeds or more, so none has an interval."
    return "In words (95% intervals over seeds; percentage points, x100 for rewards): " + "; ".join(parts) + "."
