"""PromotionGuard: promote the shadow only when its alarms and measured metrics say so, bake it, and roll it back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker

from inference_experiment_stopper._asset import load_handler_module

if TYPE_CHECKING:
    import rules
else:
    rules = load_handler_module("rules")  # the handler's own rules: one copy of the defaults for both sides


class GuardFailure(StrEnum):
    """What a stop does when its promotion guard fails, or is inconclusive."""

    FAIL = "Fail"
    """The Update answers FAILED with the figures, and nothing is stopped. A Delete always falls back."""
    FALL_BACK = "FallBack"
    """Stop with the shadow Removed and every other variant Retained, and answer SUCCESS."""


@dataclass(frozen=True)
class PromotionGuard:
    """When the shadow may replace production, judged like a deployment guardrail, and how its promotion is undone.

    Give alarms, at least one of the three thresholds, or both. Before a stop that promotes, the function reads
    the alarms' states (DescribeAlarms) and, for thresholds, AWS/SageMaker ModelLatency, Invocations and
    InvocationModelErrors of the shadow and the production variant (GetMetricData). Each check passes, fails, or is
    inconclusive (too few invocations, a figure missing or incomplete, an alarm not found, a test that cannot
    decide); an alarm in INSUFFICIENT_DATA gives no evidence either way. The guard fails if any check fails, else is
    inconclusive if any check is, else passes if any check passed; a guard none of whose checks gave evidence is
    inconclusive.

    Args:
        max_latency_ratio: the shadow's latency statistic may be at most this times production's.
            Default: latency is not compared.
        latency_statistic: the ModelLatency statistic compared: Average, Minimum, Maximum or a percentile
            such as p99 or p99.9 (a percentile needs CloudWatch datapoints for it). Default: Average.
        max_error_rate: the shadow's InvocationModelErrors / Invocations (the model errors include its 4xx
            and 5xx answers) may be at most this (0 to 1). Default: not checked.
        max_error_rate_ratio: the shadow's error rate may be at most this times production's. Default: not
            compared.
        min_invocations: fewer shadow invocations in the window is inconclusive (where a threshold is given).
            Default: 1000.
        window: how far back to read, never before the experiment started (figures from before it are another
            test's). Default: from the experiment's start to the stop (at most 15 days).
        on_failure: what a failed guard does on an Update. Default: FAIL.
        on_inconclusive: what an inconclusive guard does on an Update. Default: whatever ``on_failure`` is.
        alarms: your own CloudWatch alarms (latency, errors, business metrics, composite alarms): before the stop,
            any in ALARM fails the guard, and one not found makes it inconclusive. One in INSUFFICIENT_DATA is no
            evidence, neither a failure nor a pass: the other checks decide, and a guard whose alarms all lack data
            (and that has no thresholds) is inconclusive. Default: none.
        bake: from when the endpoint began serving the promotion (as SageMaker records it), watch ``alarms`` this
            long, judged from CloudWatch's alarm history over the whole bake: one in ALARM for any part of it, or
            gone, fails the promotion; alarms that all lacked data throughout are inconclusive
            (``on_inconclusive`` decides). The bake must also end a minute before the stopper's
            ``completion_timeout`` runs out (time for the rollback), else it fails at once. Needs ``alarms`` and
            the stopper's ``experiment=`` (the bake judges its endpoint); at most half of the stopper's
            ``completion_timeout``. A Delete bakes nothing. Default: no bake.
        roll_back_to: the endpoint configuration (a ``CfnEndpointConfig`` or its name) to update the endpoint
            back to when the bake does not pass; the Update then fails saying so (an inconclusive bake with
            ``on_inconclusive`` FALL_BACK succeeds once the endpoint serves it again). Needs ``bake`` and the stopper's
            ``experiment=``. Default: no rollback (a failed bake fails the Update, and the endpoint keeps serving
            the promoted model).
        confidence: compare latency per ``period`` with a one-sided Mann-Whitney U test at this confidence
            (e.g. 0.95), failing only a shadow significantly slower than ``max_latency_ratio`` times production.
            Needs ``max_latency_ratio``. Default: the aggregate comparison.
        period: the period of the values the test compares, whole minutes. Needs ``confidence``. Default: 5
            minutes.
    """

    max_latency_ratio: float | None = None
    latency_statistic: str = rules.DEFAULT_LATENCY_STATISTIC
    max_error_rate: float | None = None
    max_error_rate_ratio: float | None = None
    min_invocations: int = rules.DEFAULT_MIN_INVOCATIONS
    window: Duration | None = None
    on_failure: GuardFailure | str = GuardFailure.FAIL
    on_inconclusive: GuardFailure | str | None = None
    alarms: Sequence[cloudwatch.IAlarm] | None = None
    bake: Duration | None = None
    roll_back_to: sagemaker.CfnEndpointConfig | str | None = None
    confidence: float | None = None
    period: Duration | None = None

    @property
    def thresholds(self) -> bool:
        """Whether the guard compares metrics (a guard of alarms alone reads none)."""
        return any(t is not None for t in (self.max_latency_ratio, self.max_error_rate, self.max_error_rate_ratio))

    @property
    def roll_back_to_name(self) -> str | None:
        """The name of the endpoint configuration to roll back to (a token for a CfnEndpointConfig)."""
        if isinstance(self.roll_back_to, sagemaker.CfnEndpointConfig):
            # A configuration named in the app is named in IAM by that name; one CloudFormation names, by a token.
            name = self.roll_back_to.endpoint_config_name
            if isinstance(name, str) and not Token.is_unresolved(name):
                return name
            return self.roll_back_to.attr_endpoint_config_name
        return self.roll_back_to

    def to_api(self, seconds: Mapping[str, int | None]) -> dict[str, Any]:
        """The guard as the custom resource's PromotionGuard property (what is not given is left out).

        Args:
            seconds: the checked durations in whole seconds: window, bake, period.
        """
        properties: dict[str, Any] = {
            "LatencyStatistic": self.latency_statistic,
            "MinInvocations": self.min_invocations,
            "OnFailure": _plain(self.on_failure),
        }
        for key, value in (
            ("MaxLatencyRatio", self.max_latency_ratio),
            ("MaxErrorRate", self.max_error_rate),
            ("MaxErrorRateRatio", self.max_error_rate_ratio),
            ("WindowSeconds", seconds.get("window")),
            ("OnInconclusive", None if self.on_inconclusive is None else _plain(self.on_inconclusive)),
            ("Alarms", [alarm.alarm_name for alarm in self.alarms] if self.alarms else None),
            ("BakeSeconds", seconds.get("bake")),
            ("RollBackTo", self.roll_back_to_name),
            ("Confidence", self.confidence),
            ("PeriodSeconds", seconds.get("period")),
        ):
            if value is not None:
                properties[key] = value
        return properties


def _plain(value: GuardFailure | str) -> str:
    return value.value if isinstance(value, GuardFailure) else value
