"""Reading a stage's config from the command line and its `--config` YAML file, for `gift` and the stages.

Shared by `stages.cli` (the entry point) and the training modules, so neither imports the other: one
`UsageError` class (exit code 2), one parser per stage config.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path

from stages.yaml_keys import DuplicateKeyError, load_yaml


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


def check_config_file(argv: list[str]) -> None:
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
        loaded = load_yaml(data.decode("utf-8"), path)
    except DuplicateKeyError as err:
        raise UsageError(str(err)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise UsageError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise UsageError(f"{path}: expected a YAML mapping of option: value, got {type(loaded).__name__}")


def merge_recipe_base(argv: list[str]) -> list[str]:
    """A `--config` recipe that names a `base` recipe is handed to the parser merged (stages.recipes)."""
    from stages.recipes import materialize

    out = list(argv)
    try:
        for i, arg in enumerate(out):
            if arg == "--config" and i + 1 < len(out):
                out[i + 1] = materialize(out[i + 1])
            elif arg.startswith("--config="):
                out[i] = "--config=" + materialize(arg.partition("=")[2])
    except (ValueError, OSError) as err:  # a recipe mistake (its base missing, unreadable, a cycle): usage, exit 2
        raise UsageError(str(err)) from err
    return out


def _config_value(argv: list[str]) -> str:
    """The `--config` path in `argv` ("" if none)."""
    return next((a.partition("=")[2] or b for a, b in zip(argv, argv[1:] + [""]) if a.split("=")[0] == "--config"), "")


def _name_the_config(err: UsageError, argv: list[str], config: str) -> UsageError:
    """argparse's "argument --max_steps/--max-steps: invalid int value: 'lots'" for a value that came from the
    config file (not the command line): the file is named."""
    found = re.match(r"argument --(\w+)[^:]*: (invalid .*)", str(err))
    given = found and any(
        a.split("=")[0] in (f"--{found.group(1)}", f"--{found.group(1).replace('_', '-')}") for a in argv
    )
    if not found or given or not config:
        return err
    return UsageError(f"{config}: {found.group(1)}: {found.group(2)}")


def renamed_keys_message(keys: Iterable[str], renamed: dict[str, str]) -> str | None:
    """`diffusion_steps is now steps, ...` for the given keys a config class renamed (its `RENAMED_KEYS`:
    old name -> new name), or None when none of them was renamed."""
    found = [key for key in sorted(keys) if key in renamed]
    return ", ".join(f"{key} is now {renamed[key]}" for key in found) or None


def config_parser(config_class: type):
    """The parser of a stage config: `--key value` options and a `--config` YAML file (trl's `TrlParser`)."""
    from trl import TrlParser

    return TrlParser(config_class)


def parse_config(parser, argv: list[str] | None):
    """`TrlParser.parse_args_and_config` whose config mistakes (unknown key, bad value, failed validation,
    missing/unreadable config file) are `UsageError`s."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))
    check_config_file(argv)
    given = _config_value(argv)
    merged = merge_recipe_base(argv)
    try:
        (config,) = parser.parse_args_and_config(merged)
    except UsageError as err:
        raise _name_the_config(err, argv, given) from err
    except (ValueError, TypeError, OSError) as err:
        unused = re.match(r"Some specified arguments are not used by the HfArgumentParser: (.*)", str(err))
        from_file = re.match(r"Unknown arguments from config file: \[(.*)\]\.", str(err))
        if from_file:  # trl's wording for an unknown key in the YAML file
            keys = [k.strip("'\"")[2:] for k in from_file.group(1).split(", ") if k.strip("'\"").startswith("--")]
            config = next(
                (a.partition("=")[2] or b for a, b in zip(argv, argv[1:] + [""]) if a.split("=")[0] == "--config"), ""
            )
            renamed = renamed_keys_message(keys, getattr(parser.dataclass_types[0], "RENAMED_KEYS", {}))
            advice = f"renamed: {renamed}" if renamed else "remove them (--help lists the options)"
            raise UsageError(f"{config}: unknown key(s) {', '.join(keys)}; {advice}") from err
        if unused:  # HF's wording for an unknown option
            raise UsageError(f"unknown option(s) {unused.group(1)}; --help lists the options") from err
        raise UsageError(str(err)) from err
    finally:
        if _config_value(merged) != given:  # the merged copy of a recipe with `base:`: not left in the temp folder
            Path(_config_value(merged)).unlink(missing_ok=True)
    return config
