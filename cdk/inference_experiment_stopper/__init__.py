"""Stop a SageMaker inference experiment (shadow test) the way the stack declares, on update or delete."""

from inference_experiment_stopper._function import StopperFunction
from inference_experiment_stopper.guard import GuardFailure, PromotionGuard
from inference_experiment_stopper.props import DesiredState, ModelVariantAction, ModelVariantConfig
from inference_experiment_stopper.shadow_test import ShadowTest, ShadowTestDataCapture, ShadowTestEnd, ShadowTestVariant
from inference_experiment_stopper.stopper import InferenceExperimentStopper

__all__ = [
    "DesiredState",
    "GuardFailure",
    "InferenceExperimentStopper",
    "ModelVariantAction",
    "ModelVariantConfig",
    "PromotionGuard",
    "ShadowTest",
    "ShadowTestDataCapture",
    "ShadowTestEnd",
    "ShadowTestVariant",
    "StopperFunction",
]
