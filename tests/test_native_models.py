"""Native LLaDA / Dream against the official modeling code, and the properties the project relies on.

Golden logits (tests/fixtures/golden_*.safetensors) were produced once by the official hub files
(scripts/make_golden_fixtures.py); the tiny weights are rebuilt here from the same seed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import official_layout as layout
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

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


BF16_TOL = 1e-3  # of max|logit|, the bar; both families measure 0 (the same kernels in the same order)


@pytest.mark.parametrize("name", ["llada", "dream"])
def test_native_bf16_equals_the_official_code_in_bf16(tmp_path, name):
    # The golden bf16 logits come from the official code cast to bf16 (rotary inv_freq kept fp32, as
    # from_pretrained leaves it). LLaDA's config says rope_full_precision: true: RoPE on fp32 copies of q, k.
    data, meta = golden(name)
    directory, config = official_dir(tmp_path, name, meta)
    module = {"llada": llada, "dream": dream}[name]
    model = module.load_official(directory, module.native_config(config), torch.bfloat16).eval()
    if name == "llada":
        llada.prepare_native(model)  # what every load through gift.adapters does
    reference = data["logits_bf16"].float()
    with torch.no_grad():
        native = model(input_ids=data["bf16_input_ids"]).logits
    assert native.dtype == torch.bfloat16
    assert (native.float() - reference).abs().max() <= BF16_TOL * reference.abs().max()
    assert torch.equal(native.argmax(-1), data["logits_bf16"].argmax(-1))


def test_llada_bf16_without_full_precision_rope_drifts_from_the_official_code(tmp_path):
    # The check above can fail: a Llama rotating in bf16 (the native model before rope_full_precision was read)
    # is percent-level away from the official bf16 forward.
    data, meta = golden("llada")
    directory, config = official_dir(tmp_path, "llada", meta)
    model = llada.load_official(directory, llada.native_config(config), torch.bfloat16).eval()  # no prepare_native
    reference = data["logits_bf16"].float()
    with torch.no_grad():
        native = model(input_ids=data["bf16_input_ids"]).logits.float()
    assert (native - reference).abs().max() > 5 * BF16_TOL * reference.abs().max()


# ---------------------------------------------------------------- official-layout checkpoints with tokenizers

WRITERS = {"llada": layout.write_official_llada, "dream": layout.write_official_dream}


@pytest.fixture(scope="module", params=["llada", "dream"])
def official(request, tmp_path_factory):
    """(kind, directory, LoadedModel) of a tiny official-layout checkpoint, loaded without hub code."""
    directory = WRITERS[request.param](tmp_path_factory.mktemp(request.param) / "model", seed=3)
    return request.param, directory, load_model(str(directory))


def prompts(tokenizer, lengths=(3, 11, 6)) -> list[list[int]]:
    text = "Fill the grid: 1.34 3.1. and answer."
    return [tokenizer(text[:n], add_special_tokens=False)["input_ids"] for n in lengths]


def test_official_layout_loads_as_the_native_family(official):
    kind, directory, loaded = official
    assert loaded.adapter.kind == kind and loaded.manifest is None
    assert type(loaded.model).__name__ == {"llada": "LlamaForCausalLM", "dream": "Qwen2ForCausalLM"}[kind]
    assert loaded.model.config.is_causal is False and loaded.model.config._attn_implementation == "sdpa"
    assert loaded.adapter.shift_logits is (kind == "dream")
    assert loaded.adapter.decodable_vocab == len(loaded.tokenizer) < loaded.model.config.vocab_size
    assert loaded.adapter.mask_token_id == json.loads((directory / "config.json").read_text())["mask_token_id"]
    # peft's CAUSAL_LM wrapper calls this; the official Dream class lacked it
    assert callable(getattr(loaded.model, "prepare_inputs_for_generation", None))


def test_hub_code_is_refused_with_the_native_path(official):
    kind, directory, _ = official
    with pytest.raises(ValueError, match=f"gift.models.{kind}\\): drop trust_remote_code"):
        load_pretrained(str(directory), trust_remote_code=True)


def test_a_padded_row_equals_itself_alone(official):
    _, _, loaded = official
    rows = prompts(loaded.tokenizer)
    width = max(map(len, rows))
    ids = torch.tensor([[loaded.adapter.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.no_grad():
        batch = loaded.adapter.logits(loaded.model, ids, mask)
        for i, row in enumerate(rows):
            alone = loaded.adapter.logits(loaded.model, torch.tensor([row]), torch.ones(1, len(row), dtype=torch.long))
            # A shifted model's first real position carries its left neighbour's output (never a target: prompt).
            skip = int(loaded.adapter.shift_logits)
            assert (batch[i, width - len(row) + skip :] - alone[0, skip:]).abs().max() <= 1e-5


@pytest.mark.parametrize("kv_cache", ["none", "prefix", "dual"])
def test_sampler_batched_equals_one_at_a_time(official, kv_cache):
    _, _, loaded = official
    config = SamplerConfig(gen_length=16, block_length=8, steps=16, kv_cache=kv_cache)
    sampler = DiffusionSampler(loaded.model, loaded.adapter, config)
    rows = prompts(loaded.tokenizer)
    batched = sampler.generate(rows)
    assert batched.kv_cache == kv_cache  # the native path has the cache: no fallback
    for i, row in enumerate(rows):
        assert torch.equal(sampler.generate([row]).completion_ids[0], batched.completion_ids[i]), f"row {i}"


def test_the_sampler_never_proposes_ids_the_tokenizer_cannot_decode(official):
    _, _, loaded = official
    decodable = len(loaded.tokenizer)
    head = loaded.model.get_output_embeddings()
    # Make the padding rows of the output layer the most likely tokens everywhere.
    handle = head.register_forward_hook(
        lambda m, i, out: out.index_add(
            -1, torch.arange(decodable, out.shape[-1]), torch.full((*out.shape[:-1], out.shape[-1] - decodable), 50.0)
        )
    )
    try:
        for temperature in (0.0, 1.0):
            out = DiffusionSampler(
                loaded.model,
                loaded.adapter,
                SamplerConfig(gen_length=8, block_length=8, steps=8, temperature=temperature),
            ).generate(prompts(loaded.tokenizer), generator=torch.Generator().manual_seed(0))
            assert int(out.completion_ids.max()) < decodable
            assert all(isinstance(t, str) for t in loaded.tokenizer.batch_decode(out.completion_ids))
        unguarded = loaded.adapter.logits(loaded.model, torch.tensor([prompts(loaded.tokenizer)[0]]))
        assert int(unguarded.argmax(-1).min()) >= decodable  # the hook does what the test needs
    finally:
        handle.remove()


@pytest.mark.parametrize("kv_cache", ["prefix", "dual"])
def test_dream_kv_cache_is_exact_on_a_one_layer_model(tmp_path, kv_cache):
    # One layer reads token embeddings only, so kept keys never go stale: the cache must change nothing,
    # including the shifted bookkeeping (queries start one position left of the block).
    loaded = load_model(str(layout.write_official_dream(tmp_path / "dream", seed=5, num_hidden_layers=1)))
    rows = prompts(loaded.tokenizer)
    outputs = [
        DiffusionSampler(
            loaded.model, loaded.adapter, SamplerConfig(gen_length=16, block_length=8, steps=16, kv_cache=mode)
        )
        .generate(rows)
        .completion_ids
        for mode in ("none", kv_cache)
    ]
    assert torch.equal(*outputs)


@pytest.mark.parametrize("ignore", [False, True])
def test_convert_writes_a_native_checkpoint_with_the_same_logits(official, tmp_path, ignore):
    from stages.cli import main as gift

    kind, directory, loaded = official
    argv = ["convert", "--model", str(directory), "--output_dir", str(tmp_path / "native")]
    assert gift(argv + (["--ignore_attention_mask"] if ignore else [])) == 0
    config = json.loads((tmp_path / "native" / "config.json").read_text())
    assert config["model_type"] in ("llama", "qwen2") and config["diffusion_family"] == kind
    converted = load_model(str(tmp_path / "native"))
    assert converted.adapter == dataclasses.replace(loaded.adapter, honour_attention_mask=not ignore)
    ids = torch.tensor([prompts(loaded.tokenizer)[1]])
    with torch.no_grad():
        assert torch.equal(loaded.adapter.logits(loaded.model, ids), converted.adapter.logits(converted.model, ids))
    assert gift(argv) == 1  # an existing non-empty output directory is refused


def test_model_families_are_listed_only_by_the_registry():
    # One entry per family in gift.adapters.FAMILIES; everything else asks the registry (KINDS, family()).
    import re

    root = Path(__file__).resolve().parents[1]
    owners = {root / "gift" / "adapters.py", *(root / "gift" / "models").glob("*.py")}
    pattern = re.compile(r"""["'](llada|dream)["']|llada \| dream""")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for folder in ("gift", "stages", "rewards")
        for path in sorted((root / folder).rglob("*.py"))
        if path not in owners
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_the_dream_tokenizer_loads_without_hub_code_and_round_trips(official):
    from gift.adapters import load_tokenizer

    kind, directory, loaded = official
    tokenizer = load_tokenizer(str(directory))  # family read from config.json
    text = "<answer>1 2\n3</answer>"
    assert type(tokenizer) is type(loaded.tokenizer) and tokenizer.decode(tokenizer(text)["input_ids"]) == text
