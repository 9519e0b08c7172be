"""A SageMaker client whose inference experiment runs on a fake clock, for waits too long to script call by call.

It is a real botocore client: its own parameter validation checks every request against the real service
model, and every answer is checked by botocore's validator against the operation's output shape. A
`before-call` hook answers instead of the network: the experiment is Running until stopped, Stopping for
`stop_takes` seconds, then Completed; after a Promote its endpoint is Updating for `endpoint_takes` more.
Once stopped, its StatusReason is the Reason the stop sent, and once Completed it has its CompletionTime.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Protocol

import boto3
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator
from described import experiment


class Clock(Protocol):
    def time(self) -> float: ...


class ExperimentOnAClock:
    """The simulated experiment and the client that reaches it (`.client`)."""

    def __init__(self, clock: Clock, stop_takes: float, endpoint_takes: float = 0.0, name: str = "shadow-test") -> None:
        self.clock = clock
        self.stop_takes = stop_takes
        self.endpoint_takes = endpoint_takes
        self.name = name
        self.stopped_at: float | None = None
        self.stops: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.client = boto3.client(
            "sagemaker", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        answer: Any = self._answer  # a before-call handler that answers short-circuits the HTTP request
        self.client.meta.events.register_first("before-call.sagemaker.*", answer)

    @property
    def completed_at(self) -> float:
        """When the experiment reaches Completed (infinity before the stop)."""
        return float("inf") if self.stopped_at is None else self.stopped_at + self.stop_takes

    @property
    def serving_at(self) -> float:
        """When the endpoint serves what was declared again (InService after the promotion)."""
        return self.completed_at + self.endpoint_takes

    def _answer(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls.append(model.name)
        if model.name == "StopInferenceExperiment":
            self.stops.append(params)
            if self.stopped_at is None:
                self.stopped_at = self.clock.time()
            response: dict[str, Any] = {"InferenceExperimentArn": self._arn()}
        elif model.name == "DescribeInferenceExperiment":
            response = self._describe()
        else:
            raise AssertionError(f"the experiment on a clock does not answer {model.name}")
        report = ParamValidator().validate(response, model.output_shape)
        assert not report.has_errors(), report.generate_report()
        headers: Any = {}
        return AWSResponse("https://sagemaker.us-east-1.amazonaws.com", 200, headers, None), response

    def _arn(self) -> str:
        return f"arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/{self.name}"

    def _describe(self) -> dict[str, Any]:
        now = self.clock.time()
        status = "Running"
        if self.stopped_at is not None:
            status = "Completed" if now >= self.completed_at else "Stopping"
        endpoint = "Updating" if self.completed_at <= now < self.serving_at else "InService"
        extra: dict[str, Any] = {}
        if self.stops:
            # SageMaker reports the first accepted stop's Reason as the StatusReason (the service model's words).
            extra["StatusReason"] = json.loads(self.stops[0]["body"]).get("Reason", "")
        if status == "Completed":
            extra["CompletionTime"] = datetime.datetime.fromtimestamp(self.completed_at, datetime.UTC)
        return experiment(status, self.name, endpoint_status=endpoint, **extra)
