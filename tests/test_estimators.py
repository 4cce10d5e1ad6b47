"""Stage-two estimators (gift.estimators): their masks and their surrogates, against hand computations."""

import math

import pytest
import torch

from gift.diffu_grpo import completion_logps, diffu_grpo_loss
from gift.estimators import (
    ESTIMATORS,
    D1Settings,
    SPGSettings,
    UniGRPOSettings,
    aggregate,
    build_estimator,
    masked_logps,
    spg_surrogates,
    wd1_weights,
)

G = torch.Generator


def _frame(lengths, width=12, prompt=(1, 1, 1)):
    completion = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
    attention = torch.tensor([list(prompt)] * len(lengths))
    return attention, completion


# --- masks (the statistics over many draws: tests/test_estimator_references.py) ----------------------------
@pytest.mark.parametrize("name", ["d1", "wd1"])
def test_one_step_estimators_mask_the_whole_completion(name):
    attention, completion = _frame([3, 7], width=8, prompt=(0, 1, 1, 1))
    est = build_estimator(name, ESTIMATORS[name].settings_type(p_mask_prompt=0.5))
    noise = est.draw_noise(attention, completion, 3, G().manual_seed(1))
    assert noise.shape == (2, 3, 1, 12) and noise[..., 4:].all() and not noise[..., 0].any()
    assert not torch.equal(noise[:, 0], noise[:, 1])  # a new prompt mask per iteration


SMALL = {"spg": SPGSettings(block_length=4, num_t=2), "unigrpo": UniGRPOSettings(num_t=2)}


@pytest.mark.parametrize("name", ["d1", "spg", "unigrpo", "wd1", "gdpo", "coupled"])
def test_masks_are_reproducible_from_the_generator(name):
    attention, completion = _frame([5, 9])
    est = build_estimator(name, SMALL.get(name))
    draw = lambda seed: est.draw_noise(attention, completion, 2, G().manual_seed(seed))  # noqa: E731
    first = lambda out: out[0] if isinstance(out, tuple) else out  # noqa: E731  (coupled: noise, rates)
    a = first(draw(3))
    assert torch.equal(a, first(draw(3)))
    assert not torch.equal(a, first(draw(4)))


def test_masked_logps_with_d1_noise_equals_the_one_step_estimate(tiny):
    model, _, adapter = tiny
    prompt = torch.tensor([[0, 0, 11, 12, 13], [14, 15, 16, 17, 18]])
    attention = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    completion = torch.tensor([[20, 21, 0], [22, 0, 0]])
    noise = build_estimator("d1", D1Settings(p_mask_prompt=0.3)).draw_noise(
        attention, (completion != 0).int(), 1, G().manual_seed(0)
    )
    with torch.no_grad():
        ours = masked_logps(model, adapter, prompt, attention, completion, noise[:, 0])
        ref = completion_logps(model, adapter, prompt, attention, completion, noise[:, 0, 0, :5])
    assert torch.allclose(ours[:, 0], ref, atol=1e-6)


# --- surrogates --------------------------------------------------------------------------------------------
def test_aggregate_token_mean_vs_sequence_mean():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(per_token, mask, "bnpo").item() == pytest.approx(10 / 4)
    assert aggregate(per_token, mask, "grpo").item() == pytest.approx((2 + 4) / 2)
    with pytest.raises(ValueError, match="unknown loss_type 'dapo'"):
        aggregate(per_token, mask, "dapo")


def test_d1_estimator_with_grpo_averaging_equals_the_diffu_grpo_loss():
    torch.manual_seed(0)
    logps, old, ref = (torch.randn(4, 1, 5) for _ in range(3))
    adv, cm = torch.tensor([0.5, -0.5, 1.0, 0.0]), torch.tensor([[1, 1, 1, 0, 0]] * 2 + [[1] * 5] * 2)
    est = build_estimator("d1", D1Settings(epsilon=0.2, beta=0.04, loss_type="grpo"))
    ours = est.loss(logps, None, old, ref, adv, cm)
    theirs = diffu_grpo_loss(logps[:, 0], old[:, 0], ref[:, 0], adv, cm, 0.2, 0.04)
    assert ours.loss.item() == pytest.approx(theirs.loss.item()) and ours.kl == pytest.approx(theirs.kl)
    assert ours.clip_ratio == pytest.approx(theirs.clip_ratio)


def test_d1_token_mean_by_hand():
    """bnpo at ratio 1, no KL: -(sum of A over scored tokens) / number of scored tokens."""
    logps = torch.zeros(2, 1, 3, requires_grad=True)
    adv, cm = torch.tensor([1.0, -2.0]), torch.tensor([[1, 1, 1], [1, 0, 0]])
    out = build_estimator("d1", D1Settings(beta=0.0)).loss(logps, None, None, None, adv, cm)
    assert out.loss.item() == pytest.approx(-(3 * 1.0 + 1 * -2.0) / 4)


def test_wd1_weights_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5])
    w = wd1_weights(rewards, 4, psi=1.0)
    a = [0.75, -0.25, -0.25, -0.25]
    pos = [math.exp(x) / sum(math.exp(y) for y in a) for x in a]
    neg = [math.exp(-x) / sum(math.exp(-y) for y in a) for x in a]
    assert w[:4].tolist() == pytest.approx([p - n for p, n in zip(pos, neg)])
    assert w[4:].tolist() == pytest.approx([0.0] * 4)  # a group with equal rewards carries no signal
    assert w[:4].sum().item() == pytest.approx(0.0, abs=1e-7)


def test_wd1_loss_by_hand():
    logps = torch.tensor([[[-1.0, -2.0, -9.0]], [[-0.5, -0.5, -0.5]]])
    cm = torch.tensor([[1, 1, 0], [1, 1, 1]])
    out = build_estimator("wd1").loss(logps, None, None, None, torch.tensor([0.4, -0.4]), cm)
    assert out.loss.item() == pytest.approx(-(0.4 * -3.0 + -0.4 * -1.5) / 2)


def test_spg_surrogates_by_hand():
    # one completion of 3 scored tokens (+1 after EOS), K = 2 draws
    logps = torch.log(torch.tensor([[[0.5, 0.25, 0.8, 0.9], [0.4, 0.2, 0.1, 0.9]]]))
    masked = torch.tensor([[[True, True, False, True], [False, True, True, True]]])
    cm = torch.tensor([[1, 1, 1, 0]])
    elbo, eubo = spg_surrogates(logps, masked, cm, eubo_beta=1.0)
    e1 = (math.log(0.5) + math.log(0.25)) / 2
    e2 = (math.log(0.2) + math.log(0.1)) / 2
    assert elbo.item() == pytest.approx((e1 + e2) / 2)
    t = 2 / 3  # both draws mask 2 of the 3 scored tokens
    u = [(0.5 / t + 0) / 2, (0.25 / t + 0.2 / t) / 2, (0 + 0.1 / t) / 2]
    assert eubo.item() == pytest.approx(sum(math.log(x) for x in u) / 3)
    _, eubo2 = spg_surrogates(logps, masked, cm, eubo_beta=2.0)
    u2 = [(0.5**2 / t) / 2, (0.25**2 / t + 0.2**2 / t) / 2, (0.1**2 / t) / 2]
    assert eubo2.item() == pytest.approx(sum(math.log(x) for x in u2) / 3 / 2)


def test_eubo_upper_bounds_elbo_in_expectation_on_a_random_model():
    """Jensen: log of the mean of p/t >= the mean of log p, token by token, so EUBO >= ELBO here."""
    torch.manual_seed(0)
    logps = torch.log_softmax(torch.randn(6, 4, 8, 5), -1)[..., 0]
    masked = torch.rand(6, 4, 8) < 0.6
    masked[..., 0] = True
    elbo, eubo = spg_surrogates(logps, masked, torch.ones(6, 8, dtype=torch.long), eubo_beta=1.0)
    assert (eubo >= elbo).all()


@pytest.mark.parametrize("negative", ["elbo", "eubo", "mix"])
def test_spg_loss_uses_elbo_for_positive_and_the_chosen_bound_for_negative(negative):
    torch.manual_seed(1)
    logps = torch.log_softmax(torch.randn(3, 2, 4, 6), -1)[..., 0]
    masked = torch.rand(3, 2, 4) < 0.7
    masked[..., 0] = True
    cm = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    adv = torch.tensor([0.5, -0.25, 0.0])
    settings = SPGSettings(negative=negative, eubo_beta=1.5, mix_weight=0.3)
    out = build_estimator("spg", settings).loss(logps, masked, None, None, adv, cm)
    elbo, eubo = spg_surrogates(logps, masked, cm, 1.5)
    neg = {"elbo": elbo, "eubo": eubo, "mix": 0.3 * eubo + 0.7 * elbo}[negative]
    expected = -(0.5 * elbo[0] * 4 + -0.25 * neg[1] * 2) / (4 + 2 + 3)
    assert out.loss.item() == pytest.approx(expected.item())


def test_unigrpo_scores_only_the_masked_tokens():
    logps = torch.zeros(1, 2, 4, requires_grad=True)
    masked = torch.tensor([[[True, False, False, True], [False, True, True, True]]])
    cm = torch.tensor([[1, 1, 1, 0]])
    out = build_estimator("unigrpo", UniGRPOSettings(beta=0.0)).loss(logps, masked, None, None, torch.tensor([2.0]), cm)
    out.loss.backward()
    # draw 0 scores token 0 (1 token), draw 1 tokens 1, 2: d(-A r)/dlogp = -A / count / draws
    assert logps.grad[0, 0].tolist() == pytest.approx([-1.0, 0, 0, 0])
    assert logps.grad[0, 1].tolist() == pytest.approx([0, -0.5, -0.5, 0])


def test_unknown_algorithm_is_an_error():
    with pytest.raises(
        ValueError, match="unknown rl_algorithm 'ppo'; choose one of coupled, d1, gdpo, spg, unigrpo, wd1"
    ):
        build_estimator("ppo")
