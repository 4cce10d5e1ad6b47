"""The shared checkpoint format: round trips, merge, atomic writes, bad checkpoints."""

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model

from gift.checkpoint import (
    MANIFEST_NAME,
    CheckpointError,
    LoadedModel,
    load_checkpoint,
    load_model,
    manifest_for,
    merge_checkpoint,
    read_manifest,
    resolve_checkpoint,
    save_checkpoint,
)
from stages.cli import main as gift_main


def _logits(model, tokenizer):
    ids = torch.arange(10, 30).unsqueeze(0)
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def _perturb(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


def test_full_round_trip_reproduces_logits(tmp_path, base_dir):
    loaded = load_model(str(base_dir))
    _perturb(loaded.model)
    manifest = manifest_for(loaded, "cold_start", str(base_dir), "gift", adapter=False, config={"x": 1})
    save_checkpoint(tmp_path / "ck", loaded.model, loaded.tokenizer, manifest)
    back = load_model(str(tmp_path / "ck"))
    assert back.manifest.stage == "cold_start" and back.manifest.objective == "gift"
    assert back.manifest.mask_token_id == loaded.tokenizer.mask_token_id and not back.manifest.adapter
    assert back.manifest.package_version and back.manifest.parent == str(base_dir.resolve())
    assert torch.allclose(_logits(back.model, back.tokenizer), _logits(loaded.model, loaded.tokenizer), atol=1e-6)


def test_lora_round_trip_and_merge_reproduce_logits(tmp_path, base_dir):
    loaded = load_model(str(base_dir))
    peft_model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    _perturb(peft_model)  # lora_B starts at zero: make the adapter matter
    reference = _logits(peft_model, loaded.tokenizer)
    manifest = manifest_for(
        LoadedModel(peft_model, loaded.tokenizer, loaded.adapter),
        "cold_start",
        str(base_dir),
        "sft",
        adapter=True,
        config={},
    )
    save_checkpoint(tmp_path / "lora", peft_model, loaded.tokenizer, manifest)
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    back = load_model(str(tmp_path / "lora"))
    assert torch.allclose(_logits(back.model, back.tokenizer), reference, atol=1e-5)
    merged_in_memory = load_model(str(tmp_path / "lora"), merge_adapter=True)
    assert not hasattr(merged_in_memory.model, "peft_config")
    assert torch.allclose(_logits(merged_in_memory.model, None), reference, atol=1e-5)
    gift_main(["merge", "--checkpoint", str(tmp_path / "lora"), "--output_dir", str(tmp_path / "merged")])
    merged = load_model(str(tmp_path / "merged"))
    assert merged.manifest.merged and not merged.manifest.adapter
    assert merged.manifest.parent == str((tmp_path / "lora").resolve())
    assert merged.model.config.is_causal is False
    assert torch.allclose(_logits(merged.model, None), reference, atol=1e-5)
    with pytest.raises(CheckpointError, match="no adapter to merge"):
        merge_checkpoint(tmp_path / "merged", tmp_path / "again")


def _valid_checkpoint(tmp_path, base_dir):
    loaded = load_model(str(base_dir))
    return save_checkpoint(
        tmp_path / "ck",
        loaded.model,
        loaded.tokenizer,
        manifest_for(loaded, "cold_start", str(base_dir), "sft", False, {}),
    )


def test_bad_manifests_are_clear_errors(tmp_path, base_dir):
    with pytest.raises(CheckpointError, match="no gift_manifest.json"):
        read_manifest(base_dir)
    ck = _valid_checkpoint(tmp_path, base_dir)
    data = json.loads((ck / MANIFEST_NAME).read_text())
    (ck / MANIFEST_NAME).write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version 99 is unknown"):
        load_checkpoint(ck)
    (ck / MANIFEST_NAME).write_text(json.dumps({**data, "mask_token_id": 3}))
    with pytest.raises(CheckpointError, match="inconsistent with its tokenizer"):
        load_checkpoint(ck)
    (ck / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable manifest"):
        load_checkpoint(ck)
    (ck / MANIFEST_NAME).write_text(json.dumps({**data, "surprise": 1}))
    with pytest.raises(CheckpointError, match="unknown fields"):
        load_checkpoint(ck)


def test_run_directory_resolves_to_final(tmp_path, base_dir):
    loaded = load_model(str(base_dir))
    save_checkpoint(
        tmp_path / "run" / "final",
        loaded.model,
        loaded.tokenizer,
        manifest_for(loaded, "cold_start", str(base_dir), "sft", False, {}),
    )
    assert resolve_checkpoint(tmp_path / "run") == tmp_path / "run" / "final"
    assert load_model(str(tmp_path / "run")).manifest.stage == "cold_start"


def test_killed_write_leaves_no_valid_checkpoint_and_keeps_the_old_one(tmp_path, base_dir, monkeypatch):
    ck = _valid_checkpoint(tmp_path, base_dir)
    before = (ck / MANIFEST_NAME).read_text()
    loaded = load_model(str(base_dir))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(loaded.tokenizer, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ck, loaded.model, loaded.tokenizer, manifest_for(loaded, "rl", "x", None, False, {}))
    assert (ck / MANIFEST_NAME).read_text() == before  # the previous checkpoint is intact
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(
            tmp_path / "new", loaded.model, loaded.tokenizer, manifest_for(loaded, "rl", "x", None, False, {})
        )
    assert not (tmp_path / "new").exists() and resolve_checkpoint(tmp_path / "new") is None
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".new.tmp")]
    assert leftovers and resolve_checkpoint(leftovers[0]) is None  # the partial directory has no manifest
