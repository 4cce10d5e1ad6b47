"""Gradient accumulation: does per-device batch 1 x accumulation 8 give the update of 8 x 1?

HF's Trainer divides each micro-batch's loss by the accumulation count, so 1 x 8 applies the MEAN of
eight per-sequence losses, while 8 x 1 applies one loss normalised over the whole batch. The two agree
exactly when the normaliser is per sequence (`answer_length`), or when it counts the same number of
tokens in every sequence (`answer_tokens` with equal answer lengths). `masked_tokens` (GIFT's default)
and `beta_ref: batch` depend on the micro-batch, so they do not; the tests below pin down by how much.
docs/algorithms.md ("Gradient accumulation") states the rule and what the recipes do about it.

Masks and times are fixed per example (the mask draw is replaced by a lookup), so the only difference
between the two ways of splitting the batch is the one the normaliser makes.
"""

from __future__ import annotations

import pytest
import torch
from helpers import write_jsonl

import gift.loss as loss_module
import stages.train.cold_start as cold_start
from gift.loss import diffusion_loss
from gift.schedules import GiftSchedule, UniformSchedule
from stages.train.cold_start import run_cold_start
from stages.train.cold_start_config import ColdStartConfig

N, LENGTH, PROMPT = 8, 14, 4


def _batch(tokenizer, answer_lengths: list[int]) -> dict:
    """N sequences: a 4-token prompt, an answer of the given length, then an EOS tail (not trained)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, len(tokenizer), (N, LENGTH), generator=g)
    answer = torch.zeros(N, LENGTH, dtype=torch.bool)
    for row, n in enumerate(answer_lengths):
        answer[row, PROMPT : PROMPT + n] = True
        ids[row, PROMPT + n :] = tokenizer.eos_token_id
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(N, LENGTH, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": torch.zeros_like(answer),
        "index": torch.arange(N),
    }


def _fixed_noise(answer_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One time per example and a mask of about half its answer (at least one token, never the same count)."""
    g = torch.Generator().manual_seed(1)
    t = torch.linspace(0.2, 0.9, N)
    masked = (torch.rand(answer_mask.shape, generator=g) < 0.5) & answer_mask
    first = answer_mask.float().argmax(1)
    masked[torch.arange(N), first] = True
    return t, masked


def _grad(model, adapter, batch, schedule, normaliser, t, masked, rows, monkeypatch) -> torch.Tensor:
    """Flat gradient of `diffusion_loss` on `rows` of the batch, with the fixed times and mask."""
    monkeypatch.setattr(loss_module, "draw_mask", lambda rates, eligible, *a, **k: (masked[rows] & eligible, 0))
    sub = {key: value[rows] for key, value in batch.items()}
    model.zero_grad()
    diffusion_loss(model, adapter, sub, schedule, normaliser, t=t[rows]).loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).clone()


def _updates(tiny, answer_lengths, schedule, normaliser, monkeypatch):
    """(8 x 1 gradient, 1 x 8 gradient, per-sequence gradients, batch) for one normaliser."""
    model, tokenizer, adapter = tiny
    batch = _batch(tokenizer, answer_lengths)
    t, masked = _fixed_noise(batch["answer_mask"])
    whole = _grad(model, adapter, batch, schedule, normaliser, t, masked, torch.arange(N), monkeypatch)
    singles = [
        _grad(model, adapter, batch, schedule, normaliser, t, masked, torch.tensor([i]), monkeypatch) for i in range(N)
    ]
    return whole, torch.stack(singles).mean(0), singles, batch, masked


EQUAL = [8] * N
VARYING = [3, 4, 5, 6, 7, 8, 9, 10]


def _gift(beta_ref: str = "sequence") -> GiftSchedule:
    return GiftSchedule(beta_source="live", beta_ref=beta_ref)


@pytest.mark.parametrize(
    "schedule, normaliser, lengths",
    [
        (UniformSchedule(), "answer_length", VARYING),  # per sequence, then the mean: always the same
        (_gift(), "answer_length", VARYING),  # GIFT's probe and sequence beta_ref are per sequence too
        (UniformSchedule(), "answer_tokens", EQUAL),  # the same count in every sequence: the same
        (_gift(), "answer_tokens", EQUAL),
    ],
    ids=["sft-answer_length", "gift-answer_length", "sft-answer_tokens-equal", "gift-answer_tokens-equal"],
)
def test_one_by_eight_equals_eight_by_one(tiny, schedule, normaliser, lengths, monkeypatch):
    whole, accumulated, _, _, _ = _updates(tiny, lengths, schedule, normaliser, monkeypatch)
    assert torch.allclose(accumulated, whole, rtol=1e-4, atol=1e-7), float((accumulated - whole).abs().max())


@pytest.mark.parametrize("schedule", [UniformSchedule(), _gift()], ids=["sft", "gift"])
def test_masked_tokens_weights_sequences_by_their_masked_count(tiny, schedule, monkeypatch):
    """8 x 1 weights sequence s by m_s / sum(m) (its share of the masked tokens); 1 x 8 by 1/8."""
    whole, accumulated, singles, _, masked = _updates(tiny, EQUAL, schedule, "masked_tokens", monkeypatch)
    share = masked.sum(1).float() / masked.sum()
    assert len(set(masked.sum(1).tolist())) > 1  # the masked counts differ, as they do in training
    assert torch.allclose(sum(w * g for w, g in zip(share, singles)), whole, rtol=1e-4, atol=1e-7)
    assert (accumulated - whole).norm() > 0.05 * whole.norm()


def test_answer_tokens_with_unequal_answers_weights_sequences_by_length(tiny, monkeypatch):
    """8 x 1 weights sequence s by n_s / sum(n) (its share of the answer tokens); 1 x 8 by 1/8."""
    whole, accumulated, singles, batch, _ = _updates(tiny, VARYING, UniformSchedule(), "answer_tokens", monkeypatch)
    share = batch["answer_mask"].sum(1).float() / batch["answer_mask"].sum()
    assert torch.allclose(sum(w * g for w, g in zip(share, singles)), whole, rtol=1e-4, atol=1e-7)
    assert (accumulated - whole).norm() > 0.05 * whole.norm()


def test_batch_beta_ref_depends_on_the_micro_batch(tiny, monkeypatch):
    """`beta_ref: batch` averages beta over the micro-batch: a lone sequence gets its own mean instead."""
    whole, accumulated, _, _, _ = _updates(tiny, VARYING, _gift("batch"), "answer_length", monkeypatch)
    assert not torch.allclose(accumulated, whole, rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------- the real stage-one trainer


def _train_one_step(
    tmp_path, base_dir, data, per_device: int, accumulation: int, normaliser: str, monkeypatch
) -> dict[str, torch.Tensor]:
    """Weights after one SGD step of `run_cold_start` on the 8 examples, times and masks fixed per example."""
    from gift.checkpoint import load_model

    t_by_example = torch.linspace(0.2, 0.9, N)
    g = torch.Generator().manual_seed(1)
    noise = torch.rand(N, 64, generator=g)

    def fixed_loss(model, adapter, batch, schedule, normaliser, eps, min_rate, resample_empty):
        index = batch["index"].cpu()
        width = batch["input_ids"].shape[1]
        # Mask the positions whose fixed noise is below 0.5 (and each answer's first token).
        mask = noise[index, :width] < 0.5
        mask[torch.arange(len(index)), batch["answer_mask"].float().argmax(1)] = True
        monkeypatch.setattr(loss_module, "draw_mask", lambda rates, eligible, *a, **k: (mask & eligible, 0))
        return diffusion_loss(
            model, adapter, batch, schedule, normaliser, eps, min_rate, resample_empty, t=t_by_example[index]
        )

    monkeypatch.setattr(cold_start, "diffusion_loss", fixed_loss)
    config = ColdStartConfig(
        model_name_or_path=str(base_dir),
        dataset=str(data),
        output_dir=str(tmp_path / f"run{per_device}x{accumulation}"),
        max_length=24,
        train_on_pad_tail=False,
        objective="sft",
        normaliser=normaliser,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        optim="sgd",
        learning_rate=1.0,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        weight_decay=0.0,
        max_steps=1,
        save_steps=1000,
        seed=0,
        logging_steps=1,
        disable_tqdm=True,
        report_to="none",
    )
    final = run_cold_start(config)
    return {k: v.detach().clone() for k, v in load_model(str(final)).model.state_dict().items()}


def _max_difference(a: dict, b: dict, start: dict) -> float:
    """Largest difference of the two updates, relative to the largest update."""
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    size = max(float((a[k] - start[k]).abs().max()) for k in a)
    return diff / size


def test_trainer_accumulation_invariance(tmp_path, base_dir, monkeypatch):
    """`gift cold-start`: 1 x 8 == 8 x 1 with `answer_length`; with `masked_tokens` the updates differ."""
    from gift.checkpoint import load_model

    # Answers of different lengths: a 3-digit prompt, answers of 1 to 8 digits, no EOS tail trained.
    rows = [{"prompt": "123", "answer": "4" * (i + 1)} for i in range(N)]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    start = {k: v.detach().clone() for k, v in load_model(str(base_dir)).model.state_dict().items()}
    results = {}
    for normaliser in ("answer_length", "masked_tokens"):
        for per_device, accumulation in ((8, 1), (1, 8)):
            results[normaliser, per_device] = _train_one_step(
                tmp_path / normaliser, base_dir, data, per_device, accumulation, normaliser, monkeypatch
            )
    assert _max_difference(results["answer_length", 8], results["answer_length", 1], start) < 1e-4
    assert _max_difference(results["masked_tokens", 8], results["masked_tokens", 1], start) > 1e-2
