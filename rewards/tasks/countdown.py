"""Countdown (d1): reach the target with +, -, *, / using each given number once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewards import countdown as rules
from rewards.columns import MissingColumnError
from rewards.data import loaders
from rewards.data.files import field
from rewards.data.countdown_gen import countdown_reasoning, generate_countdown
from rewards.tasks.task import (D1_BOXED_FORMAT, SYNTHETIC_TEST_SEED, SYNTHETIC_TEST_SIZE, Row, Task,
                                 check_synthetic_split, column)

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
        items = [it for it in generate_countdown(n + len(held), seed=seed, **_SYNTHETIC)
                 if (tuple(it["numbers"]), it["target"]) not in held][:n]
    return [{**it, "prompt": compact_prompt(it),
             "answer": f"<reasoning>{countdown_reasoning(it['numbers'], it['target'], it['solution'])}</reasoning>"
                       f"<answer>{it['solution']}</answer>"} for it in items]


def load_countdown(
    split: str = "train", path: str | Path | None = None, limit: int | None = None, num_numbers: int | None = None
) -> list[dict]:
    """Countdown rows `{"question", "numbers", "target"}`.

    Accepts the hub's `nums`/`target` fields and d1's test format `{"input": "a,b,c", "output": "T"}`.
    `num_numbers` keeps only problems with that many numbers (d1 trains on the 3-number ones); `limit`
    counts the rows kept.
    """
    rows, source = loaders.source_rows(path, loaders.COUNTDOWN_HUB, split)
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
            numbers, target = rules.ground_truth(raw_numbers, raw_target)
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
    rules.ground_truth(row["numbers"], row["target"])


TASK = Task(
    name="countdown",
    reward_funcs=(rules.countdown_reward,),
    columns=rules.COLUMNS,
    metric=rules.countdown_metric,
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
    train_options={"num_numbers": loaders.D1_COUNTDOWN_NUMBERS},
    synthetic=synthetic_rows,
    d1_names=("countdown",),
    from_d1=from_d1,
)
