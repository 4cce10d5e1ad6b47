"""Write tests/fixtures/golden_{llada,dream}.safetensors: logits of the OFFICIAL modeling code.

Run once, by hand, with the official hub files at hand (not needed by the tests):

    PYTHONPATH=$PWD python scripts/make_golden_fixtures.py --official DIR

DIR holds `LLaDA-8B-Instruct/{modeling,configuration}_llada.py` and
`Dream-7B-Instruct/{modeling,configuration}_dream.py, generation_utils.py` as published on the hub
(the copies used: the public mirror monash-yann/dllm-research, `models/`).
They are copied to a temporary directory and patched there, minimally, to run on the pinned
transformers (see PATCHES); the tiny models are tests/official_layout.py's seeded weights, so the
fixture stores only dims, seed, inputs and logits.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import official_layout as layout  # noqa: E402

SEED = 1234
LLADA_DIMS = dict(d_model=16, n_heads=2, n_kv_heads=2, n_layers=2, mlp_hidden_size=32, vocab_size=64)
DREAM_DIMS = dict(
    hidden_size=16,
    num_attention_heads=2,
    num_key_value_heads=1,
    num_hidden_layers=2,
    intermediate_size=32,
    vocab_size=64,
)
# (file, old, new): the smallest edits that let the published files import and run a forward on transformers 5.
PATCHES = [
    ("modeling_llada.py", "from visualizer import get_local\n", ""),
    ("modeling_llada.py", "    @get_local('attention_weights')\n", ""),
    # The public mirror routes attention through a hand-written copy kept for visualisation; the hub file calls sdpa.
    (
        "modeling_llada.py",
        "att = self._manually_scaled_dot_product_attention(",
        "att = self._scaled_dot_product_attention(",
    ),
    (
        "modeling_dream.py",
        "self.rope_init_fn = ROPE_INIT_FUNCTIONS[self.rope_type]",
        "self.rope_init_fn = _default_rope",
    ),
    (
        "modeling_dream.py",
        "# Copied from transformers.models.llama.modeling_llama.LlamaRotaryEmbedding with Llama->Dream",
        "def _default_rope(config, device, **kwargs):\n"
        "    dim = config.hidden_size // config.num_attention_heads\n"
        "    return 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim)), 1.0\n",
    ),
    ("modeling_dream.py", '_tied_weights_keys = ["lm_head.weight"]', "_tied_weights_keys = {}"),
]


def patched_package(official: Path, workdir: Path) -> Path:
    """Copy the official files into one importable package and apply PATCHES."""
    package = workdir / "official_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for sub in ("LLaDA-8B-Instruct", "Dream-7B-Instruct"):
        for source in (official / sub).glob("*.py"):
            shutil.copy(source, package / source.name)
    for name, old, new in PATCHES:
        path = package / name
        text = path.read_text()
        if old not in text:
            print(f"patch not applicable to {name}: {old[:50]!r} (already fixed upstream?)")
        path.write_text(text.replace(old, new))
    sys.path.insert(0, str(workdir))
    return package


def inputs(vocab: int, avoid: set[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows of 10 ids; row 1 left-padded by 3 (attention 0)."""
    g = torch.Generator().manual_seed(SEED)
    ids = torch.randint(0, vocab, (2, 10), generator=g)
    for bad in avoid:
        ids[ids == bad] = (bad + 1) % vocab
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, :3] = 0
    return ids, mask


def bf16_logits(model, vocab: int, avoid: set[int], **kwargs) -> dict[str, torch.Tensor]:
    """The same model cast to bf16 on 2 x 48 unpadded ids (LLaDA-8B's `rope_full_precision: true` is the config's):
    the official bf16 forward that the native one must match within 1e-3 of max|logit|. Rotary `inv_freq` buffers
    stay fp32, as `from_pretrained(torch_dtype=torch.bfloat16)` leaves them (their init casts with `.float()`)."""
    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, vocab, (2, 48), generator=g)
    for bad in avoid:
        ids[ids == bad] = (bad + 1) % vocab
    fp32_buffers = {name: b.clone() for name, b in model.named_buffers() if name.endswith("inv_freq")}
    model.to(torch.bfloat16)
    for name, value in fp32_buffers.items():
        owner, _, attr = name.rpartition(".")
        setattr(model.get_submodule(owner), attr, value)
    with torch.no_grad():
        logits = model(input_ids=ids, return_dict=True, **kwargs).logits
    model.to(torch.float32)
    return {"bf16_input_ids": ids, "logits_bf16": logits}


def llada_golden() -> dict[str, torch.Tensor]:
    configuration = importlib.import_module("official_models.configuration_llada")
    modeling = importlib.import_module("official_models.modeling_llada")
    config_json = layout.llada_config(mask_id=63, eos_id=0, **LLADA_DIMS)
    model = modeling.LLaDAModelLM(configuration.LLaDAConfig(**config_json)).eval()
    weights = layout.seeded_weights(layout.llada_shapes(config_json), SEED)
    model.load_state_dict(weights, strict=True)
    ids, mask = inputs(64, {63})
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask, use_cache=False, return_dict=True).logits
        alone = model(input_ids=ids[1:, 3:], use_cache=False, return_dict=True).logits
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "logits_mask_ignored": padded,
        "logits_row1_alone": alone,
        **bf16_logits(model, 64, {63}, use_cache=False),
    }


def dream_golden() -> dict[str, torch.Tensor]:
    configuration = importlib.import_module("official_models.configuration_dream")
    modeling = importlib.import_module("official_models.modeling_dream")
    config_json = layout.dream_config(mask_id=63, eos_id=0, bos_id=1, **DREAM_DIMS)
    config = configuration.DreamConfig(**{k: v for k, v in config_json.items() if k != "auto_map"})
    config._attn_implementation = "sdpa"
    model = modeling.DreamModel(config).eval()
    model.load_state_dict(layout.seeded_weights(layout.dream_shapes(config_json), SEED), strict=True)
    ids, mask = inputs(64, {63})
    keep = mask.bool()
    with torch.no_grad():  # how Dream's own generation loop feeds a padded batch: 4-D bool mask, shifted positions
        logits = model(
            input_ids=ids,
            attention_mask=keep[:, None, :, None] & keep[:, None, None, :],
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            return_dict=True,
        ).logits
    return {"input_ids": ids, "attention_mask": mask, "logits": logits, **bf16_logits(model, 64, {63})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path)
    parser.add_argument("--output_dir", type=Path, default=ROOT / "tests" / "fixtures")
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    with tempfile.TemporaryDirectory() as workdir:
        patched_package(args.official, Path(workdir))
        for name, build, dims in (("llada", llada_golden, LLADA_DIMS), ("dream", dream_golden, DREAM_DIMS)):
            tensors = {k: v.contiguous() for k, v in build().items()}
            meta = {
                "dims": json.dumps(dims),
                "seed": str(SEED),
                "mask_id": "63",
                "generated_with": "scripts/make_golden_fixtures.py (official modeling code, fp32 and bf16, CPU)",
            }
            save_file(tensors, args.output_dir / f"golden_{name}.safetensors", metadata=meta)
            print(f"golden_{name}: " + ", ".join(f"{k} {tuple(v.shape)}" for k, v in tensors.items()))


if __name__ == "__main__":
    main()
