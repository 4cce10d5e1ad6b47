"""`gift entropy-report` on a random-init embedded model: files, exact per-token means, Sudoku classes, bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import copy_task_rows, write_jsonl

from gift.checkpoint import load_model
from gift.data import DiffusionCollator, tokenize_examples
from gift.probe import probe_signal
from rewards.data.synthetic import synthetic_examples
from stages.reports.entropy_report import (
    EntropyReportError,
    ReportOptions,
    display_token,
    entropy_report,
    load_examples,
    main,
    task_token_classes,
)


@pytest.fixture
def sharp(base_dir):
    """The random-init model with its (tied) embeddings scaled up, so entropies differ between tokens."""
    loaded = load_model(str(base_dir))
    with torch.no_grad():
        loaded.model.get_input_embeddings().weight.mul_(3.0)
    return loaded


def test_display_token():
    assert display_token("\n") == "\\n" and display_token("\t") == "\\t" and display_token(" a") == "␣a"
    assert display_token("<|eos|>") == "<|eos|>" and display_token("") == "∅"


def test_per_token_means_match_direct_probe(sharp, tmp_path):
    examples = load_examples(str(write_jsonl(tmp_path / "tiny.jsonl", copy_task_rows(10))))
    report = entropy_report(sharp, examples, tmp_path / "out", max_length=24, top=5, min_count=1, batch_size=3)
    files = report["files"]
    assert all(files[k].is_file() and files[k].stat().st_size > 0 for k in ("markdown", "png", "json"))

    # Direct computation: one batch of everything, same width; digit "3" at answer positions (not the tail).
    tok, adapter = sharp.tokenizer, sharp.adapter
    features = tokenize_examples(examples, tok, adapter.eos_token_id, 24)
    batch = DiffusionCollator(adapter.pad_token_id, 24, "max_length", True)(features)
    entropy = probe_signal(sharp.model, adapter, batch["input_ids"], batch["attention_mask"], batch["answer_mask"])
    answer_only = batch["answer_mask"] & ~batch["pad_tail_mask"]
    three = tok.convert_tokens_to_ids("3")
    picked = entropy[answer_only & (batch["input_ids"] == three)]
    row = next(r for r in report["tokens"] if r["id"] == three and not r["pad_tail"])
    assert row["token"] == "3" and row["count"] == picked.numel() > 0
    assert row["mean_entropy"] == pytest.approx(picked.mean().item(), rel=1e-5)
    assert row["mean_beta"] == pytest.approx(picked.sqrt().mean().item(), rel=1e-5)
    tail = entropy[batch["pad_tail_mask"]]
    eos_tail = next(r for r in report["tokens"] if r["pad_tail"])
    assert eos_tail["token"] == "<|eos|> (pad tail)" and eos_tail["count"] == tail.numel()
    assert eos_tail["mean_entropy"] == pytest.approx(tail.mean().item(), rel=1e-5)
    assert report["overall"]["answer_tokens"] == int(answer_only.sum())
    assert report["overall"]["answer_mean_entropy"] == pytest.approx(entropy[answer_only].mean().item(), rel=1e-5)

    # Tables: top-5 of each, ordered; the markdown and JSON hold them.
    means = [r["mean_entropy"] for r in report["tokens"]]
    assert means == sorted(means, reverse=True) and len(report["high"]) == len(report["low"]) == 5
    assert report["high"][0] == report["tokens"][0] and report["low"][0] == report["tokens"][-1]
    assert len({r["mean_entropy"] for r in report["tokens"]}) > 3  # the scaled model does tell tokens apart
    text = files["markdown"].read_text()
    assert "## Highest mean entropy" in text and "## Lowest mean entropy" in text
    for r in report["high"] + report["low"]:  # tokens in code spans, `|` escaped for the table
        assert "| `" + r["token"].replace("|", "\\|") + "` | " + str(r["id"]) + " |" in text
    assert "## By token class" not in text
    assert json.loads(files["json"].read_text())["overall"]["examples"] == 10
    import matplotlib.image

    assert matplotlib.image.imread(files["png"]).ndim == 3


def test_sudoku_classes_and_counts(sharp, tmp_path):
    examples = synthetic_examples("sudoku", 6, seed=0)
    report = entropy_report(
        sharp, examples, tmp_path / "out", max_length=48, token_class=task_token_classes("sudoku"), min_count=1
    )
    classes = report["classes"]
    zeros = sum(ex["prompt"].count("0") for ex in examples)
    n_tokens = [
        len(f["prompt_ids"]) + len(f["answer_ids"])
        for f in tokenize_examples(examples, sharp.tokenizer, sharp.adapter.eos_token_id, 48)
    ]
    counts = {name: r["count"] for name, r in classes.items()}
    assert counts == {
        "empty cell": zeros,
        "given cell": 16 * 6 - zeros,
        "tag": 4 * 6,
        "EOS": 6,
        "EOS pad tail": sum(48 - n for n in n_tokens),
    }
    # The class means partition the same entropies as the overall statistics.
    o = report["overall"]
    total = o["answer_tokens"] * o["answer_mean_entropy"] + o["pad_tail_tokens"] * o["pad_tail_mean_entropy"]
    assert sum(r["count"] * r["mean_entropy"] for r in classes.values()) == pytest.approx(total, rel=1e-5)
    assert "## By token class" in report["files"]["markdown"].read_text()


def test_sudoku_classifier_positions():
    puzzle, solution = "1030" + "0000" + "2143" + "0001", "1234341221434321"
    tokens = ["<reasoning>", "</reasoning>", "<answer>", *solution, "</answer>", "<|eos|>"]
    example = {"prompt": puzzle, "answer_tokens": tokens}
    classes = [task_token_classes("sudoku")(example, p) for p in range(len(tokens) + 2)]
    cells = ["given cell" if c != "0" else "empty cell" for c in puzzle]
    assert classes == ["tag", "tag", "tag", *cells, "tag", "EOS", "EOS pad tail", "EOS pad tail"]
    with pytest.raises(EntropyReportError, match="16-digit"):
        task_token_classes("sudoku")({"prompt": "12", "answer_tokens": tokens}, 4)


def test_cli_synthetic_sudoku_uses_builtin_classes(base_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    report = main(
        [
            "--model",
            str(base_dir),
            "--data",
            "synthetic:sudoku",
            "--max_examples",
            "4",
            "--max_length",
            "40",
            "--top",
            "3",
            "--output_dir",
            str(out),
        ]
    )
    assert set(report["classes"]) == {"empty cell", "given cell", "tag", "EOS", "EOS pad tail"}
    assert report["overall"]["examples"] == 4 and report["overall"]["model"] == str(base_dir)
    text = (out / "entropy_report.md").read_text()
    assert "synthetic:sudoku" in text and "empty cell" in text and (out / "entropy_report.png").is_file()
    assert "wrote" in capsys.readouterr().out


def test_bad_input(base_dir, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", copy_task_rows(3))
    with pytest.raises(SystemExit, match="no such model directory"):
        main(["--model", str(tmp_path / "no-model"), "--data", str(data), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"missing.jsonl: no such data file"):
        main(["--model", str(base_dir), "--data", str(tmp_path / "missing.jsonl"), "--output_dir", str(tmp_path / "o")])
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "1", "answer": "2"}\n{"prompt": \n')
    with pytest.raises(SystemExit, match=r"broken.jsonl:2: not valid JSON"):
        main(["--model", str(base_dir), "--data", str(broken), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=r"row 0: missing field\(s\) \['solution'\]"):
        main(
            [
                "--model",
                str(base_dir),
                "--data",
                str(data),
                "--answer_field",
                "solution",
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
    assert not (tmp_path / "o").exists()
    examples = load_examples(str(data))
    loaded = load_model(str(base_dir))
    with pytest.raises(EntropyReportError, match=r"row 0: .* > max_length 8"):
        entropy_report(loaded, examples, tmp_path / "o", max_length=8)
    with pytest.raises(EntropyReportError, match="every example is longer"):
        entropy_report(loaded, examples, tmp_path / "o", max_length=8, too_long="drop")
    with pytest.raises(EntropyReportError, match="no examples"):
        entropy_report(loaded, [], tmp_path / "o")
    # Dropping only the long ones: the report says how many were dropped.
    mixed = examples + [{"prompt": "1" * 30, "answer": "x"}]
    report = entropy_report(loaded, mixed, tmp_path / "ok", max_length=24, too_long="drop", min_count=1)
    assert report["overall"]["examples"] == 3 and report["overall"]["dropped_too_long"] == 1
    assert math.isfinite(report["overall"]["answer_mean_entropy"])


def test_options_object_and_keyword_settings_give_the_same_report(sharp, tmp_path):
    examples = synthetic_examples("sudoku", 4, seed=1)
    entropy_report(sharp, examples, tmp_path / "a", max_length=40, top=3, min_count=1)
    options = ReportOptions(max_length=40, top=7, min_count=1)
    report = entropy_report(sharp, examples, tmp_path / "b", options, top=3)
    assert (tmp_path / "a" / "entropy_report.json").read_text() == (tmp_path / "b" / "entropy_report.json").read_text()
    assert len(report["high"]) == 3 and options.top == 7  # the override leaves the caller's options alone
    with pytest.raises(EntropyReportError, match=r"top \(0\), batch_size \(64\) and min_count \(5\) must be >= 1"):
        ReportOptions(top=0)
    with pytest.raises(EntropyReportError, match="unknown too_long 'skip'"):
        entropy_report(sharp, examples, tmp_path / "c", too_long="skip")
    with pytest.raises(TypeError, match="max_len"):
        entropy_report(sharp, examples, tmp_path / "c", max_len=40)
    assert not (tmp_path / "c").exists()


def test_a_named_system_prompt_resolves_as_in_the_stage_one_config(base_dir, tmp_path):
    from rewards.prompts import NAMED_SYSTEM_PROMPTS
    from stages.train.cold_start_config import ColdStartConfig

    text = NAMED_SYSTEM_PROMPTS["format"]
    assert ReportOptions(system_prompt="format").system_prompt == text
    assert ColdStartConfig(output_dir=str(tmp_path / "cs"), system_prompt="format").system_prompt == text
    data = write_jsonl(tmp_path / "d.jsonl", copy_task_rows(4))
    common = ["--model", str(base_dir), "--data", str(data), "--top", "3", "--min_count", "1"]
    main(common + ["--system_prompt", "format", "--output_dir", str(tmp_path / "named")])
    options = ReportOptions(system_prompt=text, top=3, min_count=1, model_label=str(base_dir), data_label=str(data))
    entropy_report(load_model(str(base_dir)), load_examples(str(data)), tmp_path / "text", options)
    main(common + ["--output_dir", str(tmp_path / "none")])
    named, by_text, without = ((tmp_path / d / "entropy_report.json").read_text() for d in ("named", "text", "none"))
    assert named == by_text and named != without
    with pytest.raises(SystemExit, match=r"system_prompt 'formt' is neither a named prompt \(format\) nor a sentence"):
        main(common + ["--system_prompt", "formt", "--output_dir", str(tmp_path / "typo")])
    assert not (tmp_path / "typo").exists()
