"""Wilson intervals and the exact McNemar test against values worked out by hand (or by R's binom.test)."""

from __future__ import annotations

import pytest

from reports.stats import mcnemar_exact, wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (38, 50, 0.6259, 0.8570),
        (1, 2, 0.0945, 0.9055),
    ],
)
def test_wilson_known_values(k, n, low, high):
    got = wilson(k, n)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_without_trials_is_the_whole_range():
    assert wilson(0, 0) == (0.0, 1.0)


def test_wilson_wider_with_larger_z_and_narrower_with_more_trials():
    lo95, hi95 = wilson(8, 10)
    lo99, hi99 = wilson(8, 10, z=2.576)
    assert lo99 < lo95 < 0.8 < hi95 < hi99
    lo_big, hi_big = wilson(800, 1000)
    assert lo95 < lo_big < 0.8 < hi_big < hi95


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError, match="k=11, n=10"):
        wilson(11, 10)


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (10, 2, 0.03857),  # 2 * (1 + 12 + 66) / 2**12
        (8, 0, 0.0078125),  # 2 / 2**8
        (5, 0, 0.0625),
        (27, 1, 2 * 29 / 2**28),
        (3, 3, 1.0),  # capped at 1
        (0, 0, 1.0),  # no discordant pairs: no evidence either way
        (1, 0, 1.0),
    ],
)
def test_mcnemar_exact_known_values(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-3)


def test_mcnemar_is_two_sided_and_symmetric():
    assert mcnemar_exact(2, 10) == mcnemar_exact(10, 2)


def test_mcnemar_handles_large_counts_without_overflow():
    p = mcnemar_exact(1200, 800)
    assert 0.0 <= p < 1e-15
    assert mcnemar_exact(1000, 1000) == 1.0


def test_mcnemar_rejects_negative_counts():
    with pytest.raises(ValueError, match="b=-1"):
        mcnemar_exact(-1, 3)
