"""Split the seed-to-seed spread of a paired Sudoku difference (treatment - reference, same seed, same puzzles)
into evaluation noise (which puzzles were drawn) and training noise (what the seed did), and plan seeds and
evaluation size from them.

    python scripts/noise_decomposition.py \
        --treatment 'runs/noise/seed*/gift/stage1/eval' --reference 'runs/noise/seed*/sft/stage1/eval'

Each glob matches one `gift eval` folder per seed (the `seedN` folder names the seed). Per puzzle the script
counts the empty cells filled correctly (`rewards.tasks.sudoku.cell_counts`, as `gift score` does), so cells stay
correlated within their puzzle. Evaluation noise of one seed's difference: the variance of the pooled cell
accuracy difference over bootstrap resamples of the puzzles (the same resample for both arms). Training noise:
the variance of the differences over seeds minus the mean evaluation variance. With S seeds and P puzzles the
95% half-width of the mean difference is t(0.975, S-1) * sqrt((train + eval * n / P) / S).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import re
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewards.tasks.sudoku import cell_counts, grid_string  # noqa: E402
from stages.reports.stats import interval, t_quantile  # noqa: E402


def puzzle_counts(eval_dir: Path) -> dict[int, tuple[int, int]]:
    """Example index -> (correct empty cells, empty cells) of one Sudoku evaluation folder."""
    files = sorted(eval_dir.glob("sudoku_*.jsonl"))
    if len(files) != 1:
        raise ValueError(f"{eval_dir}: expected one sudoku_*.jsonl, found {len(files)}")
    counts = {}
    for line_no, line in enumerate(files[0].read_text().splitlines(), 1):
        row = json.loads(line)
        try:
            counts[row["index"]] = cell_counts(
                row["completion"], grid_string(row["puzzle"], "puzzle"), grid_string(row["solution"], "solution")
            )
        except KeyError as err:
            raise ValueError(f"{files[0]}:{line_no}: missing field {err}") from None
    return counts


def by_seed(pattern: str) -> dict[int, dict[int, tuple[int, int]]]:
    folders = {}
    for path in sorted(glob.glob(pattern)):
        match = re.search(r"seed(\d+)", path)
        if match is None:
            raise ValueError(f"{path}: no `seedN` folder in the path")
        folders[int(match.group(1))] = puzzle_counts(Path(path))
    if not folders:
        raise ValueError(f"{pattern}: matches no evaluation folder")
    return folders


def bootstrap_variance(
    a: dict[int, tuple[int, int]], b: dict[int, tuple[int, int]], draws: int, rng: np.random.Generator
) -> tuple[float, float]:
    """The pooled cell-accuracy difference a - b and its variance over puzzle resamples (paired)."""
    keys = sorted(set(a) & set(b))
    ca, ea = np.array([a[k] for k in keys], dtype=float).T
    cb, eb = np.array([b[k] for k in keys], dtype=float).T
    picks = rng.integers(0, len(keys), size=(draws, len(keys)))
    diffs = ca[picks].sum(1) / ea[picks].sum(1) - cb[picks].sum(1) / eb[picks].sum(1)
    return float(ca.sum() / ea.sum() - cb.sum() / eb.sum()), float(diffs.var(ddof=1))


def plan(train_var: float, eval_var: float, puzzles: int, target: float) -> list[dict]:
    """Half-width (points) for seed counts 3..16 and evaluation sizes 1x, 2x, 4x, 8x today's."""
    rows = []
    for factor in (1, 2, 4, 8):
        for seeds in range(3, 17):
            half = t_quantile(0.975, seeds - 1) * math.sqrt((train_var + eval_var / factor) / seeds)
            rows.append({"puzzles": puzzles * factor, "seeds": seeds, "half_width": 100 * half})
            if 100 * half <= target:
                break
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--treatment", required=True, help="glob of the treatment arm's eval folders, one per seed")
    parser.add_argument("--reference", required=True, help="glob of the reference arm's eval folders")
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--target", type=float, default=2.0, help="wanted 95%% half-width in points")
    args = parser.parse_args(argv)
    treatment, reference = by_seed(args.treatment), by_seed(args.reference)
    rng = np.random.default_rng(0)
    seeds = sorted(set(treatment) & set(reference))
    if len(seeds) < 2:
        raise SystemExit("noise_decomposition: need two seeds or more in both arms")
    per_seed = {s: bootstrap_variance(treatment[s], reference[s], args.draws, rng) for s in seeds}
    diffs = [per_seed[s][0] for s in seeds]
    total_var = statistics.variance(diffs)
    eval_var = statistics.mean(v for _, v in per_seed.values())
    train_var = max(0.0, total_var - eval_var)
    puzzles = len(treatment[seeds[0]])
    summary = {
        "seeds": seeds,
        "puzzles": puzzles,
        "diffs_points": [round(100 * d, 2) for d in diffs],
        "mean_diff": interval([100 * d for d in diffs]),
        "sd_total_points": 100 * math.sqrt(total_var),
        "sd_eval_points": 100 * math.sqrt(eval_var),
        "sd_train_points": 100 * math.sqrt(train_var),
        "eval_share_of_variance": eval_var / total_var,
        "plan": plan(train_var, eval_var, puzzles, args.target),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
