"""Answer extraction that survives real model output.

Every function here takes arbitrary text (empty, megabytes long, unbalanced, unicode) and returns in
time linear in its length; none raises on bad text. Nothing here evaluates model text.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

REASONING_OPEN = "<reasoning>"
REASONING_CLOSE = "</reasoning>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

# A number token longer than this is not an answer anyone means; it also keeps int() and Fraction
# away from the interpreter's 4,300-digit limit.
MAX_NUMBER_DIGITS = 40
# How many `\boxed` occurrences (from the end) we try before giving up on unbalanced ones.
_MAX_BOXED_TRIES = 4
_BOXED_COMMANDS = ("\\boxed", "\\fbox")


def completion_text(completion: Any) -> str:
    """The text of one completion: a string, a message dict, or a list of chat messages.

    For a message list the assistant messages are joined (all messages if none is marked assistant),
    since trl passes `[{"role": "assistant", "content": ...}]` for conversational data.
    """
    if isinstance(completion, str):
        return completion
    if completion is None:
        return ""
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        if not messages:
            return "".join(m for m in completion if isinstance(m, str))
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        return "".join(_content_text(m.get("content")) for m in assistant)
    return str(completion)


def _content_text(content: Any) -> str:
    # Message content is a string, or (multimodal chat format) a list of {"type": "text", "text": ...}.
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return "" if content is None else str(content)


def answer_block(text: str) -> str | None:
    """Content of the last `<answer>` block, stripped; an unclosed final `<answer>` runs to the end.

    None when there is no `<answer>` tag at all.
    """
    start = text.rfind(ANSWER_OPEN)
    if start < 0:
        return None
    start += len(ANSWER_OPEN)
    end = text.find(ANSWER_CLOSE, start)
    return (text[start:end] if end >= 0 else text[start:]).strip()


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (or `\\fbox{...}`, or `\\boxed 5`), nested braces allowed.

    An unbalanced last box is skipped in favour of an earlier balanced one (a few tries at most).
    """
    end = len(text)
    for _ in range(_MAX_BOXED_TRIES):
        pos, command = -1, ""
        for cmd in _BOXED_COMMANDS:
            i = text.rfind(cmd, 0, end)
            if i > pos:
                pos, command = i, cmd
        if pos < 0:
            return None
        content = _argument_after(text, pos + len(command))
        if content is not None:
            return content.strip()
        end = pos
    return None


def _argument_after(text: str, i: int) -> str | None:
    """The braced argument starting at text[i] (after spaces), or a bare token for `\\boxed 5`."""
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None
    if text[i] != "{":
        if text[i - 1] not in " \t":  # `\boxedx` is another command, not a box
            return None
        j = i
        while j < n and not text[j].isspace() and text[j] not in "$<":
            j += 1
        return text[i:j] or None
    depth, j = 0, i
    while j < n:
        ch = text[j]
        if ch == "\\":  # `\{` and `\}` are literal braces (sets), not grouping
            j += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
        j += 1
    return None


def has_tags_in_order(text: str) -> bool:
    """`<reasoning> ... </reasoning>` then (whitespace only) `<answer> ... </answer>`.

    Only whitespace may precede `<reasoning>`. A completion with no opening `<reasoning>` is read as if
    the evaluation prefill (`<reasoning>`) preceded it. Linear scan, no backtracking regex.
    """
    start = text.find(REASONING_OPEN)
    if start >= 0:
        if text[:start].strip():
            return False
        start += len(REASONING_OPEN)
    else:
        start = 0
    close = text.find(REASONING_CLOSE, start)
    if close < 0:
        return False
    k = close + len(REASONING_CLOSE)
    while k < len(text) and text[k].isspace():
        k += 1
    if not text.startswith(ANSWER_OPEN, k):
        return False
    return text.find(ANSWER_CLOSE, k + len(ANSWER_OPEN)) >= 0


# --- numbers -----------------------------------------------------------------------------------

# `\frac{a}{b}`, `\dfrac{a}{b}`, `\tfrac{a}{b}` with numeric arguments, and the short `\frac12`.
_LATEX_FRAC = re.compile(
    r"\\[dt]?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}|\\[dt]?frac\s*(\d)\s*(\d)"
)
# Thousands separators: a comma between a digit and exactly three digits. Fixed-width lookarounds
# only, so this is linear even on "1,111,111,...".
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# A number, optionally a simple fraction a/b. The sign is decided separately (see _signed).
_NUMBER = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(?:/(\d+(?:\.\d+)?))?")
_LATEX_NOISE = re.compile(r"\\[!,;: ]|\{,\}")


def _normalise_numeric_text(text: str) -> str:
    text = text.replace("\u2212", "-")  # unicode minus
    text = _LATEX_NOISE.sub(lambda m: "," if m.group(0) == "{,}" else "", text)
    text = _LATEX_FRAC.sub(_frac_to_slash, text)
    return _THOUSANDS.sub("", text)


def _frac_to_slash(m: re.Match[str]) -> str:
    num = m.group(1) if m.group(1) is not None else m.group(3)
    den = m.group(2) if m.group(2) is not None else m.group(4)
    # Minus signs inside the braces become one sign in front, so "a/b" stays one number token.
    negative = num.startswith("-") != den.startswith("-")
    return ("-" if negative else "") + f"{num.lstrip('-')}/{den.lstrip('-')} "


def _signed(text: str, m: re.Match[str]) -> bool:
    """True when a '-' right before the number is a sign, not a subtraction ("10-5", "(3)-5")."""
    i = m.start()
    if i == 0 or text[i - 1] != "-":
        return False
    j = i - 2
    while j >= 0 and text[j] == " ":
        j -= 1
    return j < 0 or not (text[j].isdigit() or text[j] in ")]}")


def _to_fraction(num: str, den: str | None) -> Fraction | None:
    if len(num) > MAX_NUMBER_DIGITS or (den is not None and len(den) > MAX_NUMBER_DIGITS):
        return None
    value = Fraction(num)
    if den is not None:
        d = Fraction(den)
        if d == 0:
            return None
        value /= d
    return value


def last_number(text: str) -> Fraction | None:
    """The last number in `text` as an exact Fraction, or None.

    Reads "1,234", "$18", "18 eggs", "18.", "18.0", "-5", "1/2", "\\frac{1}{2}", "\\dfrac12", "50%".
    """
    text = _normalise_numeric_text(text)
    last = next(reversed(list(_NUMBER.finditer(text))), None)
    if last is None:
        return None
    value = _to_fraction(last.group(1), last.group(2))
    if value is None:
        return None
    return -value if _signed(text, last) else value


_INTEGER = re.compile(r"-?\d+")


def is_integer_text(text: str) -> bool:
    """True when the answer is written as a bare integer ("18", "-3", "1,234", "$18", "18.")."""
    s = text.strip()
    boxed = last_boxed(s) if "\\" in s else None
    if boxed is not None:
        s = boxed
    s = s.strip().strip("$").strip().rstrip(".").replace("\u2212", "-")
    if len(s) > MAX_NUMBER_DIGITS + 20:
        return False
    return _INTEGER.fullmatch(_THOUSANDS.sub("", s)) is not None


# What d1's prompts show as the box's content (`\\boxed{...}`) and an empty box are not answers.
_PLACEHOLDER = re.compile(r"[\s.]*")
_PLACEHOLDER_BOX = re.compile(r"\\boxed\s*\{[\s.]*\}")


def final_answer(text: str) -> str | None:
    """The evaluation protocol's answer: the last `\\boxed{}` in the text, else the answer block.

    A box holding nothing or only dots (the prompt's `\\boxed{...}` template, `\\boxed{}101`) is
    passed over for the answer block, and removed from it.
    """
    boxed = last_boxed(text)
    if boxed is not None and not _PLACEHOLDER.fullmatch(boxed):
        return boxed
    block = answer_block(text)
    return None if block is None else _PLACEHOLDER_BOX.sub("", block).strip()
