"""A promotion guard's evidence and verdict: the variants' CloudWatch metrics over the window, judged.

Pure functions: the GetMetricData queries for one call, the figures read from its results, and the verdict,
one of three outcomes: pass, fail, or inconclusive (too few invocations, a figure missing or incomplete, a
test that cannot decide). A check may also give no evidence at all (an alarm without data): it neither passes
nor fails, and a verdict with nothing else is inconclusive. ModelLatency is in microseconds; reasons show
milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

import rules
import significance

if TYPE_CHECKING:
    from properties import Guard

# The error rate is InvocationModelErrors / Invocations: SageMaker counts the model's 4xx and 5xx answers among its
# model errors already, so Invocation5XXErrors is never added to it (each failed request counts once).
COUNTS = {"Invocations": "Invocations", "ModelErrors": "InvocationModelErrors"}
ROLES = ("shadow", "production")


def period_for(seconds: float) -> int:
    """One period that covers the whole window, as CloudWatch takes it (minutes; 5-minute steps past 3 hours)."""
    step = 300 if seconds > 3 * 3600 else 60
    return max(step, math.ceil(seconds / step) * step)


def period_since(start: float, end: float) -> int:
    """The longest period, in the same steps, that ends at `end` and begins no earlier than `start`, also once
    CloudWatch has rounded its beginning down to the whole minute (as it does for a start less than 15 days ago):
    0 where not one whole minute lies between them."""
    seconds = end - math.ceil(start / 60) * 60  # from the first whole minute at or after the start
    step = 300 if seconds > 3 * 3600 else 60
    return max(0, math.floor(seconds / step) * step)


def queries(
    endpoint: str, variants: Mapping[str, str], statistic: str, period: int, series_period: int | None = None
) -> list[dict[str, Any]]:
    """The GetMetricData queries: ModelLatency's statistic and the counts' Sum over the window for shadow and
    production, and with a significance test the latency statistic per `series_period` as well."""

    def query(role: str, name: str, metric: str, stat: str, seconds: int = period) -> dict[str, Any]:
        dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variants[role]}]
        return {
            "Id": f"{role}{name}",
            "MetricStat": {
                "Metric": {"Namespace": rules.NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                "Period": seconds,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    found = [
        query(role, name, metric, stat)
        for role in ROLES
        for name, metric, stat in [("Latency", "ModelLatency", statistic)]
        + [(name, metric, "Sum") for name, metric in COUNTS.items()]
    ]
    if series_period is not None:
        found += [query(role, "LatencySeries", "ModelLatency", statistic, series_period) for role in ROLES]
    return found


@dataclass(frozen=True)
class Figures:
    """One variant's figures over the window; None where a figure is no evidence (`missing` says why)."""

    invocations: float | None
    errors: float | None
    latency_microseconds: float | None
    missing: Mapping[str, str] = field(default_factory=dict)  # figure -> why it is no evidence
    latency_series: tuple[float, ...] | None = None  # the statistic per period, for the significance test

    @property
    def error_rate(self) -> float | None:
        """InvocationModelErrors / Invocations: the model errors already include its 4xx and 5xx answers."""
        if self.errors is None or not self.invocations:
            return None
        return self.errors / self.invocations

    def why_missing(self, role: str, figure: str, metric: str) -> str:
        return f"not enough evidence: the {role} variant's {metric} {self.missing.get(figure, 'has no datapoints')}"


def merged(pages: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """GetMetricData's results over all its pages, one per query: values joined, the last page's StatusCode."""
    results: dict[str, dict[str, Any]] = {}
    for page in pages:
        for result in page:
            entry = results.setdefault(str(result["Id"]), {"Id": result["Id"], "Values": []})
            entry["Values"] = [*entry["Values"], *result.get("Values", [])]
            # PartialData only says more pages follow; an error on any page leaves the figure incomplete.
            if entry.get("StatusCode") in (None, "Complete", "PartialData"):
                entry["StatusCode"] = result.get("StatusCode")
    return list(results.values())


def figures(results: Sequence[Mapping[str, Any]], role: str) -> Figures:
    """A variant's figures from GetMetricData's (merged) results.

    A query that is missing, came back without datapoints, or with a StatusCode other than Complete is no
    evidence. Counts over several datapoints are added. Should the one period come back as several latency
    datapoints, the shadow is taken at its slowest and production at its fastest: the guard errs towards not
    promoting.
    """
    by_id = {str(result["Id"]): result for result in results}
    missing: dict[str, str] = {}

    def values(name: str) -> list[float] | None:
        result = by_id.get(f"{role}{name}")
        if result is None:
            missing[name] = "was not returned"
            return None
        if result.get("StatusCode") != "Complete":
            missing[name] = f"came back incomplete ({result.get('StatusCode')})"
            return None
        found = [float(value) for value in result.get("Values", [])]
        if not found:
            missing[name] = "has no datapoints"
            return None
        return found

    invocations, errors, latencies = values("Invocations"), values("ModelErrors"), values("Latency")
    latency = None if latencies is None else (max(latencies) if role == "shadow" else min(latencies))
    series = values("LatencySeries") if f"{role}LatencySeries" in by_id else None
    return Figures(
        None if invocations is None else sum(invocations),
        None if errors is None else sum(errors),
        latency,
        missing,
        None if series is None else tuple(series),
    )


Outcome = Literal["pass", "fail", "inconclusive"]
# A check that looked and found nothing to judge by (an alarm in INSUFFICIENT_DATA): not a failure, and not a pass
# of anything either. Unlike an inconclusive check, it does not hold the verdict back where other checks decide.
NO_EVIDENCE: Final = "no evidence"
CheckOutcome = Literal["pass", "fail", "inconclusive", "no evidence"]


@dataclass(frozen=True)
class Check:
    """One thing a guard looked at: what it found and what that means."""

    name: str  # e.g. "latency", "error rate", "alarm my-alarm"
    outcome: CheckOutcome
    text: str
    figures: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """A guard's verdict: fail if any check fails, else inconclusive if any is, else pass if any check passed;
    a verdict whose checks all gave no evidence (or that has none) is inconclusive: missing data is never a pass."""

    checks: tuple[Check, ...]
    evidence: str = ""  # how much the metric checks rest on, e.g. "over 15,000 shadow invocations"

    @property
    def outcome(self) -> Outcome:
        outcomes = {check.outcome for check in self.checks}
        if "fail" in outcomes:
            return "fail"
        if "inconclusive" in outcomes or "pass" not in outcomes:
            return "inconclusive"
        return "pass"

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    @property
    def reason(self) -> str:
        """The checks that decided, in a line: the failed ones, else the inconclusive ones, else those that gave
        no evidence where that is all there is; a pass lists every check, those without evidence marked so."""
        outcome = self.outcome
        if outcome == "pass":
            deciding = [c.text if c.outcome == "pass" else f"{c.text} (no evidence)" for c in self.checks]
        else:
            deciding = [check.text for check in self.checks if check.outcome == outcome]
        if outcome == "inconclusive" and not deciding:
            return "no check gave evidence: " + ("; ".join(c.text for c in self.checks) or "the guard has no checks")
        suffix = f" ({self.evidence})" if self.evidence and outcome != "inconclusive" else ""
        return "; ".join(deciding) + suffix

    def __add__(self, other: Verdict) -> Verdict:
        return Verdict(self.checks + other.checks, self.evidence or other.evidence)


def inconclusive(name: str, why: str) -> Verdict:
    return Verdict((Check(name, "inconclusive", why),))


def judge(guard: Guard, shadow: Figures, production: Figures) -> Verdict:
    """Whether the shadow beats production by the guard's thresholds; each check gives its figures.

    A figure a threshold needs that is missing or incomplete is never a pass: it is inconclusive.
    """
    if shadow.invocations is None:
        return inconclusive("invocations", shadow.why_missing("shadow", "Invocations", "Invocations"))
    if shadow.invocations < guard.min_invocations:
        return inconclusive(
            "invocations",
            f"not enough evidence: the shadow had {shadow.invocations:,.0f} invocations, fewer than "
            f"{guard.min_invocations:,}",
        )
    evidence = f"over {shadow.invocations:,.0f} shadow invocations"
    checks: list[Check] = []
    if guard.max_latency_ratio is not None:
        checks.append(_latency(guard, shadow, production))
    if guard.max_error_rate is not None or guard.max_error_rate_ratio is not None:
        checks.extend(_error_rates(guard, shadow, production))
    return Verdict(tuple(checks), evidence)


def _latency(guard: Guard, shadow: Figures, production: Figures) -> Check:
    stat, ratio = guard.latency_statistic, guard.max_latency_ratio
    assert ratio is not None  # noqa: S101 (only called with a latency threshold)
    if guard.confidence is not None:
        return _latency_test(guard, shadow, production)
    for role, found in (("shadow", shadow), ("production", production)):
        if found.latency_microseconds is None:
            return Check("latency", "inconclusive", found.why_missing(role, "Latency", f"{stat} ModelLatency"))
    shadow_ms, production_ms = shadow.latency_microseconds / 1000, production.latency_microseconds / 1000  # type: ignore[operator]
    passed = shadow_ms <= ratio * production_ms
    return Check(
        "latency",
        "pass" if passed else "fail",
        f"shadow {stat} ModelLatency {shadow_ms:.1f} ms {'<=' if passed else '>'} {ratio:.2f} x production "
        f"{production_ms:.1f} ms",
        {"shadow_ms": shadow_ms, "production_ms": production_ms, "max_latency_ratio": ratio},
    )


def _latency_test(guard: Guard, shadow: Figures, production: Figures) -> Check:
    """A one-sided Mann-Whitney U test: is the shadow's per-period latency higher than ratio x production's?"""
    stat, ratio, confidence = guard.latency_statistic, guard.max_latency_ratio, guard.confidence
    assert ratio is not None  # noqa: S101 (only called with a test)
    assert confidence is not None  # noqa: S101
    minutes = (guard.period_seconds or rules.DEFAULT_PERIOD_SECONDS) // 60
    per = f"{stat} ModelLatency per {minutes}-minute period"
    for role, found in (("shadow", shadow), ("production", production)):
        if found.latency_series is None:
            return Check("latency", "inconclusive", found.why_missing(role, "LatencySeries", per))
    x, y = list(shadow.latency_series or ()), [ratio * value for value in production.latency_series or ()]
    if min(len(x), len(y)) < rules.MIN_PERIODS:
        return Check(
            "latency",
            "inconclusive",
            f"not enough evidence: {len(x)} shadow and {len(y)} production periods with {per} data, fewer than "
            f"{rules.MIN_PERIODS} on a side",
        )
    test = significance.greater(x, y)
    figures = {"u": test.u, "p_value": test.p_value, "method": test.method, "periods": [len(x), len(y)]}
    if math.isnan(test.p_value):  # announced as null (JSON has no NaN), the text saying why
        why = f"not enough evidence: every {per} value is tied, so the test has no p-value"
        return Check("latency", "inconclusive", why, {**figures, "p_value": None})
    alpha = 1 - confidence
    higher = test.p_value < alpha
    return Check(
        "latency",
        "fail" if higher else "pass",
        f"shadow {per} {'is' if higher else 'is not'} significantly higher than {ratio:.2f} x production's "
        f"(Mann-Whitney U p = {test.p_value:.4g} {'<' if higher else '>='} {alpha:.2g}, {len(x)} and {len(y)} periods)",
        figures,
    )


def _error_rates(guard: Guard, shadow: Figures, production: Figures) -> list[Check]:
    rate = shadow.error_rate
    if rate is None:
        return [
            Check("error rate", "inconclusive", shadow.why_missing("shadow", "ModelErrors", "InvocationModelErrors"))
        ]
    checks = []
    if guard.max_error_rate is not None:
        passed = rate <= guard.max_error_rate
        checks.append(
            Check(
                "error rate",
                "pass" if passed else "fail",
                f"shadow error rate {rate:.4f} {'<=' if passed else '>'} {guard.max_error_rate:g}",
                {"shadow_error_rate": rate, "max_error_rate": guard.max_error_rate},
            )
        )
    if guard.max_error_rate_ratio is not None:
        base = production.error_rate
        if base is None:
            if production.invocations == 0:
                return [
                    *checks,
                    Check(
                        "error rate ratio",
                        "inconclusive",
                        "not enough evidence: the production variant had no invocations",
                    ),
                ]
            figure = "Invocations" if production.invocations is None else "ModelErrors"
            metric = "Invocations" if figure == "Invocations" else "InvocationModelErrors"
            return [
                *checks,
                Check("error rate ratio", "inconclusive", production.why_missing("production", figure, metric)),
            ]
        passed = rate <= guard.max_error_rate_ratio * base
        checks.append(
            Check(
                "error rate ratio",
                "pass" if passed else "fail",
                f"shadow error rate {rate:.4f} {'<=' if passed else '>'} {guard.max_error_rate_ratio:.2f} x "
                f"production {base:.4f}",
                {
                    "shadow_error_rate": rate,
                    "production_error_rate": base,
                    "max_error_rate_ratio": guard.max_error_rate_ratio,
                },
            )
        )
    return checks
