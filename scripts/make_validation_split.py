"""Write the Sudoku validation split the estimator comparison tunes its learning rates on: 256 puzzles that are
neither test puzzles (`gift eval --data synthetic`) nor training puzzles of stage zero, stage one or stage two
(every embedded recipe draws its training rows with synthetic seed 0), so no choice is made on the test set.

    python scripts/make_validation_split.py          # writes configs/embedded/data/sudoku_validation.csv
    python scripts/make_validation_split.py --check  # exit 1 when the committed file differs

Evaluate on it with `eval: {data: configs/embedded/data/sudoku_validation.csv, prompt_style: compact}`.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rewards.tasks.sudoku import generate_sudoku  # noqa: E402
from rewards.tasks.task import SYNTHETIC_TEST_SEED, SYNTHETIC_TEST_SIZE  # noqa: E402

OUT = ROOT / "configs" / "embedded" / "data" / "sudoku_validation.csv"
VALIDATION_SEED = 2_000_003  # neither the test seed (1_000_003) nor a training seed
TRAINING_ROWS = 20_000  # stage one's `synthetic_examples`; stage zero and stage two draw a prefix of these


def validation_csv(n: int = 256) -> str:
    test = [p["puzzle"] for p in generate_sudoku(SYNTHETIC_TEST_SIZE, seed=SYNTHETIC_TEST_SEED)]
    train = [p["puzzle"] for p in generate_sudoku(TRAINING_ROWS, seed=0, exclude=test)]
    rows = generate_sudoku(n, seed=VALIDATION_SEED, exclude=[*test, *train])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Puzzle", "Solution"])
    writer.writerows((r["puzzle"], r["solution"]) for r in rows)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = validation_csv()
    if args.check:
        return 0 if OUT.is_file() and OUT.read_text() == text else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"{OUT}: {text.count(chr(10)) - 1} validation puzzles")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
