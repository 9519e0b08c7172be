"""Synth-time checks of the construct's props: one ValueError per problem, naming the prop and the value.

The limits are SageMaker's (botocore's service model); values that are unresolved Tokens are skipped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import botocore.session
from aws_cdk import Token

if TYPE_CHECKING:
    from inference_experiment_stopper.stopper import ModelVariantConfig

EXPERIMENT_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}"
VARIANT_NAME = r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
ACTIONS = ("Promote", "Remove", "Retain")
DESIRED_STATES = ("Completed", "Cancelled")
MAX_REASON = 1024
MAX_COMPLETION_TIMEOUT_SECONDS = 14 * 60


def _unresolved(value: object) -> bool:
    return isinstance(value, str | int | float) and Token.is_unresolved(value)


def check_experiment_name(name: object, prop: str) -> None:
    if _unresolved(name):
        return
    if not isinstance(name, str) or len(name) > 120 or not re.fullmatch(EXPERIMENT_NAME, name):
        raise ValueError(f"{prop} must match {EXPERIMENT_NAME} (1-120 characters); got {name!r}")


def check_variant_name(name: object, prop: str) -> None:
    if _unresolved(name):
        return
    if not isinstance(name, str) or len(name) > 63 or not re.fullmatch(VARIANT_NAME, name):
        raise ValueError(f"{prop} must match {VARIANT_NAME} (1-63 characters); got {name!r}")


def check_actions(actions: Mapping[str, str]) -> None:
    if not isinstance(actions, Mapping) or not 1 <= len(actions) <= 2:
        raise ValueError(f"model_variant_actions must map 1 or 2 variant names to actions; got {actions!r}")
    for variant, action in actions.items():
        check_variant_name(variant, "model_variant_actions")
        if _unresolved(action):
            continue
        if action not in ACTIONS:
            raise ValueError(
                f"model_variant_actions[{variant!r}] must be a ModelVariantAction (Promote, Remove or Retain); "
                f"got {action!r}"
            )
    promoted = [variant for variant, action in actions.items() if action == "Promote"]
    if len(promoted) > 1:
        raise ValueError(
            f"model_variant_actions may promote one variant only (an experiment has one shadow); got {promoted!r}"
        )


def check_desired_model_variants(variants: Sequence[ModelVariantConfig], actions: Mapping[str, str]) -> None:
    if len(variants) > 2:
        raise ValueError(f"desired_model_variants may list at most 2 variants; got {len(variants)}")
    for index, variant in enumerate(variants):
        prop = f"desired_model_variants[{index}]"
        check_variant_name(variant.model_name, f"{prop}.model_name")
        check_variant_name(variant.variant_name, f"{prop}.variant_name")
        if actions.get(variant.variant_name) == "Remove":
            raise ValueError(
                f"{prop}.variant_name {variant.variant_name!r} is declared Remove in model_variant_actions, "
                "so it cannot have desired infrastructure"
            )
        if not _unresolved(variant.instance_type) and variant.instance_type not in instance_types():
            raise ValueError(
                f"{prop}.instance_type must be a SageMaker real-time instance type (e.g. 'ml.m5.xlarge'); "
                f"got {variant.instance_type!r}"
            )
        count = variant.instance_count
        if not _unresolved(count) and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError(f"{prop}.instance_count must be an int of at least 0; got {count!r}")


def check_desired_state(state: object) -> None:
    if state is not None and not _unresolved(state) and state not in DESIRED_STATES:
        raise ValueError(f"desired_state must be a DesiredState (Completed or Cancelled); got {state!r}")


def check_reason(reason: object) -> None:
    if reason is None or _unresolved(reason):
        return
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        shown = reason if not isinstance(reason, str) else f"{len(reason)} characters: {reason[:40]!r}..."
        raise ValueError(f"reason must be a string of at most {MAX_REASON} characters; got {shown}")


def check_completion_timeout(seconds: float) -> None:
    if not 0 <= seconds <= MAX_COMPLETION_TIMEOUT_SECONDS:
        raise ValueError(
            f"completion_timeout must be between 0 seconds and 14 minutes (the Lambda limit less a margin); "
            f"got {seconds:g} seconds"
        )


@functools.cache
def instance_types() -> frozenset[str]:
    """The InstanceType enum StopInferenceExperiment accepts, read from the installed botocore model.

    Found through the operation rather than by shape name: the shape was renamed in botocore 1.43.7.
    """
    model = botocore.session.get_session().get_service_model("sagemaker")
    request: Any = model.operation_model("StopInferenceExperiment").input_shape
    config = request.members["DesiredModelVariants"].member
    instance_type = config.members["InfrastructureConfig"].members["RealTimeInferenceConfig"].members["InstanceType"]
    return frozenset(instance_type.enum)
