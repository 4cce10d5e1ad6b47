"""bf16 as a first-class path, on a tiny official-layout LLaDA (published config: rope_full_precision true).

What must stay fp32 is fp32 by construction: the probe's entropy / log-sum-exp, GIFT's per-token rates and
1/t_i weights, the RL log-probabilities and their ratios. Each is checked two ways: computed from bf16 logits
it equals the fp32 computation on those same logits upcast (nothing ran in bf16 after the forward), and it is
within a stated tolerance of the same quantity from the fp32 model (the bf16 forward's own rounding).
"""

from __future__ import annotations

import official_layout as layout
import pytest
import torch

from gift.checkpoint import load_model, read_manifest
from gift.diffu_grpo import masked_logps, selective_log_softmax
from gift.loss import diffusion_loss
from gift.models import stored_dtype
from gift.objective import chunked_entropy
from gift.probe import probe_betas
from gift.schedules import GiftSchedule
from stages.cli import main as gift

PROBE_RTOL = 2e-2  # betas = sqrt(entropy): bf16 logits carry ~3 significant digits
LOGP_ATOL = 5e-2  # nats, per token, tiny random model (|logit| up to ~10)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    directory = layout.write_official_llada(tmp_path_factory.mktemp("llada") / "model", seed=11)
    return {dtype: load_model(str(directory), dtype=dtype) for dtype in ("float32", "bfloat16")}


def batch(loaded) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (2, 24), generator=g)
    answer = torch.zeros(2, 24, dtype=torch.bool)
    answer[:, 8:] = True
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(2, 24, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": torch.zeros(2, 24, dtype=torch.bool),
        "index": torch.arange(2),
    }


def test_probe_entropy_is_fp32_from_bf16_logits(models):
    bf16, fp32 = models["bfloat16"], models["float32"]
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    inputs = batch(bf16)
    betas16, betas32 = (probe_betas(m.model, m.adapter, inputs) for m in (bf16, fp32))
    assert betas16.dtype == torch.float32
    assert torch.allclose(betas16, betas32, rtol=PROBE_RTOL, atol=1e-6)
    with torch.no_grad():
        logits = bf16.adapter.logits(bf16.model, inputs["input_ids"])
    assert logits.dtype == torch.bfloat16
    positions = inputs["answer_mask"]
    # By construction: entropy of bf16 logits == entropy of the same logits upcast (softmax and logsumexp in fp32).
    assert torch.equal(chunked_entropy(logits, positions), chunked_entropy(logits.float(), positions))


def test_gift_rates_and_weights_do_not_depend_on_the_model_dtype(models):
    # The rates come from the fp32 schedule (betas from the probe, t from the fp32 time draw): with one seed the
    # bf16 and fp32 models mask exactly the same tokens; only the cross-entropy values differ.
    outputs = {}
    for name, loaded in models.items():
        outputs[name] = diffusion_loss(
            loaded.model, loaded.adapter, batch(loaded), GiftSchedule(), generator=torch.Generator().manual_seed(3)
        )
    low, high = outputs["bfloat16"], outputs["float32"]
    assert low.rates.dtype == high.rates.dtype == torch.float32 and low.loss.dtype == torch.float32
    assert torch.equal(low.masked, high.masked)
    assert torch.allclose(low.rates, high.rates, rtol=PROBE_RTOL)  # betas from each model's own probe
    assert low.loss.item() == pytest.approx(high.loss.item(), rel=PROBE_RTOL)


def test_rl_log_probs_and_ratios_are_fp32(models):
    bf16, fp32 = models["bfloat16"], models["float32"]
    inputs = batch(bf16)
    prompt, completion = inputs["input_ids"][:, :8], inputs["input_ids"][:, 8:]
    noise = torch.zeros(2, 2, 24, dtype=torch.bool)
    noise[:, :, 8:] = torch.rand(2, 2, 16, generator=torch.Generator().manual_seed(1)) < 0.5
    with torch.no_grad():
        logps16, logps32 = (
            masked_logps(m.model, m.adapter, prompt, torch.ones_like(prompt), completion, noise) for m in (bf16, fp32)
        )
    assert logps16.dtype == torch.float32 and (logps16 - logps32).abs().max() <= LOGP_ATOL
    ratio = torch.exp(logps16 - logps16.detach())
    assert ratio.dtype == torch.float32 and torch.equal(ratio, torch.ones_like(ratio))
    logits = torch.randn(3, 5, 40).to(torch.bfloat16)
    targets = torch.randint(0, 40, (3, 5))
    upcast = logits.float()  # the fp32 formula on the same values: picked logit minus logsumexp
    expected = upcast.gather(-1, targets[..., None])[..., 0] - torch.logsumexp(upcast, -1)
    assert torch.equal(selective_log_softmax(logits, targets), expected)


@pytest.mark.slow
def test_bf16_stage_one_and_two_write_the_same_checkpoint_format(tmp_path):
    # bf16 weights (CPU autocast is not what the recipes use: they train bf16 weights under ZeRO-3).
    base = layout.write_official_llada(tmp_path / "base", seed=11, dtype=torch.bfloat16)
    bf16 = ["--torch_dtype", "bfloat16", "--bf16", "false", "--disable_tqdm", "true", "--report_to", "none"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert (
        gift(
            [
                "cold-start",
                "--config",
                "configs/llada/s1k_full.yaml",
                "--model_name_or_path",
                str(base),
                "--output_dir",
                str(one),
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
                *bf16,
            ]
        )
        == 0
    )
    assert stored_dtype(one / "final") == torch.bfloat16 and read_manifest(one).metrics["global_step"] == 1
    assert (
        gift(
            [
                "rl",
                "--config",
                "configs/llada/grpo_sudoku.yaml",
                "--model",
                str(one),
                "--dataset",
                "synthetic",
                "--gen_length",
                "16",
                "--block_length",
                "8",
                "--steps",
                "8",
                "--num_generations",
                "2",
                "--per_device_train_batch_size",
                "2",
                "--global_batch_size",
                "2",
                "--num_iterations",
                "1",
                "--max_steps",
                "1",
                "--save_steps",
                "1",
                "--lora_r",
                "4",
                "--lora_alpha",
                "8",
                "--output_dir",
                str(two),
                *bf16,
            ]
        )
        == 0
    )
    loaded = load_model(str(two))
    assert read_manifest(two).adapter and next(loaded.model.parameters()).dtype == torch.bfloat16
