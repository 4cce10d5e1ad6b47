"""Loaders on small local files (built here) and a stubbed hub; no network."""

import csv
import json
import sys
import types

import pytest

from rewards.data import d1_test_subset, d1_train_rows, read_rows
from rewards.tasks.countdown import load_countdown
from rewards.tasks.gsm8k import load_gsm8k
from rewards.tasks.math import load_math500
from rewards.tasks.sudoku import load_sudoku


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_gsm8k_local(tmp_path):
    f = _jsonl(
        tmp_path / "g.jsonl",
        [
            {"question": "How many?", "answer": "3 + 15 = 18\n#### 18"},
            {"question": "Big?", "answer": "#### 1,234"},
        ],
    )
    rows = load_gsm8k(path=f)
    assert rows[0] == {"question": "How many?", "answer": "18", "reasoning": "3 + 15 = 18"}
    assert rows[1]["answer"] == "1234"
    assert len(load_gsm8k(path=f, limit=1)) == 1


def test_gsm8k_missing_column_names_file_row_and_column(tmp_path):
    f = _jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "#### 1"}, {"question": "q"}])
    with pytest.raises(KeyError, match=r"g\.jsonl: row 2: missing column 'answer'"):
        load_gsm8k(path=f)


def test_math500_local_json(tmp_path):
    f = tmp_path / "m.json"
    f.write_text(json.dumps([{"problem": "What is 1/2?", "answer": "\\frac{1}{2}"}]))
    (row,) = load_math500(path=f)
    assert row["answer"] == "\\frac{1}{2}" and row["question"].startswith("What is 1/2?")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"question": "x", "answer": "1"}]))
    with pytest.raises(ValueError, match="row 1: missing column 'problem'"):
        load_math500(path=bad)


def test_countdown_both_formats(tmp_path):
    f = _jsonl(
        tmp_path / "c.jsonl",
        [
            {"nums": [3, 5, 7], "target": 22},
            {"input": "3,5,7", "output": "22"},
        ],
    )
    rows = load_countdown(path=f)
    assert [(r["numbers"], r["target"]) for r in rows] == [([3, 5, 7], 22)] * 2
    assert "[3, 5, 7]" in rows[0]["question"] and "22" in rows[0]["question"]
    bad = _jsonl(tmp_path / "bad.jsonl", [{"nums": [1, 2]}])
    with pytest.raises(KeyError, match="row 1: missing column 'target'"):
        load_countdown(path=bad)
    worse = _jsonl(tmp_path / "worse.jsonl", [{"x": 1}])
    with pytest.raises(KeyError, match="nums"):
        load_countdown(path=worse)


def test_sudoku_csv(tmp_path):
    f = tmp_path / "s.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Puzzle", "Solution"])
        w.writerow(["0304003120033400", "1324423121433412"])
    (row,) = load_sudoku(f)
    assert row["puzzle"] == "0304003120033400" and row["solution"] == "1324423121433412"
    assert "0304003120033400" in row["question"]
    bad = tmp_path / "bad.csv"
    bad.write_text("Puzzle\n0304003120033400\n")
    with pytest.raises(KeyError, match="row 1: missing column 'Solution'"):
        load_sudoku(bad)
    short = tmp_path / "short.csv"
    short.write_text("Puzzle,Solution\n123,1324423121433412\n")
    with pytest.raises(ValueError, match="row 1"):
        load_sudoku(short)


def test_read_rows_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_rows(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="unsupported"):
        read_rows(tmp_path / "x.txt")


def test_hub_path_uses_datasets_lazily(monkeypatch):
    calls = []

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        return [{"question": "q", "answer": "#### 5"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert load_gsm8k(split="test")[0]["answer"] == "5"
    assert calls == [("openai/gsm8k", "main", "test")]


def test_countdown_keeps_only_problems_of_the_asked_size(tmp_path):
    f = _jsonl(
        tmp_path / "c.jsonl",
        [
            {"nums": [3, 5, 7], "target": 22},
            {"nums": [1, 2, 3, 4], "target": 10},
            {"nums": [2, 2, 9], "target": 13},
        ],
    )
    rows = load_countdown(path=f, num_numbers=3)
    assert [r["numbers"] for r in rows] == [[3, 5, 7], [2, 2, 9]]
    assert [r["numbers"] for r in load_countdown(path=f, num_numbers=3, limit=1)] == [[3, 5, 7]]
    assert len(load_countdown(path=f)) == 3


def test_d1_test_subset_is_numpys_seeded_choice_in_its_order():
    np = pytest.importorskip("numpy")
    rows = list(range(500))
    state = np.random.get_state()
    np.random.seed(42)  # what d1's eval/eval.py does before building the Sudoku dataset
    expected = list(np.random.choice(500, 256, replace=False))
    np.random.set_state(state)
    subset = d1_test_subset(rows)
    assert subset == expected and len(set(subset)) == 256
    # Pinned: these rows of 4x4_test_sudoku.csv head d1's released Sudoku generation files (ranks 0-4).
    assert subset[:5] == [361, 73, 374, 155, 104]
    # 256 rows or fewer: every row, in the order d1's draw puts them (a permutation)
    small = d1_test_subset(list(range(256)))
    assert sorted(small) == list(range(256)) and small != list(range(256))
    assert sorted(d1_test_subset(list(range(10)))) == list(range(10))


def test_d1_train_rows_match_datasets_shuffle_then_drop_the_last_500():
    datasets = pytest.importorskip("datasets")
    rows = [{"i": i} for i in range(1200)]
    reference = datasets.Dataset.from_list(rows).shuffle(seed=42)  # d1's diffu_grpo_train.py
    expected = [reference[k]["i"] for k in range(len(reference) - 500)]
    kept = d1_train_rows(rows)
    assert [r["i"] for r in kept] == expected and len(kept) == 700
    assert [r["i"] for r in d1_train_rows(rows, holdout=0)] == [reference[k]["i"] for k in range(1200)]
    with pytest.raises(ValueError, match="leave nothing"):
        d1_train_rows(rows[:500])
    with pytest.raises(ValueError, match="holdout"):
        d1_train_rows(rows, holdout=-1)
