"""stages.reports.stats against textbook values: t quantiles, a worked Holm example, exact sign-flip p."""

import math

import pytest

from stages.reports import stats


@pytest.mark.parametrize(
    "df, expected", [(1, 12.706), (2, 4.303), (4, 2.776), (5, 2.571), (8, 2.306), (9, 2.262), (29, 2.045), (120, 1.980)]
)
def test_t_quantile_matches_the_table(df, expected):
    assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)
    assert stats.t_quantile(0.025, df) == pytest.approx(-expected, abs=5e-4)


def test_t_quantile_tends_to_the_normal_and_p_inverts_it():
    assert stats.t_quantile(0.975, 1e7) == pytest.approx(1.959964, abs=1e-4)
    assert stats.t_quantile(0.95, 10) == pytest.approx(1.812, abs=5e-4)
    assert stats.t_two_sided_p(stats.t_quantile(0.975, 7), 7) == pytest.approx(0.05, abs=1e-10)
    assert stats.t_two_sided_p(0.0, 3) == pytest.approx(1.0)
    assert stats.t_two_sided_p(math.inf, 3) == 0.0


def test_incomplete_beta_closed_forms():
    assert stats.incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)  # uniform
    assert stats.incomplete_beta(2, 1, 0.3) == pytest.approx(0.09)  # x^2
    assert stats.incomplete_beta(0.5, 0.5, 0.5) == pytest.approx(0.5)  # symmetric arcsine
    with pytest.raises(ValueError, match="x must lie"):
        stats.incomplete_beta(1, 1, 1.5)


def test_interval_of_a_worked_example():
    # diffs 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), se sqrt(0.5), t_4 = 2.776 -> 3 +/- 1.963
    out = stats.interval([1, 2, 3, 4, 5])
    assert out["mean"] == pytest.approx(3)
    assert out["sd"] == pytest.approx(math.sqrt(2.5))
    assert out["half_width"] == pytest.approx(2.7764451 * math.sqrt(0.5), rel=1e-6)
    assert (out["lo"], out["hi"]) == pytest.approx((3 - out["half_width"], 3 + out["half_width"]))
    # t^2 = 18 on 4 df, closed form p = 1 - t (t^2 + 6) / (t^2 + 4)^1.5 = 0.013236
    t = math.sqrt(18)
    assert out["t_p"] == pytest.approx(1 - t * 24 / 22**1.5, abs=1e-12)
    assert out["sign_flip_p"] == pytest.approx(2 / 32)  # only the all-plus and all-minus patterns reach |15|
    assert out["sign_flip"] == "exact sign-flip"


def test_one_value_has_no_interval():
    out = stats.interval([0.5])
    assert out["mean"] == 0.5 and out["lo"] is None and out["t_p"] is None
    assert stats.direction(out) is None
    with pytest.raises(ValueError, match="no values"):
        stats.interval([])


def test_sign_flip_p_of_the_spg_d1_differences():
    # docs/rl_comparison.md's six SPG - d1 differences: every one negative; only the two all-same-sign
    # patterns reach |sum| = 11.5 (flipping a -0.1 gives 11.3), so p = 2 / 64.
    diffs = [-2.2, -0.1, -2.5, -6.0, -0.6, -0.1]
    p, method = stats.sign_flip_p(diffs)
    assert p == pytest.approx(2 / 64) and method == "exact sign-flip"
    assert stats.interval(diffs)["t_p"] == pytest.approx(0.0918, abs=5e-4)  # the page quotes 0.09


def test_sign_flip_p_counts_ties_and_every_pattern():
    assert stats.sign_flip_p([1, 1])[0] == pytest.approx(0.5)  # sums 2, 0, 0, -2: |2| reached twice
    assert stats.sign_flip_p([1, 1, 1])[0] == pytest.approx(2 / 8)
    assert stats.sign_flip_p([3, -1, 1])[0] == pytest.approx(6 / 8)  # observed 3; |3±1±1| is 5, 3, 3, 1: ties count
    assert stats.sign_flip_p([0, 0, 0])[0] == 1.0


def test_holm_worked_example():
    raw = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005}
    # sorted: d 4*0.005 = 0.02, a 3*0.01 = 0.03, c 2*0.03 = 0.06, b max(0.06, 1*0.04) = 0.06
    assert stats.holm(raw) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02})
    assert stats.holm({"x": 0.6, "y": 0.5}) == pytest.approx({"x": 1.0, "y": 1.0})  # capped at 1
    assert stats.holm({}) == {}


def test_holm_family_adds_adjusted_p_in_place():
    comparisons = {"spg": {"t_p": 0.031}, "wd1": {"t_p": 0.5}, "gdpo": None, "one": {"t_p": None}}
    stats.holm_family(comparisons)
    assert comparisons["spg"]["holm_p"] == pytest.approx(0.062)
    assert comparisons["wd1"]["holm_p"] == pytest.approx(0.5)
    assert "holm_p" not in comparisons["one"]


def test_paired_uses_shared_seeds_only():
    out = stats.paired({0: 0.7, 1: 0.6, 2: 0.9}, {1: 0.5, 2: 0.7, 3: 0.1})
    assert out["seeds"] == [1, 2] and out["diffs"] == pytest.approx([0.1, 0.2])
    assert stats.paired({0: 1.0}, {1: 1.0}) is None


def test_verdict_reads_the_interval():
    ahead = stats.interval([0.02, 0.03, 0.025, 0.028])
    assert stats.verdict(ahead, "GIFT", "SFT").startswith("GIFT ahead: +2.6 [+")
    behind = stats.interval([-0.02, -0.03, -0.025])
    assert stats.verdict(behind, "GIFT", "SFT").startswith("SFT ahead: -2.5 [")
    # every seed positive but the interval holds 0: no same-sign rule, no claim
    mixed = stats.interval([0.001, 0.05, 0.002])
    assert stats.verdict(mixed, "GIFT", "SFT").startswith("no difference shown: +1.8 [-")
    assert stats.verdict(stats.interval([0.01]), "GIFT", "SFT") == "one seed, no interval: +1.0 (n = 1, no interval)"


def test_a_family_claim_needs_holm():
    clear = stats.interval([0.02, 0.03, 0.025, 0.028])
    assert stats.verdict({**clear, "holm_p": 0.2}, "spg", "d1").startswith("spg ahead before Holm only: +2.6 [")
    assert stats.verdict({**clear, "holm_p": 0.01}, "spg", "d1").startswith("spg ahead: +2.6 [")
