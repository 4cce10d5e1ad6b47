"""The fair estimator comparison in one command: each estimator at its best of a learning-rate grid chosen on
the validation split, then every estimator from the same starts on independent seeds, rendered with paired
intervals and Holm's correction (docs/rl_comparison.md).

    python scripts/fair_comparison.py                       # grid, selection, comparison, doc
    python scripts/fair_comparison.py --select-only         # re-select from a finished grid run

1. `gift pipeline --config configs/embedded/pipeline_algorithms_grid.yaml`: one seed, fewer stage-two steps,
   every estimator at each learning rate of its grid (entries labelled `NAME@LR`), evaluated greedily on
   configs/embedded/data/sudoku_validation.csv (not the test puzzles).
2. Per estimator, the learning rate whose runs reach the highest mean validation cell accuracy after stage two
   (mean over the arms; ties to the smaller rate) is written into a copy of
   configs/embedded/pipeline_algorithms.yaml (`<grid output_dir>/pipeline_algorithms_selected.yaml`), with the
   grid's numbers beside it (`selection.json`).
3. `gift pipeline` on that copy, then `scripts/render_rl_comparison.py` on its results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
GRID = ROOT / "configs" / "embedded" / "pipeline_algorithms_grid.yaml"
COMPARISON = ROOT / "configs" / "embedded" / "pipeline_algorithms.yaml"


def select_learning_rates(results: dict[str, Any], grid: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per estimator name: the chosen learning rate and every grid point's mean validation accuracy after RL.

    `grid` is the grid config's `rl_algorithms` (entries with `name`, `label`, `learning_rate`); `results` its
    pipeline results, whose stage-two accuracy is on the validation split.
    """
    metric, stage2 = results["metrics"][0], results["accuracy"].get("stage2", {})
    scores: dict[str, list[tuple[float, float, str]]] = {}
    for entry in grid:
        runs = [
            v
            for label, by_metric in stage2.items()
            if label.split(":", 1)[1] == entry["label"]
            for v in by_metric[metric]["values"]
        ]
        if not runs:
            raise ValueError(f"grid results: no stage-two evaluation of {entry['label']!r}")
        scores.setdefault(entry["name"], []).append(
            (statistics.mean(runs), float(entry["learning_rate"]), entry["label"])
        )
    return {
        name: {
            "learning_rate": max(points, key=lambda p: (p[0], -p[1]))[1],
            "validation": {label: mean for mean, _, label in points},
        }
        for name, points in scores.items()
    }


def apply_selection(config: dict[str, Any], selection: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """`config` (the comparison's YAML as a dict) with each estimator's chosen learning rate set."""
    entries = []
    for entry in config["rl_algorithms"]:
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        if entry["name"] not in selection:
            raise ValueError(f"{COMPARISON.name}: estimator {entry['name']!r} has no learning rate in the grid")
        entries.append({**entry, "learning_rate": selection[entry["name"]]["learning_rate"]})
    return {**config, "rl_algorithms": entries}


def _pipeline(config: Path) -> None:
    # named relative to the checkout where it lies inside it: results.json records the path it was given
    config = config.resolve()
    name = config.relative_to(ROOT) if config.is_relative_to(ROOT) else config
    subprocess.run([sys.executable, "-m", "stages.cli", "pipeline", "--config", str(name)], check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", default=str(GRID))
    parser.add_argument("--comparison", default=str(COMPARISON))
    parser.add_argument("--select-only", action="store_true", help="select from a finished grid run; run nothing")
    args = parser.parse_args(argv)
    grid = yaml.safe_load(Path(args.grid).read_text())
    out = ROOT / grid["output_dir"]
    if not args.select_only:
        _pipeline(Path(args.grid))
    selection = select_learning_rates(json.loads((out / "results.json").read_text()), grid["rl_algorithms"])
    (out / "selection.json").write_text(json.dumps(selection, indent=2) + "\n")
    chosen = apply_selection(yaml.safe_load(Path(args.comparison).read_text()), selection)
    selected = out / "pipeline_algorithms_selected.yaml"
    selected.write_text(
        f"# {Path(args.comparison).name} with the learning rates chosen on the validation split "
        f"({out / 'selection.json'})\n" + yaml.safe_dump(chosen, sort_keys=False)
    )
    print(f"{selected}: " + ", ".join(f"{k} {v['learning_rate']:g}" for k, v in selection.items()))
    if args.select_only:
        return 0
    _pipeline(selected)
    subprocess.run(
        [
            sys.executable,
            "scripts/render_rl_comparison.py",
            str(ROOT / chosen["output_dir"] / "results.json"),
            "--grid",
            str(out / "results.json"),
        ],
        check=True,
        cwd=ROOT,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
