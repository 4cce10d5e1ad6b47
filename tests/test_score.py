"""`gift score` on hand-made generation files: exact accuracies, pooling, file-name gen_length, bad input."""

from __future__ import annotations

import json
import re

import pytest
from helpers import write_jsonl

from stages.cli import main as gift
from stages.evaluation.score import GenerationFileError, format_markdown, read_generations, score_files

SOLUTION = "1234341221434321"


def sudoku_rows(gen_length: int | None = 256) -> list[dict]:
    """Puzzle A: 4 empty cells, all filled right; puzzle B: 8 empty cells, 2 filled right.

    Pooled cell accuracy (d1) = 6/12 = 0.5; the per-puzzle mean would be (1 + 0.25) / 2 = 0.625.
    """
    rows = [
        {
            "task": "sudoku",
            "puzzle": "0000" + SOLUTION[4:],
            "solution": SOLUTION,
            "completion": f"<reasoning>easy</reasoning><answer>{SOLUTION}</answer>",
        },
        {
            "task": "sudoku",
            "puzzle": "00000000" + SOLUTION[8:],
            "solution": SOLUTION,
            "completion": "<reasoning></reasoning><answer>12999999" + SOLUTION[8:] + "</answer>",
        },
    ]
    if gen_length is not None:
        for row in rows:
            row["gen_length"] = gen_length
    return rows


COUNTDOWN = [  # accuracy 2/4: a correct expression twice, one not using every number, one without an answer tag
    {"task": "countdown", "numbers": [1, 2, 3], "target": 6, "completion": "<answer>1 + 2 + 3</answer>"},
    {"task": "countdown", "numbers": [1, 2, 3], "target": 6, "completion": "<answer>(1*2)*3</answer>"},
    {"task": "countdown", "numbers": [1, 2, 3], "target": 6, "completion": "<answer>1 + 2</answer>"},
    {"task": "countdown", "numbers": [1, 2, 3], "target": 6, "completion": "1 + 2 + 3"},
]
GSM8K = [  # accuracy 2/3
    {"task": "gsm8k", "gen_length": 256, "answer": "18", "completion": "so \\boxed{18}"},
    {"task": "gsm8k", "gen_length": 256, "answer": "18", "completion": "<answer>18 eggs</answer>"},
    {"task": "gsm8k", "gen_length": 256, "answer": "18", "completion": "<answer>17</answer>"},
]


def test_exact_accuracies_table_and_mean(tmp_path):
    write_jsonl(tmp_path / "sudoku_256.jsonl", sudoku_rows())
    write_jsonl(tmp_path / "countdown_128.jsonl", COUNTDOWN)  # gen_length from the file name
    write_jsonl(tmp_path / "gsm8k_256.jsonl", GSM8K)
    scores = score_files([tmp_path])
    cells = {(c["task"], c["gen_length"]): c for c in scores["cells"]}
    assert set(cells) == {("sudoku", 256), ("countdown", 128), ("gsm8k", 256)}
    sudoku = cells[("sudoku", 256)]
    assert sudoku["accuracy"] == sudoku["cell_accuracy"] == pytest.approx(0.5)  # pooled, not 0.625
    assert sudoku["solved"] == pytest.approx(0.5) and sudoku["n"] == 2
    assert cells[("countdown", 128)]["accuracy"] == pytest.approx(0.5)
    assert cells[("gsm8k", 256)]["accuracy"] == pytest.approx(2 / 3)
    assert scores["mean"] == pytest.approx((0.5 + 0.5 + 2 / 3) / 3)
    assert [c["task"] for c in scores["cells"]] == ["gsm8k", "countdown", "sudoku"]  # d1's table order
    assert scores["table"]["sudoku"] == {"256": pytest.approx(0.5), "mean": pytest.approx(0.5)}
    assert scores["skipped"] == 0
    table = format_markdown(scores)
    assert "| task | 128 | 256 | mean |" in table
    assert "| gsm8k | - | 66.7 | 66.7 |" in table
    assert "| countdown | 50.0 | - | 50.0 |" in table
    assert "| **mean** | 50.0 | 58.3 | **55.6** |" in table


def test_math_and_pooling_across_files(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "task": "math",
                "gen_length": 512,
                "answer": "\\frac{1}{2}",
                "completion": "<answer>\\boxed{\\frac{1}{2}}</answer>",
            },
            {"task": "math", "gen_length": 512, "answer": "\\frac{1}{2}", "completion": "<answer>\\boxed{3}</answer>"},
        ],
    )
    write_jsonl(
        tmp_path / "b.jsonl",
        [
            {"task": "math", "gen_length": 512, "answer": "7", "completion": "\\boxed{7}"},
            {"task": "math", "gen_length": 512, "answer": "7", "completion": "\\boxed{7}"},
        ],
    )
    # The directory and a file in it: each file is read once.
    scores = score_files([tmp_path, tmp_path / "a.jsonl"])
    (cell,) = scores["cells"]
    assert (cell["task"], cell["gen_length"], cell["n"]) == ("math", 512, 4)
    assert cell["accuracy"] == pytest.approx(0.75)
    assert len(cell["files"]) == 2 and len(scores["files"]) == 2


def test_gen_length_field_wins_and_name_is_fallback(tmp_path):
    rows = sudoku_rows(gen_length=None)
    rows[0]["gen_length"] = 64
    write_jsonl(tmp_path / "sudoku_128.jsonl", rows)
    scores = score_files(tmp_path / "sudoku_128.jsonl")
    assert sorted((c["gen_length"], c["n"]) for c in scores["cells"]) == [(64, 1), (128, 1)]


def test_missing_gen_length_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "my_generations.jsonl", sudoku_rows(gen_length=None))
    with pytest.raises(GenerationFileError, match=r"my_generations\.jsonl:1: no 'gen_length' field"):
        score_files([path])


def test_missing_field_is_an_error_with_line_and_skip_bad_scores_the_rest(tmp_path):
    rows = sudoku_rows()
    broken = dict(rows[1])
    del broken["solution"]
    path = write_jsonl(tmp_path / "sudoku_256.jsonl", [rows[0], broken, rows[0]])
    with pytest.raises(GenerationFileError, match=r"sudoku_256\.jsonl:2: sudoku: missing field\(s\) \['solution'\]"):
        score_files([path])
    scores = score_files([path], skip_bad=True)
    assert scores["skipped"] == 1 and scores["skipped_lines"][0].startswith(f"{path}:2:")
    (cell,) = scores["cells"]
    assert cell["n"] == 2 and cell["accuracy"] == pytest.approx(1.0)
    assert "Skipped 1 bad line(s)." in format_markdown(scores)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"task": "sudoku", "completion": "x", "puzz', "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"completion": "x", "answer": "1"}', "missing field 'task'"),
        ('{"task": "chess", "completion": "x"}', "unknown task 'chess'; known tasks: countdown, gsm8k, math, sudoku"),
        (
            '{"task": "sudoku", "puzzle": "123", "solution": "1234341221434321", "completion": "x"}',
            "puzzle must be 16 digits",
        ),
        ('{"task": "countdown", "numbers": [1, 2], "target": "six", "completion": "x"}', "target must be an integer"),
        ('{"task": "gsm8k", "answer": "18", "completion": 5}', "'completion' must be a string"),
        ('{"task": "gsm8k", "answer": "18", "completion": "x", "gen_length": -3}', "'gen_length' must be a positive"),
    ],
)
def test_bad_lines(tmp_path, line, message):
    path = tmp_path / "gsm8k_256.jsonl"
    path.write_text(json.dumps(GSM8K[0]) + "\n\n" + line + "\n")
    with pytest.raises(GenerationFileError, match=rf"gsm8k_256\.jsonl:3: .*{message}"):
        read_generations(path)
    rows, problems = read_generations(path, skip_bad=True)
    assert len(rows) == 1 and len(problems) == 1


def test_nothing_to_score(tmp_path):
    with pytest.raises(GenerationFileError, match="no such file or directory"):
        score_files([tmp_path / "missing.jsonl"])
    with pytest.raises(GenerationFileError, match="no .jsonl generation files"):
        score_files([tmp_path])
    path = tmp_path / "gsm8k_256.jsonl"
    path.write_text("not json\n")
    with pytest.raises(GenerationFileError, match="no scorable lines"):
        score_files([path], skip_bad=True)


def test_cli_writes_json_and_markdown(tmp_path, capsys):
    gen = tmp_path / "eval"
    gen.mkdir()
    write_jsonl(gen / "sudoku_256.jsonl", sudoku_rows())
    write_jsonl(gen / "countdown_128.jsonl", COUNTDOWN)
    gift(["score", str(gen)])
    out = capsys.readouterr().out
    assert "| sudoku | - | 50.0 | 50.0 |" in out
    saved = json.loads((gen / "scores.json").read_text())
    assert saved["mean"] == pytest.approx(0.5)
    assert (gen / "scores.md").read_text().startswith("| task | 128 | 256 | mean |")

    gift(["score", str(gen / "sudoku_256.jsonl"), "--output", str(tmp_path / "report" / "table")])
    assert json.loads((tmp_path / "report" / "table.json").read_text())["cells"][0]["task"] == "sudoku"
    assert (tmp_path / "report" / "table.md").is_file()


def test_cli_bad_file_exits_with_the_line(tmp_path, capsys):
    path = write_jsonl(tmp_path / "sudoku_256.jsonl", sudoku_rows())
    with path.open("a") as handle:
        handle.write("{broken\n")
    assert gift(["score", str(path)]) == 1
    assert re.search(r"gift score: error: .*sudoku_256\.jsonl:3: not valid JSON", capsys.readouterr().err)
    gift(["score", str(path), "--skip_bad"])
    captured = capsys.readouterr()
    assert "skipped 1 bad line(s)" in captured.err and f"{path}:3:" in captured.err
    assert json.loads((tmp_path / "scores.json").read_text())["skipped"] == 1


# --------------------------------------------------------------------------- --format d1


def write_d1(path, items, gen_length=256):
    """A file in the schema of d1's eval/eval.py output (hand-written rows, not d1's generations)."""
    path.write_text(
        json.dumps(
            {
                "generations": items,
                "metrics": {"wall_time": 1.0, "total_processed": len(items)},
                "model_path": "LLaDA-8B-Instruct",
                "checkpoint_path": "",
                "gen_length": gen_length,
                "steps": gen_length // 2,
                "block_length": 32,
            }
        )
    )
    return path


D1_END = "<|eot_id|><|endoftext|><|endoftext|>"
D1_COUNTDOWN = [  # 2/3: a boxed answer, a boxed wrong value, a correct one (text after EOS ignored)
    {
        "question": "Numbers: [49, 55, 53]\nTarget: 51",
        "ground_truth": [[49, 55, 53], 51],
        "generations": "\nr\n</reasoning>\n<answer>\n\\boxed{49 + 55 - 53}\n</answer>" + D1_END,
    },
    {
        "question": "Numbers: [1, 2, 3]\nTarget: 6",
        "ground_truth": [[1, 2, 3], 6],
        "generations": "\nr\n</reasoning>\n<answer>\n\\boxed{1 + 2 - 3}\n</answer>" + D1_END + "\\boxed{1+2+3}",
    },
    {
        "question": "Numbers: [1, 2, 3]\nTarget: 6",
        "ground_truth": [[1, 2, 3], 6],
        "generations": "\nr\n</reasoning>\n<answer>\n\\boxed{3 * 2 * 1}\n</answer>" + D1_END,
    },
]
D1_SUDOKU = [  # 4 empty cells, 2 right -> 0.5
    {
        "question": f"Solve the following Sudoku puzzle: 0000{SOLUTION[4:]}\n",
        "ground_truth": SOLUTION,
        "generations": "\nr\n</reasoning>\n<answer>\n1299" + SOLUTION[4:] + "\n</answer>" + D1_END,
    },
]
D1_GSM8K = [  # d1 stores floats; 1/1 scorable; a null reference (d1's parser on negative answers)
    {"question": "q", "ground_truth": 18.0, "generations": "\nr\n</reasoning>\n<answer>\n\\boxed{18}\n</answer>"},
    {"question": "q2", "ground_truth": None, "generations": "<answer>\\boxed{-3}</answer>"},
]
D1_MATH = [{"question": "q", "ground_truth": "\\frac{1}{2}", "generations": "<answer>\\boxed{\\frac12}</answer>"}]


def test_d1_files_score_with_our_scorers(tmp_path):
    d1 = tmp_path / "d1"
    d1.mkdir()
    write_d1(d1 / "countdown_instruct_256_128_0_generations.json", D1_COUNTDOWN[:2])
    write_d1(d1 / "countdown_instruct_256_128_1_generations.json", D1_COUNTDOWN[2:])  # ranks pool
    write_d1(d1 / "sudoku_instruct_128_64_0_generations.json", D1_SUDOKU, gen_length=128)
    write_d1(d1 / "math500_instruct_512_256_0_generations.json", D1_MATH, gen_length=512)
    (d1 / "notes.json").write_text("{}")  # not *_generations.json: not read
    scores = score_files([d1], file_format="d1")
    table = {(c["task"], c["gen_length"]): (c["n"], c["accuracy"]) for c in scores["cells"]}
    assert table == {("math", 512): (1, 1.0), ("countdown", 256): (3, pytest.approx(2 / 3)), ("sudoku", 128): (1, 0.5)}


def test_d1_null_reference_is_a_bad_item(tmp_path, capsys):
    path = write_d1(tmp_path / "gsm8k_instruct_256_128_0_generations.json", D1_GSM8K)
    with pytest.raises(GenerationFileError, match=r"generations\[1\]: 'ground_truth' is null"):
        score_files([path], file_format="d1")
    scores = score_files([path], file_format="d1", skip_bad=True)
    assert scores["cells"][0]["n"] == 1 and scores["cells"][0]["accuracy"] == 1.0 and scores["skipped"] == 1


def test_d1_bad_files(tmp_path):
    with pytest.raises(GenerationFileError, match="not a d1 generation file name"):
        score_files([write_d1(tmp_path / "chess_instruct_256_128_0_generations.json", D1_MATH)], file_format="d1")
    broken = tmp_path / "math_x_256_128_0_generations.json"
    broken.write_text("{")
    with pytest.raises(GenerationFileError, match="not valid JSON"):
        score_files([broken], file_format="d1")
    listed = tmp_path / "math_y_256_128_0_generations.json"
    listed.write_text("[]")
    with pytest.raises(GenerationFileError, match="'generations' list"):
        score_files([listed], file_format="d1")
    bad_truth = write_d1(
        tmp_path / "countdown_z_256_128_0_generations.json", [{"question": "q", "ground_truth": 51, "generations": "x"}]
    )
    with pytest.raises(GenerationFileError, match=r"generations\[0\]: countdown 'ground_truth' must be"):
        score_files([bad_truth], file_format="d1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GenerationFileError, match="no d1 \\*_generations.json generation files"):
        score_files([empty], file_format="d1")


def test_cli_format_d1(tmp_path, capsys):
    path = write_d1(tmp_path / "countdown_instruct_256_128_0_generations.json", D1_COUNTDOWN)
    gift(["score", str(tmp_path), "--format", "d1", "--output", str(tmp_path / "out")])
    assert "| countdown | 66.7 | 66.7 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "out.json").read_text())["files"] == [str(path)]
