"""SageMaker's limits on a stop declaration, written once.

The function checks every property that arrives against these, and the construct loads this same file to
check its props at synth, so the function never sends SageMaker a value that synth would have rejected.
Each `*_problem` function says in words what is wrong with a value, or returns None when it is fine.
Pure Python: botocore is only handed in (as a service model) where the instance types are read.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

EXPERIMENT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")
MAX_EXPERIMENT_NAME = 120
VARIANT_NAME = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")
MAX_VARIANT_NAME = 63
ACTIONS = ("Promote", "Remove", "Retain")
DESIRED_STATES = ("Completed", "Cancelled")
MAX_ACTIONS = 2
MAX_DESIRED_VARIANTS = 2
MAX_REASON = 1024
MAX_INSTANCE_COUNT = 999_999_999
# CloudFormation waits at most an hour for a custom resource (ServiceTimeout 3600): 55 minutes and a margin.
MAX_COMPLETION_TIMEOUT_SECONDS = 55 * 60


def described(value: object, limit: int = 60) -> str:
    """A value in the user's words, as the event's JSON spells it: never a Python type name or literal.

    A string is quoted and a number shown as it is ('ml.m5.xlarge', 3); null is "nothing", true and false are
    spelled so, and a list or an object is named before it is shown in JSON. Cut short to `limit` characters.
    """
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        kind, text = "a list ", json.dumps(list(value), default=str)
    elif isinstance(value, dict):
        kind, text = "an object ", json.dumps(value, default=str)
    else:
        kind, text = "", repr(value)
    return kind + (text if len(text) <= limit else text[: limit - 3] + "...")


def _name_problem(value: object, pattern: re.Pattern[str], longest: int) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not 1 <= len(value) <= longest or not pattern.fullmatch(value):
        return (
            f"may hold only letters, digits and hyphens, 1-{longest} characters, "
            "starting and ending with a letter or digit"
        )
    return None


def experiment_name_problem(value: object) -> str | None:
    """What is wrong with an inference experiment name (InferenceExperimentName)."""
    return _name_problem(value, EXPERIMENT_NAME, MAX_EXPERIMENT_NAME)


def variant_name_problem(value: object) -> str | None:
    """What is wrong with a variant or model name (ModelVariantName, ModelName)."""
    return _name_problem(value, VARIANT_NAME, MAX_VARIANT_NAME)


def action_problem(value: object) -> str | None:
    """What is wrong with a ModelVariantAction."""
    return None if value in ACTIONS else "must be Promote, Remove or Retain"


def desired_state_problem(value: object) -> str | None:
    """What is wrong with a DesiredState."""
    return None if value in DESIRED_STATES else "must be Completed or Cancelled"


def reason_problem(value: object) -> str | None:
    """What is wrong with a Reason."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > MAX_REASON:
        return f"must be at most {MAX_REASON} characters, not {len(value)}"
    return None


def instance_count_problem(value: int) -> str | None:
    """What is wrong with an InstanceCount that is already a whole number."""
    return None if 0 <= value <= MAX_INSTANCE_COUNT else f"must be a whole number from 0 to {MAX_INSTANCE_COUNT:,}"


def serving_instance_count_problem(value: object) -> str | None:
    """What is wrong with the instance count of a variant that serves (a ShadowTest's, or a promoted one)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INSTANCE_COUNT:
        return None
    return f"must be a whole number from 1 to {MAX_INSTANCE_COUNT:,}"


def instance_type_problem(value: object, known: frozenset[str]) -> str | None:
    """What is wrong with an InstanceType, given the types SageMaker's service model lists."""
    if not isinstance(value, str):
        return "must be a string"
    if value in known:
        return None
    return "must be a SageMaker real-time inference instance type such as ml.m5.xlarge"


def promotes_problem(actions: dict[str, Any]) -> str | None:
    """What is wrong with the set of actions as a whole."""
    promoted = [variant for variant, action in actions.items() if action == "Promote"]
    if len(promoted) > 1:
        return f"may promote one variant only (an experiment has one shadow variant), not {', '.join(promoted)}"
    return None


@functools.cache
def instance_types(service_model: Any) -> frozenset[str]:
    """The InstanceType enum StopInferenceExperiment accepts, read from a botocore SageMaker service model.

    Found through the operation rather than by shape name: the shape was renamed in botocore 1.43.7.
    """
    request = service_model.operation_model("StopInferenceExperiment").input_shape
    config = request.members["DesiredModelVariants"].member
    instance_type = config.members["InfrastructureConfig"].members["RealTimeInferenceConfig"].members["InstanceType"]
    return frozenset(instance_type.enum)


# A promotion guard (PromotionGuard). The window's bounds are CloudWatch's: periods of a minute or more, data
# kept at one-minute resolution for 15 days.
LATENCY_STATISTIC = re.compile(r"Average|Minimum|Maximum|p(\d{1,2}(\.\d{1,10})?)")
MIN_WINDOW_SECONDS = 5 * 60
MAX_WINDOW_SECONDS = 15 * 24 * 3600
GUARD_FAILURES = ("Fail", "FallBack")
DEFAULT_LATENCY_STATISTIC = "Average"
DEFAULT_MIN_INVOCATIONS = 1000


def latency_statistic_problem(value: object) -> str | None:
    """What is wrong with a ModelLatency statistic: Average, Minimum, Maximum or a percentile pNN(.N)."""
    match = LATENCY_STATISTIC.fullmatch(value) if isinstance(value, str) else None
    if match is None or (match.group(1) is not None and not 0 < float(match.group(1)) < 100):
        return "must be Average, Minimum, Maximum or a percentile such as p99 or p99.9"
    return None


def ratio_problem(value: object) -> str | None:
    """What is wrong with a ratio to production: a number above 0."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0 and value != float("inf")
    return None if ok else "must be a number above 0"


def error_rate_problem(value: object) -> str | None:
    """What is wrong with an error rate: a number from 0 to 1."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
    return None if ok else "must be a number from 0 to 1"


def min_invocations_problem(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    return None if ok else "must be a whole number of at least 1"


def window_problem(seconds: float) -> str | None:
    if MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS and seconds == int(seconds):
        return None
    return "must be whole seconds from 5 minutes to 15 days"


def guard_failure_problem(value: object) -> str | None:
    return None if value in GUARD_FAILURES else "must be Fail or FallBack"


# A guard's alarms, bake, rollback and significance test.
MAX_ALARMS = 100  # DescribeAlarms takes at most 100 names
MAX_ALARM_NAME = 255
# SageMaker's EndpointName and EndpointConfigName share one pattern.
ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# Where SageMaker's invocation metrics live (dimensions EndpointName and VariantName).
NAMESPACE = "AWS/SageMaker"
# The custom resource's type, as the construct writes it and the function finds its twins by it.
RESOURCE_TYPE = "Custom::InferenceExperimentStop"
MIN_BAKE_SECONDS = 60
MIN_PERIODS = 10  # fewer periods with data on either side: the significance test is inconclusive
DEFAULT_PERIOD_SECONDS = 300


def alarm_names_problem(value: object) -> str | None:
    """What is wrong with a list of CloudWatch alarm names."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ALARMS:
        return f"must list 1 to {MAX_ALARMS} alarm names"
    for name in value:
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_ALARM_NAME or not name.isprintable():
            return f"must hold alarm names of 1-{MAX_ALARM_NAME} printable characters, not {described(name)}"[:120]
    return None


def endpoint_config_name_problem(value: object) -> str | None:
    """What is wrong with an endpoint configuration name (EndpointConfigName)."""
    return _name_problem(value, ENDPOINT_NAME, 63)


def confidence_problem(value: object) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0.5 <= value < 1
    return None if ok else "must be a number from 0.5 to below 1, such as 0.95"


def period_problem(seconds: float) -> str | None:
    if seconds >= 60 and seconds % 60 == 0:
        return None
    return "must be whole minutes, at least one"


def bake_problem(bake_seconds: float, completion_timeout_seconds: float) -> str | None:
    """What is wrong with a bake, given the completion timeout it must fit in with a promotion and a rollback."""
    if bake_seconds < MIN_BAKE_SECONDS or bake_seconds != int(bake_seconds):
        return "must be whole seconds, at least a minute"
    if bake_seconds > completion_timeout_seconds / 2:
        return (
            f"({bake_seconds:g} s) must be at most half of the completion timeout ({completion_timeout_seconds:g} s), "
            "so that the promotion, the bake and a rollback fit in it"
        )
    return None
