"""The DescribeInferenceExperiment answer every test double gives, in one place (valid for the service model)."""

from __future__ import annotations

from typing import Any

REGION = "us-east-1"
NAME = "shadow-test"
ARN = f"arn:aws:sagemaker:{REGION}:123456789012:inference-experiment/{NAME}"


def experiment(status: str, name: str = NAME, endpoint_status: str = "InService", **extra: Any) -> dict[str, Any]:
    """An experiment with variants production (model-a) and shadow (model-b) on endpoint shadow-test-endpoint."""

    def variant(model: str, variant_name: str) -> dict[str, Any]:
        return {
            "ModelName": model,
            "VariantName": variant_name,
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
            },
            "Status": "InService",
        }

    return {
        "Arn": ARN.replace(NAME, name),
        "Name": name,
        "Type": "ShadowMode",
        "Status": status,
        "EndpointMetadata": {"EndpointName": "shadow-test-endpoint", "EndpointStatus": endpoint_status},
        "ModelVariants": [variant("model-a", "production"), variant("model-b", "shadow")],
        **extra,
    }
