"""The stopper's prop types: the closed sets in their AWS spellings, and a variant's infrastructure after the stop.

Plain values with no construct behind them, so that the construct and its synth-time checks both import them
from here and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ModelVariantAction(StrEnum):
    """What happens to a variant when the experiment stops."""

    PROMOTE = "Promote"
    """The shadow variant replaces the production variant."""
    REMOVE = "Remove"
    """The variant is deleted."""
    RETAIN = "Retain"
    """The variant stays as it is."""


class DesiredState(StrEnum):
    """The status the experiment ends in."""

    COMPLETED = "Completed"
    CANCELLED = "Cancelled"


@dataclass(frozen=True)
class ModelVariantConfig:
    """The infrastructure a variant keeps after the experiment stops (SageMaker's ModelVariantConfig).

    Args:
        model_name: the SageMaker model the variant serves.
        variant_name: the variant, as named in the experiment.
        instance_type: a real-time inference instance type, e.g. "ml.m5.xlarge".
        instance_count: how many instances (0 or more).
    """

    model_name: str
    variant_name: str
    instance_type: str
    instance_count: int

    def to_api(self) -> dict[str, Any]:
        """The variant in the API's (and the custom resource's) shape."""
        return {
            "ModelName": self.model_name,
            "VariantName": self.variant_name,
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                "RealTimeInferenceConfig": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count},
            },
        }
