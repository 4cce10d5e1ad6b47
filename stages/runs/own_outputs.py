"""Commands that write beside a user's files (`gift score`, `gift curves`) overwrite only files they wrote
themselves: an existing file under one of their output names is recognised by its content (the header or
keys the command writes), and any other file is refused before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from stages.runs.folder import RunDirError


class NotOurFileError(RunDirError):
    """An output name that holds a file this command did not write."""


def first_line_is(header: str) -> Callable[[Path], bool]:
    """A recogniser: the file's first line is `header` (a CSV this tool writes)."""

    def check(path: Path) -> bool:
        with open(path, "rb") as handle:
            return handle.readline().rstrip(b"\r\n") == header.encode()

    return check


def json_with_keys(*keys: str) -> Callable[[Path], bool]:
    """A recogniser: a JSON object holding every one of `keys`."""

    def check(path: Path) -> bool:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(data, dict) and all(k in data for k in keys)

    return check


def text_containing(*phrases: str) -> Callable[[Path], bool]:
    """A recogniser: a UTF-8 text (its first 64 KB) holding every one of `phrases`."""

    def check(path: Path) -> bool:
        with open(path, "rb") as handle:
            head = handle.read(65536)
        return all(p.encode() in head for p in phrases)

    return check


def refuse_foreign_outputs(outputs: dict[Path, Callable[[Path], bool]], command: str, option: str) -> None:
    """Refuse (`NotOurFileError`, nothing written) the first output name that holds a file `command` did not write."""
    for path, is_ours in outputs.items():
        if path.is_dir() or (path.exists() and not _safe(is_ours, path)):
            raise NotOurFileError(
                f"{path}: exists and was not written by {command}; nothing was written: move it, "
                f"or choose another {option}"
            )


def _safe(is_ours: Callable[[Path], bool], path: Path) -> bool:
    try:
        return bool(is_ours(path))
    except OSError:
        return False
