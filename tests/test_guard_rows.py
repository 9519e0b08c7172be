"""A promotion guard's evidence, through index.handler: what counts as evidence, and what is announced.

Rows of issue 20. SageMaker, CloudWatch and EventBridge requests are checked by botocore (Stubber with
`expected_params`); CloudFormation answers that the stack is updating however often it is read; the answer is
really PUT to a local server, and time is a fake clock.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import index
import lifecycle
import pytest
from botocore.stub import ANY, Stubber
from conftest import ARN, CLOCK_START, NAME, REGION, ClockContext, FakeClock, ResponseServer, experiment, load_event

HOUR, DAY = 3600, 86400
Call = tuple[str, dict[str, Any], dict[str, Any]]  # (method, expected params, answer)
STOP = {
    "Name": NAME,
    "ModelVariantActions": {"shadow": "Promote", "production": "Remove"},
    "DesiredModelVariants": [
        {
            "ModelName": "model-b",
            "VariantName": "shadow",
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2},
            },
        }
    ],
    "DesiredState": "Completed",
    "Reason": "shadow beat production on p99",
}
THRESHOLDS = {
    "MaxLatencyRatio": "1.1",
    "LatencyStatistic": "p99",
    "MaxErrorRate": "0.001",
    "MinInvocations": "1000",
    "OnFailure": "Fail",
}
GOOD = {
    "shadowLatency": [28_000.0],
    "shadowInvocations": [15_000.0],
    "shadowModelErrors": [3.0],
    "productionLatency": [30_100.0],
    "productionInvocations": [15_200.0],
    "productionModelErrors": [5.0],
}


def client(service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


class UpdatingStack:
    """CloudFormation for the event's stack: UPDATE_IN_PROGRESS, however often it is read."""

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        created = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
        stack = {"StackName": "ShadowTestStack", "StackId": StackName, "StackStatus": "UPDATE_IN_PROGRESS"}
        return {"Stacks": [{**stack, "CreationTime": created}]}


@dataclass
class Row:
    """One Update through index.handler: what SageMaker and CloudWatch answer, in order, and what is put."""

    guard: dict[str, Any]
    sagemaker: list[Call]
    cloudwatch: list[Call] | Any = field(default_factory=list)  # or a client of its own
    puts: int = 0  # decisions put on the default event bus (each one's Detail is recorded)


@dataclass
class Ran:
    answer: dict[str, Any]
    details: list[str]  # each PutEvents entry's Detail, as sent
    log_lines: list[str]  # each decision's log line, as logged
    pending: list[str]  # the stubbed answers no request asked for


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> Callable[[Row], Ran]:
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)
    caplog.set_level(logging.INFO)

    def run_row(row: Row) -> Ran:
        sagemaker, events = client("sagemaker"), client("events")
        stubbers = [Stubber(sagemaker), Stubber(events)]
        for method, params, answer in row.sagemaker:
            stubbers[0].add_response(method, answer, params)
        details: list[str] = []
        for _ in range(row.puts):
            entry = {"Source": "inference-experiment-stopper", "DetailType": "Inference Experiment Stop Decision"}
            stubbers[1].add_response(
                "put_events",
                {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]},
                {"Entries": [{**entry, "Detail": ANY}]},
            )
        # The Detail as the client was asked to send it (the Stubber answers after botocore validated it).
        events.meta.events.register(
            "before-call.events.PutEvents",
            lambda params, **_: details.extend(entry["Detail"] for entry in params["Entries"]),
            unique_id="record-detail",
        )
        if isinstance(row.cloudwatch, list):
            cloudwatch = client("cloudwatch")
            stubbers.append(Stubber(cloudwatch))
            for method, params, answer in row.cloudwatch:
                stubbers[-1].add_response(method, answer, params)
        else:
            cloudwatch = row.cloudwatch
        clock = FakeClock()
        services = lifecycle.Services(
            sagemaker,
            UpdatingStack(),  # type: ignore[arg-type]
            clock,
            client("lambda"),
            cloudwatch,
            jitter=lambda: 0.0,
            events=events,
        )
        monkeypatch.setattr(index, "services", lambda: services)
        event = load_event("Update")
        event["RequestId"] = str(uuid.uuid4())  # each row a new event, never a warm function's repeated delivery
        event["ResourceProperties"]["PromotionGuard"] = row.guard
        event["ResponseURL"] = response_server.url
        caplog.clear()
        for stubber in stubbers:
            stubber.activate()
        try:
            index.handler(event, ClockContext(clock, 660_000))
            answer = response_server.only_answer
            response_server.bodies.clear()
            pending = []
            for stubber in stubbers:
                try:
                    stubber.assert_no_pending_responses()
                except AssertionError as error:
                    pending.append(str(error))
        finally:
            for stubber in stubbers:
                stubber.deactivate()
        lines = [
            r.getMessage() for r in caplog.records if r.getMessage().startswith('{"InferenceExperimentStopDecision"')
        ]
        return Ran(answer, details, lines, pending)

    return run_row


def describe(status: str, **extra: Any) -> Call:
    return "describe_inference_experiment", {"Name": NAME}, experiment(status, **extra)


def stop(**changes: Any) -> Call:
    return "stop_inference_experiment", {**STOP, **changes}, {"InferenceExperimentArn": ARN}


PROMOTED = [describe("Running"), stop(), describe("Completed")]


def alarms(**states: str) -> Call:
    """DescribeAlarms of the guard's alarms (in the order given); "missing" is an alarm CloudWatch does not know."""
    names = [name.replace("_", "-") for name in states]
    found = [{"AlarmName": n, "StateValue": s} for n, s in zip(names, states.values(), strict=True) if s != "missing"]
    params = {"AlarmNames": names, "AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "MaxRecords": 100}
    return "describe_alarms", params, {"MetricAlarms": found, "CompositeAlarms": []}


def metrics(values: dict[str, list[float]]) -> Call:
    """One GetMetricData call over the guard's window, answered with these datapoints, all Complete."""
    end = datetime.datetime.fromtimestamp(CLOCK_START, datetime.UTC)
    results = [
        {"Id": query_id, "Timestamps": [end] * len(found), "Values": found, "StatusCode": "Complete"}
        for query_id, found in values.items()
    ]
    return (
        "get_metric_data",
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY},
        {"MetricDataResults": results},
    )


# --- An alarm without data is no evidence: neither a pass nor a failure (issue 15's rule) ---------------------------


@dataclass(frozen=True)
class AlarmCase:
    guard: dict[str, Any]
    read: list[Call]  # what CloudWatch answers
    sagemaker: list[Call]
    status: str
    words: str  # the Decision of a SUCCESS, or what the Reason of a FAILED holds


ALARM_CASES = {
    "thresholds-pass-alarm-without-data-promotes": AlarmCase(
        {**THRESHOLDS, "WindowSeconds": "86400", "Alarms": ["shadow-latency"]},
        [alarms(shadow_latency="INSUFFICIENT_DATA"), metrics(GOOD)],
        PROMOTED,
        "SUCCESS",
        "Promoted",
    ),
    "one-alarm-ok-one-without-data-promotes": AlarmCase(
        {"Alarms": ["shadow-latency", "shadow-errors"], "OnFailure": "Fail"},
        [alarms(shadow_latency="OK", shadow_errors="INSUFFICIENT_DATA")],
        PROMOTED,
        "SUCCESS",
        "Promoted",
    ),
    "every-alarm-without-data-is-inconclusive": AlarmCase(
        {"Alarms": ["shadow-latency", "shadow-errors"], "OnFailure": "Fail"},
        [alarms(shadow_latency="INSUFFICIENT_DATA", shadow_errors="INSUFFICIENT_DATA")],
        [describe("Running")],
        "FAILED",
        "Promotion guard for shadow-test: Inconclusive: no check gave evidence: alarm shadow-latency is "
        "INSUFFICIENT_DATA; alarm shadow-errors is INSUFFICIENT_DATA; nothing stopped",
    ),
    "an-alarm-not-found-stays-inconclusive": AlarmCase(
        {"Alarms": ["shadow-latency", "shadow-errors"], "OnFailure": "Fail"},
        [alarms(shadow_latency="OK", shadow_errors="missing")],
        [describe("Running")],
        "FAILED",
        "Promotion guard for shadow-test: Inconclusive: alarm shadow-errors was not found; nothing stopped",
    ),
    "a-failed-threshold-still-fails-beside-an-alarm-without-data": AlarmCase(
        {**THRESHOLDS, "WindowSeconds": "86400", "Alarms": ["shadow-latency"]},
        [alarms(shadow_latency="INSUFFICIENT_DATA"), metrics({**GOOD, "shadowModelErrors": [150.0]})],
        [describe("Running")],
        "FAILED",
        "Promotion guard for shadow-test: Failed: shadow error rate 0.0100 > 0.001",
    ),
}


@pytest.mark.parametrize("case", ALARM_CASES.values(), ids=ALARM_CASES.keys())
def test_an_alarm_without_data_is_neither_a_pass_nor_a_failure(run: Callable[[Row], Ran], case: AlarmCase) -> None:
    ran = run(Row(case.guard, case.sagemaker, case.read))

    assert ran.answer["Status"] == case.status, ran.answer.get("Reason")
    if case.status == "SUCCESS":
        assert ran.answer["Data"]["Decision"] == case.words
    else:
        assert case.words in ran.answer["Reason"]
    assert not ran.pending
