"""One prompt path: `gift rl` rows and `gift eval` give the same row the same prompt tokens; d1's RL rows.

Uses the embedded tokenizer and small local files written here (the hub sets cannot be downloaded).
"""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import pytest

from gift.embedded_tokenizer import build_embedded_tokenizer
from gift.sampler import encode_chat_prompts
from rewards import REASONING_PREFILL, task_prompt
from rewards.data.synthetic import synthetic_rows
from rewards.tasks.countdown import generate_countdown
from rewards.tasks.sudoku import generate_sudoku
from stages.evaluation.evaluate import build_prompts, compact_prompt, load_eval_rows
from stages.recipes import load_recipe
from stages.train.rl_data import rl_rows

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tokenizer():
    return build_embedded_tokenizer()


def recipe_prefill(task: str) -> str | None:
    return load_recipe(ROOT / "configs" / "llada" / f"grpo_{task}.yaml").get("prefill")  # through its base


def task_files(tmp_path: Path) -> dict[str, Path]:
    """One data file per task, in the hub/d1 column names; Sudoku and Countdown big enough for d1's holdout."""
    sudoku = tmp_path / "sudoku.csv"
    with sudoku.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Puzzle", "Solution"])
        writer.writerows((p["puzzle"], p["solution"]) for p in generate_sudoku(540, seed=3))
    countdown = tmp_path / "countdown.jsonl"
    countdown.write_text(
        "".join(
            json.dumps({"nums": p["numbers"], "target": p["target"]}) + "\n"
            for p in generate_countdown(540, seed=3, num_numbers=3)
        )
    )
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text(
        "".join(
            json.dumps({"question": q, "answer": f"#### {a}"}) + "\n"
            for q, a in [("Janet’s ducks lay 16 eggs per day. How many?", 16), ("2 + 2?", 4), ("Half of 10?", 5)]
        )
    )
    math = tmp_path / "math.jsonl"
    math.write_text(
        "".join(
            json.dumps({"problem": p, "answer": a}) + "\n"
            for p, a in [("What is $\\frac{1}{2} + \\frac{1}{4}$?", "\\frac{3}{4}"), ("Solve $x^2 = 4$, $x > 0$.", "2")]
        )
    )
    return {"sudoku": sudoku, "countdown": countdown, "gsm8k": gsm8k, "math": math}


def key(task: str, row: dict):
    return {"sudoku": lambda r: r["puzzle"], "countdown": lambda r: (tuple(r["numbers"]), r["target"])}.get(
        task, lambda r: r["answer"]
    )(row)


@pytest.mark.parametrize("task", ["sudoku", "countdown", "gsm8k", "math"])
def test_rl_prompt_and_eval_prompt_of_a_row_are_the_same_tokens(task, tmp_path, tokenizer):
    path = task_files(tmp_path)[task]
    train = rl_rows(task, str(path))
    test = load_eval_rows(task, str(path))
    eval_by_key = {key(task, r): r for r in test}
    shared = [r for r in train if key(task, r) in eval_by_key]
    assert shared, "the two selections should share rows on this small file"
    # gift rl: the row's messages, encoded with the LLaDA recipe's prefill (what RLConfig passes to the sampler)
    prefill = recipe_prefill(task)
    assert prefill == REASONING_PREFILL
    rl_ids = encode_chat_prompts(tokenizer, [r["prompt"] for r in shared], prefill)
    # gift eval: the d1-style user turn of the same rows, encoded with evaluate()'s default prefill
    eval_prompts = build_prompts(task, [eval_by_key[key(task, r)] for r in shared], "d1")
    eval_ids = encode_chat_prompts(tokenizer, eval_prompts, REASONING_PREFILL)
    assert rl_ids == eval_ids
    assert eval_prompts[0] == task_prompt(task, eval_by_key[key(task, shared[0])])


# The embedded synthetic prompt's token ids (bare puzzle in the chat template, no prefill, as the embedded
# RL recipe sends it), pinned: the embedded main job is calibrated on them and the task prompt builder
# must not reach them.
SYNTHETIC_SUDOKU_PROMPT = "0304003120033400"
SYNTHETIC_SUDOKU_IDS = [4, 10, 13, 10, 14, 10, 10, 13, 11, 12, 10, 10, 13, 13, 14, 10, 10, 5]


def test_synthetic_prompts_keep_their_compact_tokens(tokenizer):
    rl = rl_rows("sudoku", "synthetic", limit=3)
    assert [r["prompt"] for r in rl] == [r["prompt"] for r in synthetic_rows("sudoku", "train", 3)]
    assert all(len(r["prompt"]) == 16 and r["prompt"].isdigit() for r in rl)  # the bare puzzle
    test = load_eval_rows("sudoku", "synthetic", limit=2)
    assert build_prompts("sudoku", test, "compact") == [r["prompt"] for r in synthetic_rows("sudoku", "test", 2)]
    countdown = rl_rows("countdown", "synthetic", limit=2)
    assert [r["prompt"] for r in countdown] == [f"{','.join(map(str, r['numbers']))}={r['target']}" for r in countdown]
    assert compact_prompt("sudoku", {"puzzle": SYNTHETIC_SUDOKU_PROMPT}) == SYNTHETIC_SUDOKU_PROMPT
    ids = encode_chat_prompts(tokenizer, [SYNTHETIC_SUDOKU_PROMPT], None)[0]
    assert ids == SYNTHETIC_SUDOKU_IDS


# --------------------------------------------------------------------------- d1's RL rows


def test_countdown_rl_rows_are_d1s_three_number_shuffle_minus_500(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    three = generate_countdown(530, seed=5, num_numbers=3)
    four = generate_countdown(20, seed=6, num_numbers=4)
    hub = [{"nums": p["numbers"], "target": p["target"]} for p in three[:300] + four + three[300:]]
    # d1's diffu-grpo: filter len(nums) == 3, shuffle(seed=42), select all but the last 500
    expected = datasets.Dataset.from_list(hub).filter(lambda x: len(x["nums"]) == 3).shuffle(seed=42)
    expected = [(row["nums"], row["target"]) for row in expected.select(range(len(expected) - 500))]
    stub = types.SimpleNamespace(load_dataset=lambda name, config, split: hub)
    monkeypatch.setitem(sys.modules, "datasets", stub)
    rows = rl_rows("countdown", "hub")
    assert [(r["numbers"], r["target"]) for r in rows] == expected and len(rows) == 30
    assert rows[0]["prompt"][0]["content"].endswith(f"Numbers: {expected[0][0]}\nTarget: {expected[0][1]}")
    assert len(rl_rows("countdown", "hub", limit=7)) == 7


def test_sudoku_rl_rows_hold_out_500_and_gsm8k_keeps_all(tmp_path):
    files = task_files(tmp_path)
    sudoku = rl_rows("sudoku", str(files["sudoku"]))
    assert len(sudoku) == 40 and len({r["puzzle"] for r in sudoku}) == 40
    assert {r["prompt"][0]["role"] for r in sudoku} == {"user"}  # one merged user turn, as d1
    gsm8k = rl_rows("gsm8k", str(files["gsm8k"]))
    assert sorted(r["answer"] for r in gsm8k) == ["16", "4", "5"]
    small = tmp_path / "small.csv"
    small.write_text("Puzzle,Solution\n0304003120033400,1324423121433412\n")
    with pytest.raises(ValueError, match="leave nothing after holding out the last 500"):
        rl_rows("sudoku", str(small))
