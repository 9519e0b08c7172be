"""Synth-time checks of the construct's props: one ValueError per problem, naming the prop and the value.

The limits come from the handler's own `rules.py` (loaded from the asset folder), so the function checks
what it receives against exactly what synth checked. Values that are unresolved Tokens are skipped.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

import botocore.session
from aws_cdk import Duration, Token
from aws_cdk import aws_sagemaker as sagemaker

from inference_experiment_stopper._asset import load_handler_module
from inference_experiment_stopper.guard import PromotionGuard
from inference_experiment_stopper.props import ModelVariantConfig

if TYPE_CHECKING:
    import rules
else:
    rules = load_handler_module("rules")

DEFAULT_COMPLETION_TIMEOUT_SECONDS = 30 * 60  # the CDK Provider framework's default total timeout


def unresolved(value: object) -> bool:
    """A Token (a string, number or jsii object such as an IResolvable) whose value is known only at deploy."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str | int | float) or hasattr(value, "__jsii_ref__"):
        return bool(Token.is_unresolved(value))
    return False


def plain(value: object) -> object:
    """An enum member or its AWS spelling, as the plain value the API takes."""
    return value.value if isinstance(value, Enum) else value


def check_experiment_name(name: object, prop: str) -> None:
    problem = None if unresolved(name) else rules.experiment_name_problem(name)
    if problem:
        raise ValueError(f"{prop} {name!r} {problem}")


def check_name(kind: str, name: object, prop: str) -> None:
    """A variant or model name (kind says which, for the message)."""
    problem = None if unresolved(name) else rules.variant_name_problem(name)
    if problem:
        raise ValueError(f"{kind} {name!r} in {prop} {problem}")


def model_variant_actions(value: object) -> dict[str, str]:
    """The actions as plain strings, checked.

    Raises:
        ValueError: for anything but a mapping of 1 or 2 variant names to actions, with at most one Promote.
    """
    if not isinstance(value, Mapping):
        raise ValueError(
            "model_variant_actions must be a mapping of variant name to ModelVariantAction, "
            f"e.g. {{'shadow': ModelVariantAction.PROMOTE}}; got {value!r}"
        )
    if not 1 <= len(value) <= rules.MAX_ACTIONS:
        raise ValueError(f"model_variant_actions must map 1 or 2 variant names to actions; got {value!r}")
    actions: dict[str, Any] = {}
    for variant, action in value.items():
        check_name("variant name", variant, "model_variant_actions")
        actions[variant] = plain(action)
        problem = None if unresolved(actions[variant]) else rules.action_problem(actions[variant])
        if problem:
            raise ValueError(f"model_variant_actions[{variant!r}] {problem} (a ModelVariantAction); got {action!r}")
    problem = rules.promotes_problem(actions)
    if problem:
        raise ValueError(f"model_variant_actions {problem}")
    return actions


def desired_model_variants(value: object, actions: Mapping[str, str]) -> list[ModelVariantConfig]:
    """The desired variants, checked (None is none).

    Raises:
        ValueError: for anything but a sequence of at most 2 ModelVariantConfig that SageMaker would accept.
    """
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping | ModelVariantConfig) or not isinstance(value, Sequence):
        raise ValueError(f"desired_model_variants must be a list of ModelVariantConfig; got {value!r}")
    if len(value) > rules.MAX_DESIRED_VARIANTS:
        raise ValueError(f"desired_model_variants may list at most 2 variants; got {len(value)}")
    for index, variant in enumerate(value):
        prop = f"desired_model_variants[{index}]"
        if not isinstance(variant, ModelVariantConfig):
            raise ValueError(f"{prop} must be a ModelVariantConfig; got {variant!r}")
        check_name("model name", variant.model_name, f"{prop}.model_name")
        check_name("variant name", variant.variant_name, f"{prop}.variant_name")
        if actions.get(variant.variant_name) == "Remove":
            raise ValueError(
                f"{prop}.variant_name {variant.variant_name!r} is declared Remove in model_variant_actions, "
                "so it cannot have desired infrastructure"
            )
        if not unresolved(variant.instance_type):
            problem = rules.instance_type_problem(variant.instance_type, instance_types())
            if problem:
                raise ValueError(f"{prop}.instance_type {problem}; got {variant.instance_type!r}")
        count = variant.instance_count
        if unresolved(count):
            continue
        problem = (
            "must be a whole number"
            if isinstance(count, bool) or not isinstance(count, int)
            else rules.instance_count_problem(count)
        )
        if problem:
            raise ValueError(f"{prop}.instance_count {problem}; got {count!r}")
    return list(value)


def check_desired_state(state: object) -> None:
    problem = None if state is None or unresolved(state) else rules.desired_state_problem(state)
    if problem:
        raise ValueError(f"desired_state {problem} (a DesiredState); got {state!r}")


def check_reason(reason: object) -> None:
    problem = None if reason is None or unresolved(reason) else rules.reason_problem(reason)
    if problem:
        shown = f"{reason[:40]!r}..." if isinstance(reason, str) else repr(reason)
        raise ValueError(f"reason {problem}; got {shown}")


def completion_timeout_seconds(value: object) -> int:
    """The completion timeout in whole seconds (None is the default of 30 minutes).

    Raises:
        ValueError: for anything but a Duration of whole seconds from 0 to 55 minutes.
    """
    if value is None:
        return DEFAULT_COMPLETION_TIMEOUT_SECONDS
    if not isinstance(value, Duration):
        raise ValueError(f"completion_timeout must be a Duration, e.g. Duration.minutes(10); got {value!r}")
    millis = value.to_milliseconds(integral=False)
    if millis % 1000:
        raise ValueError(f"completion_timeout must be a whole number of seconds; got {millis / 1000:g} seconds")
    seconds = int(millis // 1000)
    if not 0 <= seconds <= rules.MAX_COMPLETION_TIMEOUT_SECONDS:
        raise ValueError(
            "completion_timeout must be between 0 seconds and 55 minutes (CloudFormation waits an hour at most for a "
            f"custom resource); got {seconds} seconds"
        )
    return seconds


def check_against_experiment(
    experiment: sagemaker.CfnInferenceExperiment, actions: Mapping[str, str], variants: Sequence[ModelVariantConfig]
) -> None:
    """Variants the stopper names must be the experiment's, and only its shadow may be promoted (tokens skipped).

    Raises:
        ValueError: listing the experiment's variants, or naming its shadow variant.
    """
    known = _variant_names(experiment.model_variants)
    if known is not None:
        named = [("model_variant_actions", name) for name in actions]
        named += [(f"desired_model_variants[{i}].variant_name", v.variant_name) for i, v in enumerate(variants)]
        for prop, name in named:
            if not unresolved(name) and name not in known:
                raise ValueError(
                    f"{prop} names variant {name!r}, which is not one of experiment {experiment.node.path}'s "
                    f"variants: {', '.join(known) or 'none'}"
                )
    shadows = _shadow_names(experiment.shadow_mode_config)
    if shadows is None:
        return
    for name, action in actions.items():
        if action == "Promote" and not unresolved(name) and name not in shadows:
            raise ValueError(
                f"model_variant_actions promotes {name!r}, which is not the shadow variant of experiment "
                f"{experiment.node.path} (its shadow is {', '.join(shadows) or 'not given'}); only a shadow "
                "can replace production"
            )


def _variant_names(model_variants: object) -> list[str] | None:
    if unresolved(model_variants) or not isinstance(model_variants, Sequence):
        return None
    names = [getattr(variant, "variant_name", None) for variant in model_variants]
    if any(name is None or unresolved(name) for name in names):
        return None
    return [str(name) for name in names]


def _shadow_names(config: object) -> list[str] | None:
    shadows = getattr(config, "shadow_model_variants", None)
    if config is None or unresolved(config) or unresolved(shadows) or not isinstance(shadows, Sequence):
        return None
    names = [getattr(shadow, "shadow_model_variant_name", None) for shadow in shadows]
    if any(name is None or unresolved(name) for name in names):
        return None
    return [str(name) for name in names]


@functools.cache
def instance_types() -> frozenset[str]:
    """The instance types in the SageMaker model of the botocore installed here."""
    result: frozenset[str] = rules.instance_types(botocore.session.get_session().get_service_model("sagemaker"))
    return result


def promotion_guard_seconds(  # noqa: PLR0912 (one check per prop)
    guard: object, actions: Mapping[str, str], completion_seconds: int, *, experiment_given: bool
) -> dict[str, int | None]:
    """Check a promotion guard; its durations in whole seconds: window (None: from the experiment's start),
    bake and period (None where not given).

    Raises:
        ValueError: naming the guard's prop and the bad value.
    """
    if not isinstance(guard, PromotionGuard):
        raise ValueError(f"promotion_guard must be a PromotionGuard; got {guard!r}")
    if "Promote" not in actions.values():
        raise ValueError(
            "promotion_guard needs a Promote in model_variant_actions, as it decides a promotion; "
            f"got {dict(actions)!r}"
        )
    thresholds = {
        "max_latency_ratio": (guard.max_latency_ratio, rules.ratio_problem),
        "max_error_rate": (guard.max_error_rate, rules.error_rate_problem),
        "max_error_rate_ratio": (guard.max_error_rate_ratio, rules.ratio_problem),
    }
    _check_alarms(guard.alarms)
    if all(value is None for value, _ in thresholds.values()) and not guard.alarms:
        raise ValueError(
            "promotion_guard needs alarms or at least one of max_latency_ratio, max_error_rate, max_error_rate_ratio"
        )
    checks: list[tuple[str, object, Callable[[Any], str | None]]] = [
        (name, value, problem_of) for name, (value, problem_of) in thresholds.items() if value is not None
    ]
    checks += [
        ("latency_statistic", guard.latency_statistic, rules.latency_statistic_problem),
        ("min_invocations", guard.min_invocations, rules.min_invocations_problem),
        ("on_failure", plain(guard.on_failure), rules.guard_failure_problem),
    ]
    if guard.on_inconclusive is not None:
        checks.append(("on_inconclusive", plain(guard.on_inconclusive), rules.guard_failure_problem))
    if guard.confidence is not None:
        checks.append(("confidence", guard.confidence, rules.confidence_problem))
    for name, value, problem_of in checks:
        problem = None if unresolved(value) else problem_of(value)
        if problem:
            raise ValueError(f"promotion_guard.{name} {problem}; got {value!r}")
    if guard.confidence is not None and guard.max_latency_ratio is None:
        raise ValueError("promotion_guard.confidence needs max_latency_ratio: it tests the latency comparison")
    if guard.period is not None and guard.confidence is None:
        raise ValueError("promotion_guard.period needs confidence: it is the period of the values the test compares")
    if guard.bake is not None and not guard.alarms:
        raise ValueError("promotion_guard.bake needs alarms: the bake watches them")
    if guard.roll_back_to is not None:
        if guard.bake is None:
            raise ValueError("promotion_guard.roll_back_to needs bake: a rollback follows a bake an alarm failed")
        if not experiment_given:
            raise ValueError(
                "promotion_guard.roll_back_to needs the stopper's experiment= (not experiment_name=), so that the "
                "function's role can be allowed to update that experiment's endpoint only"
            )
        _check_roll_back_to(guard.roll_back_to)
    seconds = {
        "window": _seconds(guard.window, "window", "Duration.days(7)", rules.window_problem),
        "bake": _seconds(guard.bake, "bake", "Duration.minutes(10)", None),
        "period": _seconds(guard.period, "period", "Duration.minutes(5)", rules.period_problem),
    }
    bake = seconds["bake"]
    if bake is not None:
        problem = rules.bake_problem(bake, completion_seconds)
        if problem:
            raise ValueError(f"promotion_guard.bake {problem} (completion_timeout)")
    return seconds


def _seconds(value: object, prop: str, example: str, problem_of: Callable[[float], str | None] | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, Duration):
        raise ValueError(f"promotion_guard.{prop} must be a Duration, e.g. {example}; got {value!r}")
    seconds = value.to_milliseconds(integral=False) / 1000
    problem = problem_of(seconds) if problem_of else (None if seconds == int(seconds) else "must be whole seconds")
    if problem:
        raise ValueError(f"promotion_guard.{prop} {problem}; got {seconds:g} seconds")
    return int(seconds)


def _check_alarms(alarms: object) -> None:
    if alarms is None:
        return
    if isinstance(alarms, str | bytes) or not isinstance(alarms, Sequence) or not alarms:
        raise ValueError(f"promotion_guard.alarms must be a list of CloudWatch alarms (IAlarm); got {alarms!r}")
    if len(alarms) > rules.MAX_ALARMS:
        raise ValueError(f"promotion_guard.alarms may list at most {rules.MAX_ALARMS} alarms; got {len(alarms)}")
    for index, alarm in enumerate(alarms):
        if not (hasattr(alarm, "alarm_name") and hasattr(alarm, "alarm_arn")):
            raise ValueError(f"promotion_guard.alarms[{index}] must be a CloudWatch alarm (IAlarm); got {alarm!r}")
        name = alarm.alarm_name
        problem = None if unresolved(name) else rules.alarm_names_problem([name])
        if problem:
            shown = f"{name[:40]!r}..." if isinstance(name, str) and len(name) > 40 else repr(name)
            raise ValueError(
                f"promotion_guard.alarms[{index}] must be named with 1-{rules.MAX_ALARM_NAME} printable characters, "
                f"as CloudWatch names alarms; got {shown}"
            )


def _check_roll_back_to(config: object) -> None:
    if isinstance(config, sagemaker.CfnEndpointConfig):
        return
    problem = None if unresolved(config) else rules.endpoint_config_name_problem(config)
    if problem:
        raise ValueError(
            f"promotion_guard.roll_back_to must be a CfnEndpointConfig or an endpoint configuration name, which "
            f"{problem}; got {config!r}"
        )
