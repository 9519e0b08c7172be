"""The custom resource's properties (the wire format the construct writes), parsed and checked.

CloudFormation hands every property over as a string, numbers included, so counts and timeouts are
converted back here. The README's "Custom-resource properties" table is the contract, and `rules.py` holds
SageMaker's limits, the same ones the construct checks at synth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import rules
from outcomes import InvalidProperties, StopFailed

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.literals import (
        InferenceExperimentStopDesiredStateType,
        ModelVariantActionType,
        ProductionVariantInstanceTypeType,
    )
    from mypy_boto3_sagemaker.type_defs import (
        ModelVariantConfigTypeDef,
        StopInferenceExperimentRequestTypeDef,
    )

STOP_EVENTS = ("Update", "Delete")
COUNT = re.compile(r"\d{1,9}")


__all__ = [
    "FALLBACKS",
    "FALLBACK_REASON",
    "INCONCLUSIVE_REASON",
    "Guard",
    "InvalidProperties",
    "StopDeclaration",
    "StopFailed",
    "parse",
    "quote",
]
MAX_SERVICE_TIMEOUT_SECONDS = 3600  # CloudFormation's limit, and its default
# The Reasons a guard's fallback stop sends, before the verdict: SageMaker reports them back as StatusReason.
FALLBACK_REASON = "Promotion guard failed, shadow removed: "
INCONCLUSIVE_REASON = "Promotion guard inconclusive, shadow removed: "
# Each fallback: the start of its Reason, the name its decision begins with, whether the evidence was inconclusive.
FALLBACKS = ((FALLBACK_REASON, "FellBack", False), (INCONCLUSIVE_REASON, "Inconclusive", True))


@dataclass(frozen=True)
class Guard:
    """A promotion guard: thresholds the shadow's metrics must meet for the declared Promote to be sent."""

    latency_statistic: str
    min_invocations: int
    on_failure: str
    max_latency_ratio: float | None = None
    max_error_rate: float | None = None
    max_error_rate_ratio: float | None = None
    window_seconds: int | None = None
    alarms: tuple[str, ...] = ()
    bake_seconds: int | None = None
    roll_back_to: str | None = None
    on_inconclusive: str = ""  # "" until parsed: then on_failure where not given
    confidence: float | None = None
    period_seconds: int | None = None

    @property
    def thresholds(self) -> bool:
        """Whether the guard compares metrics (a guard of alarms alone reads none)."""
        return any(t is not None for t in (self.max_latency_ratio, self.max_error_rate, self.max_error_rate_ratio))


@dataclass(frozen=True)
class StopDeclaration:
    """How the stack declares its inference experiment ends."""

    name: str
    model_variant_actions: Mapping[str, str]
    desired_model_variants: tuple[ModelVariantConfigTypeDef, ...]
    desired_state: str | None
    reason: str | None
    stop_on: frozenset[str]
    completion_timeout_seconds: int
    guard: Guard | None = None
    service_timeout_seconds: int = MAX_SERVICE_TIMEOUT_SECONDS

    @property
    def promotes(self) -> bool:
        """Whether a variant is declared Promote."""
        return "Promote" in self.model_variant_actions.values()

    @property
    def variant_names(self) -> list[str]:
        """Every variant the declaration names, in order, once each."""
        names = list(self.model_variant_actions)
        names += [v["VariantName"] for v in self.desired_model_variants]
        return list(dict.fromkeys(names))

    def stop_request(self) -> StopInferenceExperimentRequestTypeDef:
        """The StopInferenceExperiment request, optional members left out when not declared."""
        request: StopInferenceExperimentRequestTypeDef = {
            "Name": self.name,
            "ModelVariantActions": cast("dict[str, ModelVariantActionType]", dict(self.model_variant_actions)),
        }
        if self.desired_model_variants:
            request["DesiredModelVariants"] = list(self.desired_model_variants)
        if self.desired_state is not None:
            request["DesiredState"] = cast("InferenceExperimentStopDesiredStateType", self.desired_state)
        if self.reason is not None:
            request["Reason"] = self.reason
        return request

    def sent_with(self, reason: str) -> tuple[StopInferenceExperimentRequestTypeDef, str] | None:
        """The stop this declaration sends with the Reason `reason`, and its decision: a guard's fallback (its
        Reason carries the verdict), or the declared stop; None where it sends no stop with that Reason."""
        guarded = self.guard is not None and self.promotes
        for prefix, named, inconclusive in FALLBACKS:
            if guarded and reason.startswith(prefix):
                why = reason[len(prefix) :]
                fallback = self.fallback_request(why, inconclusive=inconclusive)
                if fallback["Reason"] == reason:
                    return fallback, f"{named}: {why}"
        request = self.stop_request()
        return (request, "Promoted" if guarded else "NoGuard") if request.get("Reason") == reason else None

    def sent_request(self, decision: str) -> StopInferenceExperimentRequestTypeDef:
        """The stop this declaration sent for a decision (a fallback is the only stop that differs from the
        declared; its Reason holds the verdict that its decision names)."""
        for _, named, inconclusive in FALLBACKS:
            if decision.startswith(f"{named}: "):
                return self.fallback_request(decision.removeprefix(f"{named}: "), inconclusive=inconclusive)
        return self.stop_request()

    @property
    def bakes(self) -> bool:
        """Whether a promotion of this declaration is baked: a guard that declares a bake, on a Promote."""
        return self.promotes and self.guard is not None and bool(self.guard.bake_seconds)

    def fallback_request(self, why: str, *, inconclusive: bool = False) -> StopInferenceExperimentRequestTypeDef:
        """The stop for a failed (or inconclusive) promotion guard: the shadow Removed, every other variant Retained."""
        promoted = [variant for variant, action in self.model_variant_actions.items() if action == "Promote"]
        actions = {variant: "Remove" if variant in promoted else "Retain" for variant in self.model_variant_actions}
        request: StopInferenceExperimentRequestTypeDef = {
            "Name": self.name,
            "ModelVariantActions": cast("dict[str, ModelVariantActionType]", actions),
            "Reason": f"{INCONCLUSIVE_REASON if inconclusive else FALLBACK_REASON}{why}"[: rules.MAX_REASON],
        }
        kept = [variant for variant in self.desired_model_variants if variant["VariantName"] not in promoted]
        if kept:
            request["DesiredModelVariants"] = kept
        if self.desired_state is not None:
            request["DesiredState"] = cast("InferenceExperimentStopDesiredStateType", self.desired_state)
        return request


def quote(value: object, limit: int = 60) -> str:
    """A value as it appears in an error message, cut short so reasons stay readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(properties: object, instance_types: frozenset[str]) -> StopDeclaration:
    """Parse ResourceProperties, as strictly as the construct checks its props at synth (the same rules).

    Args:
        properties: the event's ResourceProperties (or OldResourceProperties).
        instance_types: the InstanceType values the function's SageMaker service model lists.

    Raises:
        InvalidProperties: naming the first property that is missing or malformed, and its value.
    """
    if not isinstance(properties, Mapping):
        raise InvalidProperties(f"ResourceProperties must be an object; got {rules.described(properties)}")
    name = _checked(_required(properties, "Name"), "Name", rules.experiment_name_problem)
    actions = _actions(_required(properties, "ModelVariantActions"))
    variants = _desired_model_variants(properties.get("DesiredModelVariants"), actions, instance_types)
    desired_state = properties.get("DesiredState")
    if desired_state is not None:
        _checked(desired_state, "DesiredState", rules.desired_state_problem)
    reason = properties.get("Reason")
    if reason is not None:
        _checked(reason, "Reason", rules.reason_problem, shown=quote(reason, 40))
    return StopDeclaration(
        name=name,
        model_variant_actions=actions,
        desired_model_variants=variants,
        desired_state=desired_state,
        reason=reason,
        stop_on=_stop_on(_required(properties, "StopOn")),
        completion_timeout_seconds=_completion_timeout(_required(properties, "CompletionTimeoutSeconds")),
        guard=_fits(
            _guard(properties.get("PromotionGuard"), actions),
            _completion_timeout(_required(properties, "CompletionTimeoutSeconds")),
        ),
        service_timeout_seconds=_service_timeout(properties.get("ServiceTimeout")),
    )


def _required(properties: Mapping[str, Any], key: str) -> Any:
    if key not in properties:
        raise InvalidProperties(f"{key} is missing from the custom resource's properties")
    return properties[key]


def _checked(value: Any, prop: str, problem_of: Callable[[Any], str | None], shown: str | None = None) -> Any:
    """The value where the rule finds no problem.

    Raises:
        InvalidProperties: "<prop> <value> <what is wrong>" for a string or number; "<prop> is missing" for null;
            "<prop> <what is wrong>; got <the value described>" for anything else.
    """
    problem = problem_of(value)
    if not problem:
        return value
    if value is None:
        raise InvalidProperties(f"{prop} is missing")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        raise InvalidProperties(f"{prop} {shown or quote(value)} {problem}")
    raise InvalidProperties(f"{prop} {problem}; got {rules.described(value)}")  # true, a list [...], an object {...}


def _actions(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not 1 <= len(value) <= rules.MAX_ACTIONS:
        raise InvalidProperties(
            f"ModelVariantActions must map 1 or 2 variant names to actions; got {rules.described(value)}"
        )
    for variant, action in value.items():
        problem = rules.variant_name_problem(variant)
        if problem:
            raise InvalidProperties(f"Variant name {quote(variant)} in ModelVariantActions {problem}")
        _checked(action, f"ModelVariantActions[{quote(variant, 70)}]", rules.action_problem)
    problem = rules.promotes_problem(dict(value))
    if problem:
        raise InvalidProperties(f"ModelVariantActions {problem}")
    return dict(value)


def _count(value: object, prop: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and COUNT.fullmatch(value))):
        raise InvalidProperties(f"{prop} must be a whole number of at least 0; got {rules.described(value)}")
    return int(value)


def _desired_model_variants(
    value: object, actions: Mapping[str, str], instance_types: frozenset[str]
) -> tuple[ModelVariantConfigTypeDef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= rules.MAX_DESIRED_VARIANTS:
        raise InvalidProperties(f"DesiredModelVariants must be a list of 1 or 2 variants; got {rules.described(value)}")
    configs: list[ModelVariantConfigTypeDef] = []
    for index, item in enumerate(value):
        prop = f"DesiredModelVariants[{index}]"
        try:
            model_name = item["ModelName"]
            variant_name = item["VariantName"]
            infrastructure = item["InfrastructureConfig"]
            infrastructure_type = infrastructure["InfrastructureType"]
            realtime = infrastructure["RealTimeInferenceConfig"]
            instance_type = realtime["InstanceType"]
            instance_count = realtime["InstanceCount"]
        except (KeyError, TypeError, IndexError):
            raise InvalidProperties(
                f"{prop} must have ModelName, VariantName and InfrastructureConfig.RealTimeInferenceConfig."
                f"InstanceType/InstanceCount; got {rules.described(item)}"
            ) from None
        _checked(model_name, f"{prop}.ModelName", rules.variant_name_problem)
        _checked(variant_name, f"{prop}.VariantName", rules.variant_name_problem)
        if actions.get(variant_name) == "Remove":
            raise InvalidProperties(f"{prop} gives infrastructure to {variant_name!r}, which is declared Remove")
        if infrastructure_type != "RealTimeInference":
            raise InvalidProperties(
                f"{prop}.InfrastructureConfig.InfrastructureType must be RealTimeInference; "
                f"got {rules.described(infrastructure_type)}"
            )
        _checked(instance_type, f"{prop} InstanceType", lambda v: rules.instance_type_problem(v, instance_types))
        count = _checked(
            _count(instance_count, f"{prop} InstanceCount"), f"{prop} InstanceCount", rules.instance_count_problem
        )
        configs.append(
            {
                "ModelName": model_name,
                "VariantName": variant_name,
                "InfrastructureConfig": {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": cast("ProductionVariantInstanceTypeType", instance_type),
                        "InstanceCount": count,
                    },
                },
            }
        )
    return tuple(configs)


def _number(value: object, prop: str) -> float:
    """A number as CloudFormation sends it (a string), or as the construct wrote it."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidProperties(f"{prop} must be a number; got {rules.described(value)}")


def _guard(value: object, actions: Mapping[str, str]) -> Guard | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidProperties(f"PromotionGuard must be an object; got {rules.described(value)}")
    if "Promote" not in actions.values():
        raise InvalidProperties("PromotionGuard needs a Promote in ModelVariantActions, as it decides a promotion")
    thresholds: dict[str, float | None] = {}
    for key, problem_of in (
        ("MaxLatencyRatio", rules.ratio_problem),
        ("MaxErrorRate", rules.error_rate_problem),
        ("MaxErrorRateRatio", rules.ratio_problem),
    ):
        thresholds[key] = None
        if value.get(key) is not None:
            thresholds[key] = _checked(
                _number(value[key], f"PromotionGuard.{key}"), f"PromotionGuard.{key}", problem_of
            )
    alarms = value.get("Alarms")
    if alarms is not None:
        _checked(alarms, "PromotionGuard.Alarms", rules.alarm_names_problem, shown=quote(alarms, 40))
    if all(threshold is None for threshold in thresholds.values()) and not alarms:
        raise InvalidProperties(
            "PromotionGuard needs Alarms or at least one of MaxLatencyRatio, MaxErrorRate, MaxErrorRateRatio"
        )
    statistic = _checked(
        value.get("LatencyStatistic", rules.DEFAULT_LATENCY_STATISTIC),
        "PromotionGuard.LatencyStatistic",
        rules.latency_statistic_problem,
    )
    invocations = _count(value.get("MinInvocations", rules.DEFAULT_MIN_INVOCATIONS), "PromotionGuard.MinInvocations")
    _checked(invocations, "PromotionGuard.MinInvocations", rules.min_invocations_problem)
    window = value.get("WindowSeconds")
    if window is not None:
        window = _count(window, "PromotionGuard.WindowSeconds")
        _checked(window, "PromotionGuard.WindowSeconds", rules.window_problem)
    on_failure = _checked(value.get("OnFailure", "Fail"), "PromotionGuard.OnFailure", rules.guard_failure_problem)
    on_inconclusive = _checked(
        value.get("OnInconclusive", on_failure), "PromotionGuard.OnInconclusive", rules.guard_failure_problem
    )
    confidence, period = _significance(value, thresholds["MaxLatencyRatio"])
    bake, roll_back_to = _bake(value, alarms)
    return Guard(
        latency_statistic=statistic,
        min_invocations=invocations,
        on_failure=on_failure,
        max_latency_ratio=thresholds["MaxLatencyRatio"],
        max_error_rate=thresholds["MaxErrorRate"],
        max_error_rate_ratio=thresholds["MaxErrorRateRatio"],
        window_seconds=window,
        alarms=tuple(alarms or ()),
        bake_seconds=bake,
        roll_back_to=roll_back_to,
        on_inconclusive=on_inconclusive,
        confidence=confidence,
        period_seconds=period,
    )


def _significance(value: Mapping[str, Any], max_latency_ratio: float | None) -> tuple[float | None, int | None]:
    """The significance test's confidence and period (None, None: the aggregate comparison)."""
    confidence = value.get("Confidence")
    period = value.get("PeriodSeconds")
    if confidence is None:
        if period is not None:
            raise InvalidProperties("PromotionGuard.PeriodSeconds needs Confidence")
        return None, None
    confidence = _checked(
        _number(confidence, "PromotionGuard.Confidence"), "PromotionGuard.Confidence", rules.confidence_problem
    )
    if max_latency_ratio is None:
        raise InvalidProperties("PromotionGuard.Confidence needs MaxLatencyRatio: it tests the latency comparison")
    if period is None:
        return confidence, rules.DEFAULT_PERIOD_SECONDS
    return confidence, _checked(
        _count(period, "PromotionGuard.PeriodSeconds"), "PromotionGuard.PeriodSeconds", rules.period_problem
    )


def _bake(value: Mapping[str, Any], alarms: object) -> tuple[int | None, str | None]:
    """The bake after a promotion and the endpoint configuration a failed bake rolls back to."""
    bake = value.get("BakeSeconds")
    if bake is not None:
        bake = _count(bake, "PromotionGuard.BakeSeconds")
        if not alarms:
            raise InvalidProperties("PromotionGuard.BakeSeconds needs Alarms to watch")
    roll_back_to = value.get("RollBackTo")
    if roll_back_to is not None:
        _checked(roll_back_to, "PromotionGuard.RollBackTo", rules.endpoint_config_name_problem)
        if bake is None:
            raise InvalidProperties("PromotionGuard.RollBackTo needs BakeSeconds: a rollback follows a failed bake")
    return bake, roll_back_to


def _fits(guard: Guard | None, completion_timeout: int) -> Guard | None:
    """A guard whose bake fits its stop's completion timeout, as synth checks it."""
    if guard is not None and guard.bake_seconds is not None:
        problem = rules.bake_problem(guard.bake_seconds, completion_timeout)
        if problem:
            raise InvalidProperties(f"PromotionGuard.BakeSeconds {problem}")
    return guard


def _stop_on(value: object) -> frozenset[str]:
    if not isinstance(value, list) or not value or any(event not in STOP_EVENTS for event in value):
        raise InvalidProperties(f"StopOn must list Update and/or Delete; got {rules.described(value)}")
    return frozenset(value)


def _completion_timeout(value: object) -> int:
    seconds = _count(value, "CompletionTimeoutSeconds")
    if seconds > rules.MAX_COMPLETION_TIMEOUT_SECONDS:
        raise InvalidProperties(
            f"CompletionTimeoutSeconds must be at most {rules.MAX_COMPLETION_TIMEOUT_SECONDS}; "
            f"got {rules.described(value)}"
        )
    return seconds


def _service_timeout(value: object) -> int:
    """CloudFormation's ServiceTimeout (its own property; 3600, its default, where not given)."""
    if value is None:
        return MAX_SERVICE_TIMEOUT_SECONDS
    seconds = _count(value, "ServiceTimeout")
    if not 1 <= seconds <= MAX_SERVICE_TIMEOUT_SECONDS:
        raise InvalidProperties(
            f"ServiceTimeout must be from 1 to {MAX_SERVICE_TIMEOUT_SECONDS} seconds; got {rules.described(value)}"
        )
    return seconds
