"""A one-sided Mann-Whitney U test, in pure Python (no SciPy in the function: it would multiply the asset and
its cold start). tests/test_significance.py checks it against `scipy.stats.mannwhitneyu` to 1e-9.

It asks whether the values of `x` tend to be greater than those of `y` (SciPy's `alternative="greater"`), by
the exact distribution of U where there are no ties and the samples are small, else by the normal
approximation with SciPy's tie correction and continuity correction.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

# The exact distribution is built by a recurrence of n1 * n2 * (n1 * n2) / 2 steps: fine up to this product.
MAX_EXACT_PAIRS = 400


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of x: pairs (x, y) with x > y, plus half the ties
    p_value: float  # P(U >= u) with no difference between the samples
    method: str  # "exact" or "asymptotic"


def greater(x: Sequence[float], y: Sequence[float], method: str = "auto") -> MannWhitney:
    """Whether `x` tends to be greater than `y`: U and the one-sided p-value.

    Args:
        x: the first sample (at least one value).
        y: the second sample (at least one value).
        method: "exact" (no ties only), "asymptotic", or "auto": exact where there are no ties and
            len(x) * len(y) <= MAX_EXACT_PAIRS.

    Raises:
        ValueError: for an empty sample, or "exact" with ties.
    """
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError("both samples need at least one value")
    ranks = _ranks([*x, *y])
    u = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    ties = [count for count in Counter([*x, *y]).values() if count > 1]
    if method == "auto":
        method = "exact" if not ties and n1 * n2 <= MAX_EXACT_PAIRS else "asymptotic"
    if method == "exact":
        if ties:
            raise ValueError("the exact method needs samples without ties")
        return MannWhitney(u, _exact_sf(round(u), n1, n2), "exact")
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties)
    spread = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if spread == 0:  # every value tied: no evidence either way
        return MannWhitney(u, math.nan, "asymptotic")
    z = (u - n1 * n2 / 2 - 0.5) / spread  # with the continuity correction, as SciPy's default
    return MannWhitney(u, min(max(0.5 * math.erfc(z / math.sqrt(2)), 0.0), 1.0), "asymptotic")


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties given the average of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for index in order[start : end + 1]:
            ranks[index] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) for samples of n1 and n2 distinct values, by counting the arrangements that give each U."""
    # counts[m][k]: arrangements of m x-values among the y-values so far with U = k; built y-value by y-value.
    counts = [[1] + [0] * (n1 * n2) for _ in range(n1 + 1)]
    for _ in range(n2):
        for m in range(1, n1 + 1):
            row, shorter = counts[m], counts[m - 1]
            # Adding one y-value above all: an arrangement of m x-values gains nothing, or one fewer x-value is
            # placed above it (the q-binomial recurrence [m+j, m] = [m+j-1, m-1] + q^m [m+j-1, m]).
            counts[m] = [shorter[k] + (row[k - m] if k >= m else 0) for k in range(n1 * n2 + 1)]
    total = math.comb(n1 + n2, n1)
    return min(sum(counts[n1][u:]) / total, 1.0)
