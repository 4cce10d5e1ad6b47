"""Stage one end to end on the embedded model: learning, checkpoints, resume, bad input."""

import json
from pathlib import Path

import pytest
import torch
from helpers import copy_task_rows, kill_at_step, write_jsonl
from safetensors.torch import load_file

import stages.train.cold_start as cold_start
from gift.checkpoint import MANIFEST_NAME, load_model, read_manifest
from gift.data import DataError
from stages.train.cold_start import main as cold_start_main
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig


def _config(tmp_path, base_dir, data, **overrides) -> ColdStartConfig:
    values = dict(
        model_name_or_path=str(base_dir),
        dataset=str(data),
        output_dir=str(tmp_path / "run"),
        max_length=24,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        max_steps=40,
        save_steps=1000,
        seed=0,
        logging_steps=1,
        disable_tqdm=True,
    )
    values.update(overrides)
    return ColdStartConfig(**values)


def _losses(run_dir: Path) -> list[float]:
    return [
        row["loss"] for row in map(json.loads, (run_dir / "train_log.jsonl").read_text().splitlines()) if "loss" in row
    ]


@pytest.fixture(scope="module")
def warm_base(tmp_path_factory, base_dir) -> Path:
    """A stage-one checkpoint after 20 full-parameter steps: LoRA learns slowly on a random-init model."""
    tmp = tmp_path_factory.mktemp("warm")
    data = write_jsonl(tmp / "copy.jsonl", copy_task_rows(64))
    return run_cold_start(_config(tmp, base_dir, data, objective="sft", max_steps=20))


@pytest.mark.parametrize("objective,use_lora", [("sft", False), ("gift", False), ("sft", True), ("gift", True)])
def test_loss_decreases_on_a_learnable_set(tmp_path, base_dir, warm_base, objective, use_lora):
    data = write_jsonl(tmp_path / "copy.jsonl", copy_task_rows(64))
    start = warm_base if use_lora else base_dir
    config = _config(
        tmp_path,
        start,
        data,
        objective=objective,
        use_lora=use_lora,
        learning_rate=1e-2 if use_lora else 3e-3,
        lora_r=16,
        lora_alpha=32,
        lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    final = run_cold_start(config)
    losses = _losses(tmp_path / "run")
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    manifest = read_manifest(final)
    assert manifest.objective == objective and manifest.adapter == use_lora and manifest.stage == "cold_start"
    assert manifest.metrics["global_step"] == 40
    if use_lora:  # the adapter sits on the stage-one checkpoint it started from, and loads back on it
        assert manifest.base_model == str(warm_base.resolve()) and manifest.parent == str(warm_base.resolve())
        assert hasattr(load_model(str(final)).model, "peft_config")


def test_trainable_parameters_change_and_probe_stats_logged(tmp_path, base_dir):
    data = write_jsonl(tmp_path / "copy.jsonl", copy_task_rows(32))
    before = {k: v.clone() for k, v in load_model(str(base_dir)).model.state_dict().items()}
    final = run_cold_start(_config(tmp_path, base_dir, data, max_steps=3))
    after = load_model(str(final)).model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)
    row = json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[0])
    for key in ("loss", "mean_t", "mean_rate", "masked_fraction", "beta_mean", "beta_std", "clamp_count", "step_time"):
        assert key in row, key


@pytest.mark.parametrize("beta_source", ["live", "cached"])
def test_kill_and_resume_reproduces_the_uninterrupted_run(tmp_path, base_dir, beta_source, monkeypatch):
    data = write_jsonl(tmp_path / "copy.jsonl", copy_task_rows(64))
    common = dict(max_steps=6, save_steps=3, objective="gift", beta_source=beta_source)
    straight = run_cold_start(_config(tmp_path / "a", base_dir, data, **common))
    with pytest.raises(KeyboardInterrupt):
        run_cold_start(_config(tmp_path / "b", base_dir, data, **common), callbacks=[kill_at_step(5)])
    run_b = tmp_path / "b" / "run"
    assert (run_b / "checkpoint-3" / MANIFEST_NAME).is_file() and not (run_b / "final").exists()
    if beta_source == "cached":
        assert (run_b / "checkpoint-3" / cold_start.BETA_CACHE_NAME).is_file()

        def must_not_rebuild(*a, **k):
            raise AssertionError("resume must reuse the starting model's beta cache")

        monkeypatch.setattr(cold_start, "build_beta_cache", must_not_rebuild)
    with pytest.raises(FileExistsError, match="--resume"):
        run_cold_start(_config(tmp_path / "b", base_dir, data, **common))
    resumed = run_cold_start(_config(tmp_path / "b", base_dir, data, resume=True, **common))
    a, b = load_model(str(straight)).model.state_dict(), load_model(str(resumed)).model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert _losses(tmp_path / "a" / "run")[3:] == pytest.approx(_losses(run_b)[-3:], rel=1e-5)
    if beta_source == "cached":
        cache = load_file(resumed / cold_start.BETA_CACHE_NAME)["beta"]
        assert cache.shape == (64, 24) and (cache > 0).any()


def test_cached_beta_matches_probe_of_starting_model(tmp_path, base_dir):
    data = write_jsonl(tmp_path / "copy.jsonl", copy_task_rows(16))
    final = run_cold_start(_config(tmp_path, base_dir, data, max_steps=1, objective="gift", beta_source="cached"))
    cache = load_file(final / cold_start.BETA_CACHE_NAME)["beta"]
    from gift.data import DiffusionCollator, tokenize_examples
    from gift.probe import probe_betas

    start = load_model(str(base_dir))
    feats = tokenize_examples(copy_task_rows(16), start.tokenizer, start.adapter.eos_token_id, 24)
    batch = DiffusionCollator(start.adapter.pad_token_id, 24)(feats)
    assert torch.allclose(cache, probe_betas(start.model, start.adapter, batch), atol=1e-5)


def test_resume_without_checkpoint_is_an_error(tmp_path, base_dir):
    data = write_jsonl(tmp_path / "copy.jsonl", copy_task_rows(8))
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        run_cold_start(_config(tmp_path, base_dir, data, resume=True))


@pytest.mark.parametrize(
    "rows,message",
    [
        ([{"prompt": "1"}], r"row 0: missing field\(s\) \['answer'\]"),
        ([{"answer": "1"}], r"row 0: missing field\(s\) \['prompt'\]"),
        ([{"prompt": "1", "answer": ""}], r"row 0: field 'answer' is empty"),
        ([{"prompt": "1", "answer": "x" * 40}], r"row 0: .* > max_length 24"),
    ],
)
def test_bad_data_fails_before_anything_is_written(tmp_path, base_dir, rows, message):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "1", "answer": "2"}] * 3 + rows)
    with pytest.raises(DataError, match=message.replace("row 0", "row 3")):
        run_cold_start(_config(tmp_path, base_dir, data))
    assert not (tmp_path / "run").exists()


def test_tokenizer_without_mask_token_fails_before_training(tmp_path, base_dir):
    import shutil

    from gift.adapters import ModelLoadError

    broken = tmp_path / "nomask"
    shutil.copytree(base_dir, broken)
    cfg = json.loads((broken / "tokenizer_config.json").read_text())
    cfg.pop("mask_token", None)
    (broken / "tokenizer_config.json").write_text(json.dumps(cfg))
    data = write_jsonl(tmp_path / "d.jsonl", copy_task_rows(4))
    with pytest.raises(ModelLoadError, match="no mask token"):
        run_cold_start(_config(tmp_path, broken, data))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "option,value",
    [
        ("objective", "dpo"),
        ("normaliser", "tokens"),
        ("beta_source", "never"),
        ("beta_from", "variance"),
        ("pad_to", "shortest"),
        ("beta_ref", "global"),
    ],
)
def test_unknown_options_are_clear_errors(tmp_path, option, value):
    with pytest.raises(ValueError, match=f"unknown {option} '{value}'"):
        ColdStartConfig(output_dir=str(tmp_path), **{option: value})


def test_unknown_config_key_is_an_error(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("objective: gift\nbeta_temperature: 2\n")
    with pytest.raises(ValueError, match="beta_temperature"):
        cold_start_main(["--config", str(config), "--output_dir", str(tmp_path / "o")])


@pytest.mark.parametrize("recipe", ["gift_sudoku", "sft_sudoku"])
def test_embedded_recipes_write_a_loadable_checkpoint(tmp_path, base_dir, recipe):
    final = cold_start_main(
        [
            "--config",
            f"configs/embedded/{recipe}.yaml",
            "--model_name_or_path",
            str(base_dir),
            "--max_steps",
            "3",
            "--synthetic_examples",
            "512",
            "--output_dir",
            str(tmp_path / recipe),
            "--disable_tqdm",
            "true",
        ]
    )
    loaded = load_model(str(tmp_path / recipe))
    assert loaded.manifest.objective == recipe.split("_")[0] and loaded.path == final
    assert loaded.manifest.config["dataset"] == "synthetic:sudoku"
