"""`gift pipeline`: the quick embedded run end to end, skipping finished steps, bad configs, controls."""

import csv
import json

import matplotlib.image
import pytest
import torch

import stages.pipeline as pipeline
from gift.embedded_tokenizer import build_embedded_tokenizer
from gift.structural_control import structural_control
from rewards.tasks.sudoku import STRUCTURAL_BETAS
from stages.pipeline import run_pipeline
from stages.pipeline_config import load_pipeline_config
from stages.run_record import read_record

QUICK = "configs/embedded/pipeline_quick.yaml"


@pytest.mark.slow
def test_quick_pipeline_end_to_end_then_rerun_skips_everything(tmp_path):
    out = tmp_path / "run"
    report = run_pipeline(load_pipeline_config(QUICK, {"output_dir": str(out)}))
    text = report.read_text()
    for arm in ("sft", "gift", "structural"):
        assert f"| stage one: {arm} |" in text
        scores = json.loads((out / "seed0" / arm / "stage1" / "eval" / "scores.json").read_text())
        assert 0 <= scores["mean"] <= 1 and scores["cells"][0]["n"] == 32
    for arm in ("sft", "gift"):
        assert f"| stage two: {arm} |" in text
        lines = (out / "seed0" / arm / "stage2" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
        assert all(0 <= json.loads(line)["reward_mean"] <= 1 for line in lines)
    assert not (out / "seed0" / "structural" / "stage2").exists()  # rl: false
    assert "## Verdicts" in text and "one seed, no interval" in text and "| gift |" in text
    assert "## What the probe sees" in text and "| empty cell |" in text  # the base model's entropy by class
    image = matplotlib.image.imread(out / "reward_curves.png")
    assert image.shape[0] > 200 and image.shape[1] > 300
    with open(out / "reward_curves.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["label"] for row in rows} == {"sft", "gift"} and len(rows) == 12
    state = json.loads((out / "pipeline_state.json").read_text())["steps"]
    assert "stage one: gift seed 0" in state and "stage two: sft seed 0" in state

    messages = []
    run_pipeline(load_pipeline_config(QUICK, {"output_dir": str(out)}), log=messages.append)
    assert not any(m.startswith(("run", "resume", "eval")) for m in messages), messages
    assert sum(m.startswith("skip") for m in messages) == 1 + 3 + 2  # stage zero, three arms, two RL runs


@pytest.mark.slow
def test_a_crashed_pipeline_continues_where_it_stopped(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = {
        "output_dir": str(out),
        "arms": [
            {"name": "sft", "overrides": {"objective": "sft"}},
            {"name": "gift", "overrides": {"objective": "gift"}},
        ],
    }
    real = pipeline.Pipeline.stage_two

    def crash_on_gift(self, arm, seed, algorithm=None):
        if arm.name == "gift":
            raise KeyboardInterrupt("killed")
        return real(self, arm, seed, algorithm)

    monkeypatch.setattr(pipeline.Pipeline, "stage_two", crash_on_gift)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(load_pipeline_config(QUICK, config))
    done = out / "seed0" / "sft" / "stage2" / "final" / "gift_manifest.json"
    stamp = done.stat().st_mtime_ns
    monkeypatch.setattr(pipeline.Pipeline, "stage_two", real)
    messages = []
    run_pipeline(load_pipeline_config(QUICK, config), log=messages.append)
    assert done.stat().st_mtime_ns == stamp
    assert [m.split(" ->")[0] for m in messages if m.startswith(("run", "resume"))] == ["run   stage two: gift seed 0"]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"stage_one": {"normaliser": "tokens"}}, "unknown normaliser 'tokens'"),
        ({"stage_one": {"learning_rat": 1.0}}, "learning_rat"),
        ({"stage_two": {"num_generations": 5}}, "num_generations"),
        (
            {"stage_two": {"sampler_eos_stop": True}},
            "renamed stage-two option\\(s\\): sampler_eos_stop is now eos_stop",
        ),
        ({"arms": [{"name": "a", "control": "magic"}]}, "unknown control 'magic'"),
        ({"arms": [{"name": "a"}, {"name": "a"}]}, "arm names must be unique"),
        ({"arms": [{"name": "a", "overide": {}}]}, "unknown keys \\['overide'\\]"),
        ({"task": "chess"}, "unknown task 'chess'"),
        ({"eval": {"gen_length": [24]}}, "unknown keys \\['gen_length'\\]"),
        (
            {"eval": {"gen_lengths": [24], "block_length": 8, "threshold": 1.5}},
            r"--threshold 1.5: must lie in \(0, 1\)",
        ),
        ({"eval": {"gen_lengths": [24], "block_length": 8, "lookahead": 1}}, "lookahead=1 commits by threshold"),
        ({"seeds": []}, "seeds must be a non-empty list"),
        ({"arms": [{"name": "a", "seeds": [3]}]}, r"arm 'a': seeds \[3\] must be a non-empty subset of \[0\]"),
        ({"rl_algorithms": ["d1", "d1"]}, "rl_algorithms must be a non-empty list of distinct names"),
        ({"rl_algorithms": ["ppo"]}, "unknown rl_algorithm 'ppo'"),
        ({"workers": 0}, "workers must be a positive integer"),
        ({"workers": "many"}, "workers must be a positive integer or auto, got 'many'"),
        ({"frozen_control": "yes"}, "frozen_control must be true or false, got 'yes'"),
        (
            {"frozen_control": True, "stage_two": {"max_steps": 7}},
            r"frozen control needs max_steps \(got 7\) to be a positive multiple",
        ),
        ({"rl_algorithms": [{"beta": 0}]}, r"rl_algorithms\[0\] must be a name or a mapping with a `name`"),
        ({"rl_algorithms": [{"name": "wd1", "beta": 0.04}]}, "rl_algorithm wd1 has no KL term"),
    ],
)
def test_bad_pipeline_configs_fail_before_anything_is_written(tmp_path, change, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        run_pipeline(load_pipeline_config(QUICK, {"output_dir": str(out), **change}))
    assert not out.exists()


def test_unknown_top_level_key_names_the_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("output_dir: x\narms: [{name: a}]\nseed: [0]\n")
    with pytest.raises(ValueError, match=r"p.yaml: unknown pipeline keys \['seed'\]"):
        load_pipeline_config(bad)


def test_structural_beta_by_token_class():
    tokenizer = build_embedded_tokenizer()
    puzzle, solution = "1020000000000000", "1234341221434321"
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": puzzle}], add_generation_prompt=True, tokenize=False
    )
    answer = f"<reasoning></reasoning><answer>{solution}</answer>"
    ids = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] * 3
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    answer_mask = torch.zeros(1, len(ids), dtype=torch.bool)
    answer_mask[0, n_prompt:] = True
    beta = structural_control("sudoku_structural")(tokenizer)(
        {"input_ids": torch.tensor([ids]), "answer_mask": answer_mask}
    )[0]
    cells = beta[n_prompt + 3 : n_prompt + 19].tolist()
    expected = [STRUCTURAL_BETAS["given cell"] if c != "0" else STRUCTURAL_BETAS["empty cell"] for c in puzzle]
    assert cells == pytest.approx(expected)
    assert beta[-3:].tolist() == pytest.approx([STRUCTURAL_BETAS["EOS"]] * 3)
    assert beta[:n_prompt].abs().sum() == 0
    assert beta[n_prompt : n_prompt + 3].tolist() == pytest.approx([STRUCTURAL_BETAS["other"]] * 3)
    with pytest.raises(ValueError, match="compact sudoku format"):
        structural_control("sudoku_structural")(tokenizer)(
            {"input_ids": torch.tensor([ids[:5]]), "answer_mask": answer_mask[:, :5]}
        )


@pytest.mark.slow
def test_worker_processes_and_algorithm_arms(tmp_path):
    """Two worker processes, two stage-two algorithms from the same stage-one checkpoints, a control on one seed."""
    out = tmp_path / "run"
    config = {
        "output_dir": str(out),
        "workers": 2,
        "seeds": [0, 1],
        "rl_algorithms": ["d1", {"name": "wd1", "beta": 0.0}],
        "frozen_control": True,
        "entropy_examples": 0,
        "stage_two": {
            "max_steps": 2,
            "save_steps": 2,
            "per_device_train_batch_size": 12,
            "num_iterations": 2,
            "max_prompts": 64,
        },
        "arms": [
            {"name": "sft", "overrides": {"objective": "sft"}},
            {"name": "gift", "overrides": {"objective": "gift"}, "seeds": [0]},
        ],
    }
    run_pipeline(load_pipeline_config(QUICK, config))
    results = json.loads((out / "results.json").read_text())
    assert results["rl_labels"] == ["sft:d1", "sft:wd1", "gift:d1", "gift:wd1"]
    assert results["arm_seeds"] == {"sft": [0, 1], "gift": [0]}
    assert {label: [r["seed"] for r in runs] for label, runs in results["rl"].items()} == {
        "sft:d1": [0, 1],
        "sft:wd1": [0, 1],
        "gift:d1": [0],
        "gift:wd1": [0],
    }
    assert results["accuracy"]["stage2"]["sft:wd1"]["cell_accuracy"]["n"] == 2
    assert not (out / "seed1" / "gift").exists()
    for seed, algorithm in ((0, "d1"), (1, "wd1")):
        manifest = json.loads(
            (out / f"seed{seed}" / "sft" / f"stage2-{algorithm}" / "final" / "gift_manifest.json").read_text()
        )
        assert manifest["config"]["rl_algorithm"] == algorithm
        assert manifest["config"]["model"] == "../../stage1/checkpoint-6"  # stored relative: the folder can move
    gap_names = set(results["gaps"])
    assert {"stage1 cell_accuracy (gift - sft)", "final reward (gift:d1 - sft:d1)"} <= gap_names
    with open(out / "reward_curves.csv") as handle:  # the figure: each run, its control and the gain, per batch
        rows = list(csv.DictReader(handle))
    assert sorted({(r["seed"], r["series"]) for r in rows if r["label"] == "sft:d1"}) == [
        (seed, series) for seed in ("0", "1") for series in ("control", "gain", "run")
    ]
    record = read_record(out)  # what ran, for the report: no folder names to parse
    assert [(r.label, r.seed, r.max_steps, r.num_iterations, r.control.max_steps) for r in record.stage_two] == [
        ("sft:d1", 0, 2, 2, 1),
        ("sft:d1", 1, 2, 2, 1),
        ("sft:wd1", 0, 2, 2, 1),
        ("sft:wd1", 1, 2, 2, 1),
        ("gift:d1", 0, 2, 2, 1),
        ("gift:wd1", 0, 2, 2, 1),
    ]
    assert record.stage_two[3].start.endswith("seed1/sft/stage1/checkpoint-6")
    # one frozen control per start, shared by both algorithms (a control does not read the estimator)
    assert record.stage_two[3].control.run_dir.endswith("seed1/sft/stage2-frozen")
    assert record.stage_two[1].control == record.stage_two[3].control
    assert sorted(p.name for p in (out / "seed1" / "sft").iterdir()) == [
        "stage1",
        "stage2-d1",
        "stage2-frozen",
        "stage2-wd1",
    ]
    assert record.stage_two_recipes["sft:wd1"]["beta"] == 0.0 and record.workers == 2
    assert results["wall_time"]["by_stage_s"]["frozen control"] > 0
    state = json.loads((out / "pipeline_state.json").read_text())
    assert "stage two: gift:wd1 seed 0" in state["steps"] and state["elapsed_s"] > 0
    assert sorted(name for name in state["steps"] if "(frozen)" in name) == [
        "stage two: gift (frozen) seed 0",
        "stage two: sft (frozen) seed 0",
        "stage two: sft (frozen) seed 1",
    ]
    report = (out / "report.md").read_text()
    assert "| stage two: sft:wd1 |" in report and "| stage one: gift (1 seed) |" in report
    # every stage-two run has its frozen control: one step per generation batch, same first batch
    trained, frozen = (
        out / "seed1" / "sft" / "stage2-wd1" / "metrics.jsonl",
        out / "seed1" / "sft" / "stage2-frozen" / "metrics.jsonl",
    )
    assert [json.loads(line)["step"] for line in frozen.read_text().splitlines()] == [1]
    assert (
        json.loads(frozen.read_text())["reward_mean"] == json.loads(trained.read_text().splitlines()[0])["reward_mean"]
    )
    assert all("gain" in run for runs in results["rl"].values() for run in runs)
    assert "| control rise | gain over control |" in report
