"""What real users hit with the published LLaDA / Dream checkpoints, on tiny models in the official hub layout.

Each fixture carries its family's published `config.json` and `generation_config.json` (tests/official_layout.py):
Dream full fine-tuning saves, LLaDA trains its EOS embedding row, `mlp_hidden_size: null` loads,
`block_group_size` is refused by name, and `gift convert` keeps the stored dtype.
"""

from __future__ import annotations

import json

import official_layout as layout
import pytest
import torch
from helpers import CPU_FLAGS as CPU
from safetensors import safe_open

from gift.adapters import ModelLoadError, load_pretrained
from gift.checkpoint import load_model
from gift.models import stored_dtype
from stages.cli import main as gift


def test_fixtures_carry_the_published_generation_configs(tmp_path):
    dream = layout.write_official_dream(tmp_path / "dream")
    published = json.loads((dream / "generation_config.json").read_text())
    assert published["temperature"] == 0.0 and published["alg"] == "origin" and published["steps"] == 512
    llada = layout.write_official_llada(tmp_path / "llada")
    assert set(json.loads((llada / "generation_config.json").read_text())) == {
        "_from_model_config",
        "bos_token_id",
        "eos_token_id",
        "transformers_version",
    }


def test_dream_saves_after_the_trainer_aligns_bos_with_the_tokenizer(tmp_path):
    # The published greedy `temperature: 0.0` made transformers refuse the modified config at the first save.
    loaded = load_model(str(layout.write_official_dream(tmp_path / "dream", seed=1)))
    generation = loaded.model.generation_config
    assert not generation.do_sample and generation.temperature is None  # greedy stays greedy
    generation.bos_token_id = loaded.tokenizer.bos_token_id  # what the Trainer does
    loaded.model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "generation_config.json").read_text())
    assert saved["bos_token_id"] == loaded.tokenizer.bos_token_id and "temperature" not in saved


def test_dream_full_fine_tuning_writes_checkpoints(tmp_path):
    base = layout.write_official_dream(tmp_path / "base", seed=2)
    run = tmp_path / "run"
    assert (
        gift(
            [
                "cold-start",
                "--config",
                "configs/dream/s1k_full.yaml",
                "--model_name_or_path",
                str(base),
                "--output_dir",
                str(run),
                "--dataset",
                "synthetic:sudoku",
                "--synthetic_examples",
                "4",
                "--max_length",
                "512",
                "--pad_to",
                "longest",
                "--per_device_train_batch_size",
                "2",
                "--global_batch_size",
                "2",
                "--max_steps",
                "1",
                "--save_steps",
                "1",
                *CPU,
            ]
        )
        == 0
    )
    assert (run / "final" / "model.safetensors").is_file() and (run / "final" / "generation_config.json").is_file()
    assert load_model(str(run)).adapter.kind == "dream"


def test_llada_trains_the_eos_row_of_its_input_embedding(tmp_path):
    # Official LLaDA's embedding has no padding_idx; Llama would take one from pad_token_id (= EOS).
    loaded = load_model(str(layout.write_official_llada(tmp_path / "llada", seed=1)))
    eos = loaded.adapter.eos_token_id
    assert loaded.adapter.pad_token_id == eos  # the official pad id is still the sequences' pad
    embedding = loaded.model.get_input_embeddings()
    assert embedding.padding_idx is None
    ids = torch.tensor([[5, eos, 7, eos]])
    loaded.model(input_ids=ids).logits.square().mean().backward()
    grad = embedding.weight.grad
    assert grad[eos].abs().sum() > 0 and grad[6].abs().sum() == 0  # rows not in the input get none
    # A native-form copy (what full fine-tuning saves) loads the same way.
    assert gift(["convert", "--model", str(tmp_path / "llada"), "--output_dir", str(tmp_path / "native")]) == 0
    native = load_model(str(tmp_path / "native"))
    assert native.model.get_input_embeddings().padding_idx is None and native.adapter == loaded.adapter
    assert native.model.config.rope_full_precision is True


def test_rope_full_precision_false_is_read(tmp_path):
    directory = layout.write_official_llada(tmp_path / "llada", config_overrides={"rope_full_precision": False})
    model, _, _ = load_pretrained(str(directory), dtype="bfloat16")
    assert model.config.rope_full_precision is False
    assert not getattr(model.model.rotary_emb, "_gift_fp32", False)


def test_llada_mlp_hidden_size_null_is_mlp_ratio_times_d_model(tmp_path):
    directory = layout.write_official_llada(
        tmp_path / "llada", config_overrides={"mlp_hidden_size": None, "mlp_ratio": 3}
    )
    model, _, _ = load_pretrained(str(directory))  # every weight name and shape checked by the loader
    assert model.config.intermediate_size == 3 * layout.LLADA_DIMS["d_model"]
    bad = layout.write_official_llada(tmp_path / "bad", config_overrides={"mlp_hidden_size": None, "mlp_ratio": 0})
    with pytest.raises(ModelLoadError, match=r"config.json: mlp_hidden_size \(or mlp_ratio x d_model\) is 0"):
        load_pretrained(str(bad))


def test_llada_block_group_size_is_refused_by_name(tmp_path):
    directory = layout.write_official_llada(tmp_path / "llada", config_overrides={"block_group_size": 2})
    with pytest.raises(
        ModelLoadError, match="has block_group_size=2; the native implementation supports block_group_size=1 only"
    ) as err:
        load_pretrained(str(directory))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("writer", [layout.write_official_llada, layout.write_official_dream])
def test_convert_keeps_the_stored_dtype(tmp_path, writer):
    source = writer(tmp_path / "bf16", seed=4, dtype=torch.bfloat16)
    assert stored_dtype(source) == torch.bfloat16
    assert gift(["convert", "--model", str(source), "--output_dir", str(tmp_path / "kept")]) == 0
    assert gift(["convert", "--model", str(source), "--output_dir", str(tmp_path / "fp32"), "--dtype", "float32"]) == 0
    assert stored_dtype(tmp_path / "kept") == torch.bfloat16 and stored_dtype(tmp_path / "fp32") == torch.float32
    with (
        safe_open(source / "model.safetensors", "pt") as original,
        safe_open(tmp_path / "kept" / "model.safetensors", "pt") as kept,
    ):
        # the bf16 values themselves are copied (names differ for LLaDA: compare the embedding by its value set)
        first = sorted(original.keys())[0]
        values = original.get_tensor(first)
        assert any(
            torch.equal(kept.get_tensor(k), values) for k in kept.keys() if kept.get_tensor(k).shape == values.shape
        )
