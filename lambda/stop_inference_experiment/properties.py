"""The custom resource's properties (the wire format the construct writes), parsed and checked.

CloudFormation hands every property over as a string, numbers included, so counts and timeouts are
converted back here. The README's "Custom-resource properties" table is the contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

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

EXPERIMENT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")
VARIANT_NAME = re.compile(r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?")
MAX_VARIANT_NAME = 63
ACTIONS = ("Promote", "Remove", "Retain")
DESIRED_STATES = ("Completed", "Cancelled")
STOP_EVENTS = ("Update", "Delete")
MAX_REASON = 1024
MAX_COMPLETION_TIMEOUT_SECONDS = 840
COUNT = re.compile(r"\d{1,9}")


class StopFailed(Exception):
    """The event must be answered FAILED; the message is the reason CloudFormation shows."""


class InvalidProperties(StopFailed):
    """The declared properties cannot be carried out; the message names the property and the value."""


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


def quote(value: object, limit: int = 60) -> str:
    """A value as it appears in an error message, cut short so reasons stay readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(properties: Mapping[str, Any]) -> StopDeclaration:
    """Parse ResourceProperties.

    Raises:
        InvalidProperties: naming the first property that is missing or malformed, and its value.
    """
    if not isinstance(properties, Mapping):
        raise InvalidProperties(f"ResourceProperties must be an object; got {quote(properties)}")
    name = properties.get("Name")
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise InvalidProperties(
            f"Name must be an inference experiment name (1-120 letters, digits, hyphens); got {quote(name)}"
        )
    actions = _actions(properties.get("ModelVariantActions"))
    variants = _desired_model_variants(properties.get("DesiredModelVariants"), actions)
    desired_state = properties.get("DesiredState")
    if desired_state is not None and desired_state not in DESIRED_STATES:
        raise InvalidProperties(f"DesiredState must be Completed or Cancelled; got {quote(desired_state)}")
    reason = properties.get("Reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise InvalidProperties(f"Reason must be a string of at most {MAX_REASON} characters; got {quote(reason)}")
    return StopDeclaration(
        name=name,
        model_variant_actions=actions,
        desired_model_variants=variants,
        desired_state=desired_state,
        reason=reason,
        stop_on=_stop_on(properties.get("StopOn")),
        completion_timeout_seconds=_completion_timeout(properties.get("CompletionTimeoutSeconds")),
    )


def _variant_name(value: object, prop: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_VARIANT_NAME or not VARIANT_NAME.fullmatch(value):
        raise InvalidProperties(f"{prop} must be a variant name (1-63 letters, digits, hyphens); got {quote(value)}")
    return value


def _actions(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not 1 <= len(value) <= 2:
        raise InvalidProperties(f"ModelVariantActions must map 1 or 2 variant names to actions; got {quote(value)}")
    actions: dict[str, str] = {}
    for variant, action in value.items():
        _variant_name(variant, "ModelVariantActions")
        if action not in ACTIONS:
            raise InvalidProperties(
                f"ModelVariantActions[{variant!r}] must be Promote, Remove or Retain; got {quote(action)}"
            )
        actions[variant] = action
    if list(actions.values()).count("Promote") > 1:
        raise InvalidProperties("ModelVariantActions may promote one variant only (an experiment has one shadow)")
    return actions


def _count(value: object, prop: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and COUNT.fullmatch(value))):
        raise InvalidProperties(f"{prop} must be a whole number of at least 0; got {quote(value)}")
    count = int(value)
    if count < 0:
        raise InvalidProperties(f"{prop} must be a whole number of at least 0; got {quote(value)}")
    return count


def _desired_model_variants(value: object, actions: Mapping[str, str]) -> tuple[ModelVariantConfigTypeDef, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= 2:
        raise InvalidProperties(f"DesiredModelVariants must be a list of 1 or 2 variants; got {quote(value)}")
    configs: list[ModelVariantConfigTypeDef] = []
    for index, item in enumerate(value):
        prop = f"DesiredModelVariants[{index}]"
        try:
            model_name = item["ModelName"]
            variant_name = item["VariantName"]
            infrastructure = item["InfrastructureConfig"]
            realtime = infrastructure["RealTimeInferenceConfig"]
            instance_type = realtime["InstanceType"]
            instance_count = realtime["InstanceCount"]
        except (KeyError, TypeError):
            raise InvalidProperties(
                f"{prop} must have ModelName, VariantName and InfrastructureConfig.RealTimeInferenceConfig."
                f"InstanceType/InstanceCount; got {quote(item)}"
            ) from None
        _variant_name(model_name, f"{prop}.ModelName")
        _variant_name(variant_name, f"{prop}.VariantName")
        if actions.get(variant_name) == "Remove":
            raise InvalidProperties(f"{prop} gives infrastructure to {variant_name!r}, which is declared Remove")
        if infrastructure.get("InfrastructureType") != "RealTimeInference":
            raise InvalidProperties(
                f"{prop}.InfrastructureConfig.InfrastructureType must be RealTimeInference; "
                f"got {quote(infrastructure.get('InfrastructureType'))}"
            )
        if not isinstance(instance_type, str) or not instance_type.startswith("ml."):
            raise InvalidProperties(f"{prop} InstanceType must be an ml.* instance type; got {quote(instance_type)}")
        configs.append(
            {
                "ModelName": model_name,
                "VariantName": variant_name,
                "InfrastructureConfig": {
                    "InfrastructureType": "RealTimeInference",
                    "RealTimeInferenceConfig": {
                        "InstanceType": cast("ProductionVariantInstanceTypeType", instance_type),
                        "InstanceCount": _count(instance_count, f"{prop} InstanceCount"),
                    },
                },
            }
        )
    return tuple(configs)


def _stop_on(value: object) -> frozenset[str]:
    if not isinstance(value, list) or not value or any(event not in STOP_EVENTS for event in value):
        raise InvalidProperties(f"StopOn must list Update and/or Delete; got {quote(value)}")
    return frozenset(value)


def _completion_timeout(value: object) -> int:
    seconds = _count(value, "CompletionTimeoutSeconds")
    if seconds > MAX_COMPLETION_TIMEOUT_SECONDS:
        raise InvalidProperties(
            f"CompletionTimeoutSeconds must be at most {MAX_COMPLETION_TIMEOUT_SECONDS}; got {quote(value)}"
        )
    return seconds
