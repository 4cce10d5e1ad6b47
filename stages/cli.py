"""The `gift` command: one entry point, one module per subcommand (imported only when used).

    gift init-model --output_dir models/base [--preset tiny]
    gift cold-start --config configs/embedded/gift_sudoku.yaml [--key value ...]
    gift merge --checkpoint runs/gift --output_dir runs/gift-merged
    gift convert --model GSAI-ML/LLaDA-8B-Instruct --output_dir models/llada-8b-instruct
    gift eval --model runs/gift --task sudoku --output_dir runs/gift/eval && gift score runs/gift/eval
    gift rl --config configs/embedded/grpo_sudoku.yaml --model runs/gift --output_dir runs/gift-rl
    gift pipeline --config configs/embedded/pipeline.yaml

Errors are one line, `gift <cmd>: error: <what, where, how to fix>`, exit code 2 for usage errors (bad
option, bad config) and 1 for runtime ones; `--debug` (or GIFT_DEBUG=1) shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from pathlib import Path

# name -> (module with main(argv), one-line help)
COMMANDS = {
    "init-model": ("stages.model_commands:init_model_main", "write a fresh embedded model + tokenizer"),
    "cold-start": ("stages.train.cold_start:main", "stage one: GIFT or masked-diffusion SFT"),
    "merge": ("stages.model_commands:merge_main", "merge a LoRA checkpoint into full weights"),
    "convert": ("stages.model_commands:convert_main", "write an official-layout LLaDA/Dream checkpoint in native form"),
    "eval": ("stages.evaluation.evaluate:main", "generate completions for a task (d1 protocol) into JSONL"),
    "score": ("stages.evaluation.score:main", "score generation JSONL files into an accuracy table"),
    "rl": ("stages.train.rl:main", "stage two: diffu-GRPO from a stage-one checkpoint"),
    "pipeline": ("stages.pipeline:main", "both stages for every arm and seed, evaluation, figure, report"),
    "curves": ("stages.reports.curves:main", "reward curves (raw + time-weighted EMA) from metrics.jsonl files"),
    "entropy-report": ("stages.reports.entropy_report:main", "which tokens the probe finds high or low entropy"),
    "render-readme": ("stages.reports.readme_results:main", "render the README's embedded results from a results file"),
}


class UsageError(ValueError):
    """A mistake in the command line or the config file (exit code 2)."""


# A negative number as an option's value: argparse takes `-1e-3` for an option and `-5` only sometimes.
_NEGATIVE_NUMBER = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|-inf|-nan", re.IGNORECASE)


def join_negative_values(argv: list[str]) -> list[str]:
    """`--learning_rate -1e-3` -> `--learning_rate=-1e-3`, so it parses as users type it."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" not in arg and i + 1 < len(argv) and _NEGATIVE_NUMBER.fullmatch(argv[i + 1]):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def non_utf8_message(path: str | Path, data: bytes | None = None) -> str | None:
    """`PATH:LINE: not UTF-8 text (byte 0x.. at column C)` for the file's first undecodable byte, or None."""
    data = Path(path).read_bytes() if data is None else data
    try:
        data.decode("utf-8")
        return None
    except UnicodeDecodeError as bad:
        line, line_start = data.count(b"\n", 0, bad.start) + 1, data.rfind(b"\n", 0, bad.start) + 1
        return f"{path}:{line}: not UTF-8 text (byte 0x{data[bad.start]:02x} at column {bad.start - line_start + 1})"


def _check_config_file(argv: list[str]) -> None:
    """`--config PATH`: exists, is UTF-8 text and a YAML mapping; errors name the file and line."""
    import yaml

    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.partition("=")[2]
    if path is None:
        return
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--config {path}: {'is a directory' if file.is_dir() else 'no such file'}")
    data = file.read_bytes()
    bad = non_utf8_message(path, data)
    if bad:
        raise UsageError(f"{bad}; a config is a YAML file")
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise UsageError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise UsageError(f"{path}: expected a YAML mapping of option: value, got {type(loaded).__name__}")


def _name_non_utf8_argument(args: list[str]) -> ValueError | None:
    """A UnicodeDecodeError carries no file name: find the file among the arguments that is not UTF-8."""
    for arg in args:
        path = Path(arg.partition("=")[2] if arg.startswith("--") else arg)
        try:
            bad = non_utf8_message(path) if path.is_file() and path.stat().st_size <= 2**28 else None
        except OSError:
            continue
        if bad:
            return ValueError(f"{bad}; save it as UTF-8")
    return None


def _merge_recipe_base(argv: list[str]) -> list[str]:
    """A `--config` recipe that names a `base` recipe is handed to the parser merged (stages.train.recipes)."""
    from stages.train.recipes import materialize

    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--config" and i + 1 < len(out):
            out[i + 1] = materialize(out[i + 1])
        elif arg.startswith("--config="):
            out[i] = "--config=" + materialize(arg.partition("=")[2])
    return out


def config_parser(config_class: type):
    """The parser of a stage config: `--key value` options and a `--config` YAML file (trl's `TrlParser`)."""
    from trl import TrlParser

    return TrlParser(config_class)


def parse_config(parser, argv: list[str] | None):
    """`TrlParser.parse_args_and_config` whose config mistakes (unknown key, bad value, failed validation,
    missing/unreadable config file) are `UsageError`s."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    _check_config_file(argv)
    argv = _merge_recipe_base(argv)
    try:
        (config,) = parser.parse_args_and_config(argv)
    except UsageError:
        raise
    except (ValueError, TypeError, OSError) as err:
        unused = re.match(r"Some specified arguments are not used by the HfArgumentParser: (.*)", str(err))
        from_file = re.match(r"Unknown arguments from config file: \[(.*)\]\.", str(err))
        if from_file:  # trl's wording for an unknown key in the YAML file
            keys = [k.strip("'\"")[2:] for k in from_file.group(1).split(", ") if k.strip("'\"").startswith("--")]
            config = next((a.partition("=")[2] or b for a, b in zip(argv, argv[1:] + [""]) if a.split("=")[0] == "--config"), "")
            raise UsageError(f"{config}: unknown key(s) {', '.join(keys)}; remove them (--help lists the options)") from err
        if unused:  # HF's wording for an unknown option
            raise UsageError(f"unknown option(s) {unused.group(1)}; --help lists the options") from err
        raise UsageError(str(err)) from err
    return config


def describe_error(err: BaseException) -> str:
    """One line for an exception: the message (an OSError: its file and reason); an unexpected exception
    type (a bug rather than a user mistake) is named, with the way to see its traceback."""
    from stages.train.run_dir import RunDirError

    if isinstance(err, UnicodeDecodeError):
        text = f"not UTF-8 text ({err.reason} at byte {err.start})"
    elif isinstance(err, OSError) and err.strerror:
        text = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    else:
        text = str(err) or type(err).__name__
    text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    if not isinstance(err, (OSError, ValueError, RunDirError)):
        text = f"{type(err).__name__}: {text} (rerun with --debug for the traceback)"
    return text


def _raise_usage(self, message: str):  # replaces ArgumentParser.error: no multi-line usage dump
    raise UsageError(message)


def _setup_logging(level: int = logging.INFO) -> list[tuple[logging.Logger, logging.Handler, int]]:
    """This project's INFO lines (resume decisions, plain base models...) on stderr; undone after the call."""
    added = []
    for name in ("gift", "stages"):
        log = logging.getLogger(name)
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            added.append((log, handler, log.level))
            log.addHandler(handler)
            log.setLevel(level)
    return added


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = argparse.ArgumentParser(prog="gift", description="GIFT / diffu-GRPO training stack for diffusion LMs")
        parser.add_argument("command", choices=list(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
        parser.parse_args(argv[:1] or ["--help"])
        return 2
    command = argv[0]
    debug = "--debug" in argv[1:] or os.environ.get("GIFT_DEBUG", "") not in ("", "0")
    args = join_negative_values([a for a in argv[1:] if a != "--debug"])
    module, _, func = COMMANDS[command][0].partition(":")
    sys.argv = [f"gift {command}", *args]  # so argparse/TrlParser usage lines name the subcommand
    handlers = _setup_logging(logging.WARNING if command == "pipeline" else logging.INFO)  # one line per step there
    original_error = argparse.ArgumentParser.error
    if not debug:
        argparse.ArgumentParser.error = _raise_usage
    try:
        _check_config_file(args)  # every subcommand's --config: exists, UTF-8, a YAML mapping
        getattr(importlib.import_module(module), func)(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"gift {command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exit_:  # help (0), or a subcommand's own one-line error (a string, code 1)
        if isinstance(exit_.code, str):
            named = _name_non_utf8_argument(args) if "can't decode byte" in exit_.code else None
            print(f"gift {command}: error: {named}" if named else exit_.code, file=sys.stderr)
            return 1
        return exit_.code or 0
    except Exception as err:
        if debug:
            raise
        if isinstance(err, UnicodeDecodeError):
            err = _name_non_utf8_argument(args) or err
        print(f"gift {command}: error: {describe_error(err)}", file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    finally:
        argparse.ArgumentParser.error = original_error
        for log, handler, level in handlers:
            log.removeHandler(handler)
            log.setLevel(level)
    return 0


if __name__ == "__main__":
    from stages.cli import main as imported_main  # one UsageError class: the one the stage modules import

    raise SystemExit(imported_main())
