"""A toy task written the way a new task is added: one module that builds a `Task`, then `register_task`.

Parity: the prompt is a string of bits, the answer is 1 when it holds an odd number of ones, else 0.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from rewards.data.files import read_rows
from rewards.extract import answer_block, completion_text
from rewards.tasks.task import SYNTHETIC_TEST_SEED, Row, Task, check_synthetic_split, column

COLUMNS = ("bits", "parity")


def parity_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    return [float(answer_block(completion_text(c)) == str(p)) for c, p in zip(completions, columns["parity"])]


def parity_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    scores = parity_reward(None, completions, **columns)
    return {"accuracy": sum(scores) / len(scores), "n": len(scores)}


def _row(bits: str) -> dict[str, Any]:
    parity = bits.count("1") % 2
    return {
        "bits": bits,
        "parity": parity,
        "prompt": bits,
        "answer": f"<reasoning></reasoning><answer>{parity}</answer>",
    }


def synthetic_rows(split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    check_synthetic_split(split)
    rng = random.Random(SYNTHETIC_TEST_SEED if split == "test" else seed)
    return [_row("".join(rng.choice("01") for _ in range(6))) for _ in range(n)]


def load(split: str = "test", path: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    return [_row(str(r["bits"])) for r in list(read_rows(path))[:limit]]


def check_ground_truth(row: Row) -> None:
    if str(row["parity"]) not in ("0", "1"):
        raise ValueError(f"parity must be 0 or 1, got {row['parity']!r}")


TASK = Task(
    name="parity",
    reward_funcs=(parity_reward,),
    columns=COLUMNS,
    metric=parity_metric,
    max_reward=1.0,
    load=load,
    system_prompt="Answer 1 if the bits hold an odd number of ones, else 0.",
    question=lambda row: f"Bits: {column('parity', row, 'bits')}",
    protocol_size=64,
    check_ground_truth=check_ground_truth,
    compact_prompt=lambda row: str(row["bits"]),
    synthetic=synthetic_rows,
)
