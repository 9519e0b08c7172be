"""A simulated experiment for the time-to-answer benchmark: the handler's real lifecycle, a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import botocore.session
import lifecycle

SAGEMAKER_MODEL = botocore.session.get_session().get_service_model("sagemaker")

EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "update.json"


class Clock:
    """Time that moves only when the lifecycle sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SimulatedSageMaker:
    """An experiment that is Running until stopped, then Stopping for `stop_takes` seconds, then Completed."""

    def __init__(self, clock: Clock, stop_takes: float) -> None:
        self.clock = clock
        self.stop_takes = stop_takes
        self.stopped_at: float | None = None
        self.calls = 0
        # The real service model: the handler checks instance types against it, as it does in Lambda.
        self.meta = SimpleNamespace(region_name="us-east-1", service_model=SAGEMAKER_MODEL)

    def describe_inference_experiment(self, Name: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        self.calls += 1
        if self.stopped_at is None:
            status = "Running"
        else:
            status = "Completed" if self.clock.now >= self.stopped_at + self.stop_takes else "Stopping"
        variants = [{"VariantName": variant} for variant in ("production", "shadow")]
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/{Name}"
        return {"Name": Name, "Arn": arn, "Status": status, "ModelVariants": variants}

    def stop_inference_experiment(self, **request: Any) -> dict[str, str]:
        self.calls += 1
        self.stopped_at = self.clock.now
        return {
            "InferenceExperimentArn": f"arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/{request['Name']}"
        }


class SimulatedCloudFormation:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        return {"Stacks": [{"StackName": "ShadowTestStack", "StackStatus": "UPDATE_IN_PROGRESS"}]}


def answer_delay(stop_takes: float) -> tuple[float, int]:
    """Seconds from Completed to the answer, and SageMaker calls, for an Update that promotes."""
    clock = Clock()
    sagemaker = SimulatedSageMaker(clock, stop_takes)
    event = json.loads(EVENT.read_text())
    event["ResourceProperties"]["CompletionTimeoutSeconds"] = "840"
    services = lifecycle.Services(sagemaker, SimulatedCloudFormation(), clock)  # type: ignore[arg-type]
    outcome = lifecycle.handle(event, services, time_left=900 - 15)
    if outcome.status != "Completed" or sagemaker.stopped_at is None:
        raise RuntimeError(f"the simulated stop did not complete: {outcome}")
    return clock.now - (sagemaker.stopped_at + stop_takes), sagemaker.calls
