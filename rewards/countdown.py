"""Countdown: reward and metric for "combine these numbers into the target".

The model's expression is parsed with the `ast` module (syntax tree only) and walked by a whitelist
evaluator over exact fractions; model text never reaches eval, exec or compiled code.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from rewards.columns import require_columns, texts
from rewards.extract import final_answer

TASK = "countdown"
COLUMNS = ("numbers", "target")
CORRECT, WRONG, NO_ANSWER = 1.0, 0.1, 0.0
TOLERANCE = 1e-5
# Bounds checked before the parser sees the text: a real answer is a few dozen characters.
MAX_EXPRESSION_CHARS = 200
MAX_PAREN_DEPTH = 16

_ALLOWED_CHARS = re.compile(r"[0-9+\-*/().\s]*")
# Symbols models write for the four operations.
_SYMBOLS = {"\u00d7": "*", "\u00f7": "/", "\u2212": "-", "\\times": "*", "\\cdot": "*", "\\div": "/"}
_SYMBOL_RE = re.compile("|".join(re.escape(s) for s in _SYMBOLS))
_BINARY_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_CLAIM = re.compile(r"-?\d{1,20}(\.\d{1,20})?")


def parse_numbers(value: Any) -> list[int]:
    """Ground-truth numbers from a list of ints or a string such as "3,5,7" or "[3, 5, 7]"."""
    if isinstance(value, str):
        parts = [p for p in re.split(r"[\s,\[\]]+", value) if p]
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        raise ValueError(f"countdown: numbers must be a list or 'a,b,c' string, got {value!r}")
    try:
        return [_as_int(p) for p in parts]
    except (TypeError, ValueError):
        raise ValueError(f"countdown: numbers must be integers, got {value!r}") from None


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    return int(str(value).strip())


def clean_expression(block: str) -> tuple[str, Fraction | None]:
    """Normalise operator symbols, `$` and a trailing period; split off a `= number` claim.

    Returns (expression, claimed value or None): "3*5+7 = 22" and "22 = 3*5+7" give ("3*5+7", 22).
    """
    s = _SYMBOL_RE.sub(lambda m: _SYMBOLS[m.group(0)], block).replace("$", "").strip().rstrip(".")
    if s.count("=") == 1:
        left, right = (part.strip() for part in s.split("="))
        for expr, claim in ((left, right), (right, left)):
            if _CLAIM.fullmatch(claim):
                return expr, Fraction(claim)
    return s, None


def evaluate(expression: str, numbers: Sequence[int], allow_unary_minus: bool = True) -> Fraction | None:
    """Exact value of `expression` if it is valid and uses every number exactly once, else None.

    Valid: integers, + - * /, parentheses, optionally unary minus; bounded length and nesting.
    Division by zero and anything else (names, calls, `**`, floats) give None.
    """
    if len(expression) > MAX_EXPRESSION_CHARS or not _ALLOWED_CHARS.fullmatch(expression):
        return None
    if _paren_depth(expression) > MAX_PAREN_DEPTH:
        return None
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    constants: list[int] = []
    if not _well_formed(tree.body, constants, allow_unary_minus):
        return None
    if Counter(constants) != Counter(int(n) for n in numbers):
        return None
    try:
        return _value(tree.body)
    except ZeroDivisionError:
        return None


def _paren_depth(s: str) -> int:
    depth = deepest = 0
    for ch in s:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def _well_formed(node: ast.AST, constants: list[int], allow_unary_minus: bool) -> bool:
    """Whitelist check; collects the integer literals in `constants`."""
    if isinstance(node, ast.Constant):
        if type(node.value) is not int:  # floats and bools are not the given numbers
            return False
        constants.append(node.value)
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY_OPS):
        return _well_formed(node.left, constants, allow_unary_minus) and _well_formed(
            node.right, constants, allow_unary_minus
        )
    if allow_unary_minus and isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _well_formed(node.operand, constants, allow_unary_minus)
    return False


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp):
        return -_value(node.operand)
    assert isinstance(node, ast.BinOp)
    left, right = _value(node.left), _value(node.right)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return left / right


def score(text: str, numbers: Sequence[int], target: float) -> float:
    """1.0 correct, 0.1 an answer that is not a correct expression, 0.0 no answer at all.

    The answer is what d1's evaluation prompt asks for: the last `\\boxed{...}` (normally inside the
    answer block), else the last answer block's content.
    """
    block = final_answer(text)
    if block is None:
        return NO_ANSWER
    expression, claimed = clean_expression(block)
    if claimed is not None and claimed != target:  # "expr = 23" for target 22 is a wrong answer
        return WRONG
    value = evaluate(expression, numbers)
    if value is not None and abs(value - Fraction(target)) < TOLERANCE:
        return CORRECT
    return WRONG


def ground_truth(numbers: Any, target: Any) -> tuple[list[int], int]:
    """Validated (numbers, target) from a dataset row's values."""
    try:
        target_value = _as_int(target)
    except (TypeError, ValueError):
        raise ValueError(f"countdown: target must be an integer, got {target!r}") from None
    return parse_numbers(numbers), target_value


def countdown_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """1.0 if the answer (last `\\boxed{}`, else the last answer block) is an expression using every
    number once that equals the target (within 1e-5), 0.1 if there is an answer but it is not such an
    expression, 0.0 if there is neither a box nor an answer tag. Range [0, 1].
    """
    cols = require_columns(TASK, columns, COLUMNS, len(completions))
    return [
        score(text, *ground_truth(numbers, target))
        for text, numbers, target in zip(texts(completions), cols["numbers"], cols["target"])
    ]


def countdown_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Accuracy (fraction of completions with reward 1.0) and n."""
    rewards = countdown_reward(None, completions, **columns)
    n = len(rewards)
    return {"accuracy": sum(r == CORRECT for r in rewards) / n if n else 0.0, "n": n}
