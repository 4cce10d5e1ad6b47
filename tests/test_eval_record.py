"""`eval_config.json` keeps every generation file's settings: a second `gift eval` of a task into the same
folder with other settings is refused before generating, one with the same settings adds its files
(docs/reliability.md)."""

from __future__ import annotations

import json

from stages.cli import main as gift


def _eval(base_dir, out, *extra: str) -> int:
    return gift(
        [
            "eval",
            "--model",
            str(base_dir),
            "--task",
            "sudoku",
            "--data",
            "synthetic",
            "--limit",
            "2",
            "--block_length",
            "8",
            "--output_dir",
            str(out),
            *extra,
        ]
    )


def test_a_second_eval_keeps_every_files_settings_or_is_refused(tmp_path, base_dir, capsys):
    out = tmp_path / "eval"
    assert _eval(base_dir, out, "--gen_length", "16") == 0
    assert _eval(base_dir, out, "--gen_length", "24") == 0  # same settings, another length: both recorded
    record = json.loads((out / "eval_config.json").read_text())["sudoku"]
    assert record["files"] == ["sudoku_16.jsonl", "sudoku_24.jsonl"]
    assert [d["gen_length"] for d in record["decoding"]] == [16, 24] and set(record["seconds"]) == {"16", "24"}
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert _eval(base_dir, out, "--gen_length", "32", "--temperature", "0.7") == 1
    err = capsys.readouterr().err
    assert "sudoku_16.jsonl, sudoku_24.jsonl in this folder were generated with other settings" in err
    assert "temperature" in err and "nothing was generated" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # rewriting every file of the record with new settings replaces it
    assert _eval(base_dir, out, "--gen_length", "16", "24", "--temperature", "0.7") == 0
    record = json.loads((out / "eval_config.json").read_text())["sudoku"]
    assert record["files"] == ["sudoku_16.jsonl", "sudoku_24.jsonl"]
    assert {d["temperature"] for d in record["decoding"]} == {0.7}
