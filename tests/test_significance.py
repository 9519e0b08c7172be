"""The guard's Mann-Whitney U test against SciPy's (a test-only dependency), and judged figures per period.

The function carries its own pure-Python test (no SciPy in the asset); here it must give SciPy's U and, for the
same method (exact or asymptotic), a p-value within 1e-9, on seeded samples with and without ties.
"""

from __future__ import annotations

import random

import metrics
import pytest
import significance
from properties import Guard
from scipy.stats import mannwhitneyu

SEEDS = range(40)


def samples(seed: int, ties: bool) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    n1, n2 = rng.randint(1, 20), rng.randint(1, 20)
    if ties:
        return [float(rng.randint(0, 6)) for _ in range(n1)], [float(rng.randint(0, 6)) for _ in range(n2)]
    return [rng.gauss(30.0, 3.0) for _ in range(n1)], [rng.gauss(29.0, 3.0) for _ in range(n2)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["exact", "asymptotic"])
def test_without_ties_u_and_p_agree_with_scipy(seed: int, method: str) -> None:
    x, y = samples(seed, ties=False)

    ours = significance.greater(x, y, method)
    reference = mannwhitneyu(x, y, alternative="greater", method=method)

    assert ours.u == reference.statistic
    assert ours.p_value == pytest.approx(float(reference.pvalue), abs=1e-9)
    assert ours.method == method


@pytest.mark.parametrize("seed", SEEDS)
def test_with_ties_the_asymptotic_p_agrees_with_scipy(seed: int) -> None:
    x, y = samples(seed, ties=True)
    if len(set(x + y)) == 1:
        pytest.skip("every value tied: SciPy answers NaN, the guard calls it inconclusive")

    ours = significance.greater(x, y, "asymptotic")
    reference = mannwhitneyu(x, y, alternative="greater", method="asymptotic")

    assert ours.u == reference.statistic
    assert ours.p_value == pytest.approx(float(reference.pvalue), abs=1e-9)


def test_auto_is_exact_for_small_samples_without_ties_and_asymptotic_otherwise() -> None:
    assert significance.greater([3.0, 4.0, 5.0], [1.0, 2.0]).method == "exact"
    assert significance.greater([3.0, 4.0, 4.0], [1.0, 2.0]).method == "asymptotic"
    assert (
        significance.greater([float(i) for i in range(30)], [float(i) + 0.5 for i in range(30)]).method == "asymptotic"
    )


def test_every_value_tied_has_no_p_value() -> None:
    result = significance.greater([5.0] * 12, [5.0] * 12)

    assert result.p_value != result.p_value  # NaN


def test_the_exact_method_refuses_ties() -> None:
    with pytest.raises(ValueError, match="the exact method needs samples without ties"):
        significance.greater([1.0, 1.0], [2.0], "exact")


GUARD = Guard(
    latency_statistic="p99",
    min_invocations=1000,
    on_failure="Fail",
    max_latency_ratio=1.1,
    confidence=0.95,
    period_seconds=300,
)


def figures(series: list[float]) -> metrics.Figures:
    return metrics.Figures(15_000.0, 3.0, max(series), {}, tuple(series))


def test_a_noisy_but_equal_shadow_passes_the_test_though_its_maximum_fails_the_aggregate() -> None:
    rng = random.Random(7)
    production = [rng.gauss(30_000.0, 3_000.0) for _ in range(48)]
    shadow = [rng.gauss(30_000.0, 3_000.0) for _ in range(47)] + [90_000.0]  # one noisy period

    aggregate = metrics.judge(
        Guard("Maximum", 1000, "Fail", max_latency_ratio=1.1), figures(shadow), figures(production)
    )
    tested = metrics.judge(GUARD, figures(shadow), figures(production))

    assert aggregate.outcome == "fail"
    assert tested.outcome == "pass", tested.reason
    assert "is not significantly higher than 1.10 x production's" in tested.reason


def test_a_shadow_consistently_twenty_percent_slower_fails_the_test() -> None:
    rng = random.Random(11)
    production = [rng.gauss(30_000.0, 1_500.0) for _ in range(48)]
    shadow = [value * 1.2 + rng.gauss(0, 500.0) for value in production]

    verdict = metrics.judge(GUARD, figures(shadow), figures(production))

    assert verdict.outcome == "fail"
    assert "is significantly higher than 1.10 x production's (Mann-Whitney U p = " in verdict.reason
    assert "48 and 48 periods" in verdict.reason


@pytest.mark.parametrize(
    ("shadow", "production", "why"),
    [
        ([30_000.0] * 9, [30_000.0] * 20, "9 shadow and 20 production periods"),
        ([30_000.0] * 12, [30_000.0 / 1.1] * 12, "every p99 ModelLatency per 5-minute period value is tied"),
    ],
    ids=["too-few-periods", "every-value-tied"],
)
def test_a_test_that_cannot_decide_is_inconclusive(shadow: list[float], production: list[float], why: str) -> None:
    verdict = metrics.judge(GUARD, figures(shadow), figures(production))

    assert verdict.outcome == "inconclusive"
    assert why in verdict.reason
