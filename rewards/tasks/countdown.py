"""Countdown (d1): reach the target with +, -, *, / using each given number once. The whole task in one module:
reward and metric, a seeded generator with known solutions and a step-by-step SFT trace, the hub set, d1's
prompt, the loader, and the `Task` the registry lists.

The model's expression is parsed with the `ast` module (syntax tree only) and walked by a whitelist
evaluator over exact fractions; model text never reaches eval, exec or compiled code.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from rewards.columns import MissingColumnError, require_columns, texts
from rewards.data import loaders
from rewards.data.files import field
from rewards.extract import final_answer
from rewards.tasks.task import (
    D1_BOXED_FORMAT,
    SYNTHETIC_TEST_SEED,
    SYNTHETIC_TEST_SIZE,
    Row,
    Task,
    check_synthetic_split,
    column,
)

# --- Rules: rewards and metric ---------------------------------------------------------------------------------------

NAME = "countdown"  # the task name the column errors carry
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
    cols = require_columns(NAME, columns, COLUMNS, len(completions))
    return [
        score(text, *ground_truth(numbers, target))
        for text, numbers, target in zip(texts(completions), cols["numbers"], cols["target"])
    ]


def countdown_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Accuracy (fraction of completions with reward 1.0) and n."""
    rewards = countdown_reward(None, completions, **columns)
    n = len(rewards)
    return {"accuracy": sum(r == CORRECT for r in rewards) / n if n else 0.0, "n": n}


# --- Synthetic problems with a known solution, and the SFT trace -----------------------------------------------------

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


# --- Data, prompt and the Task ---------------------------------------------------------------------------------------

COUNTDOWN_HUB = ("Jiayi-Pan/Countdown-Tasks-3to4", None)
D1_COUNTDOWN_NUMBERS = 3  # d1 trains Countdown on the 3-number problems (diffu-grpo/data_utils.py)

# d1 eval/countdown.py, CTD_SYSTEM_PROMPT, character for character (no space before "Respond").
COUNTDOWN_SYSTEM = (
    "Using only the provided numbers, create an arithmetic expression that evaluates to exactly the "
    "provided target number. You may use the operations +, -, *, and / as needed, but each number must "
    "be used exactly once. Think step-by-step. After reasoning, provide only your final expression "
    "inside \\boxed{} tags without including an equals sign or the target number. "
    "For example: \\boxed{a + b * c}" + D1_BOXED_FORMAT
)
# The embedded synthetic problems: three numbers in 1..30, targets in 1..100.
_SYNTHETIC = {"num_numbers": 3, "number_range": (1, 30), "target_range": (1, 100)}


def countdown_question(numbers: Sequence[int], target: int) -> str:
    """d1's Countdown question (eval/countdown.py): `Numbers: [a, b, c]\\nTarget: T`."""
    listed = ", ".join(str(int(n)) for n in numbers)  # Python's list repr, whatever the input type
    return f"Numbers: [{listed}]\nTarget: {int(target)}"


def compact_prompt(row: Row) -> str:
    """The embedded synthetic format: `a,b,c=T`."""
    return f"{','.join(str(n) for n in row['numbers'])}={row['target']}"


def synthetic_rows(split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Compact rows for the embedded model with a worked reasoning trace; train problems exclude the test ones."""
    check_synthetic_split(split)
    test = generate_countdown(SYNTHETIC_TEST_SIZE, seed=SYNTHETIC_TEST_SEED, **_SYNTHETIC)
    if split == "test":
        items = test[:n]
    else:
        held = {(tuple(t["numbers"]), t["target"]) for t in test}
        items = [
            it
            for it in generate_countdown(n + len(held), seed=seed, **_SYNTHETIC)
            if (tuple(it["numbers"]), it["target"]) not in held
        ][:n]
    return [
        {
            **it,
            "prompt": compact_prompt(it),
            "answer": f"<reasoning>{countdown_reasoning(it['numbers'], it['target'], it['solution'])}</reasoning>"
            f"<answer>{it['solution']}</answer>",
        }
        for it in items
    ]


def load_countdown(
    split: str = "train", path: str | Path | None = None, limit: int | None = None, num_numbers: int | None = None
) -> list[dict]:
    """Countdown rows `{"question", "numbers", "target"}`.

    Accepts the hub's `nums`/`target` fields and d1's test format `{"input": "a,b,c", "output": "T"}`.
    `num_numbers` keeps only problems with that many numbers (d1 trains on the 3-number ones); `limit`
    counts the rows kept.
    """
    rows, source = loaders.source_rows(path, COUNTDOWN_HUB, split)
    out = []
    for i, row in enumerate(rows, start=1):
        if limit is not None and len(out) >= limit:
            break
        if "nums" in row or "target" in row:
            raw_numbers, raw_target = field(row, "nums", source, i), field(row, "target", source, i)
        elif "input" in row or "output" in row:
            raw_numbers, raw_target = field(row, "input", source, i), field(row, "output", source, i)
        else:
            raise MissingColumnError(
                f"{source}: row {i}: missing columns 'nums'/'target' (or 'input'/'output'); "
                f"columns present: {sorted(row)}"
            )
        try:
            numbers, target = ground_truth(raw_numbers, raw_target)
        except ValueError as e:
            raise ValueError(f"{source}: row {i}: {e}") from None
        if num_numbers is not None and len(numbers) != num_numbers:
            continue
        out.append({"question": countdown_question(numbers, target), "numbers": numbers, "target": target})
    return out


def from_d1(truth: Any, question: str) -> dict[str, Any]:
    """d1's Countdown ground truth is `[numbers, target]`."""
    if not (isinstance(truth, list) and len(truth) == 2):
        raise ValueError(f"countdown 'ground_truth' must be [numbers, target], got {truth!r}")
    return {"numbers": truth[0], "target": truth[1]}


def check_ground_truth(row: Row) -> None:
    ground_truth(row["numbers"], row["target"])


TASK = Task(
    name=NAME,
    reward_funcs=(countdown_reward,),
    columns=COLUMNS,
    metric=countdown_metric,
    max_reward=1.0,
    check_ground_truth=check_ground_truth,
    load=load_countdown,
    system_prompt=COUNTDOWN_SYSTEM,
    question=lambda row: countdown_question(column("countdown", row, "numbers"), column("countdown", row, "target")),
    compact_prompt=compact_prompt,
    protocol_size=256,
    test_file_hint="countdown_cd3_test.jsonl",
    test_subset=loaders.D1_TEST_SUBSET,
    train_holdout=loaders.D1_HOLDOUT,
    train_options={"num_numbers": D1_COUNTDOWN_NUMBERS},
    synthetic=synthetic_rows,
    d1_names=("countdown",),
    from_d1=from_d1,
)
