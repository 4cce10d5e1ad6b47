"""`gift score`: score generation JSONL files into an accuracy table (task x gen_length, plus the mean).

    gift score runs/gift/eval                                   # every *.jsonl in the directory
    gift score runs/a/eval/sudoku_256.jsonl other/countdown_128.jsonl --output runs/report/scores
    gift score runs/gift/eval --skip_bad                        # score the good lines, report the bad
    gift score d1/eval/eval_baselines --format d1               # re-score d1's released generation files

A generation file holds one JSON object per line with `task`, `completion` and the task's ground-truth
fields (sudoku: `puzzle`, `solution`; countdown: `numbers`, `target`; gsm8k and math: `answer`);
`gen_length` comes from the line or, failing that, from a file name `TASK_GENLEN.jsonl`. Files written
by other tools score the same as long as they follow this schema. Lines of the same (task, gen_length)
from several files are pooled. The metrics are the rewards package's (`rewards.get_task(task).metric`):
accuracy for every task, and for Sudoku the cell accuracy pooled over puzzles (d1's number).

`--format d1` reads d1's evaluation files (`{dataset}_{model}_{gen_length}_{steps}_{rank}_generations.json`,
written by d1's eval/eval.py; a directory is expanded to its `*_generations.json`): the task comes from the
file name (`math500` is `math`), gen_length from the file's `gen_length` field, and each item's
`generations` / `ground_truth` / `question` become our completion and ground-truth columns (Sudoku's
puzzle is read from the question). A completion is cut at its first `<|eot_id|>` or `<|endoftext|>`:
d1 decodes with special tokens kept, `gift eval` cuts at EOS, and what follows is padding.

Output: the markdown table on stdout, and `PREFIX.json` / `PREFIX.md` (default `scores.json` and
`scores.md` in the first input's directory).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from gift.files import atomic_write_text
from rewards import TASKS, get_task
from stages.runs.own_outputs import json_with_keys, refuse_foreign_outputs, text_containing

FILE_NAME = re.compile(r"(?P<task>[A-Za-z0-9]+)_(?P<gen_length>\d+)\.jsonl")
FORMATS = ("jsonl", "d1")
D1_FILE_NAME = re.compile(
    r"(?P<task>[A-Za-z0-9]+)_.+_(?P<gen_length>\d+)_(?P<steps>\d+)_(?P<rank>\d+)_generations\.json"
)
# LLaDA's end-of-turn and end-of-text markers, left in by d1's decode (skip_special_tokens=False).
D1_STOP_MARKERS = ("<|eot_id|>", "<|endoftext|>")


class GenerationFileError(ValueError):
    """A generation file or line that cannot be scored; the message names the file and line."""


# --------------------------------------------------------------------------- reading


def generation_files(paths: Iterable[str | Path], file_format: str = "jsonl") -> list[Path]:
    """Files to score: files as given, directories expanded to their `*.jsonl` (or, `d1`,
    `*_generations.json`; sorted), no repeats."""
    pattern = "*_generations.json" if file_format == "d1" else "*.jsonl"
    out: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob(pattern) if not p.name.startswith("."))
            if not found:
                kind = "d1 *_generations.json" if file_format == "d1" else ".jsonl"
                raise GenerationFileError(f"{path}: no {kind} generation files in this directory")
        elif path.is_file():
            found = [path]
        else:
            raise GenerationFileError(f"{path}: no such file or directory")
        for p in found:
            out.setdefault(p.resolve(), p)
    if not out:
        raise GenerationFileError("no generation files given")
    return list(out.values())


def _gen_length(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value) or None
    return None


def d1_tasks() -> dict[str, str]:
    """d1's file-name task (`math500`) -> our task name, for every registered task that has one."""
    return {alias: name for name, task in TASKS.items() for alias in task.d1_names}


def parse_line(line: str, name_gen_length: int | None) -> dict[str, Any]:
    """One line as `{"task", "gen_length", "completion", <ground truth>}`; ValueError saying what is wrong."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg})") from None
    return parse_row(row, name_gen_length)


def parse_row(row: Any, name_gen_length: int | None) -> dict[str, Any]:
    """One decoded record (a JSONL line, or a converted d1 item) as a scorable row; ValueError if not."""
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    task = row.get("task")
    if task is None:
        raise ValueError(f"missing field 'task' (fields present: {sorted(row)})")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(sorted(TASKS))}")
    columns = get_task(task).columns
    missing = [f for f in ("completion", *columns) if row.get(f) is None]
    if missing:
        raise ValueError(f"{task}: missing field(s) {missing} (fields present: {sorted(row)})")
    if not isinstance(row["completion"], str):
        raise ValueError(f"'completion' must be a string, got {type(row['completion']).__name__}")
    if "gen_length" in row and row["gen_length"] is not None:
        gen_length = _gen_length(row["gen_length"])
        if gen_length is None:
            raise ValueError(f"'gen_length' must be a positive integer, got {row['gen_length']!r}")
    elif name_gen_length is not None:
        gen_length = name_gen_length
    else:
        raise ValueError("no 'gen_length' field and the file name is not TASK_GENLEN.jsonl")
    get_task(task).check_ground_truth(row)
    return {"task": task, "gen_length": gen_length, "completion": row["completion"], **{c: row[c] for c in columns}}


def read_generations(path: str | Path, skip_bad: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The scorable rows of one file and the problems of the skipped lines (`FILE:LINE: reason`).

    Without `skip_bad` the first bad line raises `GenerationFileError` naming the file and line.
    """
    path = Path(path)
    match = FILE_NAME.fullmatch(path.name)
    name_gen_length = int(match["gen_length"]) if match else None
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = ((f"{path}:{line_no}", line) for line_no, line in enumerate(handle, start=1) if line.strip())
        return _parse_each(lines, lambda line: parse_line(line, name_gen_length), skip_bad, "lines")


def _parse_each(
    items: Iterable[tuple[str, Any]], parse: Callable[[Any], dict[str, Any]], skip_bad: bool, unit: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """`parse` every `(where, item)`; a bad item raises `GenerationFileError` naming `where`, or with
    `skip_bad` is left out and listed as `where: reason`."""
    rows, problems = [], []
    for where, item in items:
        try:
            rows.append(parse(item))
        except (ValueError, TypeError, KeyError) as err:
            # A bare KeyError is a task's parse reading a field the line lacks (MissingColumnError is a ValueError).
            reason = f"missing field {err}" if type(err) is KeyError else str(err)
            problem = f"{where}: {reason}"
            if not skip_bad:
                raise GenerationFileError(f"{problem} (pass --skip_bad to score the other {unit})") from None
            problems.append(problem)
    return rows, problems


def d1_item_row(item: Any, task: str, gen_length: int) -> dict[str, Any]:
    """One item of a d1 generation file as our record; ValueError naming the field that is wrong."""
    if not isinstance(item, dict):
        raise ValueError(f"expected a JSON object, got {type(item).__name__}")
    missing = [f for f in ("generations", "ground_truth") if f not in item]
    if missing:
        raise ValueError(f"missing field(s) {missing} (fields present: {sorted(item)})")
    if item["ground_truth"] is None:  # d1's GSM8K reference parser returns None for negative answers
        raise ValueError("'ground_truth' is null: no reference to score against")
    completion = item["generations"]
    if not isinstance(completion, str):
        raise ValueError(f"'generations' must be a string, got {type(completion).__name__}")
    for marker in D1_STOP_MARKERS:
        completion = completion.split(marker, 1)[0]
    columns = get_task(task).from_d1(item["ground_truth"], str(item.get("question", "")))
    return parse_row({"task": task, "gen_length": gen_length, "completion": completion, **columns}, gen_length)


def read_d1_generations(path: str | Path, skip_bad: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The scorable rows of one d1 evaluation file (eval/eval.py's JSON) and the skipped items' problems."""
    path = Path(path)
    match = D1_FILE_NAME.fullmatch(path.name)
    known = d1_tasks()
    if not match or match["task"] not in known:
        raise GenerationFileError(
            f"{path}: not a d1 generation file name (TASK_MODEL_GENLEN_STEPS_RANK_generations.json, "
            f"TASK one of {', '.join(known)})"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as err:
        raise GenerationFileError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("generations"), list):
        raise GenerationFileError(f"{path}: expected an object with a 'generations' list (d1's eval/eval.py output)")
    gen_length = _gen_length(data.get("gen_length")) or int(match["gen_length"])
    task = known[match["task"]]
    items = ((f"{path}: generations[{i}]", item) for i, item in enumerate(data["generations"]))
    return _parse_each(items, lambda item: d1_item_row(item, task, gen_length), skip_bad, "items")


# --------------------------------------------------------------------------- scoring


def _task_key(task: str) -> tuple[int, str]:
    """The table's row order: the registry's (d1's table order for the built-in tasks)."""
    order = list(TASKS)
    return (order.index(task) if task in order else len(order), task)


def score_files(
    paths: Sequence[str | Path] | str | Path, skip_bad: bool = False, file_format: str = "jsonl"
) -> dict[str, Any]:
    """Score generation files (or directories of them); `file_format` is `jsonl` (ours) or `d1`.

    Returns a JSON-ready dict:
        cells: one per (task, gen_length), in d1's task order: `task`, `gen_length`, `n`, `accuracy` and
            the metric's other keys (sudoku: `cell_accuracy`, `solved`), `files`;
        table: `{task: {"128": accuracy, ..., "mean": task mean}}`;
        mean: the mean accuracy over all cells (d1 reports the mean of its 12 cells);
        files: the files read; skipped: number of bad lines skipped; skipped_lines: `FILE:LINE: reason`.
    Accuracies are fractions in [0, 1].
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if file_format not in FORMATS:
        raise GenerationFileError(f"unknown format {file_format!r}; choose one of {', '.join(FORMATS)}")
    files = generation_files(paths, file_format)
    read = read_d1_generations if file_format == "d1" else read_generations
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    sources: dict[tuple[str, int], list[str]] = defaultdict(list)
    skipped: list[str] = []
    for path in files:
        rows, problems = read(path, skip_bad)
        skipped.extend(problems)
        for row in rows:
            key = (row["task"], row["gen_length"])
            groups[key].append(row)
            if str(path) not in sources[key]:
                sources[key].append(str(path))
    if not groups:
        raise GenerationFileError(f"no scorable lines in {', '.join(map(str, files))}")

    cells = []
    for task, gen_length in sorted(groups, key=lambda k: (_task_key(k[0]), k[1])):
        rows = groups[(task, gen_length)]
        columns = get_task(task).columns
        metrics = get_task(task).metric([r["completion"] for r in rows], **{c: [r[c] for r in rows] for c in columns})
        cells.append(
            {"task": task, "gen_length": gen_length, **metrics, "n": len(rows), "files": sources[(task, gen_length)]}
        )

    table: dict[str, dict[str, float]] = {}
    for cell in cells:
        table.setdefault(cell["task"], {})[str(cell["gen_length"])] = cell["accuracy"]
    for row in table.values():
        row["mean"] = sum(row.values()) / len(row)
    return {
        "cells": cells,
        "table": table,
        "mean": sum(c["accuracy"] for c in cells) / len(cells),
        "files": [str(p) for p in files],
        "skipped": len(skipped),
        "skipped_lines": skipped,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def format_markdown(scores: dict[str, Any]) -> str:
    """The accuracy table (%, tasks x gen_lengths, row means, the overall mean) and a details table."""
    lengths = sorted({c["gen_length"] for c in scores["cells"]})
    lines = ["| task | " + " | ".join(str(g) for g in lengths) + " | mean |", "|---|" + "---:|" * (len(lengths) + 1)]
    for task, row in scores["table"].items():
        lines.append(f"| {task} | " + " | ".join(_pct(row.get(str(g))) for g in lengths) + f" | {_pct(row['mean'])} |")
    column_means = []
    for g in lengths:
        values = [c["accuracy"] for c in scores["cells"] if c["gen_length"] == g]
        column_means.append(sum(values) / len(values))
    lines.append("| **mean** | " + " | ".join(_pct(v) for v in column_means) + f" | **{_pct(scores['mean'])}** |")
    lines += [
        "",
        "Accuracy in %; the overall mean is the mean of all cells. Sudoku: cell accuracy pooled over puzzles.",
        "",
        "| task | gen_length | n | accuracy | other metrics |",
        "|---|---:|---:|---:|---|",
    ]
    for cell in scores["cells"]:
        headline = get_task(cell["task"]).report_metrics[0]  # shown as the accuracy column (Sudoku: cell accuracy)
        extra = ", ".join(
            f"{k} {_pct(v)}"
            for k, v in cell.items()
            if k not in ("task", "gen_length", "n", "accuracy", "files", headline)
        )
        lines.append(f"| {cell['task']} | {cell['gen_length']} | {cell['n']} | {_pct(cell['accuracy'])} | {extra} |")
    if scores["skipped"]:
        lines += ["", f"Skipped {scores['skipped']} bad line(s)."]
    return "\n".join(lines) + "\n"


def write_scores(scores: dict[str, Any], prefix: str | Path) -> tuple[Path, Path]:
    """`PREFIX.json` and `PREFIX.md`, each written to a temporary name and renamed."""
    prefix = Path(prefix)
    if prefix.suffix in (".json", ".md"):
        prefix = prefix.with_suffix("")
    refuse_foreign_outputs(
        {
            prefix.with_name(prefix.name + ".json"): json_with_keys("cells", "table", "mean"),
            prefix.with_name(prefix.name + ".md"): text_containing("| task |", "Accuracy in %"),
        },
        "gift score",
        "--output",
    )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, text in ((".json", json.dumps(scores, indent=2) + "\n"), (".md", format_markdown(scores))):
        written.append(atomic_write_text(prefix.with_name(prefix.name + suffix), text))
    return written[0], written[1]


def default_prefix(paths: Sequence[str | Path]) -> Path:
    """`scores` next to the inputs: in the first input directory, or the first file's directory."""
    first = Path(paths[0])
    return (first if first.is_dir() else first.parent) / "scores"


# --------------------------------------------------------------------------- command line


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gift score", description="Score generation JSONL files into an accuracy table."
    )
    parser.add_argument(
        "paths", nargs="+", metavar="FILE_OR_DIR", help="generation .jsonl files or directories of them"
    )
    parser.add_argument(
        "--output",
        default=None,
        metavar="PREFIX",
        help="write PREFIX.json and PREFIX.md (default: scores.* next to the first input)",
    )
    parser.add_argument("--skip_bad", action="store_true", help="skip broken or incomplete lines (and report them)")
    parser.add_argument(
        "--format",
        default="jsonl",
        choices=FORMATS,
        dest="file_format",
        help="jsonl: gift eval's files; d1: d1's *_generations.json evaluation files",
    )
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`gift score FILE_OR_DIR... [--output PREFIX] [--skip_bad] [--format jsonl|d1]`."""
    args = make_parser().parse_args(argv)
    try:
        scores = score_files(args.paths, skip_bad=args.skip_bad, file_format=args.file_format)
    except GenerationFileError as err:
        raise SystemExit(f"gift score: error: {err}") from None
    json_path, md_path = write_scores(scores, args.output or default_prefix(args.paths))
    print(format_markdown(scores), end="")
    if scores["skipped"]:
        print(f"skipped {scores['skipped']} bad line(s):", file=sys.stderr)
        for problem in scores["skipped_lines"]:
            print(f"  {problem}", file=sys.stderr)
    print(f"wrote {json_path} and {md_path}")
    return scores


if __name__ == "__main__":
    main(sys.argv[1:])
