"""A promotion guard's evidence and verdict: the variants' CloudWatch metrics over the window, judged.

Pure functions: the GetMetricData queries for one call, the figures read from its results, and the verdict.
ModelLatency is in microseconds; reasons show milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from properties import Guard

NAMESPACE = "AWS/SageMaker"
COUNTS = {"Invocations": "Invocations", "Errors5xx": "Invocation5XXErrors", "ModelErrors": "InvocationModelErrors"}
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
    """One variant's figures over the window; None where CloudWatch returned no datapoints."""

    invocations: float | None
    errors: float | None
    latency_microseconds: float | None

    @property
    def error_rate(self) -> float | None:
        if self.errors is None or not self.invocations:
            return None
        return self.errors / self.invocations


def figures(results: Sequence[Mapping[str, Any]], role: str) -> Figures:
    """A variant's figures from GetMetricData's results.

    Counts over several datapoints are added. Should the one period come back as several latency datapoints,
    the shadow is taken at its slowest and production at its fastest: the guard errs towards not promoting.
    """
    values: dict[str, list[float]] = {str(r["Id"]): [float(v) for v in r.get("Values", [])] for r in results}

    def total(name: str) -> float | None:
        found = values.get(f"{role}{name}", [])
        return sum(found) if found else None

    latencies = values.get(f"{role}Latency", [])
    latency = (max(latencies) if role == "shadow" else min(latencies)) if latencies else None
    errors = [count for count in (total("Errors5xx"), total("ModelErrors")) if count is not None]
    return Figures(total("Invocations"), sum(errors) if errors else None, latency)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


def judge(guard: Guard, shadow: Figures, production: Figures) -> Verdict:
    """Whether the shadow beats production by the guard's thresholds; the reason gives the figures.

    No datapoints for a figure a threshold needs is never a pass: it is not enough evidence.
    """
    if shadow.invocations is None or shadow.invocations < guard.min_invocations:
        count = 0 if shadow.invocations is None else shadow.invocations
        return Verdict(
            False, f"not enough evidence: the shadow had {count:,.0f} invocations, fewer than {guard.min_invocations:,}"
        )
    checks: list[tuple[bool, str]] = []
    if guard.max_latency_ratio is not None:
        stat = guard.latency_statistic
        for role, found in (("shadow", shadow), ("production", production)):
            if found.latency_microseconds is None:
                return Verdict(False, f"not enough evidence: no {stat} ModelLatency datapoints for the {role} variant")
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
            return Verdict(False, "not enough evidence: no error datapoints for the shadow variant")
        if guard.max_error_rate is not None:
            passed = rate <= guard.max_error_rate
            checks.append((passed, f"shadow error rate {rate:.4f} {'<=' if passed else '>'} {guard.max_error_rate:g}"))
        if guard.max_error_rate_ratio is not None:
            base = production.error_rate
            if base is None:
                return Verdict(
                    False, "not enough evidence: no error or invocation datapoints for the production variant"
                )
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
