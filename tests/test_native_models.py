"""Native LLaDA / Dream against the official modeling code, and the properties the project relies on.

Golden logits (tests/fixtures/golden_*.safetensors) were produced once by the official hub files
(scripts/make_golden_fixtures.py); the tiny weights are rebuilt here from the same seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import official_layout as layout
from gift.adapters import ModelAdapter, adapter_for, load_pretrained
from gift.checkpoint import load_model
from gift.models import dream, llada
from gift.sampler import DiffusionSampler, SamplerConfig

FIXTURES = Path(__file__).parent / "fixtures"
TOL = 1e-5


def golden(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(FIXTURES / f"golden_{name}.safetensors", "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def official_dir(tmp_path: Path, name: str, meta: dict[str, str]) -> tuple[Path, dict]:
    """The fixture's tiny model, written in the official layout (config + seeded weights, no tokenizer)."""
    dims, seed, mask_id = json.loads(meta["dims"]), int(meta["seed"]), int(meta["mask_id"])
    if name == "llada":
        config = layout.llada_config(mask_id, 0, **dims)
        shapes = layout.llada_shapes(config)
    else:
        config = layout.dream_config(mask_id, 0, 1, **dims)
        shapes = layout.dream_shapes(config)
    directory = tmp_path / name
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    save_file(layout.seeded_weights(shapes, seed), directory / "model.safetensors")
    return directory, config


def test_native_llada_equals_the_official_code(tmp_path):
    data, meta = golden("llada")
    directory, config = official_dir(tmp_path, "llada", meta)
    model = llada.load_official(directory, llada.native_config(config), torch.float32).eval()
    ids, mask = data["input_ids"], data["attention_mask"]
    official = adapter_for("llada", None, {**config, "honour_attention_mask": False})
    honoured = adapter_for("llada", None, config)
    with torch.no_grad():
        ignored = official.logits(model, ids, mask)
        padded = honoured.logits(model, ids, mask)
    # Mask ignored: every position of the padded batch, exactly as the official forward computes it.
    assert (ignored - data["logits_mask_ignored"]).abs().max() <= TOL
    # Mask honoured: the padded row's real positions are the official logits of that row alone.
    assert (padded[1, 3:] - data["logits_row1_alone"][0]).abs().max() <= TOL
    assert (padded[0] - data["logits_mask_ignored"][0]).abs().max() <= TOL  # an unpadded row: both agree
    assert (ignored[1, 3:] - data["logits_row1_alone"][0]).abs().max() > 1e-3  # the official pad leak is real


def test_native_dream_equals_the_official_code(tmp_path):
    data, meta = golden("dream")
    directory, config = official_dir(tmp_path, "dream", meta)
    model = dream.load_official(directory, dream.native_config(config), torch.float32).eval()
    ids, mask = data["input_ids"], data["attention_mask"]
    adapter = ModelAdapter("dream", 63, 0, 0, shift_logits=True)
    with torch.no_grad():
        raw = model(**adapter.model_inputs(ids, mask)).logits
        aligned = adapter.logits(model, ids, mask)
    real = mask.bool()
    assert (raw[real] - data["logits"][real]).abs().max() <= TOL
    assert torch.equal(aligned[:, 1:], raw[:, :-1])  # position i scores token i: Dream's i - 1 output
