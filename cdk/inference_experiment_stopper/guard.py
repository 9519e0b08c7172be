"""PromotionGuard: promote the shadow only when its measured metrics beat production's."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aws_cdk import Duration

from inference_experiment_stopper._asset import load_handler_module

if TYPE_CHECKING:
    import rules
else:
    rules = load_handler_module("rules")  # the handler's own rules: one copy of the defaults for both sides


class GuardFailure(StrEnum):
    """What a stop does when its promotion guard fails (or finds too little evidence)."""

    FAIL = "Fail"
    """The Update answers FAILED with the figures, and nothing is stopped. A Delete always falls back."""
    FALL_BACK = "FallBack"
    """Stop with the shadow Removed and every other variant Retained, and answer SUCCESS."""


@dataclass(frozen=True)
class PromotionGuard:
    """Thresholds the shadow's CloudWatch metrics must meet, over the experiment's window, for it to be promoted.

    Give at least one of the three thresholds. The function reads AWS/SageMaker ModelLatency, Invocations and
    InvocationModelErrors for the shadow and the production variant in one GetMetricData call before it sends
    a stop that promotes.

    Args:
        max_latency_ratio: the shadow's latency statistic may be at most this times production's.
            Default: latency is not compared.
        latency_statistic: the ModelLatency statistic compared: Average, Minimum, Maximum or a percentile
            such as p99 or p99.9 (a percentile needs CloudWatch datapoints for it). Default: Average.
        max_error_rate: the shadow's InvocationModelErrors / Invocations (the model errors include its 4xx
            and 5xx answers) may be at most this (0 to 1). Default: not checked.
        max_error_rate_ratio: the shadow's error rate may be at most this times production's. Default: not
            compared.
        min_invocations: fewer shadow invocations in the window is not enough evidence. Default: 1000.
        window: how far back to read. Default: from the experiment's start to the stop (at most 15 days).
        on_failure: what a failed guard (or too little evidence) does on an Update. Default: FAIL.
    """

    max_latency_ratio: float | None = None
    latency_statistic: str = rules.DEFAULT_LATENCY_STATISTIC
    max_error_rate: float | None = None
    max_error_rate_ratio: float | None = None
    min_invocations: int = rules.DEFAULT_MIN_INVOCATIONS
    window: Duration | None = None
    on_failure: GuardFailure | str = GuardFailure.FAIL

    def to_api(self, window_seconds: int | None) -> dict[str, Any]:
        """The guard as the custom resource's PromotionGuard property (thresholds left out when not given)."""
        properties: dict[str, Any] = {
            "LatencyStatistic": self.latency_statistic,
            "MinInvocations": self.min_invocations,
            "OnFailure": self.on_failure.value if isinstance(self.on_failure, GuardFailure) else self.on_failure,
        }
        for key, value in (
            ("MaxLatencyRatio", self.max_latency_ratio),
            ("MaxErrorRate", self.max_error_rate),
            ("MaxErrorRateRatio", self.max_error_rate_ratio),
            ("WindowSeconds", window_seconds),
        ):
            if value is not None:
                properties[key] = value
        return properties
