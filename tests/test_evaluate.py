"""`gift eval`: d1 defaults, the prompt-style rule, data sources, bad input, process split/gather, and
`gift eval` then `gift score` end to end on a random-init embedded checkpoint (plumbing, not accuracy)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from accelerate import PartialState
from helpers import write_jsonl

from gift.checkpoint import Manifest, load_model, save_checkpoint
from gift.embedded_model import build_embedded_model
from rewards import COUNTDOWN_SYSTEM, SUDOKU_SYSTEM, task_prompt
from rewards.data.synthetic import synthetic_rows
from stages.cli import main as gift
from stages.evaluation.evaluate import (
    EvalError,
    build_prompts,
    check_eval_settings,
    compact_prompt,
    decode_record,
    evaluate,
    load_eval_rows,
    make_parser,
    merge_gathered,
    resolve_decoding,
    resolve_prompt_style,
)

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = "1234341221434321"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory of this project's format: `final/` holds a random-init embedded checkpoint."""
    model, tokenizer = build_embedded_model("tiny", seed=0)
    run = tmp_path_factory.mktemp("run")
    manifest = Manifest(
        stage="base",
        model_type="embedded",
        mask_token_id=tokenizer.mask_token_id,
        shift_logits=False,
        base_model="embedded:tiny",
    )
    save_checkpoint(run / "final", model, tokenizer, manifest)
    return run


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- settings


def test_d1_defaults_resolve():
    args = make_parser().parse_args(["--model", "m", "--task", "gsm8k", "--output_dir", "o"])
    assert args.gen_length == [128, 256, 512] and args.block_length == 32 and args.steps is None
    assert args.temperature == 0.0 and args.remasking == "low_confidence" and not args.no_prefill
    assert args.prompt_style == "auto" and args.data is None and args.limit is None
    decoding = resolve_decoding(
        args.gen_length,
        steps=args.steps,
        block_length=args.block_length,
        temperature=args.temperature,
        remasking=args.remasking,
    )
    assert [(d.gen_length, d.steps, d.block_length, d.temperature, d.remasking) for d in decoding] == [
        (128, 64, 32, 0.0, "low_confidence"),
        (256, 128, 32, 0.0, "low_confidence"),
        (512, 256, 32, 0.0, "low_confidence"),
    ]
    assert [d.steps for d in resolve_decoding([64, 128], steps=32)] == [32, 32]
    # eval_config.json records the sampler settings evaluation sets, not cfg_scale / return_history.
    assert decode_record(decoding[0]) == {
        "gen_length": 128,
        "steps": 64,
        "block_length": 32,
        "temperature": 0.0,
        "remasking": "low_confidence",
        "threshold": None,
        "factor": None,
        "kv_cache": "none",
        "min_commit": "one",
        "lookahead": 0,
        "eos_stop": False,
    }


def test_every_sampler_option_is_a_gift_eval_flag_and_a_pipeline_eval_key():
    from gift.sampler_options import sampler_options

    args = make_parser().parse_args(
        [
            "--model",
            "m",
            "--task",
            "sudoku",
            "--output_dir",
            "o",
            "--threshold",
            "0.9",
            "--kv_cache",
            "dual",
            "--eos_stop",
            "--lookahead",
            "1",
            "--min_commit",
            "schedule",
        ]
    )
    assert all(hasattr(args, name) for name in sampler_options())
    assert (args.threshold, args.kv_cache, args.eos_stop, args.lookahead, args.min_commit) == (
        0.9,
        "dual",
        True,
        1,
        "schedule",
    )
    check_eval_settings(
        {
            "gen_lengths": [24],
            "block_length": 8,
            "threshold": 0.9,
            "kv_cache": "dual",
            "eos_stop": True,
            "lookahead": 1,
            "min_commit": "schedule",
            "limit": 4,
            "data": "synthetic",
        }
    )
    check_eval_settings({"gen_lengths": [24], "block_length": 8, "factor": 1.0})
    with pytest.raises(EvalError, match=r"unknown keys \['top_k'\]"):
        check_eval_settings({"top_k": 3})
    with pytest.raises(EvalError, match="set threshold .* or factor .*, not both"):
        check_eval_settings({"gen_lengths": [24], "block_length": 8, "threshold": 0.9, "factor": 1.0})


def test_bad_decoding_settings():
    with pytest.raises(EvalError, match="--gen_length 48 is not divisible by --block_length 32"):
        resolve_decoding([128, 48])
    with pytest.raises(EvalError, match=r"steps 6 is not divisible by the number of blocks"):
        resolve_decoding([128], steps=6)
    with pytest.raises(EvalError, match="unknown remasking"):
        resolve_decoding([128], remasking="best")


def test_gen_length_error_comes_before_any_loading(tmp_path, capsys):
    out = tmp_path / "eval"
    # The model does not exist: the gen_length error must come first, and nothing is written.
    assert (
        gift(
            [
                "eval",
                "--model",
                str(tmp_path / "nope"),
                "--task",
                "sudoku",
                "--data",
                "synthetic",
                "--gen_length",
                "128",
                "100",
                "--output_dir",
                str(out),
            ]
        )
        == 1
    )
    assert "gift eval: error: --gen_length 100 is not divisible by --block_length 32" in capsys.readouterr().err
    assert not out.exists()


def test_unknown_task_lists_known_ones(tmp_path, capsys):
    assert gift(["eval", "--model", "embedded", "--task", "chess", "--output_dir", str(tmp_path)]) == 1
    assert "unknown task 'chess'; known tasks: countdown, gsm8k, math, sudoku" in capsys.readouterr().err
    with pytest.raises(EvalError, match="known tasks"):
        evaluate("embedded", "chess", [32], output_dir=tmp_path)


@pytest.mark.parametrize(
    "config, message",
    [
        (None, "has no config.json: not a model directory"),
        ({"model_type": "llama", "is_causal": True}, "is not a known masked-diffusion model"),
        ({"model_type": "gpt2"}, "is not a known masked-diffusion model"),
        ({"model_type": "llada"}, "config.json has no 'd_model': not an official llada config"),
    ],
)
def test_model_that_is_neither_checkpoint_nor_known_type(tmp_path, capsys, config, message):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    if config is not None:
        (model_dir / "config.json").write_text(json.dumps(config))
    assert (
        gift(
            [
                "eval",
                "--model",
                str(model_dir),
                "--task",
                "sudoku",
                "--data",
                "synthetic",
                "--limit",
                "2",
                "--gen_length",
                "32",
                "--output_dir",
                str(tmp_path / "eval"),
            ]
        )
        == 1
    )
    assert re.search(f"gift eval: error: .*{message}", capsys.readouterr().err)


# --------------------------------------------------------------------------- prompts and data


@pytest.mark.parametrize(
    "style, kind, data, expected",
    [
        ("auto", "embedded", "synthetic", "compact"),
        ("auto", "embedded", "sudoku.csv", "d1"),
        ("auto", "embedded", None, "d1"),
        ("auto", "llada", "synthetic", "d1"),
        ("auto", "dream", "synthetic", "d1"),
        ("d1", "embedded", "synthetic", "d1"),
        ("compact", "llada", "sudoku.csv", "compact"),
    ],
)
def test_prompt_style_rule(style, kind, data, expected):
    assert resolve_prompt_style(style, kind, data) == expected


def test_compact_prompts_are_the_synthetic_format():
    for task in ("sudoku", "countdown"):
        for row in synthetic_rows(task, "test", 5):
            columns = {k: v for k, v in row.items() if k in ("puzzle", "solution", "numbers", "target")}
            assert compact_prompt(task, columns) == row["prompt"]  # built from the columns alone
    rows = load_eval_rows("sudoku", "synthetic", limit=3)
    assert build_prompts("sudoku", rows, "compact") == [r["prompt"] for r in synthetic_rows("sudoku", "test", 3)]
    with pytest.raises(EvalError, match="gsm8k has no compact prompt format"):
        build_prompts("gsm8k", [{"question": "1+1?", "answer": "2"}], "compact")


def test_d1_prompts_are_the_task_prompt_builders():
    (sudoku,) = build_prompts("sudoku", load_eval_rows("sudoku", "synthetic", limit=1), "d1")
    puzzle = synthetic_rows("sudoku", "test", 1)[0]["puzzle"]
    assert sudoku == SUDOKU_SYSTEM + "\n\nSolve the following Sudoku puzzle: " + puzzle + "\n"
    row = load_eval_rows("countdown", "synthetic", limit=1)[0]
    (countdown,) = build_prompts("countdown", [row], "d1")
    assert countdown == task_prompt("countdown", row)
    assert countdown.endswith(f"\n\nNumbers: [{', '.join(map(str, row['numbers']))}]\nTarget: {row['target']}")
    with pytest.raises(EvalError, match="gsm8k prompt needs column 'question'"):
        build_prompts("gsm8k", [{"answer": "2"}], "d1")


def test_data_sources(tmp_path):
    with pytest.raises(EvalError, match="sudoku: d1's test set is not on the hub; pass --data PATH"):
        load_eval_rows("sudoku")
    with pytest.raises(EvalError, match="countdown: d1's test set is not on the hub"):
        load_eval_rows("countdown")
    with pytest.raises(EvalError, match="--data synthetic exists only for countdown, sudoku"):
        load_eval_rows("gsm8k", "synthetic")
    with pytest.raises(EvalError, match="no such file"):
        load_eval_rows("gsm8k", str(tmp_path / "missing.jsonl"))
    assert len(load_eval_rows("sudoku", "synthetic")) == 256  # the protocol's size

    csv = tmp_path / "sudoku.csv"
    csv.write_text("Puzzle,Solution\n" + "".join(f"{'0' * (i + 1)}{SOLUTION[i + 1 :]},{SOLUTION}\n" for i in range(5)))
    rows = load_eval_rows("sudoku", str(csv), limit=3)  # 5 rows <= 256: all of them, in d1's drawn order
    assert [r["puzzle"].count("0") for r in rows] == [2, 5, 3]
    assert sorted(r["puzzle"].count("0") for r in load_eval_rows("sudoku", str(csv))) == [1, 2, 3, 4, 5]
    gsm = write_jsonl(tmp_path / "gsm8k.jsonl", [{"question": "2+2?", "answer": "four is #### 4"}])
    assert load_eval_rows("gsm8k", str(gsm))[0]["answer"] == "4"
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "2+2?"}])
    with pytest.raises(EvalError, match="missing column 'answer'"):
        load_eval_rows("gsm8k", str(bad))


# --------------------------------------------------------------------------- processes


def accelerate_split(items: list, rank: int, world: int) -> list:
    """What `PartialState.split_between_processes` hands rank `rank` of `world` (run on a fake state)."""
    fake = SimpleNamespace(num_processes=world, process_index=rank)
    with PartialState.split_between_processes(fake, items) as part:
        return list(part)


@pytest.mark.parametrize("n", [0, 1, 7, 8])
def test_split_then_gather_restores_example_order(n):
    shards = [accelerate_split(list(range(n)), rank, 2) for rank in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(n)) and not set(shards[0]) & set(shards[1])
    records = [[{"index": i, "completion": f"c{i}"} for i in shard] for shard in shards]
    # gather_object concatenates in rank order; merge also copes with any other order.
    for gathered in (records[0] + records[1], records[1] + records[0]):
        assert [r["completion"] for r in merge_gathered(gathered, n)] == [f"c{i}" for i in range(n)]


def test_gather_refuses_duplicates_and_gaps():
    with pytest.raises(RuntimeError, match="more than one process"):
        merge_gathered([{"index": 0}, {"index": 0}], 1)
    with pytest.raises(RuntimeError, match="1 examples missing"):
        merge_gathered([{"index": 0}, {"index": 2}], 3)


# --------------------------------------------------------------------------- end to end


def test_eval_then_score_end_to_end(run_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    gift(
        [
            "eval",
            "--model",
            str(run_dir),
            "--task",
            "sudoku",
            "--data",
            "synthetic",
            "--limit",
            "8",
            "--gen_length",
            "32",
            "64",
            "--batch_size",
            "8",
            "--output_dir",
            str(out),
        ]
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "eval_config.json",
        "gift_run.json",
        "sudoku_32.jsonl",
        "sudoku_64.jsonl",
    ]  # gift_run.json: whose generations
    expected = synthetic_rows("sudoku", "test", 8)
    for gen_length in (32, 64):
        records = read_jsonl(out / f"sudoku_{gen_length}.jsonl")
        assert [r["index"] for r in records] == list(range(8))
        for record, row in zip(records, expected):
            assert set(record) == {
                "task",
                "gen_length",
                "index",
                "prompt",
                "completion",
                "model_calls",
                "puzzle",
                "solution",
            }
            assert record["model_calls"] == gen_length // 2  # the fixed schedule: one call per step
            assert (record["task"], record["gen_length"]) == ("sudoku", gen_length)
            assert (record["prompt"], record["puzzle"], record["solution"]) == (
                row["prompt"],
                row["puzzle"],
                row["solution"],
            )
            assert isinstance(record["completion"], str)
    config = json.loads((out / "eval_config.json").read_text())["sudoku"]
    assert config["prompt_style"] == "compact" and config["model_type"] == "embedded" and config["n"] == 8
    assert [(d["gen_length"], d["steps"], d["block_length"]) for d in config["decoding"]] == [
        (32, 16, 32),
        (64, 32, 32),
    ]
    assert config["model"] == str(run_dir / "final") and config["prefill"] == "<reasoning>"
    assert config["model_calls_per_sequence"] == {"32": 16.0, "64": 32.0}

    gift(["score", str(out)])
    assert "| sudoku |" in capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())
    assert [(c["task"], c["gen_length"], c["n"]) for c in scores["cells"]] == [("sudoku", 32, 8), ("sudoku", 64, 8)]
    assert 0.0 <= scores["mean"] <= 1.0

    # In process, with the model already loaded and another batch size: the same greedy completions.
    again = evaluate(
        load_model(str(run_dir)), "sudoku", [32], output_dir=tmp_path / "again", data="synthetic", limit=8, batch_size=3
    )
    assert again == [tmp_path / "again" / "sudoku_32.jsonl"]
    assert again[0].read_text() == (out / "sudoku_32.jsonl").read_text()


def test_d1_style_on_countdown(run_dir, tmp_path):
    (path,) = evaluate(
        str(run_dir), "countdown", [32], output_dir=tmp_path, data="synthetic", limit=2, prompt_style="d1"
    )
    records = read_jsonl(path)
    assert path.name == "countdown_32.jsonl" and len(records) == 2
    assert records[0]["prompt"].startswith(COUNTDOWN_SYSTEM + "\n\nNumbers: [")
    assert set(records[0]) >= {"numbers", "target", "completion"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_write_the_single_process_file(run_dir, tmp_path):
    args = [
        "--model",
        str(run_dir),
        "--task",
        "sudoku",
        "--data",
        "synthetic",
        "--limit",
        "7",
        "--gen_length",
        "32",
        "--batch_size",
        "2",
    ]
    evaluate(str(run_dir), "sudoku", [32], output_dir=tmp_path / "one", data="synthetic", limit=7, batch_size=2)
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "stages.evaluation.evaluate",
        *args,
        "--output_dir",
        str(tmp_path / "two"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "two" / "sudoku_32.jsonl").read_text() == (tmp_path / "one" / "sudoku_32.jsonl").read_text()
    assert json.loads((tmp_path / "two" / "eval_config.json").read_text())["sudoku"]["num_processes"] == 2


def _eval_sudoku_32(run_dir: Path, out: Path, *flags: str) -> int:
    """`gift eval` on four synthetic sudoku rows at gen_length 32, with the decoding flags given."""
    args = ["eval", "--model", str(run_dir), "--task", "sudoku", "--data", "synthetic", "--limit", "4"]
    return gift([*args, "--gen_length", "32", *flags, "--output_dir", str(out)])


def test_parallel_decoding_with_the_schedule_floor_never_calls_more_than_steps(run_dir, tmp_path):
    out = tmp_path / "eval"
    _eval_sudoku_32(run_dir, out, "--threshold", "0.9", "--min_commit", "schedule")
    assert all(r["model_calls"] <= 16 for r in read_jsonl(out / "sudoku_32.jsonl"))  # steps = 32 / 2
    decoding = json.loads((out / "eval_config.json").read_text())["sudoku"]["decoding"]
    assert decoding[0]["min_commit"] == "schedule" and decoding[0]["threshold"] == 0.9


def test_eos_stop_and_lookahead_reach_the_sampler_and_the_record(run_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    _eval_sudoku_32(run_dir, out, "--threshold", "0.9", "--lookahead", "1", "--eos_stop")
    decoding = json.loads((out / "eval_config.json").read_text())["sudoku"]["decoding"]
    assert decoding[0]["lookahead"] == 1 and decoding[0]["eos_stop"] is True
    assert _eval_sudoku_32(run_dir, tmp_path / "bad", "--lookahead", "1") == 1
    assert (
        "gift eval: error: --gen_length 32: lookahead=1 commits by threshold: set threshold" in capsys.readouterr().err
    )
