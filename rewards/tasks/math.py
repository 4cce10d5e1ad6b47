"""MATH-500 (d1): competition problems graded by the boxed answer; the hub's test set. The whole task in one
module: correctness by mathematical equivalence (math-verify) plus a format reward, the metric, d1's prompt,
the loader, and the `Task` the registry lists.

math-verify (and sympy behind it) is imported on first use. Its work is bounded three ways: a cheap
pre-check refuses long or explosive answers (exponent towers, huge factorials, deep nesting), its own
signal-based timeouts (main thread only) interrupt slow parses and comparisons, and any failure falls
back to a normalised string comparison.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from rewards.columns import accuracy, judge_answers, texts
from rewards.data import loaders
from rewards.data.files import field
from rewards.extract import answer_block, final_answer, has_tags_in_order, last_boxed
from rewards.tasks.task import D1_BOXED_FORMAT, Row, Task, column

# --- Rules: rewards and metric ---------------------------------------------------------------------------------------

NAME = "math"  # the task name the column errors carry
COLUMNS = ("answer",)
CORRECT_REWARD = 2.0
FORMAT_REWARD = 0.5
MAX_ANSWER_CHARS = 300
MAX_NESTING = 10
TIMEOUT_SECONDS = 1  # math-verify takes whole seconds (signal.alarm)


# --- normalised string comparison (the fallback) ----------------------------------------------

_TEXT_COMMANDS = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_DROP = re.compile(r"\\left|\\right|\\displaystyle|\\[!,;: ]|\^\s*\{?\\circ\}?|\\%|%|\$|\s+")
_NUMBER = re.compile(r"-?(\d+(\.\d+)?|\.\d+)(/\d+)?")


def normalise(answer: str) -> str:
    """A canonical spelling for string comparison: spaces, `\\left`, `$`, `\\text{}`, dfrac, degrees."""
    s = _TEXT_COMMANDS.sub(r"\1", answer)
    s = _DROP.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", s)
    return s.rstrip(".")


def _as_number(s: str) -> Fraction | None:
    s = re.sub(r"\\frac\{(-?\d+)\}\{(\d+)\}", r"\1/\2", s)
    if len(s) > 40 or not _NUMBER.fullmatch(s):
        return None
    try:
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def strings_equal(predicted: str, reference: str) -> bool:
    """Normalised strings equal, or both plain numbers with equal value."""
    a, b = normalise(predicted), normalise(reference)
    if a and a == b:
        return True
    x, y = _as_number(a), _as_number(b)
    return x is not None and x == y


# --- the pre-check ----------------------------------------------------------------------------

_BIG_EXPONENT = re.compile(r"(?:\^|\*\*)\s*[{(]?\s*[-+]?\d{4,}")
_CHAINED_POWER = re.compile(r"(?:\^|\*\*)\s*[-+]?\d+\s*(?:\^|\*\*)")
_BIG_FACTORIAL = re.compile(r"\d{4,}\s*[)}]*\s*!")


def too_risky(answer: str) -> bool:
    """Answers math-verify should not see: long, deeply nested, exponent towers, huge factorials."""
    if len(answer) > MAX_ANSWER_CHARS or _nesting(answer) > MAX_NESTING:
        return True
    if _BIG_EXPONENT.search(answer) or _CHAINED_POWER.search(answer) or _BIG_FACTORIAL.search(answer):
        return True
    return _exponent_holds_power(answer)


def _nesting(s: str) -> int:
    depth = deepest = 0
    for ch in s:
        if ch in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")}]":
            depth -= 1
    return deepest


def _exponent_holds_power(s: str) -> bool:
    """`a^{...^...}` or `a**(...**...)`: a tower, whose value sympy may try to compute."""
    for m in re.finditer(r"\^\s*\{|\*\*\s*\(", s):
        open_ch, close_ch = ("{", "}") if s[m.end() - 1] == "{" else ("(", ")")
        depth, j = 1, m.end()
        while j < len(s) and depth:
            depth += {open_ch: 1, close_ch: -1}.get(s[j], 0)
            j += 1
        inner = s[m.end() : j]
        if "^" in inner or "**" in inner:
            return True
    return False


# --- math-verify ------------------------------------------------------------------------------


def _timeout() -> int | None:
    # math-verify's timeouts use signal.alarm, which only works in the main thread; elsewhere the
    # pre-check is the only bound.
    return TIMEOUT_SECONDS if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=1)
def _math_verify() -> Any:
    try:
        import math_verify
    except ImportError:
        return None
    return math_verify


@functools.lru_cache(maxsize=4096)
def _parse_reference(reference: str, timeout: int | None) -> Any:
    return _math_verify().parse("\\boxed{" + reference + "}", parsing_timeout=timeout)


def verify_equal(predicted: str, reference: str) -> bool:
    """math-verify's verdict; False when it is unavailable, fails or times out."""
    mv = _math_verify()
    if mv is None:
        return False
    timeout = _timeout()
    try:
        gold = _parse_reference(reference, timeout)
        pred = mv.parse("\\boxed{" + predicted + "}", parsing_timeout=timeout)
        return bool(gold and pred and mv.verify(gold, pred, timeout_seconds=timeout))
    except Exception:  # math-verify's own errors, timeouts, sympy surprises: not equal
        return False


def answers_equal(predicted: str, reference: str) -> bool:
    """String match first (cheap), then math-verify unless the pre-check refuses the input."""
    if strings_equal(predicted, reference):
        return True
    if too_risky(predicted) or too_risky(reference):
        return False
    return verify_equal(predicted, reference)


def is_correct(text: str, answer: Any) -> bool:
    """The last `\\boxed{}` (else the answer block) is equivalent to the reference answer."""
    predicted = final_answer(text)
    if not predicted:
        return False
    reference = str(answer)
    boxed = last_boxed(reference) if "\\boxed" in reference else None
    return answers_equal(predicted, boxed if boxed is not None else reference)


def math_correctness_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """2.0 when the final answer is mathematically equal to the reference, else 0.0. Range {0, 2}."""
    return [CORRECT_REWARD if right else 0.0 for right in judge_answers(NAME, columns, completions, is_correct)]


def math_format_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """0.5 when the tags are in order and the answer block holds a balanced `\\boxed{}`.
    Range {0, 0.5}."""
    out = []
    for text in texts(completions):
        block = answer_block(text) if has_tags_in_order(text) else None
        out.append(FORMAT_REWARD if block is not None and last_boxed(block) is not None else 0.0)
    return out


def math_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Accuracy (math-verify equivalence of the last boxed answer) and n."""
    return accuracy(judge_answers(NAME, columns, completions, is_correct))


# --- Data, prompt and the Task ---------------------------------------------------------------------------------------

MATH500_HUB = ("HuggingFaceH4/MATH-500", None)

# d1 eval/math500.py, MATH500_SYSTEM_PROMPT, character for character (the stray `" ` after `</answer>`).
MATH_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}.\n" + D1_BOXED_FORMAT + '" \n'
)


def math_question(problem: str) -> str:
    """d1's MATH-500 question: the dataset's problem, verbatim."""
    return problem


def load_math500(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """MATH-500 rows `{"question", "answer"}` from the fields `problem` and `answer`."""
    rows, source = loaders.source_rows(path, MATH500_HUB, split)
    return [
        {
            "question": math_question(field(row, "problem", source, i)),
            "answer": str(field(row, "answer", source, i)).strip(),
        }
        for i, row in loaders.take(rows, limit)
    ]


def check_ground_truth(row: Row) -> None:
    if not str(row["answer"]).strip():
        raise ValueError("math: empty answer")


TASK = Task(
    name=NAME,
    reward_funcs=(math_correctness_reward, math_format_reward),
    columns=COLUMNS,
    metric=math_metric,
    max_reward=2.5,
    check_ground_truth=check_ground_truth,
    load=load_math500,
    system_prompt=MATH_SYSTEM,
    question=lambda row: math_question(str(column("math", row, "question"))),
    protocol_size=500,
    hub_test_set="hub:HuggingFaceH4/MATH-500 (test)",
    d1_names=("math", "math500"),
)
