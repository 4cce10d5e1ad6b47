"""`gift entropy-report`: which answer tokens GIFT's probe finds high or low entropy (the paper's Figure 2).

    gift entropy-report --model models/base --data synthetic:sudoku --max_length 64 --output_dir report/entropy
    gift entropy-report --model runs/gift --data data/train.jsonl --top 30 --min_count 10 --output_dir out
    gift entropy-report --model GSAI-ML/LLaDA-8B-Instruct --data simplescaling/s1K \
        --dataset_format s1k --max_examples 64 --max_length 4096 --batch_size 1 --output_dir out   # GPU

The probe pass is the one GIFT trains with (`gift.probe.probe_signal`): the whole answer (and, as in
training, the EOS padding tail up to `--max_length`) is replaced by the mask token, the prompt is kept,
and the predictive entropy H (nats, fp32, full vocabulary) is read at every answer position. Per
answer-token string the report gives the count, the mean H and the mean beta = sqrt(H) (GIFT's
per-token masking weight); EOS tokens of the padding tail are kept apart from the answer's own EOS.

Outputs in `--output_dir`: `entropy_report.md` (model, data, overall statistics, the entropy per token
class when a classifier is given, and the `--top` highest and lowest mean-entropy tokens seen at least
`--min_count` times), `entropy_report.png` (horizontal bars of those tokens, plus the classes) and
`entropy_report.json` (every number of the report). For `synthetic:TASK` data of a task with token
classes (`Task.token_classes`; Sudoku: empty and given cells) `task_token_classes` splits the answer into
those classes, format tags, EOS and the EOS padding tail.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

from gift.adapters import ModelLoadError
from gift.checkpoint import LoadedModel, load_model
from gift.data import DATASET_FORMATS, TOO_LONG, DataError, DiffusionCollator, build_examples, tokenize_examples
from gift.model_options import add_model_arguments
from gift.probe import probe_signal
from rewards import TASKS, get_task
from rewards.prompts import resolve_system_prompt
from stages.runs.folder import check_folder, mark_folder

REPORT_NAME = "entropy_report"
PAD_TAIL_SUFFIX = " (pad tail)"
TokenClass = Callable[[dict, int], str]


class EntropyReportError(ValueError):
    """Bad input to the report (model, data, options), with the reason."""


# --------------------------------------------------------------------------- token display


def display_token(text: str) -> str:
    """A token readable in a table: `\\n`, `\\t` escaped, spaces shown as `␣`, `|` escaped for markdown later."""
    if text == "":
        return "∅"
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return out.replace(" ", "␣")


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------- token classes


GENERIC_CLASSES = ("tag", "EOS", "EOS pad tail", "other")
_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")


def task_token_classes(task: str) -> TokenClass:
    """The classifier of a task's synthetic examples: the task's own classes (`Task.token_classes`, e.g.
    Sudoku's `empty cell` / `given cell`), then the classes every answer has: format `tag`, its `EOS`,
    the `EOS pad tail`, and `other`.

    The classifier takes what `entropy_report` passes (the example plus `answer_ids` and `answer_tokens`,
    decoded strings) and an answer position; the task reads the prompt text one character at a time.
    """
    spec = get_task(task)
    if spec.token_classes is None:
        raise EntropyReportError(f"task {task} defines no token classes")

    def token_class(example: dict, position: int) -> str:
        tokens = example["answer_tokens"]
        if position >= len(tokens):
            return "EOS pad tail"
        if position == len(tokens) - 1:
            return "EOS"  # tokenize_examples appends EOS to every answer
        if tokens[position] in _TAGS:
            return "tag"
        try:
            own = spec.token_classes(list(str(example["prompt"])), tokens)
        except ValueError as err:
            raise EntropyReportError(f"{task} token classes: {err}") from None
        return own.get(position, "other")

    return token_class


# --------------------------------------------------------------------------- statistics


class _Stats:
    """Running count, sum of H, sum of H^2 and sum of sqrt(H) per key."""

    def __init__(self):
        self.count: dict[Any, int] = {}
        self.sum: dict[Any, float] = {}
        self.sq: dict[Any, float] = {}
        self.beta: dict[Any, float] = {}

    def add(self, key, h: float) -> None:
        self.count[key] = self.count.get(key, 0) + 1
        self.sum[key] = self.sum.get(key, 0.0) + h
        self.sq[key] = self.sq.get(key, 0.0) + h * h
        self.beta[key] = self.beta.get(key, 0.0) + math.sqrt(h)

    def row(self, key) -> dict[str, float]:
        n = self.count[key]
        mean = self.sum[key] / n
        var = max(self.sq[key] / n - mean * mean, 0.0)
        return {"count": n, "mean_entropy": mean, "std_entropy": math.sqrt(var), "mean_beta": self.beta[key] / n}


def _resolve_model(loaded_or_source, model_type=None, trust_remote_code=False) -> LoadedModel:
    if isinstance(loaded_or_source, LoadedModel):
        return loaded_or_source
    source = str(loaded_or_source)
    path = Path(source).expanduser()
    looks_local = path.is_absolute() or source.startswith((".", "~")) or source.endswith("/")
    if looks_local and not path.exists():
        raise EntropyReportError(f"{source}: no such model directory or checkpoint")
    try:
        return load_model(source, model_type, trust_remote_code, merge_adapter=True)
    except (ModelLoadError, OSError) as err:
        raise EntropyReportError(f"{source}: cannot load the model: {err}") from err


@dataclass(frozen=True)
class ReportOptions:
    """How `entropy_report` lays out, probes and tabulates the examples (the CLI flags of the same names).

    Layout, as stage one tokenises: max_length is the probe's width, prompt + answer + EOS padding tail
    (stage one's `max_length` shows what training sees; None: the longest example, which then has no
    tail); pad_tail masks and reports the EOS padding tail as training does (d1); system_prompt (its
    text, or a name such as `format`, resolved as the stage-one config does) goes into the
    chat-formatted prompt; too_long says what an example longer than max_length does ("error" or
    "drop"). Probe: batch_size examples per pass, chunk_size positions per fp32 entropy
    chunk. Tables: top rows each, of the tokens seen at least min_count times. Model: model_type and
    trust_remote_code load a model given by its source. Labels: the names the report prints
    (default: the model's source and "N examples").
    """

    max_length: int | None = None
    pad_tail: bool = True
    system_prompt: str | None = None
    too_long: str = "error"
    batch_size: int = 64
    chunk_size: int = 256
    top: int = 20
    min_count: int = 5
    model_type: str | None = None
    trust_remote_code: bool = False
    model_label: str | None = None
    data_label: str | None = None

    def __post_init__(self):
        try:  # a named prompt (`format`) stands for the same text as in the stage-one config
            object.__setattr__(self, "system_prompt", resolve_system_prompt(self.system_prompt))
        except ValueError as err:
            raise EntropyReportError(str(err)) from None
        if self.top < 1 or self.batch_size < 1 or self.min_count < 1:
            raise EntropyReportError(
                f"top ({self.top}), batch_size ({self.batch_size}) and min_count ({self.min_count}) must be >= 1"
            )
        if self.too_long not in TOO_LONG:
            raise EntropyReportError(f"unknown too_long {self.too_long!r}; choose 'error' or 'drop'")


@dataclass
class ProbeStats:
    """What one probe run accumulates: H per (token id, in pad tail), per class, over the answer, over the tail."""

    per_token: _Stats = field(default_factory=_Stats)
    per_class: _Stats = field(default_factory=_Stats)
    answer: _Stats = field(default_factory=_Stats)
    tail: _Stats = field(default_factory=_Stats)
    classified: bool = False  # a token_class was given (an empty class table is then {}, not None)

    def add_row(
        self,
        offsets: list[int],
        token_ids: list[int],
        values: list[float],
        n_answer: int,
        classify: Callable[[int], str] | None,
    ) -> None:
        """One example's answer positions (offsets from the answer's start; >= n_answer: the pad tail)."""
        for offset, token_id, h in zip(offsets, token_ids, values):
            in_tail = offset >= n_answer
            self.per_token.add((token_id, in_tail), h)
            (self.tail if in_tail else self.answer).add("all", h)
            if classify is not None:
                self.per_class.add(str(classify(offset)), h)


# --------------------------------------------------------------------------- compute


def tokenise_for_probe(
    loaded: LoadedModel, examples: list[dict], options: ReportOptions
) -> tuple[list[dict], list[dict], int]:
    """(examples kept, their features, width): tokenised as stage one does (chat prompt, answer + EOS).

    An example longer than `options.max_length` is an error naming its row, or dropped with
    `too_long="drop"`; the width is max_length, or the longest example.
    """
    source = options.data_label or "data"
    features = tokenize_examples(
        examples, loaded.tokenizer, loaded.adapter.eos_token_id, 10**9, options.system_prompt, source=source
    )
    max_length = options.max_length
    kept = []
    for example, feature in zip(examples, features):
        total = len(feature["prompt_ids"]) + len(feature["answer_ids"])
        if max_length is not None and total > max_length:
            if options.too_long == "drop":
                continue
            raise EntropyReportError(
                f"{source}: row {feature['index']}: prompt + answer + EOS = {total} tokens > "
                f"max_length {max_length} (raise --max_length or pass --too_long drop)"
            )
        kept.append((example, {**feature, "index": len(kept)}))
    if not kept:
        raise EntropyReportError(f"{source}: every example is longer than max_length {max_length}")
    features = [f for _, f in kept]
    width = max_length or max(len(f["prompt_ids"]) + len(f["answer_ids"]) for f in features)
    return [e for e, _ in kept], features, width


@torch.no_grad()
def probe_entropy(
    loaded: LoadedModel,
    examples: list[dict],
    features: list[dict],
    width: int,
    options: ReportOptions,
    token_class: TokenClass | None = None,
) -> ProbeStats:
    """GIFT's probe over the tokenised examples in batches of `options.batch_size`, accumulated per token."""
    model, tokenizer, adapter = loaded.model, loaded.tokenizer, loaded.adapter
    collator = DiffusionCollator(adapter.pad_token_id, width, "max_length", train_on_pad_tail=options.pad_tail)
    device = next(model.parameters()).device
    stats = ProbeStats(classified=token_class is not None)
    for start in range(0, len(features), options.batch_size):
        chunk = features[start : start + options.batch_size]
        batch = {k: v.to(device) for k, v in collator(chunk).items()}
        entropy = (
            probe_signal(
                model,
                adapter,
                batch["input_ids"],
                batch["attention_mask"],
                batch["answer_mask"],
                "entropy",
                options.chunk_size,
            )
            .float()
            .cpu()
        )
        ids, answer = batch["input_ids"].cpu(), batch["answer_mask"].cpu()
        for row, feature in enumerate(chunk):
            positions = answer[row].nonzero().flatten().tolist()
            classify = None
            if token_class is not None:
                view = {
                    **examples[start + row],
                    "prompt_ids": feature["prompt_ids"],
                    "answer_ids": feature["answer_ids"],
                    "answer_tokens": [tokenizer.decode([t]) for t in feature["answer_ids"]],
                }
                classify = partial(token_class, view)
            first = len(feature["prompt_ids"])
            stats.add_row(
                [p - first for p in positions],
                ids[row, positions].tolist(),
                entropy[row, positions].tolist(),
                len(feature["answer_ids"]),
                classify,
            )
    return stats


# --------------------------------------------------------------------------- tables


def token_tables(stats: ProbeStats, tokenizer, options: ReportOptions) -> dict[str, Any]:
    """`tokens` (every token, highest mean entropy first), `high` / `low` (the `top` of each seen at least
    `min_count` times) and `classes` (class -> stats, highest mean first; None without a classifier)."""
    per_token, per_class = stats.per_token, stats.per_class
    tokens = []
    for key in per_token.count:
        token_id, in_tail = key
        text = display_token(tokenizer.decode([token_id]) or tokenizer.convert_ids_to_tokens(token_id) or "")
        tokens.append(
            {
                "token": text + (PAD_TAIL_SUFFIX if in_tail else ""),
                "id": token_id,
                "pad_tail": in_tail,
                **per_token.row(key),
            }
        )
    tokens.sort(key=lambda r: (-r["mean_entropy"], -r["count"], r["id"], r["pad_tail"]))
    frequent = [r for r in tokens if r["count"] >= options.min_count]
    low = sorted(frequent, key=lambda r: (r["mean_entropy"], -r["count"], r["id"], r["pad_tail"]))
    classes = None
    if stats.classified:
        order = sorted(per_class.count, key=lambda n: -per_class.row(n)["mean_entropy"])
        classes = {name: per_class.row(name) for name in order}
    return {"tokens": tokens, "high": frequent[: options.top], "low": low[: options.top], "classes": classes}


def overall_summary(
    stats: ProbeStats, loaded: LoadedModel, options: ReportOptions, n_given: int, n_probed: int, width: int
) -> dict[str, Any]:
    """What was probed (model, data, layout) and the answer's and pad tail's overall statistics."""
    vocab = loaded.model.get_input_embeddings().weight.shape[0]
    summary = {
        "model": options.model_label or loaded.source or "in-memory model",
        "model_type": loaded.adapter.kind,
        "data": options.data_label or f"{n_given} examples",
        "examples": n_probed,
        "dropped_too_long": n_given - n_probed,
        "max_length": width,
        "pad_tail": options.pad_tail,
        "min_count": options.min_count,
        "top": options.top,
        "vocab_size": vocab,
        "max_entropy": math.log(vocab),
        "answer_tokens": stats.answer.count.get("all", 0),
        "distinct_tokens": len({token_id for token_id, in_tail in stats.per_token.count if not in_tail}),
        "pad_tail_tokens": stats.tail.count.get("all", 0),
    }
    for prefix, part in (("answer", stats.answer), ("pad_tail", stats.tail)):
        if part.count:
            summary.update({f"{prefix}_{k}": v for k, v in part.row("all").items() if k != "count"})
    return summary


# --------------------------------------------------------------------------- the whole report


def entropy_report(
    loaded_or_source: LoadedModel | str,
    examples: list[dict],
    output_dir: str | Path,
    options: ReportOptions | None = None,
    token_class: TokenClass | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Run GIFT's probe over `examples` and write `entropy_report.{md,png,json}` into `output_dir`.

    examples: prompt/answer dicts (as stage one reads them). options: a `ReportOptions`; `settings`
    override its fields by name (`entropy_report(model, examples, out, max_length=48, top=5)`).
    token_class(example, position) -> class name, where `example` is the example plus `prompt_ids`,
    `answer_ids` and `answer_tokens` (decoded answer tokens, EOS included) and `position` counts answer
    positions from 0 (positions >= len(answer_ids) are the padding tail, whose EOS tokens are reported
    as `<eos> (pad tail)`, apart from the answer's EOS).

    Returns a dict with `overall`, `tokens` (every token, highest mean entropy first: token, id,
    pad_tail, count, mean_entropy, std_entropy, mean_beta), `high` / `low` (the `top` of each with at
    least `min_count` occurrences), `classes` (class -> stats, or None) and `files`.
    """
    options = replace(options or ReportOptions(), **settings)
    if not examples:
        raise EntropyReportError("no examples to probe")
    loaded = _resolve_model(loaded_or_source, options.model_type, options.trust_remote_code)
    kept, features, width = tokenise_for_probe(loaded, examples, options)
    stats = probe_entropy(loaded, kept, features, width, options, token_class)
    report = {
        "overall": overall_summary(stats, loaded, options, len(examples), len(features), width),
        **token_tables(stats, loaded.tokenizer, options),
    }
    report["files"] = write_report_files(report, output_dir)
    return report


# --------------------------------------------------------------------------- outputs


def _token_table(rows: list[dict]) -> list[str]:
    lines = ["| # | token | id | count | mean H (nats) | sd H | mean beta |", "|---:|---|---:|---:|---:|---:|---:|"]
    for rank, r in enumerate(rows, start=1):
        lines.append(
            f"| {rank} | `{_md(r['token'])}` | {r['id']} | {r['count']} | {r['mean_entropy']:.4f} | "
            f"{r['std_entropy']:.4f} | {r['mean_beta']:.4f} |"
        )
    return lines


def format_markdown(report: dict) -> str:
    """The markdown report: what was probed, overall statistics, classes, highest and lowest tokens."""
    o = report["overall"]
    lines = [
        "# Probe entropy report",
        "",
        "GIFT's probe pass: the whole answer masked, the prompt kept; predictive entropy H in nats at every "
        "answer position; beta = sqrt(H).",
        "",
        f"- model: `{_md(str(o['model']))}` ({o['model_type']}, vocabulary {o['vocab_size']}, "
        f"max entropy ln V = {o['max_entropy']:.3f} nats)",
        f"- data: `{_md(str(o['data']))}`: {o['examples']} examples"
        + (f" ({o['dropped_too_long']} longer than max_length dropped)" if o["dropped_too_long"] else ""),
        f"- max_length {o['max_length']}; EOS padding tail "
        + ("masked and probed as in training (reported apart: `(pad tail)`)" if o["pad_tail"] else "not probed"),
        "",
        "## Overall",
        "",
        "| positions | count | mean H (nats) | sd H | mean beta |",
        "|---|---:|---:|---:|---:|",
    ]
    if o["answer_tokens"]:
        lines.append(
            f"| answer tokens (EOS included) | {o['answer_tokens']} | {o['answer_mean_entropy']:.4f} | "
            f"{o['answer_std_entropy']:.4f} | {o['answer_mean_beta']:.4f} |"
        )
    if o["pad_tail_tokens"]:
        lines.append(
            f"| EOS padding tail | {o['pad_tail_tokens']} | {o['pad_tail_mean_entropy']:.4f} | "
            f"{o['pad_tail_std_entropy']:.4f} | {o['pad_tail_mean_beta']:.4f} |"
        )
    lines += ["", f"{o['distinct_tokens']} distinct answer tokens."]
    if report["classes"]:
        lines += [
            "",
            "## By token class",
            "",
            "| class | count | mean H (nats) | sd H | mean beta |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in report["classes"].items():
            lines.append(
                f"| {_md(name)} | {r['count']} | {r['mean_entropy']:.4f} | {r['std_entropy']:.4f} | "
                f"{r['mean_beta']:.4f} |"
            )
    for title, rows in (("Highest", report["high"]), ("Lowest", report["low"])):
        lines += ["", f"## {title} mean entropy (tokens seen at least {o['min_count']} times, top {o['top']})", ""]
        lines += _token_table(rows) if rows else ["(no token reaches min_count)"]
    return "\n".join(lines) + "\n"


def _bar_panel(ax, labels: list[str], values: list[float], color: str, title: str, ylabel: str) -> None:
    """One horizontal bar chart of mean entropies, first row on top."""
    ax.barh(range(len(values)), values, color=color)
    ax.set_yticks(range(len(values)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=12)
    ax.set_xlabel("mean entropy H (nats)", fontsize=11)
    ax.set_ylabel(ylabel, fontsize=11)
    ax.grid(True, axis="x", alpha=0.3)


def plot_report(report: dict, output: str | Path) -> Path:
    """Horizontal bars: highest and lowest mean-entropy tokens (and the classes, when given)."""
    from matplotlib.figure import Figure

    panels = [("highest mean entropy", report["high"], "C3"), ("lowest mean entropy", report["low"], "C0")]
    classes = report["classes"] or {}
    n_rows = max([len(report["high"]), len(report["low"]), len(classes), 1])
    fig = Figure(figsize=(6 * (2 + bool(classes)), 1.2 + 0.32 * n_rows), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2 + bool(classes), squeeze=False)[0]
    for ax, (title, rows, color) in zip(axes, panels):
        _bar_panel(
            ax,
            [f"{r['token']}  (n={r['count']})" for r in rows],
            [r["mean_entropy"] for r in rows],
            color,
            title,
            "answer token",
        )
    if classes:
        _bar_panel(
            axes[2],
            [f"{n}  (n={c['count']})" for n, c in classes.items()],
            [c["mean_entropy"] for c in classes.values()],
            "C2",
            "by token class",
            "token class",
        )
    o = report["overall"]
    fig.suptitle(
        f"Probe entropy per answer token: {Path(str(o['model'])).name or o['model']} on {o['data']}", fontsize=13
    )
    with warnings.catch_warnings():  # tokens outside the font (e.g. CJK pieces) draw as boxes, not errors
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        fig.savefig(output)
    return Path(output)


def write_report_files(report: dict, output_dir: str | Path) -> dict[str, Path]:
    """`entropy_report.md`, `.png` and `.json` (every number but the file paths) in `output_dir`; their paths."""
    out = check_folder(output_dir, REPORT_NAME)  # new, empty, or an earlier entropy report
    mark_folder(out, REPORT_NAME)
    files = {
        "markdown": out / f"{REPORT_NAME}.md",
        "png": out / f"{REPORT_NAME}.png",
        "json": out / f"{REPORT_NAME}.json",
    }
    files["markdown"].write_text(format_markdown(report), encoding="utf-8")
    plot_report(report, files["png"])
    files["json"].write_text(json.dumps({k: v for k, v in report.items() if k != "files"}, indent=2), encoding="utf-8")
    return files


# --------------------------------------------------------------------------- data and CLI


def load_examples(
    data: str,
    max_examples: int | None = 512,
    prompt_field: str = "prompt",
    answer_field: str = "answer",
    dataset_format: str = "prompt_answer",
    split: str = "train",
    subset: str | None = None,
    synthetic_seed: int = 0,
) -> list[dict]:
    """Prompt/answer examples from any source stage one accepts (jsonl/json, hub id, `synthetic:TASK`)."""
    if dataset_format not in DATASET_FORMATS:
        raise EntropyReportError(f"unknown dataset_format {dataset_format!r}; choose prompt_answer or s1k")
    try:
        examples = build_examples(
            data,
            split=split,
            subset=subset,
            dataset_format=dataset_format,
            prompt_field=prompt_field,
            answer_field=answer_field,
            max_examples=max_examples,
            synthetic_examples=max_examples or 512,
            synthetic_seed=synthetic_seed,
        )
    except (DataError, ValueError, OSError) as err:
        raise EntropyReportError(f"--data {data}: {err}") from err
    if not examples:
        raise EntropyReportError(f"--data {data}: no examples")
    return examples


def default_token_class(data: str) -> TokenClass | None:
    """The classifier of a `synthetic:TASK` source whose task defines token classes, or None."""
    kind, _, task = data.partition(":")
    if kind != "synthetic" or task not in TASKS or TASKS[task].token_classes is None:
        return None
    return task_token_classes(task)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gift entropy-report",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--data", required=True, help="jsonl/json file, hub dataset id, or synthetic:sudoku / synthetic:countdown"
    )
    parser.add_argument("--prompt_field", default="prompt")
    parser.add_argument("--answer_field", default="answer")
    parser.add_argument("--dataset_format", default="prompt_answer", help=" | ".join(DATASET_FORMATS))
    parser.add_argument("--split", default="train", help="hub dataset split")
    parser.add_argument("--subset", default=None, help="hub dataset config name")
    parser.add_argument("--synthetic_seed", type=int, default=0)
    parser.add_argument(
        "--system_prompt", default=None, help="system turn: its text, or a name (format) as in the stage-one config"
    )
    parser.add_argument("--max_examples", type=int, default=512, help="probe at most this many examples (512)")
    parser.add_argument(
        "--max_length",
        type=int,
        default=None,
        help="probe width incl. the EOS tail; use stage one's max_length (default: longest example)",
    )
    parser.add_argument("--too_long", default="error", choices=TOO_LONG)
    parser.add_argument("--no_pad_tail", action="store_true", help="do not mask/probe the EOS padding tail")
    parser.add_argument("--top", type=int, default=20, help="tokens per table (20)")
    parser.add_argument("--min_count", type=int, default=5, help="occurrences a token needs to enter the tables (5)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--chunk_size", type=int, default=1024, help="positions per fp32 entropy chunk")
    parser.add_argument("--output_dir", required=True)
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """`gift entropy-report --model CKPT --data SOURCE [--max_examples 512] [--top 20] --output_dir DIR`."""
    args = make_parser().parse_args(argv)
    check_folder(args.output_dir, REPORT_NAME)  # before the probe runs; nothing is written yet
    torch.manual_seed(0)
    try:
        examples = load_examples(
            args.data,
            args.max_examples,
            args.prompt_field,
            args.answer_field,
            args.dataset_format,
            args.split,
            args.subset,
            args.synthetic_seed,
        )
        loaded = _resolve_model(args.model, args.model_type, args.trust_remote_code)
        options = ReportOptions(
            max_length=args.max_length,
            pad_tail=not args.no_pad_tail,
            system_prompt=args.system_prompt,
            too_long=args.too_long,
            batch_size=args.batch_size,
            chunk_size=args.chunk_size,
            top=args.top,
            min_count=args.min_count,
            model_label=args.model,
            data_label=args.data,
        )
        report = entropy_report(loaded, examples, args.output_dir, options, default_token_class(args.data))
    except (EntropyReportError, DataError) as err:
        raise SystemExit(f"gift entropy-report: error: {err}") from None
    files = report["files"]
    print(f"wrote {files['markdown']}, {files['png']} and {files['json']}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
