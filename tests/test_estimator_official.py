"""The points where an estimator follows (or, by option, leaves) its official trainer: coupled-GRPO against
a transcription of DiffuCoder's `coupled_grpo.py`, the mask schedule against the official trainers' step
counter, wd1's per-group sum against `rev_grpo_trainer.py`'s loss.

The transcriptions are written from the official code's control flow (a `_step` counter bumped before the
loss reads it, three noised versions per row combined with weights [1, 1/t, 1/(1-t)], a softmax over a
micro-batch of one group) with plain loops; they share no code with `gift.estimators`.
"""

import math

import pytest
import torch

from gift.estimators import (
    CoupledSettings,
    D1Settings,
    GDPOSettings,
    UniGRPOSettings,
    WD1Settings,
    build_estimator,
    leave_one_out,
    wd1_weights,
)

G = torch.Generator


# --- coupled-GRPO ------------------------------------------------------------------------------------------
def coupled_reference(lp, old, ref, u, t, adv, cm, eps, beta):
    """DiffuCoder's compute_loss on one micro-batch: lp/old/ref[v][i][j] per version v, u the random matrix,
    t the rate of row i; the pair masks u < t and u > t; token mean over the completion mask."""

    def combined(p, i, j):
        first = u[i][j] < t[i]
        paired = p[1][i][j] * (1 / t[i]) if first else p[2][i][j] * (1 / (1 - t[i]))
        return (p[0][i][j] + paired) / 2

    total, count = 0.0, 0
    for i in range(len(adv)):
        for j in range(len(cm[i])):
            if not cm[i][j]:
                continue
            cur = combined(lp, i, j)
            ratio = torch.exp(cur - combined(old, i, j))
            clipped = torch.clamp(ratio, 1 - eps, 1 + eps)
            term = -torch.min(ratio * adv[i], clipped * adv[i])
            if beta:
                d = combined(ref, i, j) - cur
                term = term + beta * (torch.exp(d) - d - 1)
            total, count = total + term, count + 1
    return total / max(count, 1)


def _coupled_inputs(seed, rows=3, width=7):
    gen = G().manual_seed(seed)
    draw = lambda: torch.log_softmax(torch.randn(rows, 3, width, 4, generator=gen), -1)[..., 0].double()  # noqa: E731
    lp, old, ref = draw(), draw(), draw()
    u = torch.rand(rows, width, generator=gen, dtype=torch.float64)
    t = 0.2 + 0.6 * torch.rand(rows, generator=gen, dtype=torch.float64)
    cm = torch.tensor([[1] * n + [0] * (width - n) for n in (width, 4, 2)][:rows])
    adv = torch.tensor([0.9, -0.6, 0.3][:rows], dtype=torch.float64)
    first = u < t[:, None]
    noise = torch.stack([torch.ones_like(first), first, ~first], dim=1)
    return lp, old, ref, u, t, adv, cm, noise, t[:, None].expand(-1, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.0, 0.01])
def test_coupled_loss_and_gradient_match_diffucoder(seed, beta):
    lp, old, ref, u, t, adv, cm, noise, rates = _coupled_inputs(seed)
    old = lp + 0.3 * (old - lp)  # ratios near 1, some clipped at eps 0.5
    est = build_estimator("coupled", CoupledSettings(beta=beta))
    x = lp.clone().requires_grad_(True)
    ours = est.loss(x, noise, old, ref, adv, cm, rates=rates).loss
    ours.backward()
    y = lp.clone().requires_grad_(True)
    theirs = coupled_reference(y.unbind(1), old.unbind(1), ref.unbind(1), u, t, adv, cm.tolist(), 0.5, beta)
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12, abs=1e-14)
    assert torch.allclose(x.grad, y.grad, atol=1e-14)


def test_coupled_first_iteration_has_ratio_one_and_needs_rates():
    lp, _, _, _, _, adv, cm, noise, rates = _coupled_inputs(3)
    est = build_estimator("coupled", CoupledSettings(beta=0.0))
    out = est.loss(lp, noise, None, None, adv, cm, rates=rates)
    n = cm.sum(1).double()
    assert out.loss.item() == pytest.approx(-(adv * n).sum().item() / n.sum().item())  # -A per token, mean
    with pytest.raises(ValueError, match="masking rates"):
        est.loss(lp, noise, None, None, adv, cm)


def test_coupled_masks_cover_every_completion_token_exactly_once_per_pair():
    attention = torch.ones(64, 3, dtype=torch.long)
    completion = torch.tensor([[1] * 5 + [0] * 4] * 64)
    noise, rates = build_estimator("coupled").draw_noise(attention, completion, 2, G().manual_seed(0))
    assert noise.shape == (64, 2, 3, 12) and rates.shape == (64, 2, 3)
    assert not noise[..., :3].any()  # the prompt is never masked
    body = noise[..., 3:]
    assert body[:, :, 0].all()  # copy 0: the whole completion
    assert torch.equal(body[:, :, 1] ^ body[:, :, 2], torch.ones_like(body[:, :, 1]))  # exactly one of the pair
    assert torch.equal(rates[..., 0], rates[..., 2]) and (rates >= 0.2).all() and (rates <= 0.8).all()
    # Each position is in copy 1 with probability t: the masked fraction minus t averages to 0.
    many, r = build_estimator("coupled").draw_noise(
        torch.ones(4000, 1, dtype=torch.long), torch.ones(4000, 16, dtype=torch.long), 1, G().manual_seed(1)
    )
    gap = many[:, 0, 1, 1:].float().mean(-1) - r[:, 0, 1]
    assert abs(gap.mean().item()) < 0.005 and abs(r[:, 0, 1].mean().item() - 0.5) < 0.01
    again, _ = build_estimator("coupled").draw_noise(attention, completion, 2, G().manual_seed(0))
    assert torch.equal(noise, again)


def test_coupled_advantages_are_leave_one_out():
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.25, 0.3, 0.3])
    expected = []
    for g in range(2):
        group = rewards[3 * g : 3 * g + 3].tolist()
        expected += [r - (sum(group) - r) / 2 for r in group]  # DiffuCoder's baseline: the others' mean
    assert leave_one_out(rewards, 3).tolist() == pytest.approx(expected)
    scaled = leave_one_out(rewards, 3, scale=True)
    assert scaled[:3].tolist() == pytest.approx([e / (rewards[:3].std().item() + 1e-4) for e in expected[:3]])
    assert build_estimator("coupled").advantages(rewards, 3, False).tolist() == pytest.approx(expected)


def test_coupled_defaults_are_diffucoders():
    s = CoupledSettings()
    assert (s.min_t, s.max_t, s.epsilon, s.beta, s.loss_type, s.mask_schedule) == (
        0.2,
        0.8,
        0.5,
        0.01,
        "bnpo",
        "official",
    )
    with pytest.raises(ValueError, match="coupled_min_t"):
        build_estimator("coupled").check_settings(CoupledSettings(min_t=0.0), 24)


# --- mask schedule across inner updates --------------------------------------------------------------------
def official_schedule(micro_batches_per_step, num_iterations):
    """d1/SPG/wd1/DiffuCoder/GDPO: `_prepare_inputs` bumps `_step` per micro-batch, then `compute_loss` reads
    `mask_seeds[_step % num_iterations]`. Returns [update][slot] -> mask set, over one generation."""
    step, table = 0, []
    for _update in range(num_iterations):
        row = []
        for _slot in range(micro_batches_per_step):
            step += 1
            row.append(step % num_iterations)
        table.append(row)
    return table


@pytest.mark.parametrize("g,mu,distinct", [(4, 4, 1), (2, 8, 4), (2, 12, 6), (1, 4, 4), (3, 4, 4)])
@pytest.mark.parametrize("name", ["d1", "wd1", "spg", "coupled", "gdpo"])
def test_official_mask_schedule_is_the_official_step_counter(name, g, mu, distinct):
    est = build_estimator(name)
    table = official_schedule(g, mu)
    ours = [[est.mask_set(j * g + a, g, mu) for a in range(g)] for j in range(mu)]
    for a in range(g):  # per slot, the same updates share a set (the sets are iid: labels are immaterial)
        assert _sharing([row[a] for row in ours]) == _sharing([row[a] for row in table])
    assert {len({row[a] for row in table}) for a in range(g)} == {distinct}  # sets each slot sees


def _sharing(labels):
    return [[x == y for y in labels] for x in labels]


def test_official_schedule_with_one_micro_batch_per_step_is_per_update():
    official, per_update = build_estimator("d1"), build_estimator("d1", D1Settings(mask_schedule="per_update"))
    assert [official.mask_set(m, 1, 4) for m in range(4)] == [per_update.mask_set(m, 1, 4) for m in range(4)]


def test_per_update_schedule_gives_each_update_its_own_set():
    est = build_estimator("d1", D1Settings(mask_schedule="per_update"))
    assert [[est.mask_set(j * 2 + a, 2, 4) for a in range(2)] for j in range(4)] == [[0, 0], [1, 1], [2, 2], [3, 3]]


def test_unigrpo_official_schedule_reuses_one_mask_set():
    """dLLM-RL noises its data once and makes every pass over it with those masks."""
    est = build_estimator("unigrpo", UniGRPOSettings(num_t=2))
    assert {est.mask_set(m, 2, 4) for m in range(8)} == {0}
    per_update = build_estimator("unigrpo", UniGRPOSettings(num_t=2, mask_schedule="per_update"))
    assert [per_update.mask_set(m, 2, 4) for m in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]


# --- wd1: the per-group sum -------------------------------------------------------------------------------
def wd1_reference(seq_logp, advantages):
    """rev_grpo_trainer.compute_loss on a micro-batch of one group: softmax over the micro-batch."""
    pos = [math.exp(a) for a in advantages]
    neg = [math.exp(-a) for a in advantages]
    return sum(-s * p / sum(pos) + s * n / sum(neg) for s, p, n in zip(seq_logp, pos, neg))


def test_wd1_group_sum_equals_the_official_loss_and_row_mean_is_g_times_smaller():
    gen = G().manual_seed(5)
    logps = torch.log_softmax(torch.randn(8, 1, 5, 3, generator=gen), -1)[..., 0].double()
    cm = torch.tensor([[1, 1, 1, 0, 0], [1] * 5, [1, 1, 0, 0, 0], [1] * 5] * 2)
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.25, 0.0, 0.0, 1.0, 0.75], dtype=torch.float64)
    seq = (logps[:, 0] * cm).sum(1).tolist()
    centred = [
        r - sum(rewards[4 * g : 4 * g + 4].tolist()) / 4 for g in range(2) for r in rewards[4 * g : 4 * g + 4].tolist()
    ]
    per_group = [wd1_reference(seq[4 * g : 4 * g + 4], centred[4 * g : 4 * g + 4]) for g in range(2)]
    est = build_estimator("wd1")
    one_group = est.loss(logps[:4], None, None, None, est.advantages(rewards[:4], 4, False), cm[:4]).loss
    assert one_group.item() == pytest.approx(per_group[0], rel=1e-12)  # a micro-batch of one group: wd1's loss
    two_groups = est.loss(logps, None, None, None, est.advantages(rewards, 4, False), cm).loss
    assert two_groups.item() == pytest.approx(sum(per_group) / 2, rel=1e-12)  # mean over the groups
    mean = build_estimator("wd1", WD1Settings(reduction="row_mean"))
    assert mean.advantages(rewards, 4, False).tolist() == pytest.approx(wd1_weights(rewards, 4).tolist())
    assert mean.loss(logps, None, None, None, mean.advantages(rewards, 4, False), cm).loss.item() == pytest.approx(
        sum(per_group) / 8, rel=1e-12
    )


# --- GDPO: NumericalIntegrationEstimator (gdpo/likelihood_estimators.py) -------------------------------------
GAUSS_2 = ([-(1 / 3**0.5), 1 / 3**0.5], [1.0, 1.0])  # its 'gauss-2' table on [-1, 1]


def gdpo_canvas_reference(logps, old, masked, adv, eps):
    """get_log_likelihood with mode gauss-2 and one Monte-Carlo sample: per node x, t = x/2 + 1/2, the loss
    of the masked canvas positions divided by t, weighted, times 1/2; the ratio over the canvas width W."""
    width = logps.shape[-1]
    total = 0.0
    for i in range(logps.shape[0]):

        def likelihood(p):
            value = 0.0
            for k, (x, w) in enumerate(zip(*GAUSS_2)):
                t = x * 0.5 + 0.5
                value = value + w * sum(p[i, k, j] / t for j in range(width) if masked[i, k, j])
            return 0.5 * value

        ratio = torch.exp((likelihood(logps) - likelihood(old)) / width)
        total = total + torch.min(ratio * adv[i], torch.clamp(ratio, 1 - eps, 1 + eps) * adv[i])
    return -total / logps.shape[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_gdpo_canvas_loss_and_gradient_match_gdpos_estimator(seed):
    gen = G().manual_seed(seed)
    logps = torch.log_softmax(torch.randn(3, 2, 8, 4, generator=gen), -1)[..., 0].double()
    old = logps + 0.3 * torch.randn(logps.shape, generator=gen, dtype=torch.float64)
    masked = torch.rand(3, 2, 8, generator=gen) < 0.5
    cm = torch.tensor([[1] * 8, [1] * 3 + [0] * 5, [1] * 5 + [0] * 3])  # the EOS fill is scored all the same
    adv = torch.tensor([0.8, -0.5, 0.2], dtype=torch.float64)
    est = build_estimator("gdpo", GDPOSettings(epsilon=0.2))
    x, y = logps.clone().requires_grad_(True), logps.clone().requires_grad_(True)
    ours = est.loss(x, masked, old, None, adv, cm).loss
    ours.backward()
    theirs = gdpo_canvas_reference(y, old, masked, adv, 0.2)
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-10)
    assert torch.allclose(x.grad, y.grad, atol=1e-12)


def test_gdpo_canvas_masks_int_t_w_of_the_canvas_and_never_the_prompt():
    """forward_process: int(t * W) positions of the W completion positions, uniformly, the prompt kept."""
    attention = torch.tensor([[0, 1, 1]] * 3)
    completion = torch.tensor([[1] * n + [0] * (24 - n) for n in (24, 7, 1)])
    noise = build_estimator("gdpo").draw_noise(attention, completion, 200, G().manual_seed(0))
    assert not noise[..., :3].any()
    expected = [int((x * 0.5 + 0.5) * 24) for x in GAUSS_2[0]]  # 5 and 18
    assert (noise[..., 3:].sum(-1) == torch.tensor(expected)).all()
    position_rate = noise[:, :, 0, 3:].float().mean((0, 1))  # every canvas position equally likely
    assert (position_rate - 5 / 24).abs().max().item() < 0.06


# --- UniGRPO: dLLM-RL's pad rule (post_num 0) and its near-max-length reward rule --------------------------
def dllm_rl_random_masking(ids, pad_id, u, t):
    """train/rl_llada.py, method random_masking, post_num 0, for one response: every pad-id token is masked
    and never scored (tail_pad); the others are masked where u < t and scored (p_mask)."""
    tail_pad = [tok == pad_id for tok in ids]
    rand_mask = [(uj < t) and not pad for uj, pad in zip(u, tail_pad)]
    noised = [m or pad for m, pad in zip(rand_mask, tail_pad)]
    return noised, rand_mask


def test_unigrpo_never_scores_pad_tokens_and_always_masks_them():
    pad = 0
    completion_ids = torch.tensor([[5, 6, 0, 0, 0, 0], [5, 6, 7, 8, 9, 4], [0, 0, 0, 0, 0, 0]])
    completion_mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0]])  # up to the first EOS (= pad)
    est = build_estimator("unigrpo", UniGRPOSettings(num_t=3))
    scored = est.scored(completion_ids, completion_mask, pad)
    noise = est.draw_noise(torch.ones(3, 2, dtype=torch.long), scored, 1, G().manual_seed(0))[:, 0, :, 2:]
    for i, ids in enumerate(completion_ids.tolist()):
        for k in range(3):
            u = [1.0 if noise[i, k, j] else 0.0 for j in range(6)]  # a u that reproduces this draw's mask
            noised, scored_ref = dllm_rl_random_masking(ids, pad, [1 - x for x in u], 0.5)
            assert noise[i, k].tolist() == noised
            assert (noise[i, k] & scored[i].bool()).tolist() == scored_ref
    kept = build_estimator("unigrpo", UniGRPOSettings(pad="scored")).scored(completion_ids, completion_mask, pad)
    assert torch.equal(kept, completion_mask)  # the option: the first EOS scored, as the other estimators


def test_unigrpo_length_margin_zeroes_near_max_length_rewards():
    rewards = torch.tensor([1.0, 0.5, 0.25, 1.0])
    lengths = torch.tensor([10, 19, 18, 24])
    assert torch.equal(build_estimator("unigrpo").shape_rewards(rewards, lengths, 24), rewards)  # off by default
    est = build_estimator("unigrpo", UniGRPOSettings(length_margin=5))
    # dLLM-RL: lengths[j] >= max_gen_length - 5 -> incorrect
    assert est.shape_rewards(rewards, lengths, 24).tolist() == [
        r if n < 24 - 5 else 0.0 for r, n in zip(rewards.tolist(), lengths.tolist())
    ]


# --- d1/wd1: prompt padding ------------------------------------------------------------------------------
def d1_forward_process(prompt_index, u, p_mask_prompt):
    """diffu_grpo_trainer.forward_process over the prompt: every prompt position (padding included) masked
    where u < p_mask_prompt; the model is then called without an attention mask."""
    return [[bool(pi and uj < p_mask_prompt) for pi, uj in zip(prompt_index, row)] for row in u]


@pytest.mark.parametrize("name", ["d1", "wd1"])
def test_prompt_padding_official_masks_padding_and_attends_it(name):
    attention = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    completion = torch.ones(2, 4, dtype=torch.long)
    settings = {"d1": D1Settings, "wd1": WD1Settings}[name]
    official = build_estimator(name, settings(p_mask_prompt=0.5, prompt_padding="official"))
    noise = official.draw_noise(attention, completion, 3, G().manual_seed(0))[:, :, 0, :5]
    u = torch.rand((2, 3, 5), generator=G().manual_seed(0))  # the draws d1's estimator takes, in order
    for i in range(2):
        assert noise[i].tolist() == d1_forward_process([True] * 5, u[i].tolist(), 0.5)
    assert noise[0, :, :2].any()  # padding is masked at p_mask_prompt
    assert torch.equal(official.attention(attention), torch.ones_like(attention))
    excluded = build_estimator(name, settings(p_mask_prompt=0.5))
    assert not excluded.draw_noise(attention, completion, 3, G().manual_seed(0))[0, :, 0, :2].any()
    assert torch.equal(excluded.attention(attention), attention)
    # without padding (one prompt per micro-batch, as d1 runs) the two are the same
    same = torch.ones(2, 5, dtype=torch.long)
    assert torch.equal(
        official.draw_noise(same, completion, 3, G().manual_seed(1)),
        excluded.draw_noise(same, completion, 3, G().manual_seed(1)),
    )
