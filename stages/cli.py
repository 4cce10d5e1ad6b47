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
import signal
import sys
import threading
from pathlib import Path

from stages.config_args import UsageError, check_config_file, join_negative_values, non_utf8_message
from stages.runs.stop_signals import Terminated, raise_on_termination

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


def describe_error(err: BaseException) -> str:
    """One line for an exception: the message (an OSError: its file and reason); an unexpected exception
    type (a bug rather than a user mistake) is named, with the way to see its traceback."""
    from stages.runs.folder import RunDirError

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


def _on_termination_raise() -> dict:
    """SIGTERM / SIGHUP raise `Terminated` for the command's duration; returns the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    before = {
        getattr(signal, n): signal.getsignal(getattr(signal, n)) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)
    }
    raise_on_termination()
    return before


def _end_now(code: int) -> None:
    """End a stopped command at once: its locks are released and its files closed by now, and the interpreter's
    teardown of torch and friends takes seconds on a busy machine (a stopped pipeline must be gone within 5 s)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _working_directory_exists(command: str) -> bool:
    """False (said in one line) when the working directory was deleted: torch's libraries would fail to load from
    it with an MKL message."""
    try:
        os.getcwd()
    except FileNotFoundError:
        print(
            f"gift {command}: error: the working directory no longer exists (deleted or moved); cd into an "
            "existing folder and rerun",
            file=sys.stderr,
        )
        return False
    return True


def _stopped(command: str, stop: KeyboardInterrupt, as_program: bool) -> int:
    """Ctrl-C, SIGTERM or SIGHUP (locks already released on the way out): one line, and the exit code."""
    if isinstance(stop, Terminated):
        print(
            f"gift {command}: stopped by {stop.signal_name}; a training run resumes with --resume, "
            "a pipeline by running it again",
            file=sys.stderr,
        )
    else:
        print(f"gift {command}: interrupted", file=sys.stderr)
    code = stop.exit_code if isinstance(stop, Terminated) else 130
    if as_program:
        _end_now(code)
    return code


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None  # `gift ...` itself, not a call from Python: a stop may end the process
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = argparse.ArgumentParser(prog="gift", description="GIFT / diffu-GRPO training stack for diffusion LMs")
        parser.add_argument(
            "command", choices=list(COMMANDS), help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items())
        )
        parser.parse_args(argv[:1] or ["--help"])
        return 2
    command = argv[0]
    if not _working_directory_exists(command):
        return 1
    debug = "--debug" in argv[1:] or os.environ.get("GIFT_DEBUG", "") not in ("", "0")
    args = join_negative_values([a for a in argv[1:] if a != "--debug"])
    module, _, func = COMMANDS[command][0].partition(":")
    sys.argv = [f"gift {command}", *args]  # so argparse/TrlParser usage lines name the subcommand
    handlers = _setup_logging(logging.WARNING if command == "pipeline" else logging.INFO)  # one line per step there
    original_error = argparse.ArgumentParser.error
    if not debug:
        argparse.ArgumentParser.error = _raise_usage
    handlers_before = _on_termination_raise()
    try:
        check_config_file(args)  # every subcommand's --config: exists, UTF-8, a YAML mapping
        getattr(importlib.import_module(module), func)(args)
    except KeyboardInterrupt as stop:
        if debug:
            raise
        return _stopped(command, stop, as_program)
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
        for signum, handler in handlers_before.items():
            signal.signal(signum, handler)
        argparse.ArgumentParser.error = original_error
        for log, handler, level in handlers:
            log.removeHandler(handler)
            log.setLevel(level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
