"""Confidence intervals and paired tests for accuracies: pure functions, standard library only."""

from __future__ import annotations

import math


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% for z=1.96); (0, 1) when n is 0."""
    if n == 0:
        return (0.0, 1.0)
    if not 0 <= k <= n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs.

    b: cases only the first candidate got right; c: cases only the second got right.
    Under the null each discordant pair goes either way with probability 1/2, so
    p = 2 * P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"mcnemar_exact: counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)  # int / int: exact until the final rounding, no overflow


def sign_test_greater(broken: int, fixed: int) -> float:
    """One-sided exact sign test: P(X >= broken) for X ~ Binomial(broken + fixed, 1/2).

    Under "no regression" a case that changed state is as likely to have been fixed as broken; a small p says
    more cases broke than chance allows. 1.0 when nothing changed.
    """
    if broken < 0 or fixed < 0:
        raise ValueError(f"sign_test_greater: counts must be >= 0, got broken={broken}, fixed={fixed}")
    n = broken + fixed
    if n == 0:
        return 1.0
    return min(1.0, sum(math.comb(n, i) for i in range(broken, n + 1)) / 2**n)


def smallest_significant(alpha: float, fixed: int = 0, limit: int = 1000) -> int:
    """The fewest broken cases the sign test calls significant at alpha when `fixed` cases were fixed."""
    for broken in range(limit + 1):
        if sign_test_greater(broken, fixed) < alpha:
            return broken
    raise ValueError(f"no count up to {limit} is significant at alpha={alpha} with {fixed} fixed")


def paired_permutation_lower(diffs: list[float], grid: int = 3600) -> float:
    """One-sided exact paired permutation (sign-flip) test that the differences are centred below 0.

    diffs: one paired difference per case (current right-rate minus baseline right-rate, each a share of seeds).
    Under "no change" each difference is as likely to have had the other sign, so p = P(sum of s_i |d_i| <= sum d_i)
    over the 2^n sign assignments s_i = +-1. Differences are rates of a few seeds, so they sit on a grid of 1/grid
    (3600: every rate with up to 10 seeds on either side, within rounding): the null distribution of the sum is built
    exactly by convolution over that grid. 1.0 when every difference is 0."""
    steps = [round(abs(d) * grid) for d in diffs]
    steps = [s for s in steps if s]
    if not steps:
        return 1.0
    observed = round(sum(d * grid for d in diffs))
    total = sum(steps)
    dist = {0: 1.0}  # the sum of the signed steps so far -> probability
    for s in steps:
        nxt: dict = {}
        for value, prob in dist.items():
            nxt[value + s] = nxt.get(value + s, 0.0) + prob / 2
            nxt[value - s] = nxt.get(value - s, 0.0) + prob / 2
        dist = nxt
    if observed < -total:
        return 0.0
    return min(1.0, sum(prob for value, prob in dist.items() if value <= observed))


def holm(pvalues: dict) -> dict:
    """Holm's step-down adjustment: {name: adjusted p}, controlling the family-wise error rate over every test given."""
    ordered = sorted(pvalues.items(), key=lambda kv: kv[1])
    out, running = {}, 0.0
    m = len(ordered)
    for i, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        out[name] = running
    return out
