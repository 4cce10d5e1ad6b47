"""Each estimator against an independent transcription of its reference formula, and its mask statistics.

The transcriptions below are written from the published objectives (docs/rl_algorithms.md) with plain
Python loops over rows, draws and tokens, in the layout of the official code (UniGRPO: one row per mask
draw, rows that mask nothing dropped), so they share no code with `gift.estimators`.
"""

import math

import pytest
import torch

from gift.estimators import (
    GDPOSettings,
    SPGSettings,
    UniGRPOSettings,
    block_noise,
    build_estimator,
    quadrature,
    z_scored,
)

G = torch.Generator


def _frame(lengths, width, prompt):
    completion = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
    return torch.tensor([list(prompt)] * len(lengths)), completion


def _inputs(seed, rows=4, draws=3, width=6):
    gen = G().manual_seed(seed)
    logps = torch.log_softmax(torch.randn(rows, draws, width, 5, generator=gen), -1)[..., 0].double()
    masked = torch.rand(rows, draws, width, generator=gen) < 0.5
    masked[:, :, 0] = True
    lengths = [width, width - 2, 3, width][:rows]
    cm = torch.tensor([[1] * n + [0] * (width - n) for n in lengths])
    adv = torch.tensor([0.7, -0.4, 0.0, -1.1][:rows], dtype=torch.float64)
    return logps, masked, cm, adv


def _grad(fn, logps):
    x = logps.clone().requires_grad_(True)
    value = fn(x)
    value.backward()
    return value.item(), x.grad


# --- SPG -------------------------------------------------------------------------------------------------
def spg_reference(logps, masked, cm, adv, negative, eubo_beta, mix_weight):
    """SPG's per-sequence surrogate (ELBO for A > 0, else the chosen bound), weighted by A |y|."""
    total, lengths = 0.0, 0
    for i in range(logps.shape[0]):
        n = int(cm[i].sum())
        elbos, ts = [], []
        for k in range(logps.shape[1]):
            idx = [j for j in range(n) if masked[i, k, j]]
            elbos.append(sum(logps[i, k, j] for j in idx) / max(len(idx), 1))
            ts.append(len(idx) / n)
        elbo = sum(elbos) / len(elbos)
        terms = []
        for j in range(n):
            u = sum(torch.exp(eubo_beta * logps[i, k, j]) / ts[k] for k in range(logps.shape[1]) if masked[i, k, j])
            u = u / logps.shape[1]
            if torch.is_tensor(u) and float(u.detach()) > 0:  # 0 when no draw masks token j
                terms.append(torch.log(u))
        eubo = sum(terms) / len(terms) / eubo_beta
        bound = {"elbo": elbo, "eubo": eubo, "mix": mix_weight * eubo + (1 - mix_weight) * elbo}[negative]
        total = total + adv[i] * (elbo if adv[i] > 0 else bound) * n
        lengths += n
    return -total / lengths


@pytest.mark.parametrize("negative", ["elbo", "eubo", "mix"])
@pytest.mark.parametrize("seed", [0, 1])
def test_spg_loss_and_gradient_match_the_reference(negative, seed):
    logps, masked, cm, adv = _inputs(seed)
    est = build_estimator("spg", SPGSettings(negative=negative, eubo_beta=1.5, mix_weight=0.3))
    ours, g_ours = _grad(lambda x: est.loss(x, masked, None, None, adv, cm).loss, logps)
    ref, g_ref = _grad(lambda x: spg_reference(x, masked, cm, adv, negative, 1.5, 0.3), logps)
    assert ours == pytest.approx(ref, rel=1e-10)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)


def test_spg_refuses_one_draw_for_the_sandwich():
    with pytest.raises(ValueError, match="needs num_t >= 2"):
        build_estimator("spg").check_settings(SPGSettings(num_t=1, block_length=8), 24)
    build_estimator("spg").check_settings(SPGSettings(num_t=1, negative="elbo", block_length=8), 24)
    with pytest.raises(ValueError, match="SPG draws distinct blocks"):
        build_estimator("spg").check_settings(SPGSettings(num_t=4, block_length=8), 24)


def test_spg_one_draw_gives_the_elbo_gradient_both_ways():
    """Why num_t 1 is refused: EUBO - ELBO is then a constant, so mix and ELBO have the same gradient."""
    logps, masked, cm, adv = _inputs(3, draws=1)
    grads = [
        _grad(
            lambda x: build_estimator("spg", SPGSettings(negative=n)).loss(x, masked, None, None, adv, cm).loss, logps
        )[1]
        for n in ("mix", "elbo")
    ]
    assert torch.allclose(grads[0], grads[1], atol=1e-12)


def _spg_draws(lengths, draws=2, iterations=500, p=0.15, block=8, width=24, min_t=0.0, max_t=1.0, seed=0):
    cm = torch.tensor([[1] * n + [0] * (width - n) for n in lengths]).bool()[:, None].expand(-1, iterations, -1)
    return block_noise(cm, draws, block, min_t, max_t, p, G().manual_seed(seed)), cm


def test_spg_masks_earlier_blocks_at_the_prompt_rate_and_draws_distinct_blocks():
    (noise, start), _ = _spg_draws([24] * 8, draws=3)
    assert all(len(set(s)) == 3 for s in start.reshape(-1, 3).tolist())  # a permutation of the three blocks
    earlier = torch.arange(24) < start.unsqueeze(-1)
    assert (noise & earlier).sum().item() / earlier.sum().item() == pytest.approx(0.15, abs=0.01)
    (noise, start), _ = _spg_draws([24] * 8, draws=2)
    first = start[..., 0].flatten()
    for b in range(3):  # each block chosen a third of the time
        assert (first == 8 * b).float().mean().item() == pytest.approx(1 / 3, abs=0.03)


def test_spg_block_mask_structure():
    lengths = [24, 13, 5, 1]
    (noise, start), cm = _spg_draws(lengths, draws=2, iterations=200, min_t=0.25, max_t=0.75)
    position = torch.arange(24)
    for row, n in enumerate(lengths):
        reached = (n - 1) // 8 + 1
        s = start[row]
        assert (s // 8 < reached).all()  # folded onto the blocks the completion reaches
        count = (
            noise[row] & (position >= s.unsqueeze(-1)) & (position < (s + 8).unsqueeze(-1)) & cm[row].unsqueeze(1)
        ).sum(-1)
        in_block = torch.clamp(n - s, max=8)
        low = torch.clamp((in_block * 0.25).floor(), min=1)
        high = torch.maximum((in_block * 0.75).floor(), low)
        assert ((count >= low) & (count <= high)).all()
        assert noise[row][position.expand_as(noise[row]) >= (s + 8).unsqueeze(-1)].all()  # later blocks masked


def test_spg_prompt_padding_is_never_masked_and_after_eos_always():
    attention, completion = _frame([10, 5, 16, 1], width=16, prompt=(0, 1, 1))
    noise = build_estimator("spg", SPGSettings(block_length=8, p_mask_prompt=0.9)).draw_noise(
        attention, completion, 3, G().manual_seed(0)
    )
    assert noise.shape == (4, 3, 2, 19) and not noise[..., 0].any() and noise[..., 1:3].any()
    assert noise[..., 3:][~completion.bool()[:, None, None].expand(-1, 3, 2, -1)].all()


# --- UniGRPO ---------------------------------------------------------------------------------------------
def unigrpo_reference(logps, old, masked, cm, adv, eps, beta):
    """dLLM-RL's random_masking objective: every (completion, draw) is a row; rows masking nothing dropped."""
    rows = []
    for i in range(logps.shape[0]):
        for k in range(logps.shape[1]):
            idx = [j for j in range(logps.shape[2]) if masked[i, k, j] and cm[i, j]]
            if idx:
                rows.append((i, k, idx))
    policy, kl = 0.0, 0.0
    for i, k, idx in rows:
        surrogate = 0.0
        for j in idx:
            ratio = torch.exp(logps[i, k, j] - old[i, k, j])
            surrogate = surrogate + torch.min(ratio * adv[i], torch.clamp(ratio, 1 - eps, 1 + eps) * adv[i])
            d = logps[i, k, j] - old[i, k, j]
            kl = kl + torch.exp(-d) - 1 + d
        policy = policy + surrogate / len(idx)
    return -policy / len(rows) + beta * kl / len(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unigrpo_loss_and_gradient_match_the_reference(seed):
    logps, masked, cm, adv = _inputs(seed)
    masked[1, 2] = False  # a draw that masks nothing: dropped
    old = logps + 0.3 * torch.randn(logps.shape, generator=G().manual_seed(seed + 10), dtype=torch.float64)
    est = build_estimator("unigrpo", UniGRPOSettings(epsilon=0.2, beta=0.01))
    ours, g_ours = _grad(lambda x: est.loss(x, masked, old, old, adv, cm).loss, logps)
    ref, g_ref = _grad(lambda x: unigrpo_reference(x, old, masked, cm, adv, 0.2, 0.01), logps)
    assert ours == pytest.approx(ref, rel=1e-10)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)


def test_unigrpo_advantages_are_z_scored_in_the_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5])
    std = math.sqrt((0.75**2 + 3 * 0.25**2) / 4)  # population std, as the official code
    assert z_scored(rewards, 4).tolist() == pytest.approx([0.75 / std] + [-0.25 / std] * 3 + [0.0] * 4)
    assert build_estimator("unigrpo").advantages(rewards, 4, scale=False).tolist() == z_scored(rewards, 4).tolist()


def test_unigrpo_masks_never_the_prompt_and_a_uniform_rate_per_draw():
    attention, completion = _frame([20, 7], width=20, prompt=(0, 1, 1, 1))
    noise = build_estimator("unigrpo", UniGRPOSettings(num_t=4000)).draw_noise(
        attention, completion, 1, G().manual_seed(0)
    )
    assert not noise[..., :4].any()
    part = noise[..., 4:]
    assert part[1, :, :, 7:].all()  # after EOS: always masked, never scored
    counts = part[0, 0].sum(-1).double()  # Binomial(20, t), t ~ U[0.1, 0.9]
    n, e_t, e_t2 = 20, 0.5, (0.9**3 - 0.1**3) / (3 * 0.8)
    assert counts.mean().item() == pytest.approx(n * e_t, abs=0.25)
    variance = n * (e_t - e_t2) + n * n * (e_t2 - e_t**2)
    assert counts.var().item() == pytest.approx(variance, rel=0.08)
    assert counts.min() >= 0 and counts.max() <= 20


# --- GDPO ------------------------------------------------------------------------------------------------
def gdpo_reference(logps, old, masked, cm, adv, points, eps):
    nodes = [0.5 - 0.5 / math.sqrt(3), 0.5 + 0.5 / math.sqrt(3)] if points == 2 else None
    total = 0.0
    for i in range(logps.shape[0]):
        n = int(cm[i].sum())
        elbo = sum(0.5 / nodes[k] * sum(logps[i, k, j] for j in range(n) if masked[i, k, j]) for k in range(points))
        elbo_old = sum(0.5 / nodes[k] * sum(old[i, k, j] for j in range(n) if masked[i, k, j]) for k in range(points))
        ratio = torch.exp((elbo - elbo_old) / n)
        total = total + torch.min(ratio * adv[i], torch.clamp(ratio, 1 - eps, 1 + eps) * adv[i])
    return -total / logps.shape[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_gdpo_loss_and_gradient_match_the_reference(seed):
    logps, masked, cm, adv = _inputs(seed, draws=2)
    old = logps + 0.5 * torch.randn(logps.shape, generator=G().manual_seed(seed + 5), dtype=torch.float64)
    est = build_estimator("gdpo", GDPOSettings(epsilon=0.2, mask_area="completion"))
    ours, g_ours = _grad(lambda x: est.loss(x, masked, old, None, adv, cm).loss, logps)
    ref, g_ref = _grad(lambda x: gdpo_reference(x, old, masked, cm, adv, 2, 0.2), logps)
    assert ours == pytest.approx(ref, rel=1e-10)
    assert torch.allclose(g_ours, g_ref, atol=1e-12)


def test_gdpo_quadrature_is_gauss_legendre_on_the_unit_interval():
    times, weights = quadrature(3)
    assert times == pytest.approx([0.5 - 0.5 * math.sqrt(0.6), 0.5, 0.5 + 0.5 * math.sqrt(0.6)])
    assert weights == pytest.approx([5 / 18, 8 / 18, 5 / 18])
    t, w = quadrature(4)  # exact for polynomials of degree 7 on (0, 1)
    assert sum(wi * ti**7 for ti, wi in zip(t, w)) == pytest.approx(1 / 8)


def test_gdpo_masks_round_t_times_the_length_at_each_node():
    attention, completion = _frame([24, 7, 1], width=24, prompt=(0, 1, 1))
    noise = build_estimator("gdpo", GDPOSettings(p_mask_prompt=0.5, mask_area="completion")).draw_noise(
        attention, completion, 50, G().manual_seed(0)
    )
    scored = noise[..., 3:] & completion.bool()[:, None, None]
    t = [0.5 - 0.5 / math.sqrt(3), 0.5 + 0.5 / math.sqrt(3)]
    for row, n in enumerate([24, 7, 1]):
        expected = [min(max(round(n * ti), 1), n) for ti in t]
        assert (scored[row].sum(-1) == torch.tensor(expected)).all()
    assert not noise[..., 0].any()
    assert noise[..., 1:3].float().mean().item() == pytest.approx(0.5, abs=0.05)
