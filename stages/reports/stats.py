"""The statistics every report reads its verdicts from: paired differences over seeds with a 95% t interval,
an exact sign-flip (permutation) test, and Holm's correction when several arms are compared with one reference.

Pure Python (no scipy): the t distribution comes from the regularized incomplete beta function (continued
fraction, Numerical Recipes §6.4) and its quantile from bisection; both are checked against textbook tables in
tests/test_stats.py. A verdict is read from the interval only: an arm is ahead when the whole 95% interval of
its paired difference lies above zero, behind when below, and otherwise no difference is shown.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

LEVEL = 0.95
EXACT_SIGN_FLIP_MAX_N = 20  # 2^20 sign patterns; above this the p-value is a seeded Monte Carlo estimate
MONTE_CARLO_DRAWS = 200_000


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete_beta: x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"t distribution: df must be positive, got {df}")
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile of Student's t (e.g. t_quantile(0.975, 4) = 2.776)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must lie in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    tail = 2.0 * min(p, 1.0 - p)  # two-sided tail mass beyond |t|
    lo, hi = 0.0, 1.0
    while t_two_sided_p(hi, df) > tail:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > tail else (lo, mid)
    return math.copysign(0.5 * (lo + hi), p - 0.5)


def sign_flip_p(diffs: Sequence[float], seed: int = 0) -> tuple[float, str]:
    """Two-sided sign-flip (paired permutation) p-value of mean(diffs) = 0, and how it was computed.

    Under the null each difference is as likely negative as positive; p is the share of the 2^n sign patterns
    whose |sum| is at least the observed |sum| (exact for n <= 20, else a seeded Monte Carlo estimate).
    With n seeds the smallest exact p is 2 / 2^n (0.25 for 3 seeds, 0.0625 for 5, 0.0078 for 8).
    """
    values = [float(d) for d in diffs]
    if not values:
        raise ValueError("sign_flip_p: no differences")
    observed = abs(sum(values)) - 1e-12 * max(1.0, sum(abs(v) for v in values))  # ties count as extreme
    if len(values) <= EXACT_SIGN_FLIP_MAX_N:
        sums = [0.0]
        for v in values:  # every signed sum, built by doubling
            sums = [s + v for s in sums] + [s - v for s in sums]
        return sum(abs(s) >= observed for s in sums) / len(sums), "exact sign-flip"
    rng = random.Random(seed)
    hits = sum(abs(sum(v if rng.random() < 0.5 else -v for v in values)) >= observed for _ in range(MONTE_CARLO_DRAWS))
    return (hits + 1) / (MONTE_CARLO_DRAWS + 1), f"sign-flip, {MONTE_CARLO_DRAWS} random patterns"


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error), same keys; monotone in the raw order."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, adjusted, running = len(order), {}, 0.0
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[key]))
        adjusted[key] = running
    return {k: adjusted[k] for k in p_values}


def interval(values: Sequence[float], level: float = LEVEL) -> dict[str, Any]:
    """Mean of `values` with its t interval, the one-sample t p-value and the exact sign-flip p-value of mean 0.

    Keys: n, mean, sd, se, lo, hi, half_width, t_p, sign_flip_p, sign_flip (the method), level. With fewer
    than two values there is no spread: sd, the interval and the p-values are None.
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        raise ValueError("interval: no values")
    mean = statistics.fmean(values)
    out: dict[str, Any] = {
        "n": n,
        "mean": mean,
        "sd": None,
        "se": None,
        "lo": None,
        "hi": None,
        "half_width": None,
        "t_p": None,
        "sign_flip_p": None,
        "sign_flip": None,
        "level": level,
    }
    if n < 2:
        return out
    sd = statistics.stdev(values)
    se = sd / math.sqrt(n)
    half = t_quantile(0.5 + level / 2, n - 1) * se
    flip_p, method = sign_flip_p(values)
    t_p = (1.0 if mean == 0 else 0.0) if se == 0 else t_two_sided_p(mean / se, n - 1)
    out.update(
        sd=sd, se=se, lo=mean - half, hi=mean + half, half_width=half, t_p=t_p, sign_flip_p=flip_p, sign_flip=method
    )
    return out


def paired(a: Mapping[int, float], b: Mapping[int, float], level: float = LEVEL) -> dict[str, Any] | None:
    """`a - b` per shared seed (key) with `interval`'s statistics, plus the seeds and the differences."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    return {"seeds": seeds, "diffs": diffs, **interval(diffs, level)}


def holm_family(comparisons: Mapping[str, dict[str, Any] | None], key: str = "t_p") -> None:
    """Add `holm_p` (Holm over the comparisons that have a `key` p-value) to each comparison, in place."""
    raw = {name: c[key] for name, c in comparisons.items() if c is not None and c.get(key) is not None}
    for name, p in holm(raw).items():
        comparisons[name]["holm_p"] = p


def direction(stats: dict[str, Any]) -> int | None:
    """+1 when the whole interval lies above 0, -1 when below, 0 when it holds 0, None without an interval."""
    if stats.get("lo") is None:
        return None
    return 1 if stats["lo"] > 0 else -1 if stats["hi"] < 0 else 0


def format_interval(stats: dict[str, Any], unit: float = 100.0, digits: int = 1) -> str:
    """`+2.4 [+0.9, +3.9]` (mean and 95% interval, times `unit`); the mean alone without an interval."""
    if stats.get("mean") is None:
        return "-"
    mean = f"{stats['mean'] * unit:+.{digits}f}"
    if stats.get("lo") is None:
        return f"{mean} (n = {stats['n']}, no interval)"
    return f"{mean} [{stats['lo'] * unit:+.{digits}f}, {stats['hi'] * unit:+.{digits}f}]"


def verdict(stats: dict[str, Any] | None, first: str, second: str, unit: float = 100.0) -> str:
    """The reading of `first - second` from its interval: `first ahead: +x [lo, hi]`, `second ahead: ...`,
    or `no difference shown: ...` (the interval holds 0; nothing is claimed either way). In a family
    (`holm_p` present) an interval clear of 0 whose Holm-adjusted p is 0.05 or more reads `... ahead before
    Holm only`: the family-wise claim does not hold."""
    if stats is None:
        return "no shared seeds"
    side = direction(stats)
    words = {1: f"{first} ahead", -1: f"{second} ahead", 0: "no difference shown", None: "one seed, no interval"}[side]
    if side in (1, -1) and stats.get("holm_p") is not None and stats["holm_p"] >= 1 - stats.get("level", LEVEL):
        words += " before Holm only"
    return f"{words}: {format_interval(stats, unit)}"
