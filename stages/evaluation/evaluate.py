"""`gift eval`: generate completions for a task under the d1 protocol and write them to JSONL.

Generation and scoring are separate steps (docs/algorithms.md §6): this module only writes
`OUTPUT_DIR/TASK_GENLEN.jsonl` (one line per example: `task`, `gen_length`, `index`, `prompt`,
`completion` and the task's ground-truth fields) plus `OUTPUT_DIR/eval_config.json` with the resolved
settings; `gift score` (stages/evaluation/score.py) turns the files into the accuracy table.

Launch:
    gift eval --model runs/gift --task sudoku --data synthetic --output_dir runs/gift/eval     # CPU, embedded
    gift eval --model GSAI-ML/LLaDA-8B-Instruct \
        --task gsm8k --output_dir runs/llada/eval                                            # 1 GPU, base row
    accelerate launch --num_processes 8 -m stages.evaluation.evaluate --model runs/gift --task math \
        --output_dir runs/gift/eval                                                          # 8 GPUs
    torchrun --nproc_per_node 2 -m stages.evaluation.evaluate --model runs/gift --task sudoku \
        --data synthetic --output_dir runs/gift/eval                                         # 2 CPU processes

Defaults follow d1: gen_length 128, 256 and 512; steps = gen_length / 2; block 32; temperature 0;
low-confidence remasking; `<reasoning>` prefilled after the generation prompt. Several processes split
the examples contiguously (`split_between_processes`), every record carries its example index, and
the main process gathers, reorders and writes each file atomically (temporary name, then rename).

Test sets (the d1 protocol): GSM8K test (1,319) and MATH-500 from the hub; Countdown and Sudoku from d1's
files (`--data countdown_cd3_test.jsonl` / `4x4_test_sudoku.csv`), of which d1 scores the 256 rows
`np.random.seed(42); choice(n, 256, replace=False)` draws (`rewards.data.d1_test_subset`; every row of a
file of 256 rows or fewer, such as SPG's Sudoku test split). `--limit N` keeps the first N of those.

Prompt style (`--prompt_style`):
    d1       the task's d1 evaluation prompt (`rewards.task_prompt`: system text + question in one user
             turn), the same builder RL rows use;
    compact  the embedded synthetic format of rewards/data/synthetic.py: the bare puzzle (`0340...`) or
             `a,b,c=T` as the user turn, no system prompt (Sudoku and Countdown only);
    auto     (default) compact when the model is an embedded-kind model AND `--data synthetic`, else d1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gift.adapters import DTYPE_NAMES as DTYPES
from gift.files import atomic_write_text
from gift.positions import check_fits_positions
from rewards import REASONING_PREFILL, TASKS, get_task, task_prompt
from rewards.data import d1_test_subset
from stages.evaluation.eval_folder import check_eval_folder, claim_eval_folder, model_identity
from stages.evaluation.eval_record import merged_record
from stages.runs.process_state import process_state

if TYPE_CHECKING:  # annotations only: the functions below import the sampler where they use it
    from gift.sampler import SamplerConfig

D1_GEN_LENGTHS = (128, 256, 512)
PROMPT_STYLES = ("auto", "d1", "compact")
SYNTHETIC = "synthetic"
CONFIG_NAME = "eval_config.json"


class EvalError(ValueError):
    """A bad evaluation setting or input, with what to do instead."""


# The sampler fields evaluation never sets, left out of what `eval_config.json` records.
_NOT_RECORDED = ("cfg_scale", "return_history")


def decode_record(decode: SamplerConfig) -> dict[str, Any]:
    """The sampler settings of one gen_length as `eval_config.json` records them."""
    return {k: v for k, v in asdict(decode).items() if k not in _NOT_RECORDED}


# --------------------------------------------------------------------------- settings


def check_task(task: str) -> str:
    """The task name, or an `EvalError` listing the known tasks."""
    if task not in TASKS:
        raise EvalError(f"unknown task {task!r}; known tasks: {', '.join(sorted(TASKS))}")
    return task


def resolve_decoding(
    gen_lengths: Sequence[int], block_length: int | None = None, steps: int | None = None, **options: Any
) -> list[SamplerConfig]:
    """One validated sampler config per gen_length; `steps=None` means d1's `gen_length / 2`, `block_length=None`
    the sampler's (d1's 32). `options` are the other sampler options (`gift.sampler_options`).

    Raises `EvalError` before anything is loaded or generated, e.g. for a gen_length that is not a
    multiple of block_length.
    """
    from gift.options import check_block_split, check_rule
    from gift.sampler import SamplerConfig
    from gift.sampler_options import default, sampler_options, sampler_rules

    block_length = default("block_length") if block_length is None else block_length
    unknown = sorted(set(options) - set(sampler_options()))
    if unknown:
        raise EvalError(f"unknown sampler option(s) {unknown}; known: {', '.join(sampler_options())}")
    if not gen_lengths:
        raise EvalError("no --gen_length given")
    gen_lengths = list(dict.fromkeys(gen_lengths))  # drop repeats, keep order
    given = [
        ("block_length", block_length),
        ("steps", steps),
        *options.items(),
        *(("gen_length", n) for n in gen_lengths),
    ]
    for name, value in given:  # each option's rule as the sampler declares it, phrased with its flag
        if value is not None and name in sampler_rules():
            try:
                check_rule(name, value, sampler_rules()[name])
            except ValueError as err:
                raise EvalError(str(err)) from None
    out = []
    for gen_length in gen_lengths:
        try:
            check_block_split(gen_length, block_length, prefix="--")
            out.append(
                SamplerConfig(
                    **{
                        **options,
                        "gen_length": gen_length,
                        "block_length": block_length,
                        "steps": gen_length // 2 if steps is None else steps,
                        "temperature": float(options.get("temperature", 0.0)),
                    }
                )
            )
        except ValueError as err:
            message = str(err)
            raise EvalError(message if message.startswith("--") else f"--gen_length {gen_length}: {message}") from None
    return out


# `evaluate`'s settings besides the sampler options: what the pipeline's `eval` block may set.
EVAL_SETTINGS = ("gen_lengths", "limit", "data", "batch_size", "prompt_style", "prefill", "seed")


def check_eval_settings(settings: dict[str, Any], default_gen_lengths: Sequence[int] = (256,)) -> None:
    """An `EvalError` for a key `gift eval` does not take (every sampler option is taken) or for sampler
    settings that do not resolve; the pipeline calls it on its `eval` block before anything runs."""
    from gift.sampler_options import sampler_options

    sampler = [name for name in sampler_options() if name != "gen_length"]
    unknown = sorted(set(settings) - {*EVAL_SETTINGS, *sampler})
    if unknown:
        raise EvalError(f"unknown keys {unknown}; known: {', '.join((*EVAL_SETTINGS, *sampler))}")
    resolve_decoding(
        settings.get("gen_lengths", default_gen_lengths), **{k: settings[k] for k in sampler if k in settings}
    )


def resolve_prompt_style(prompt_style: str, model_kind: str, data: str | None) -> str:
    """`d1` or `compact`. `auto`: compact iff the model is embedded-kind and the data is synthetic."""
    if prompt_style not in PROMPT_STYLES:
        raise EvalError(f"unknown prompt style {prompt_style!r}; choose one of {', '.join(PROMPT_STYLES)}")
    if prompt_style != "auto":
        return prompt_style
    return "compact" if model_kind == "embedded" and data == SYNTHETIC else "d1"


# --------------------------------------------------------------------------- data and prompts


def load_eval_rows(task: str, data: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Test rows holding the task's ground-truth columns (and `question`/`compact` when known).

    `data`: None (GSM8K and MATH-500 from the hub), `synthetic` (Sudoku/Countdown test rows of
    rewards/data/synthetic.py; `limit` or 256 of them), or a local file for the task's loader.
    """
    check_task(task)
    if limit is not None and limit <= 0:
        raise EvalError(f"--limit must be positive, got {limit}")
    spec = get_task(task)
    if data == SYNTHETIC:
        from rewards.data.synthetic import TEST_SIZE, synthetic_tasks

        if spec.synthetic is None:
            raise EvalError(f"--data synthetic exists only for {', '.join(synthetic_tasks())}, not {task}")
        rows = spec.synthetic("test", min(limit or TEST_SIZE, TEST_SIZE), 0)
        return [{**{c: r[c] for c in spec.columns}, "compact": r["prompt"]} for r in rows]
    if data is None and spec.hub_test_set is None:
        raise EvalError(
            f"{task}: d1's test set is not on the hub; pass --data PATH (d1's {spec.test_file_hint})"
            + (" or --data synthetic" if spec.synthetic is not None else "")
        )
    if data is not None and not Path(data).is_file():
        raise EvalError(f"--data {data}: no such file (or use --data {SYNTHETIC})")
    try:
        if spec.test_subset:  # d1's seeded subset (Countdown, Sudoku) first, then the first `limit` of it
            return d1_test_subset(spec.load(split="test", path=data), spec.test_subset)[:limit]
        return spec.load(split="test", path=data, limit=limit)
    except (KeyError, ValueError) as err:  # MissingColumnError is both
        raise EvalError(str(err)) from None


def compact_prompt(task: str, row: dict[str, Any]) -> str:
    """The embedded synthetic format of the task (`Task.compact_prompt`: the bare puzzle, `a,b,c=T`, ...)."""
    if row.get("compact"):
        return row["compact"]
    build = get_task(task).compact_prompt
    if build is None:
        with_compact = sorted(name for name, t in TASKS.items() if t.compact_prompt is not None)
        raise EvalError(f"{task} has no compact prompt format (only {', '.join(with_compact)}); use --prompt_style d1")
    return build(row)


def d1_prompt(task: str, row: dict[str, Any]) -> str:
    """d1's user turn for one row (`rewards.task_prompt`, the builder RL rows use too)."""
    try:
        return task_prompt(task, row)
    except (KeyError, ValueError) as err:
        raise EvalError(str(err)) from None


def build_prompts(task: str, rows: Sequence[dict[str, Any]], style: str) -> list[str]:
    """The user turn of every row in the resolved style (`d1` or `compact`)."""
    if style == "compact":
        return [compact_prompt(task, row) for row in rows]
    if style == "d1":
        return [d1_prompt(task, row) for row in rows]
    raise EvalError(f"prompt style must be resolved to d1 or compact, got {style!r}")


# --------------------------------------------------------------------------- processes


def merge_gathered(records: Sequence[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Records gathered from every process, back in example order; each index 0..n-1 exactly once."""
    by_index: dict[int, dict[str, Any]] = {}
    for record in records:
        index = record["index"]
        if index in by_index:
            raise RuntimeError(f"example {index} was generated by more than one process")
        by_index[index] = record
    missing = sorted(set(range(n)) - set(by_index))
    if missing or len(by_index) != n:
        raise RuntimeError(f"{len(missing)} examples missing after gathering (first: {missing[:5]})")
    return [by_index[i] for i in range(n)]


def atomic_write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    """Write JSONL to a temporary name in the same directory, then rename into place."""
    return atomic_write_text(path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def _update_config(output_dir: Path, task: str, entry: dict[str, Any]) -> None:
    path = output_dir / CONFIG_NAME
    config: dict[str, Any] = {}
    if path.is_file():
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError:
            config = {}
    config[task] = entry
    atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")


# --------------------------------------------------------------------------- generation


def _generate(
    loaded, prompt_ids: list[list[int]], decode: SamplerConfig, batch_size: int, seed: int, indices: list[int], log
) -> tuple[list[str], list[int]]:
    """Completion texts and each sequence's model calls (forward passes that decoded something in it)."""
    import torch

    from gift.sampler import DiffusionSampler

    sampler = DiffusionSampler(loaded.model, loaded.adapter, decode)
    device = sampler.device
    texts: list[str] = []
    calls: list[int] = []
    for start in range(0, len(prompt_ids), batch_size):
        # Seeded by the batch's first example: the same batching gives the same samples (temperature > 0).
        generator = torch.Generator(device=device).manual_seed(seed * 1_000_003 + indices[start])
        out = sampler.generate(prompt_ids[start : start + batch_size], generator=generator)
        texts.extend(sampler.decode(out, loaded.tokenizer))
        calls.extend(out.model_calls.tolist())
        log(f"  gen_length {decode.gen_length}: {len(texts)}/{len(prompt_ids)}")
    return texts, calls


def _check_fits(loaded, prompt_ids: Sequence[Sequence[int]], settings) -> None:
    """Refuse, before any generation, a gen_length that takes the longest prompt past the model's positions."""
    for decode in settings:
        try:
            check_fits_positions(loaded.model, max(map(len, prompt_ids), default=0), decode.gen_length)
        except ValueError as err:
            raise EvalError(str(err)) from None


def evaluate(
    model,
    task: str,
    gen_lengths: Sequence[int] = D1_GEN_LENGTHS,
    *,
    output_dir: str | Path,
    batch_size: int = 8,
    data: str | None = None,
    limit: int | None = None,
    prompt_style: str = "auto",
    prefill: str | None = REASONING_PREFILL,
    seed: int = 0,
    model_type: str | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    verbose: bool = False,
    **decoding: Any,
) -> list[Path]:
    """Generate `task`'s test completions for every gen_length; returns the JSONL paths (in order).

    `model` is a `gift.checkpoint.LoadedModel` (used as it is, on its current device) or a source for
    `load_model` (`embedded[:preset]`, a checkpoint or run directory, a local/hub model of a known type;
    moved to this process's device). `decoding` holds the sampler options of `resolve_decoding`
    (`gift.sampler_options`: `block_length`, `steps`, `temperature`, `threshold`, ...; d1's defaults). Every
    process of a launch must call it; the main process writes `{task}_{gen_length}.jsonl` and `eval_config.json`.
    """
    settings, rows = _check_request(task, gen_lengths, decoding, batch_size, prompt_style, data, limit)
    state = process_state()
    log = print if (verbose and state.is_main_process) else (lambda *_: None)
    check_eval_folder(output_dir)  # a folder that is not an eval folder is refused before the model loads
    loaded = _load_on_device(model, state, model_type, trust_remote_code, dtype)
    style, prompts, mine, prompt_ids = _prompts(state, loaded, task, rows, prompt_style, data, prefill, settings)
    out_dir = Path(output_dir)
    entry = _record_entry(
        model,
        loaded,
        task,
        data,
        rows,
        limit,
        style,
        prompt_style,
        prefill,
        settings,
        batch_size,
        seed,
        state.num_processes,
    )
    if state.is_main_process:  # one model's generations per folder, or `gift score` mixes models
        claim_eval_folder(output_dir, model_identity(model, loaded))
        merged_record(out_dir / CONFIG_NAME, task, entry)  # other settings beside these files: refused now

    generated = (loaded, prompt_ids, prompts, mine, rows)
    paths, timings, mean_calls = _generate_files(state, task, settings, generated, batch_size, seed, out_dir, log)
    if state.is_main_process:
        entry = {**entry, "seconds": timings, "model_calls_per_sequence": mean_calls, "files": [p.name for p in paths]}
        _update_config(out_dir, task, merged_record(out_dir / CONFIG_NAME, task, entry))
    state.wait_for_everyone()
    return paths


def _prompts(state, loaded, task: str, rows, prompt_style: str, data, prefill, settings):
    """The prompt style, the prompts, this process's share and their ids, checked to fit the model's positions."""
    style = resolve_prompt_style(prompt_style, loaded.adapter.kind, data)
    prompts = build_prompts(task, rows, style)
    mine, prompt_ids = _encode_my_prompts(state, loaded.tokenizer, prompts, prefill)
    _check_fits(loaded, prompt_ids, settings)
    return style, prompts, mine, prompt_ids


def _generate_files(state, task: str, settings, generated, batch_size: int, seed: int, out_dir: Path, log):
    """One `{task}_{gen_length}.jsonl` per decoding setting; returns the paths, seconds and model calls per
    sequence by gen_length."""
    loaded, prompt_ids, prompts, mine, rows = generated
    paths, timings, mean_calls = [], {}, {}
    for decode in settings:
        started = time.perf_counter()
        texts, calls = _generate(loaded, prompt_ids, decode, batch_size, seed, mine, log) if mine else ([], [])
        records = _gather_records(state, task, decode.gen_length, rows, prompts, mine, texts, calls)
        timings[decode.gen_length] = round(time.perf_counter() - started, 2)
        mean_calls[decode.gen_length] = round(sum(r["model_calls"] for r in records) / max(len(records), 1), 3)
        path = out_dir / f"{task}_{decode.gen_length}.jsonl"
        paths.append(_write_generations(state, path, records, timings[decode.gen_length], log))
    return paths, timings, mean_calls


def _record_entry(
    model,
    loaded,
    task: str,
    data: str | None,
    rows,
    limit: int | None,
    style: str,
    prompt_style: str,
    prefill: str | None,
    settings,
    batch_size: int,
    seed: int,
    num_processes: int,
) -> dict[str, Any]:
    """The task's `eval_config.json` record of this run, before its timings."""
    return {
        "model": loaded.source or str(model if isinstance(model, (str, os.PathLike)) else "in-memory"),
        "model_type": loaded.adapter.kind,
        "task": task,
        "data": data or get_task(task).hub_test_set,
        "n": len(rows),
        "protocol_size": get_task(task).protocol_size,
        "limit": limit,
        "prompt_style": style,
        "prompt_style_requested": prompt_style,
        "prefill": prefill,
        "decoding": [decode_record(d) for d in settings],
        "batch_size": batch_size,
        "seed": seed,
        "num_processes": num_processes,
        "files": [f"{task}_{d.gen_length}.jsonl" for d in settings],
    }


def _write_generations(state, path: Path, records: Sequence[dict[str, Any]], seconds: float, log) -> Path:
    """The main process writes one generation file atomically; every process gets its path back."""
    if state.is_main_process:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_jsonl(path, records)
        log(f"{path}: {len(records)} completions in {seconds}s")
    return path


def _check_request(
    task: str,
    gen_lengths: Sequence[int],
    decoding: dict[str, Any],
    batch_size: int,
    prompt_style: str,
    data: str | None,
    limit: int | None,
) -> tuple[list[SamplerConfig], list[dict]]:
    """The resolved decode settings and the test rows; an `EvalError` before any model is loaded."""
    check_task(task)
    settings = resolve_decoding(gen_lengths, **decoding)
    if batch_size <= 0:
        raise EvalError(f"--batch_size must be positive, got {batch_size}")
    if prompt_style not in PROMPT_STYLES:
        raise EvalError(f"unknown prompt style {prompt_style!r}; choose one of {', '.join(PROMPT_STYLES)}")
    rows = load_eval_rows(task, data, limit)
    if not rows:
        raise EvalError(f"{task}: no test rows in {data or 'the hub set'}")
    return settings, rows


def _encode_my_prompts(
    state, tokenizer, prompts: Sequence[str], prefill: str | None
) -> tuple[list[int], list[list[int]]]:
    """This process's contiguous share of the example indices and their encoded chat prompts."""
    from gift.sampler import encode_chat_prompts

    with state.split_between_processes(list(range(len(prompts)))) as mine:
        mine = list(mine)
    return mine, (encode_chat_prompts(tokenizer, [prompts[i] for i in mine], prefill) if mine else [])


def _load_on_device(model, state, model_type: str | None, trust_remote_code: bool, dtype: str):
    """A `LoadedModel` as given, or the one a source names, moved to this process's device."""
    if not isinstance(model, (str, os.PathLike)):
        return model
    loaded = load(str(model), model_type, trust_remote_code, dtype)
    loaded.model.to(state.device)
    return loaded


def _gather_records(
    state,
    task: str,
    gen_length: int,
    rows: Sequence[dict[str, Any]],
    prompts: Sequence[str],
    mine: Sequence[int],
    texts: Sequence[str],
    calls: Sequence[int],
) -> list[dict[str, Any]]:
    """This process's completions as JSONL records, gathered from every process in example order."""
    from accelerate.utils import gather_object

    columns = get_task(task).columns
    records = [
        {
            "task": task,
            "gen_length": gen_length,
            "index": i,
            "prompt": prompts[i],
            "completion": text,
            "model_calls": n_calls,
            **{c: rows[i][c] for c in columns},
        }
        for i, text, n_calls in zip(mine, texts, calls)
    ]
    if state.num_processes > 1:
        records = gather_object(records)
    return merge_gathered(records, len(rows))


def load(source: str, model_type: str | None = None, trust_remote_code: bool = False, dtype: str = "auto"):
    """`gift.checkpoint.load_model` with `dtype` by name (`auto`: bfloat16 on CUDA, float32 otherwise)."""
    from gift.checkpoint import load_model

    if dtype not in DTYPES:
        raise EvalError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return load_model(source, model_type, trust_remote_code, dtype)


# --------------------------------------------------------------------------- command line


def make_parser() -> argparse.ArgumentParser:
    from gift.model_options import add_model_arguments
    from gift.sampler_options import add_sampler_arguments

    parser = argparse.ArgumentParser(
        prog="gift eval", description="Generate completions for a task (d1 protocol) into TASK_GENLEN.jsonl files."
    )
    add_model_arguments(parser)
    parser.add_argument("--task", required=True, help=f"one of {', '.join(sorted(TASKS))}")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--gen_length", type=int, nargs="+", default=list(D1_GEN_LENGTHS))
    parser.add_argument(
        "--steps", type=int, default=None, help="denoising steps for every gen_length (default gen_length/2)"
    )
    add_sampler_arguments(parser, skip=("gen_length", "steps"))  # block_length: the sampler's default, d1's 32
    parser.add_argument("--batch_size", type=int, default=8, help="prompts per forward batch, per process")
    parser.add_argument("--limit", type=int, default=None, help="first N test examples only")
    parser.add_argument(
        "--data",
        default=None,
        help="local file for the task's loader, or 'synthetic' "
        "(Sudoku/Countdown test rows of rewards/data/synthetic.py)",
    )
    parser.add_argument(
        "--prompt_style",
        default="auto",
        choices=PROMPT_STYLES,
        help="auto: compact for an embedded model on --data synthetic, d1 otherwise",
    )
    parser.add_argument("--no_prefill", action="store_true", help=f"do not prefill {REASONING_PREFILL!r}")
    parser.add_argument("--dtype", default="auto", choices=DTYPES)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> list[Path]:
    """`gift eval --model CKPT --task TASK --output_dir DIR [--gen_length 128 256 512] [--limit N] ...`."""
    from gift.adapters import ModelLoadError
    from gift.sampler_options import sampler_options

    args = make_parser().parse_args(argv)
    try:
        sampler = {name: getattr(args, name) for name in sampler_options() if name != "gen_length"}
        paths = evaluate(
            args.model,
            args.task,
            args.gen_length,
            output_dir=args.output_dir,
            **sampler,
            batch_size=args.batch_size,
            data=args.data,
            limit=args.limit,
            prompt_style=args.prompt_style,
            prefill=None if args.no_prefill else REASONING_PREFILL,
            seed=args.seed,
            model_type=args.model_type,
            trust_remote_code=args.trust_remote_code,
            dtype=args.dtype,
            verbose=True,
        )
    except (EvalError, ModelLoadError, FileNotFoundError) as err:
        raise SystemExit(f"gift eval: error: {err}") from None
    if process_state().is_main_process:
        for path in paths:
            print(f"wrote {path}")
    return paths


if __name__ == "__main__":
    main(sys.argv[1:])
