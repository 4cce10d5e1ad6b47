"""Seeded Countdown problems with a known solution expression, and a step-by-step trace for SFT."""

from __future__ import annotations

import ast
import random
from fractions import Fraction

_OPS = "+-*/"


def _combine(rng: random.Random, items: list[tuple[str, Fraction, int]]) -> tuple[str, Fraction] | None:
    """Fold the items (expression, value, precedence) pairwise at random into one expression.

    Only integer intermediate results are allowed, so the trace reads like Countdown arithmetic.
    """
    items = list(items)
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, va, pa), (b, vb, pb) = items[i], items[j]
        op = rng.choice(_OPS)
        if op == "-" and va < vb:
            (a, va, pa), (b, vb, pb) = (b, vb, pb), (a, va, pa)
        if op == "/" and (vb == 0 or va % vb != 0):
            return None
        value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va / vb if vb else None}[op]
        prec = 1 if op in "+-" else 2
        # Parenthesise an operand only when precedence (or left-to-right order) requires it.
        left = f"({a})" if pa < prec else a
        right = f"({b})" if pb < prec or (pb == prec and op in "-/") else b
        items = [it for k, it in enumerate(items) if k not in (i, j)]
        items.append((f"{left} {op} {right}", value, prec))
    expr, value, _ = items[0]
    return expr, value


def generate_countdown(
    n: int,
    seed: int = 0,
    num_numbers: int | tuple[int, int] = (3, 4),
    number_range: tuple[int, int] = (1, 99),
    target_range: tuple[int, int] = (1, 999),
    max_tries: int = 100_000,
) -> list[dict]:
    """`n` problems `{"numbers": [...], "target": int, "solution": "expr"}`, reproducible by seed.

    The target is the value of `solution`, which uses every number exactly once; targets are
    positive integers inside `target_range`.
    """
    lo, hi = (num_numbers, num_numbers) if isinstance(num_numbers, int) else num_numbers
    if not 2 <= lo <= hi:
        raise ValueError(f"num_numbers must be at least 2, got {num_numbers!r}")
    rng = random.Random(seed)
    out: list[dict] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries:
            raise RuntimeError("could not draw enough Countdown problems; widen target_range")
        numbers = [rng.randint(*number_range) for _ in range(rng.randint(lo, hi))]
        made = _combine(rng, [(str(x), Fraction(x), 3) for x in numbers])
        if made is None:
            continue
        expr, value = made
        if value.denominator != 1 or not target_range[0] <= value <= target_range[1]:
            continue
        out.append({"numbers": numbers, "target": int(value), "solution": expr})
    return out


def countdown_reasoning(numbers: list[int], target: int, solution: str) -> str:
    """The solution's operations in evaluation order, one per line, ending at the target."""
    steps: list[str] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant):
            return Fraction(node.value)
        if isinstance(node, ast.UnaryOp):
            return -walk(node.operand)
        if not isinstance(node, ast.BinOp):
            raise ValueError(f"not an arithmetic expression: {solution!r}")
        a, b = walk(node.left), walk(node.right)
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(node.op)]
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[symbol]
        if value is None:
            raise ValueError(f"division by zero in {solution!r}")
        steps.append(f"{_show(a)} {symbol} {_show(b)} = {_show(value)}")
        return value

    # `solution` comes from our own generator or dataset, not from a model; it is only parsed.
    result = walk(ast.parse(solution, mode="eval").body)
    if result != target:
        raise ValueError(f"{solution!r} gives {result}, not {target}")
    listed = ", ".join(str(x) for x in numbers)
    return f"Numbers: {listed}. Target: {target}.\n" + "\n".join(steps)


def _show(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"
