"""A simulated promotion for the time-to-answer benchmark: the handler's real lifecycle, links and all, on a fake clock.

SageMaker is tests/experiment_on_a_clock.py (a real botocore client, requests validated against the service
model). A hand-on is recorded by a stand-in Lambda client and delivered, as Lambda would, to the next run.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lifecycle
import permission
from experiment_on_a_clock import ExperimentOnAClock

EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "update.json"
RUN_SECONDS = 900 - 15  # Lambda's longest run, less the answer's reserve (index.ANSWER_RESERVE_SECONDS)
DELIVERY_SECONDS = 1.0  # Lambda's async queue between a hand-on and the next run
ENDPOINT_UPDATE_SECONDS = 120.0  # of a promotion's time, the endpoint update after the experiment is Completed
JITTER_SEED = 0  # the poll's jitter is seeded, so that the figures are the same on every run


class Clock:
    """Time that moves only when the lifecycle sleeps."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SimulatedCloudFormation:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        return {"Stacks": [{"StackName": "ShadowTestStack", "StackStatus": "UPDATE_IN_PROGRESS"}]}


class SimulatedCloudWatch:
    """Answers GetMetricData with a shadow that beats production, and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def get_metric_data(self, MetricDataQueries: list[dict[str, Any]], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.calls += 1
        values = {"Latency": 28_000.0, "Invocations": 15_000.0, "Errors5xx": 3.0, "ModelErrors": 0.0}
        results = []
        for query in MetricDataQueries:
            role = "shadow" if query["Id"].startswith("shadow") else "production"
            name = query["Id"].removeprefix(role)
            value = values[name] * (1.1 if role == "production" else 1.0)
            results.append({"Id": query["Id"], "Values": [value], "StatusCode": "Complete"})
        return {"MetricDataResults": results}


GUARD = {"MaxLatencyRatio": "1.1", "LatencyStatistic": "p99", "MaxErrorRate": "0.001", "WindowSeconds": "86400"}


class RecordingLambda:
    """Takes the hand-on Invoke as Lambda's async queue would."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        self.payloads.append(json.loads(Payload))
        return {"StatusCode": 202}


def seeded(seed: int) -> Callable[[], float]:
    """Poll jitter in [0, 1), the same on every run for a seed."""
    return random.Random(seed).random  # noqa: S311 (jitter, not a secret)


def sent_at(event: dict[str, Any]) -> float:
    """When CloudFormation sent the event (its ResponseURL's signing time): the fake clock starts there, so that a
    later link reads the event's true age from the URL, as it does in Lambda.
    """
    sent = permission.signed_at(event["ResponseURL"])
    if sent is None:
        raise RuntimeError("the event's ResponseURL has no signing time")
    return sent


def service_timeout(completion_timeout: int) -> int:
    """The ServiceTimeout the construct writes: the completion timeout plus two minutes, at most an hour."""
    return min(completion_timeout + 120, 3600)


@dataclass(frozen=True)
class Answer:
    delay: float  # seconds from the endpoint serving the promoted variant to the answer
    links: int
    sagemaker_calls: int
    status: str
    cloudwatch_calls: int = 0
    decision: str = ""


def answer_delay(promotion_takes: float, completion_timeout: int = 3300, *, guarded: bool = False) -> Answer:
    """An Update that promotes, where the endpoint serves the shadow `promotion_takes` seconds after the stop.

    With `guarded`, the declaration has a promotion guard, which the simulated metrics pass.
    """
    event: dict[str, Any] = json.loads(EVENT.read_text())
    clock = Clock(sent_at(event))
    experiment = ExperimentOnAClock(
        clock, stop_takes=promotion_takes - ENDPOINT_UPDATE_SECONDS, endpoint_takes=ENDPOINT_UPDATE_SECONDS
    )
    invoker, cloudwatch = RecordingLambda(), SimulatedCloudWatch()
    jitter = seeded(JITTER_SEED)
    services = lifecycle.Services(experiment.client, SimulatedCloudFormation(), clock, invoker, cloudwatch, jitter)  # type: ignore[arg-type]
    event["ResourceProperties"]["CompletionTimeoutSeconds"] = str(completion_timeout)
    event["ResourceProperties"]["ServiceTimeout"] = str(service_timeout(completion_timeout))
    if guarded:
        event["ResourceProperties"]["PromotionGuard"] = GUARD
    event["RequestId"] = str(uuid.uuid4())  # each CloudFormation event has its own
    links = 0
    while True:
        links += 1
        budget = lifecycle.Budget(time_left=RUN_SECONDS, function_arn="arn:aws:lambda:us-east-1:1:function:f")
        outcome = lifecycle.handle(event, services, budget)
        if not outcome.silent:
            break
        if len(invoker.payloads) != links:
            raise RuntimeError(f"run {links} neither answered nor handed the wait on")
        event = invoker.payloads[-1]
        clock.sleep(DELIVERY_SECONDS)
    if outcome.status != "Completed" or outcome.endpoint_status != "InService":
        raise RuntimeError(f"the simulated promotion did not complete: {outcome}")
    return Answer(
        clock.time() - experiment.serving_at,
        links,
        len(experiment.calls),
        outcome.status,
        cloudwatch.calls,
        outcome.decision,
    )
