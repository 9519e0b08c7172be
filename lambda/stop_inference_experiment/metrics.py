"""A promotion guard's evidence and verdict: the variants' CloudWatch metrics over the window, judged.

Pure functions: the GetMetricData queries for one call, the figures read from its results, and the verdict.
ModelLatency is in microseconds; reasons show milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from properties import Guard

NAMESPACE = "AWS/SageMaker"
# The error rate is InvocationModelErrors / Invocations: SageMaker counts the model's 4xx and 5xx answers among its
# model errors already, so Invocation5XXErrors is never added to it (each failed request counts once).
COUNTS = {"Invocations": "Invocations", "ModelErrors": "InvocationModelErrors"}
ROLES = ("shadow", "production")


def period_for(seconds: float) -> int:
    """One period that covers the whole window, as CloudWatch takes it (minutes; 5-minute steps past 3 hours)."""
    step = 300 if seconds > 3 * 3600 else 60
    return max(step, math.ceil(seconds / step) * step)


def queries(endpoint: str, variants: Mapping[str, str], statistic: str, period: int) -> list[dict[str, Any]]:
    """The GetMetricData queries: ModelLatency's statistic and the three counts' Sum, for shadow and production."""

    def query(role: str, name: str, metric: str, stat: str) -> dict[str, Any]:
        dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variants[role]}]
        return {
            "Id": f"{role}{name}",
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions},
                "Period": period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    return [
        query(role, name, metric, stat)
        for role in ROLES
        for name, metric, stat in [("Latency", "ModelLatency", statistic)]
        + [(name, metric, "Sum") for name, metric in COUNTS.items()]
    ]


@dataclass(frozen=True)
class Figures:
    """One variant's figures over the window; None where a figure is no evidence (`missing` says why)."""

    invocations: float | None
    errors: float | None
    latency_microseconds: float | None
    missing: Mapping[str, str] = field(default_factory=dict)  # figure -> why it is no evidence

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
    return Figures(
        None if invocations is None else sum(invocations), None if errors is None else sum(errors), latency, missing
    )


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def judge(guard: Guard, shadow: Figures, production: Figures) -> Verdict:  # noqa: PLR0911 (one per outcome)
    """Whether the shadow beats production by the guard's thresholds; the reason gives the figures.

    A figure a threshold needs that is missing or incomplete is never a pass: it is not enough evidence.
    """
    if shadow.invocations is None:
        return Verdict(False, shadow.why_missing("shadow", "Invocations", "Invocations"))
    if shadow.invocations < guard.min_invocations:
        return Verdict(
            False,
            f"not enough evidence: the shadow had {shadow.invocations:,.0f} invocations, fewer than "
            f"{guard.min_invocations:,}",
        )
    checks: list[tuple[bool, str]] = []
    if guard.max_latency_ratio is not None:
        stat = guard.latency_statistic
        for role, found in (("shadow", shadow), ("production", production)):
            if found.latency_microseconds is None:
                return Verdict(False, found.why_missing(role, "Latency", f"{stat} ModelLatency"))
        shadow_ms, production_ms = shadow.latency_microseconds / 1000, production.latency_microseconds / 1000  # type: ignore[operator]
        passed = shadow_ms <= guard.max_latency_ratio * production_ms
        checks.append(
            (
                passed,
                f"shadow {stat} ModelLatency {shadow_ms:.1f} ms {'<=' if passed else '>'} "
                f"{guard.max_latency_ratio:.2f} x production {production_ms:.1f} ms",
            )
        )
    if guard.max_error_rate is not None or guard.max_error_rate_ratio is not None:
        rate = shadow.error_rate
        if rate is None:
            return Verdict(False, shadow.why_missing("shadow", "ModelErrors", "InvocationModelErrors"))
        if guard.max_error_rate is not None:
            passed = rate <= guard.max_error_rate
            checks.append((passed, f"shadow error rate {rate:.4f} {'<=' if passed else '>'} {guard.max_error_rate:g}"))
        if guard.max_error_rate_ratio is not None:
            base = production.error_rate
            if base is None:
                figure = "Invocations" if production.invocations is None else "ModelErrors"
                metric = "Invocations" if figure == "Invocations" else "InvocationModelErrors"
                if production.invocations == 0:
                    return Verdict(False, "not enough evidence: the production variant had no invocations")
                return Verdict(False, production.why_missing("production", figure, metric))
            passed = rate <= guard.max_error_rate_ratio * base
            checks.append(
                (
                    passed,
                    f"shadow error rate {rate:.4f} {'<=' if passed else '>'} {guard.max_error_rate_ratio:.2f} x "
                    f"production {base:.4f}",
                )
            )
    failed = [text for passed, text in checks if not passed]
    evidence = f"over {shadow.invocations:,.0f} shadow invocations"
    if failed:
        return Verdict(False, f"{'; '.join(failed)} ({evidence})")
    return Verdict(True, f"{'; '.join(text for _, text in checks)} ({evidence})")
