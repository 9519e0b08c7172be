"""The lifecycle table, row by row: CloudFormation events through index.handler and crhelper.

Every SageMaker and CloudFormation call is checked by botocore's Stubber against the real service model
(`expected_params`), the answer is really PUT to a local server, time is a fake clock, and crhelper runs
at DEBUG so that no row may leak the ResponseURL into any log line.
"""

from __future__ import annotations

import datetime
import logging
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import index
import lifecycle
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY, Stubber
from conftest import (
    ARN,
    CLOCK_START,
    FUNCTION_ARN,
    NAME,
    REGION,
    ClockContext,
    FakeClock,
    ResponseServer,
    experiment,
    load_event,
)

STACK_ID = load_event("Create")["StackId"]
README = Path(__file__).parents[1] / "README.md"
STOP = {
    "Name": NAME,
    "ModelVariantActions": {"shadow": "Promote", "production": "Remove"},
    "DesiredModelVariants": [
        {
            "ModelName": "model-b",
            "VariantName": "shadow",
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                # The event carries "2" (CloudFormation sends strings); SageMaker must get an int.
                "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2},
            },
        }
    ],
    "DesiredState": "Completed",
    "Reason": "shadow beat production on p99",
}


@dataclass
class Call:
    """One expected AWS call and what it answers."""

    client: str
    method: str
    params: dict[str, Any]
    response: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    retries: int = 0
    raises: Exception | None = None  # botocore's own error (no answer from AWS), raised instead of calling


def stacks(status: str, updated_at: float | None = None) -> Call:
    """DescribeStacks of the event's stack; `updated_at` its LastUpdatedTime (where the stack was updated)."""
    stack: dict[str, Any] = {"StackName": "ShadowTestStack", "StackId": STACK_ID, "StackStatus": status}
    stack["CreationTime"] = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
    if updated_at is not None:
        stack["LastUpdatedTime"] = datetime.datetime.fromtimestamp(updated_at, datetime.UTC)
    return Call("cloudformation", "describe_stacks", {"StackName": STACK_ID}, {"Stacks": [stack]})


def stack_resources(*stoppers: tuple[str, str, str]) -> Call:
    """ListStackResources of the event's stack: its stoppers as (logical id, physical id, status)."""
    summaries: list[dict[str, Any]] = [
        {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": physical_id,
            "ResourceType": "Custom::InferenceExperimentStop",
            "ResourceStatus": status,
            "LastUpdatedTimestamp": datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC),
        }
        for logical_id, physical_id, status in stoppers
    ]
    summaries.append(
        {
            "LogicalResourceId": "Endpoint",
            "PhysicalResourceId": NAME,  # another type of resource with the same physical id is no twin
            "ResourceType": "AWS::SageMaker::Endpoint",
            "ResourceStatus": "UPDATE_COMPLETE",
            "LastUpdatedTimestamp": datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC),
        }
    )
    return Call(
        "cloudformation", "list_stack_resources", {"StackName": STACK_ID}, {"StackResourceSummaries": summaries}
    )


def stack_resources_fail(code: str, message: str) -> Call:
    return Call("cloudformation", "list_stack_resources", {"StackName": STACK_ID}, error=(code, message))


def stacks_fail(code: str, message: str) -> Call:
    return Call("cloudformation", "describe_stacks", {"StackName": STACK_ID}, error=(code, message))


def describe(status: str, name: str = NAME, **extra: Any) -> Call:
    return Call("sagemaker", "describe_inference_experiment", {"Name": name}, experiment(status, name, **extra))


def describe_fails(code: str, message: str, retries: int = 0) -> Call:
    return Call("sagemaker", "describe_inference_experiment", {"Name": NAME}, error=(code, message), retries=retries)


def stop(**changes: Any) -> Call:
    params = {**STOP, **changes}
    arn = ARN.replace(NAME, params["Name"])
    return Call("sagemaker", "stop_inference_experiment", params, {"InferenceExperimentArn": arn})


def hand_on_fails(code: str, message: str, retries: int = 0) -> Call:
    params = {"FunctionName": FUNCTION_ARN, "InvocationType": "Event", "Payload": ANY}
    return Call("lambda", "invoke", params, error=(code, message), retries=retries)


def endpoint(status: str, **extra: Any) -> dict[str, Any]:
    return {"EndpointMetadata": {"EndpointName": "shadow-test-endpoint", "EndpointStatus": status, **extra}}


def old_props(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """The Update's OldResourceProperties with `changes` (None removes a property)."""

    def edit(event: dict[str, Any]) -> None:
        old = event["OldResourceProperties"]
        for key, value in changes.items():
            if value is None:
                old.pop(key, None)
            else:
                old[key] = value

    return edit


def guarded_before_and_now(event: dict[str, Any]) -> None:
    """A guard that falls back, now and in the previous declaration (answered at once, with another Reason)."""
    guarded(OnFailure="FallBack")(event)
    guard = event["ResourceProperties"]["PromotionGuard"]
    old_props(PromotionGuard=guard, Reason="shadow test running", CompletionTimeoutSeconds="0")(event)


def continued(stop_sent: bool, link: int = 2, deadline: float = CLOCK_START + 600) -> Callable[[dict[str, Any]], None]:
    """The event as an earlier link hands it on."""

    def edit(event: dict[str, Any]) -> None:
        event[lifecycle.CONTINUATION] = {"Deadline": deadline, "StopSent": stop_sent, "Link": link}

    return edit


GUARD = {
    "MaxLatencyRatio": "1.1",
    "LatencyStatistic": "p99",
    "MaxErrorRate": "0.001",
    "MinInvocations": "1000",
    "WindowSeconds": "86400",
    "OnFailure": "Fail",
}
DAY = 86400


def guarded(**changes: str) -> Callable[[dict[str, Any]], None]:
    """The declaration with a promotion guard (GUARD, changed), as CloudFormation sends it: strings."""
    return props(PromotionGuard={key: value for key, value in {**GUARD, **changes}.items() if value})


def metric_queries(statistic: str, period: int, series_period: int | None = None) -> list[dict[str, Any]]:
    """The GetMetricData queries a guard must send, written out: AWS/SageMaker, endpoint and variant dimensions;
    with a significance test, the latency per period too."""
    wanted = [
        (role, query_id, metric, stat, period)
        for role in ("shadow", "production")
        for query_id, metric, stat in (
            ("Latency", "ModelLatency", statistic),
            ("Invocations", "Invocations", "Sum"),
            ("ModelErrors", "InvocationModelErrors", "Sum"),
        )
    ]
    if series_period is not None:
        wanted += [
            (role, "LatencySeries", "ModelLatency", statistic, series_period) for role in ("shadow", "production")
        ]
    return [
        {
            "Id": f"{role}{query_id}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SageMaker",
                    "MetricName": metric,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": "shadow-test-endpoint"},
                        {"Name": "VariantName", "Value": role},
                    ],
                },
                "Period": seconds,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for role, query_id, metric, stat, seconds in wanted
    ]


def metrics_read(
    shadow: dict[str, list[float]],
    production: dict[str, list[float]],
    statistic: str = "p99",
    *,
    status: str = "Complete",
    sent_ago: float = 0,
    series_period: int | None = None,
) -> Call:
    """One GetMetricData call over the last day, answered with these datapoints (microseconds for latency)."""
    end = datetime.datetime.fromtimestamp(CLOCK_START - sent_ago, datetime.UTC)  # the window ends as the event is sent
    params = {
        "MetricDataQueries": metric_queries(statistic, DAY, series_period),
        "StartTime": end - datetime.timedelta(seconds=DAY),
        "EndTime": end,
    }
    results = [
        {
            "Id": f"{role}{name}",
            "Label": name,
            "Timestamps": [end] * len(values),
            "Values": values,
            "StatusCode": status if role == "shadow" and name == "ModelErrors" else "Complete",
        }
        for role, figures in (("shadow", shadow), ("production", production))
        for name, values in figures.items()
    ]
    return Call("cloudwatch", "get_metric_data", params, {"MetricDataResults": results})


def metrics_fail(code: str, message: str, retries: int = 0) -> Call:
    return Call(
        "cloudwatch",
        "get_metric_data",
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY},
        error=(code, message),
        retries=retries,
    )


GOOD_SHADOW = {"Latency": [28_000.0], "Invocations": [15_000.0], "ModelErrors": [3.0]}
PRODUCTION = {"Latency": [30_100.0], "Invocations": [15_200.0], "ModelErrors": [5.0]}
FALLBACK_STOP = {
    "Name": NAME,
    "ModelVariantActions": {"shadow": "Remove", "production": "Retain"},
    "DesiredState": "Completed",
}


SLOW_WHY = "shadow p99 ModelLatency 41.2 ms > 1.10 x production 30.1 ms (over 15,000 shadow invocations)"
MONITORING = "https://monitoring.us-east-1.amazonaws.com/"
UNREACHABLE_WHY = (
    "cloudwatch:GetMetricData on shadow-test-endpoint could not be reached: "
    f'Could not connect to the endpoint URL: "{MONITORING}"'
)
# The duplicate rows' event was sent a minute before it arrives; its first delivery stopped the experiment since.
DUPLICATE_SENT_AGO = 60
AFTER_SENT = datetime.datetime.fromtimestamp(CLOCK_START - 30, datetime.UTC)
LATE_END = datetime.datetime.fromtimestamp(CLOCK_START - 650, datetime.UTC)  # 50 s after the late rows' event
BEFORE_SENT = datetime.datetime.fromtimestamp(CLOCK_START - 3600, datetime.UTC)


def alarms(**states: str) -> Call:
    """DescribeAlarms of the guard's alarms (in the order given), answered with these states."""
    names = [name.replace("_", "-") for name in states]
    found = [
        {"AlarmName": name.replace("_", "-"), "StateValue": state}
        for name, state in states.items()
        if state != "missing"
    ]
    params = {"AlarmNames": names, "AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "MaxRecords": 100}
    return Call("cloudwatch", "describe_alarms", params, {"MetricAlarms": found, "CompositeAlarms": []})


DECISION_PUT = {
    "Entries": [
        {"Source": "inference-experiment-stopper", "DetailType": "Inference Experiment Stop Decision", "Detail": ANY}
    ]
}


def decision_put(error: tuple[str, str] | None = None) -> Call:
    """The decision put on the default event bus, checked against EventBridge's model."""
    return Call("events", "put_events", DECISION_PUT, {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}, error)


def alarm_guarded(**changes: str) -> Callable[[dict[str, Any]], None]:
    """A guard of one alarm alone, no thresholds (it reads no metrics)."""
    return props(PromotionGuard={"Alarms": ["shadow-latency"], "OnFailure": "Fail", **changes})


def series(mean: float, spread: float, seed: int, count: int = 48, slower: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, spread) * slower for _ in range(count)]


NOISY_EQUAL_SHADOW = [*series(30_000.0, 3_000.0, seed=1, count=47), 90_000.0]
PRODUCTION_SERIES = series(30_000.0, 3_000.0, seed=2)


def fallback_stop(why: str, *, inconclusive: bool = False) -> Call:
    prefix = "Promotion guard inconclusive" if inconclusive else "Promotion guard failed"
    params = {**FALLBACK_STOP, "Reason": f"{prefix}, shadow removed: {why}"}
    return Call("sagemaker", "stop_inference_experiment", params, {"InferenceExperimentArn": ARN})


def stop_fails(code: str, message: str) -> Call:
    return Call("sagemaker", "stop_inference_experiment", STOP, error=(code, message))


def props(**changes: Any) -> Callable[[dict[str, Any]], None]:
    """An event edit: change (or, with None, remove) ResourceProperties."""

    def edit(event: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                event["ResourceProperties"].pop(key, None)
            else:
                event["ResourceProperties"][key] = value

    return edit


@dataclass
class Case:
    """One row of the README's lifecycle table, or one of the situations a row names."""

    row: tuple[str, str]
    request_type: str
    calls: list[Call]
    status: str = "SUCCESS"
    reason: str = ""
    data_status: str | None = None
    endpoint_status: str | None = None  # default: InService where the experiment was described, else ""
    decision: str | None = None  # default: NoGuard where this event sent a stop, else ""
    physical_id: str = NAME
    edit: Callable[[dict[str, Any]], None] | None = None
    sleeps: list[float] | None = None
    logged: str = ""
    remaining_millis: int = 660_000  # the run's time left when the event arrives
    sent_ago: float | None = None  # the ResponseURL is SigV4-signed this long before the event arrives
    url_query: str = ""  # more of the ResponseURL's query (a SigV2 URL's Expires, say)
    id: str = field(default="")


def running_to_done(stack_status: str, updated_at: float | None = None) -> list[Call]:
    """Running, then (the stack re-read right before the stop) stopped and waited through to Completed."""
    return [
        describe("Running"),
        stacks(stack_status, updated_at),
        stop(),
        describe("Stopping"),
        describe("Stopping"),
        describe("Completed"),
    ]


RUNNING_TO_DONE = running_to_done("UPDATE_IN_PROGRESS")
PROMOTE_FREE = {"shadow": "Retain", "production": "Remove"}


def remove_variants_and(**changes: Any) -> Callable[[dict[str, Any]], None]:
    return props(DesiredModelVariants=None, **changes)


def old_token(event: dict[str, Any]) -> None:
    event["OldResourceProperties"] = dict(event["ResourceProperties"], ServiceToken="arn:aws:lambda:old")


def only_changed(**old: Any) -> Callable[[dict[str, Any]], None]:
    """An Update whose old properties differ from the new ones only in `old`."""

    def edit(event: dict[str, Any]) -> None:
        event["OldResourceProperties"] = dict(event["ResourceProperties"], **old)

    return edit


def renamed(event: dict[str, Any]) -> None:
    event["ResourceProperties"]["Name"] = "shadow-test-2"


def instance_type(value: object) -> Callable[[dict[str, Any]], None]:
    def edit(event: dict[str, Any]) -> None:
        event["ResourceProperties"]["DesiredModelVariants"][0]["InfrastructureConfig"]["RealTimeInferenceConfig"][
            "InstanceType"
        ] = value

    return edit


def delete_after_failed_create(event: dict[str, Any]) -> None:
    event["PhysicalResourceId"] = "5b8e0f00-c7a1-11ef_StopShadowTest04108110_Q2W3E4R5"


CASES = [
    Case(("Create", "exists"), "Create", [describe("Running")], data_status="Running", id="create-running"),
    Case(("Create", "exists"), "Create", [describe("Created")], data_status="Created", id="create-scheduled"),
    Case(
        ("Create", "exists"),
        "Create",
        [describe("Running")],
        status="FAILED",
        reason="Variant 'shadw' is not in inference experiment shadow-test, whose variants are production, shadow",
        edit=props(ModelVariantActions={"shadw": "Promote"}),
        id="create-unknown-variant",
    ),
    Case(
        ("Create", "ResourceNotFound"),
        "Create",
        [describe_fails("ResourceNotFound", "Inference experiment not found")],
        status="FAILED",
        reason=f"Inference experiment shadow-test was not found in {REGION}",
        id="create-not-found",
    ),
    Case(
        ("Update/Delete", "the stack is rolling back"),
        "Update",
        [stacks("UPDATE_ROLLBACK_IN_PROGRESS"), describe("Running")],
        data_status="Running",
        logged="a rollback never stops an experiment",
        id="update-in-rollback",
    ),
    Case(
        ("Update/Delete", "the stack is rolling back"),
        "Delete",
        [stacks("ROLLBACK_IN_PROGRESS")],
        logged="a rollback never stops an experiment",
        id="delete-in-create-rollback",
    ),
    Case(
        ("Update/Delete", "the stack is rolling back"),
        "Delete",
        [stacks("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")],
        logged="a rollback never stops an experiment",
        id="delete-in-rollback-cleanup",
    ),
    Case(
        ("Update/Delete", "Running"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), *RUNNING_TO_DONE],
        data_status="Completed",
        sleeps=[2.0, 3.0],
        id="update-running",
    ),
    # An update of its own, whose stack's LastUpdatedTime is read right before the stop: X-Amz-Date is whole
    # seconds, so the update may seem to begin up to 1 s after the event; and with this function's clock 2 s behind
    # CloudFormation's, the stack's time is compared with the URL's signing time itself.
    *[
        Case(
            ("Update/Delete", "Running"),
            "Update",
            [
                stacks("UPDATE_IN_PROGRESS", updated_at=CLOCK_START + updated_after),
                *running_to_done("UPDATE_IN_PROGRESS", updated_at=CLOCK_START + updated_after),
            ],
            data_status="Completed",
            sleeps=[2.0, 3.0],
            sent_ago=sent_ago,
            id=case_id,
        )
        for case_id, updated_after, sent_ago in (
            ("update-running-in-its-own-update", 0.8, 0),
            ("update-running-with-the-function-clock-behind", 1.5, -2),
        )
    ],
    Case(
        ("Update/Delete", "Running"),
        "Delete",
        [stacks("DELETE_IN_PROGRESS"), *running_to_done("DELETE_IN_PROGRESS")],
        data_status="Completed",
        sleeps=[2.0, 3.0],
        id="delete-running",
    ),
    Case(
        ("Update/Delete", "Running"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Running"), stacks("UPDATE_IN_PROGRESS"), stop(), describe("Stopping")],
        data_status="Stopping",
        edit=props(CompletionTimeoutSeconds="0"),
        sleeps=[],
        id="update-running-no-wait",
    ),
    *[
        Case(
            ("Update/Delete", "Creating / Starting / Updating"),
            "Update",
            [
                stacks("UPDATE_IN_PROGRESS"),
                describe(status),
                describe("Running"),
                stacks("UPDATE_IN_PROGRESS"),
                stop(),
                describe("Completed"),
            ],
            data_status="Completed",
            sleeps=[2.0],
            id=f"update-{status.lower()}",
        )
        for status in ("Creating", "Starting", "Updating")
    ],
    Case(
        ("Update/Delete", "Creating / Starting / Updating"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Starting"), describe("Starting"), describe("Starting")],
        status="FAILED",
        reason="Inference experiment shadow-test is still Starting after 5 s and was not stopped",
        edit=props(CompletionTimeoutSeconds="5"),
        sleeps=[2.0, 3.0],
        id="update-never-runs",
    ),
    Case(
        ("Update", "Created"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Created", Schedule={"StartTime": datetime.datetime(2026, 12, 1, 9)})],
        status="FAILED",
        reason="Inference experiment shadow-test has not started yet (it is scheduled to start at 2026-12-01 09:00:00",
        id="update-scheduled",
    ),
    Case(
        ("Delete", "Created"),
        "Delete",
        [stacks("DELETE_IN_PROGRESS"), describe("Created")],
        data_status="Created",
        id="delete-scheduled",
    ),
    *[
        Case(
            ("Update/Delete", "Stopping"),
            request_type,
            [stacks(f"{request_type.upper()}_IN_PROGRESS"), describe("Stopping"), describe("Completed")],
            data_status="Completed",
            sleeps=[2.0],
            # Someone else's stop: without a Promote, the declared end (Completed) is what SUCCESS needs.
            edit=remove_variants_and(ModelVariantActions=PROMOTE_FREE),
            id=f"{request_type.lower()}-stopping",
        )
        for request_type in ("Update", "Delete")
    ],
    Case(
        ("Update", "Completed / Cancelled"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed")],
        data_status="Completed",
        edit=remove_variants_and(ModelVariantActions=PROMOTE_FREE),
        id="update-completed",
    ),
    Case(
        ("Update", "Completed / Cancelled"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Cancelled")],
        status="FAILED",
        reason="Inference experiment shadow-test was stopped by someone else or ended on its own: it ended Cancelled, "
        "and SageMaker's answer does not show its shadow promoted; the declared promotion did not happen",
        id="update-cancelled-promote",
    ),
    Case(
        ("Delete", "Completed / Cancelled"),
        "Delete",
        [stacks("DELETE_IN_PROGRESS"), describe("Completed")],
        data_status="Completed",
        logged="was stopped by someone else or ended on its own: it ended Completed, and SageMaker's answer does not "
        "show its shadow promoted; the declared promotion did not happen; answering the Delete anyway",
        id="delete-completed",
    ),
    Case(
        ("Update", "ResourceNotFound"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe_fails("ResourceNotFound", "not found")],
        status="FAILED",
        reason=f"Inference experiment shadow-test was not found in {REGION}",
        id="update-not-found",
    ),
    Case(
        ("Delete", "ResourceNotFound, or a physical id that is not an experiment name"),
        "Delete",
        [stacks("DELETE_IN_PROGRESS"), describe_fails("ResourceNotFound", "not found")],
        data_status="NotFound",
        logged="does not exist (any more): nothing left to stop",
        id="delete-not-found",
    ),
    Case(
        ("Delete", "ResourceNotFound, or a physical id that is not an experiment name"),
        "Delete",
        [],
        physical_id="5b8e0f00-c7a1-11ef_StopShadowTest04108110_Q2W3E4R5",
        edit=delete_after_failed_create,
        logged="its Create failed",
        id="delete-after-failed-create",
    ),
    Case(
        ("Update/Delete", "Stop answers ConflictException"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop_fails("ConflictException", "Experiment is being stopped"),
            describe("Stopping"),
            describe("Completed", StatusReason="stopped by hand"),
        ],
        status="FAILED",
        reason="Inference experiment shadow-test was stopped by someone else or ended on its own: it ended Completed "
        "(stopped by hand), and SageMaker's answer does not show its shadow promoted; the declared promotion did not "
        "happen",
        sleeps=[2.0],
        id="conflict-someone-else-stopped",
    ),
    Case(
        ("Update/Delete", "Stop answers ConflictException"),
        "Delete",
        [
            stacks("DELETE_IN_PROGRESS"),
            describe("Running"),
            stacks("DELETE_IN_PROGRESS"),
            stop_fails("ConflictException", "Experiment is being updated"),
            describe("Running"),
        ],
        status="FAILED",
        reason="SageMaker would not stop shadow-test: ConflictException: Experiment is being updated",
        id="conflict-still-running",
    ),
    Case(
        ("Update", "completion timeout reached while still Stopping"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            *[describe("Stopping")] * 8,
        ],
        status="FAILED",
        reason="Inference experiment shadow-test is still Stopping after 30 s (CompletionTimeoutSeconds 30)",
        edit=props(CompletionTimeoutSeconds="30"),
        sleeps=[2.0, 3.0, 4.5, 6.0, 6.0, 6.0, 2.5],
        id="update-timeout",
    ),
    Case(
        ("Delete", "completion timeout reached after the Stop was accepted"),
        "Delete",
        [
            stacks("DELETE_IN_PROGRESS"),
            describe("Running"),
            stacks("DELETE_IN_PROGRESS"),
            stop(),
            *[describe("Stopping")] * 8,
        ],
        data_status="Stopping",
        edit=props(CompletionTimeoutSeconds="30"),
        sleeps=[2.0, 3.0, 4.5, 6.0, 6.0, 6.0, 2.5],
        logged="still Stopping after 30 s; answering the Delete anyway (stop accepted)",
        id="delete-timeout",
    ),
    Case(
        ("any", "throttling / 5xx"),
        "Create",
        [describe_fails("ThrottlingException", "Rate exceeded", retries=7)],
        status="FAILED",
        reason="sagemaker:DescribeInferenceExperiment on shadow-test failed after 7 retries: ThrottlingException",
        id="throttled-after-retries",
    ),
    Case(
        ("any", "AccessDenied"),
        "Create",
        [describe_fails("AccessDeniedException", "not authorized")],
        status="FAILED",
        reason="Access denied: the function's role may not call sagemaker:DescribeInferenceExperiment on shadow-test",
        id="access-denied-describe",
    ),
    Case(
        ("any", "AccessDenied"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop_fails("AccessDeniedException", "not authorized"),
        ],
        status="FAILED",
        reason="Access denied: the function's role may not call sagemaker:StopInferenceExperiment on shadow-test",
        id="access-denied-stop",
    ),
    Case(
        ("any", "malformed properties"),
        "Create",
        [],
        status="FAILED",
        reason="Name is missing from the custom resource's properties",
        edit=props(Name=None),
        id="create-missing-name",
    ),
    Case(
        ("any", "malformed properties"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS")],
        status="FAILED",
        reason="ModelVariantActions['shadow'] 'Promot' must be Promote, Remove or Retain",
        edit=props(ModelVariantActions={"shadow": "Promot"}),
        id="update-unknown-action",
    ),
    Case(
        ("any", "malformed properties"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS")],
        status="FAILED",
        reason="DesiredModelVariants[0] InstanceCount must be a whole number of at least 0; got 'two'",
        edit=props(
            DesiredModelVariants=[
                {
                    "ModelName": "model-b",
                    "VariantName": "shadow",
                    "InfrastructureConfig": {
                        "InfrastructureType": "RealTimeInference",
                        "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": "two"},
                    },
                }
            ]
        ),
        id="update-non-numeric-count",
    ),
    Case(
        ("any", "malformed properties"),
        "Create",
        [],
        status="FAILED",
        reason="ModelVariantActions must map 1 or 2 variant names to actions; got 'shadow=Promote'",
        edit=props(ModelVariantActions="shadow=Promote"),
        id="create-wrong-type",
    ),
    Case(
        ("any", "malformed properties"),
        "Delete",
        [],
        edit=props(StopOn="Delete"),
        logged="Not stopping on Delete: StopOn must list Update and/or Delete; got 'Delete'",
        id="delete-malformed",
    ),
    Case(
        ("any", "malformed event"),
        "Update",
        [],
        status="FAILED",
        reason="Unknown RequestType 'Upsert': a custom resource is sent Create, Update or Delete; nothing was stopped",
        edit=lambda event: event.update(RequestType="Upsert"),
        id="unknown-request-type",
    ),
    Case(
        ("Update/Delete", "a promotion guard passes"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            metrics_read(GOOD_SHADOW, PRODUCTION),
            *RUNNING_TO_DONE[1:],
        ],
        data_status="Completed",
        decision="Promoted",
        edit=guarded(),
        logged="Promotion guard for shadow-test passed: shadow p99 ModelLatency 28.0 ms <= 1.10 x production 30.1 ms; "
        "shadow error rate 0.0002 <= 0.001 (over 15,000 shadow invocations); promoting as declared",
        id="guard-passes",
    ),
    *[
        Case(
            ("Update", "a promotion guard fails, on_failure Fail"),
            "Update",
            [
                stacks("UPDATE_IN_PROGRESS"),
                describe("Running"),
                stacks("UPDATE_IN_PROGRESS"),
                metrics_read(shadow, PRODUCTION, statistic),
            ],
            status="FAILED",
            reason=f"Promotion guard for shadow-test: {why}; nothing stopped",
            edit=guarded(**changes),
            id=case_id,
        )
        for case_id, shadow, changes, statistic, why in (
            (
                "guard-latency-fails",
                {**GOOD_SHADOW, "Latency": [41_200.0]},
                {"LatencyStatistic": "Average"},
                "Average",
                "Failed: shadow Average ModelLatency 41.2 ms > 1.10 x production 30.1 ms "
                "(over 15,000 shadow invocations)",
            ),
            (
                "guard-error-rate-fails",
                {**GOOD_SHADOW, "ModelErrors": [45.0]},
                {},
                "p99",
                "Failed: shadow error rate 0.0030 > 0.001 (over 15,000 shadow invocations)",
            ),
            (
                "guard-error-rate-ratio-fails",
                {**GOOD_SHADOW, "ModelErrors": [12.0]},
                {"MaxErrorRate": "", "MaxLatencyRatio": "", "MaxErrorRateRatio": "2"},
                "p99",
                "Failed: shadow error rate 0.0008 > 2.00 x production 0.0003 (over 15,000 shadow invocations)",
            ),
            (
                "guard-too-few-invocations",
                {**GOOD_SHADOW, "Invocations": [400.0, 99.0]},
                {},
                "p99",
                "Inconclusive: not enough evidence: the shadow had 499 invocations, fewer than 1,000",
            ),
            (
                "guard-no-datapoints",
                {**GOOD_SHADOW, "Latency": []},
                {},
                "p99",
                "Inconclusive: not enough evidence: the shadow variant's p99 ModelLatency has no datapoints",
            ),
        )
    ],
    Case(
        ("Update", "a promotion guard fails, on_failure FallBack"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            metrics_read({**GOOD_SHADOW, "Latency": [41_200.0]}, PRODUCTION),
            stacks("UPDATE_IN_PROGRESS"),
            fallback_stop(
                "shadow p99 ModelLatency 41.2 ms > 1.10 x production 30.1 ms (over 15,000 shadow invocations)"
            ),
            describe("Completed"),
        ],
        data_status="Completed",
        decision="FellBack: shadow p99 ModelLatency 41.2 ms > 1.10 x production 30.1 ms "
        "(over 15,000 shadow invocations)",
        edit=guarded(OnFailure="FallBack"),
        id="guard-falls-back",
    ),
    *[
        Case(
            ("Delete", "a promotion guard fails"),
            "Delete",
            [
                stacks("DELETE_IN_PROGRESS"),
                describe("Running"),
                stacks("DELETE_IN_PROGRESS"),
                read,
                stacks("DELETE_IN_PROGRESS"),
                fallback_stop(why, inconclusive=True),
                describe("Completed"),
            ],
            data_status="Completed",
            decision=f"Inconclusive: {why}",
            edit=guarded(),
            logged=f"Promotion guard for shadow-test was inconclusive: {why}; falling back (the shadow is removed)",
            id=case_id,
        )
        for case_id, read, why in (
            (
                "delete-guard-fails",
                metrics_read({**GOOD_SHADOW, "Invocations": [10.0]}, PRODUCTION),
                "not enough evidence: the shadow had 10 invocations, fewer than 1,000",
            ),
            (
                "delete-guard-access-denied",
                metrics_fail("AccessDenied", "not authorized"),
                "Access denied: the function's role may not call cloudwatch:GetMetricData on shadow-test-endpoint",
            ),
        )
    ],
    Case(
        ("any", "AccessDenied"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            metrics_fail("AccessDenied", "not authorized"),
        ],
        status="FAILED",
        reason="Access denied: the function's role may not call cloudwatch:GetMetricData on shadow-test-endpoint",
        edit=guarded(),
        id="access-denied-metrics",
    ),
    Case(
        ("any", "throttling / 5xx"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            metrics_fail("ThrottlingException", "Rate exceeded", 7),
        ],
        status="FAILED",
        reason="cloudwatch:GetMetricData on shadow-test-endpoint failed after 7 retries: ThrottlingException",
        edit=guarded(),
        id="metrics-throttled-after-retries",
    ),
    # A copy of an event of an update that is over, delivered late (within its deadline) while the stack's next
    # operation is under way: the status warrants a stop again, but LastUpdatedTime shows another operation.
    Case(
        ("Update/Delete", "the stack moved on before a postponed stop"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS", updated_at=CLOCK_START - 30),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS", updated_at=CLOCK_START - 30),
        ],
        status="FAILED",
        reason="The stack began another operation after this Update was sent (its LastUpdatedTime or DeletionTime "
        "is later): "
        "inference experiment shadow-test was not stopped",
        sent_ago=120,
        id="update-copy-in-the-next-update",
    ),
    Case(
        ("Update/Delete", "the stack moved on before a postponed stop"),
        "Delete",
        [stacks("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", updated_at=CLOCK_START - 30)],
        logged="The stack began another operation after this Delete was sent",
        sent_ago=120,
        id="delete-copy-in-the-next-clean-up",
    ),
    Case(
        ("Update", "Name changed"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Running", name="shadow-test-2")],
        data_status="Running",
        physical_id="shadow-test-2",
        edit=renamed,
        logged="Name changed to shadow-test-2: a replacement, checked as a Create is; nothing stopped",
        id="update-renamed",
    ),
    Case(
        ("Event not in StopOn", "any"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Running")],
        data_status="Running",
        edit=props(StopOn=["Delete"]),
        id="update-not-declared",
    ),
    Case(("Event not in StopOn", "any"), "Delete", [], edit=props(StopOn=["Update"]), id="delete-not-declared"),
    *[
        Case(
            ("Update", "only CompletionTimeoutSeconds, StopOn, PromotionGuard, ServiceToken or ServiceTimeout changed"),
            "Update",
            [stacks("UPDATE_IN_PROGRESS"), describe("Running")],
            data_status="Running",
            edit=edit,
            logged="the declared stop did not, so shadow-test is not stopped",
            id=case_id,
        )
        for case_id, edit in (
            ("update-function-replaced", old_token),
            ("update-longer-timeout", only_changed(CompletionTimeoutSeconds="300")),
            ("update-stop-on-turned-on", only_changed(StopOn=["Delete"])),
            ("update-guard-tuned", only_changed(PromotionGuard={"MaxErrorRate": "0.01"})),
        )
    ],
    Case(
        ("Update", "ended other than declared"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            describe("Cancelled", StatusReason="Endpoint update failed; the experiment was cancelled"),
        ],
        status="FAILED",
        reason="Inference experiment shadow-test ended Cancelled, not Completed as declared (Endpoint update failed; "
        "the experiment was cancelled)",
        id="update-cancelled-not-completed",
    ),
    *[
        Case(
            ("Update/Delete", "Promote: the endpoint is updating after the stop"),
            request_type,
            [
                stacks(f"{request_type.upper()}_IN_PROGRESS"),
                describe("Running"),
                stacks(f"{request_type.upper()}_IN_PROGRESS"),
                stop(),
                describe("Completed", **endpoint("Updating")),
                describe("Completed", **endpoint("Updating")),
                describe("Completed", **endpoint("InService")),
            ],
            data_status="Completed",
            sleeps=[2.0, 3.0],
            id=f"{request_type.lower()}-waits-for-the-endpoint",
        )
        for request_type in ("Update", "Delete")
    ],
    Case(
        ("Update", "the endpoint failed after the stop"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            describe("Completed", **endpoint("Failed", FailureReason="Insufficient capacity for ml.m5.xlarge")),
        ],
        status="FAILED",
        reason="Inference experiment shadow-test its endpoint shadow-test-endpoint is Failed: Insufficient capacity "
        "for ml.m5.xlarge",
        id="update-endpoint-failed",
    ),
    Case(
        ("Delete", "the endpoint failed after the stop"),
        "Delete",
        [
            stacks("DELETE_IN_PROGRESS"),
            describe("Running"),
            stacks("DELETE_IN_PROGRESS"),
            stop(),
            describe("Completed", **endpoint("InService", FailureReason="Update rolled back: health check failed")),
        ],
        data_status="Completed",
        logged="is InService: Update rolled back: health check failed; answering the Delete anyway",
        id="delete-endpoint-failed",
    ),
    Case(
        ("Update", "completion timeout reached while still Stopping"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            describe("Completed", **endpoint("Updating")),
            describe("Completed", **endpoint("Updating")),
            describe("Completed", **endpoint("Updating")),
        ],
        status="FAILED",
        reason="Inference experiment shadow-test is Completed, but its endpoint shadow-test-endpoint is still Updating "
        "after 5 s",
        edit=props(CompletionTimeoutSeconds="5"),
        sleeps=[2.0, 3.0],
        id="update-timeout-endpoint-updating",
    ),
    *[
        Case(
            ("Update/Delete", "the hand-on to the next run fails"),
            request_type,
            [
                stacks(f"{request_type.upper()}_IN_PROGRESS"),
                describe("Running"),
                stacks(f"{request_type.upper()}_IN_PROGRESS"),
                stop(),
                *[describe("Stopping")] * 3,
                *[hand_on_fails("TooManyRequestsException", "Rate exceeded")] * 3,
            ],
            status=status,
            reason="Could not hand the wait for shadow-test on to the function's next run (lambda:InvokeFunction on "
            "the function itself failed: TooManyRequestsException: Rate exceeded); the stop was "
            "accepted and may still complete",
            data_status="Stopping" if status == "SUCCESS" else None,
            logged="answering the Delete anyway" if status == "SUCCESS" else "",
            sleeps=[2.0, 3.0, 0.5, 1.0],  # the poll, then the pauses between the three Invoke attempts
            remaining_millis=40_000,
            id=f"{request_type.lower()}-hand-on-refused",
        )
        for request_type, status in (("Update", "FAILED"), ("Delete", "SUCCESS"))
    ],
    Case(
        ("Update/Delete", "a later link of the wait"),
        "Update",
        [describe("Running"), describe("Completed")],
        data_status="Completed",
        edit=continued(stop_sent=True),
        sleeps=[2.0],
        id="later-link-never-stops-twice",
    ),
    Case(
        ("Update/Delete", "a later link of the wait"),
        "Delete",
        [describe("Running"), stacks("DELETE_IN_PROGRESS"), stop(), describe("Completed")],
        data_status="Completed",
        edit=continued(stop_sent=False),
        id="later-link-still-waiting-to-run",
    ),
    Case(
        ("Update/Delete", "Creating / Starting / Updating"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Starting")],
        status="FAILED",
        reason="Inference experiment shadow-test is still Starting after 0 s and was not stopped "
        "(CompletionTimeoutSeconds 0)",
        edit=props(CompletionTimeoutSeconds="0"),
        sleeps=[],
        id="update-no-wait-not-running-at-once",
    ),
    Case(
        ("Delete", "clean-up of a stopper whose construct moved"),
        "Delete",
        [
            stacks("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            stack_resources(
                ("StopShadowTest04108110", NAME, "UPDATE_COMPLETE"),
                ("NewPathStopShadowTest5A1B2C3D", NAME, "CREATE_COMPLETE"),
            ),
        ],
        logged="stopper NewPathStopShadowTest5A1B2C3D of the same stack still names inference experiment shadow-test "
        "(the construct moved to a new logical id): it was not stopped",
        id="cleanup-moved-construct",
    ),
    Case(
        ("Delete", "clean-up of a stopper whose construct moved"),
        "Delete",
        [stacks("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"), stack_resources_fail("AccessDenied", "not authorized")],
        logged="whether another stopper still names inference experiment shadow-test is unknown: it was not stopped",
        id="cleanup-resources-unreadable",
    ),
    Case(
        ("Delete", "clean-up after a rename, or of a stopper no other names"),
        "Delete",
        [
            stacks("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            stack_resources(("StopShadowTest04108110", NAME, "UPDATE_COMPLETE"), ("OldStop", NAME, "DELETE_COMPLETE")),
            describe("Running"),
            stacks("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            stop(),
            describe("Completed"),
        ],
        data_status="Completed",
        id="cleanup-stops-by-the-old-declaration",
    ),
    Case(
        ("Update/Delete", "the stack moved on before a postponed stop"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Starting"),
            describe("Running"),
            stacks("UPDATE_ROLLBACK_IN_PROGRESS"),
        ],
        logged="The stack is UPDATE_ROLLBACK_IN_PROGRESS: a rollback never stops an experiment",
        sleeps=[2.0],
        id="update-postponed-stop-rolled-back",
    ),
    Case(
        ("Update/Delete", "the stack moved on before a postponed stop"),
        "Delete",
        [stacks("DELETE_IN_PROGRESS"), describe("Starting"), describe("Running"), stacks("DELETE_FAILED")],
        logged="The stack is DELETE_FAILED, not DELETE_IN_PROGRESS or UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: "
        "inference experiment shadow-test was not stopped",
        sleeps=[2.0],
        id="delete-postponed-stop-stack-moved-on",
    ),
    *[
        Case(
            ("Update/Delete", "the stack's state cannot be read before the stop"),
            request_type,
            [
                stacks(f"{request_type.upper()}_IN_PROGRESS"),
                describe("Running"),
                *[stacks_fail("Throttling", "Rate exceeded")] * 5,
            ],
            status=status,
            reason="The stack's state could not be read, so inference experiment shadow-test was not stopped",
            logged=f"cloudformation:DescribeStacks on {STACK_ID}: Throttling: Rate exceeded; trying again in 1.0 s",
            edit=props(CompletionTimeoutSeconds="20"),
            sleeps=[1.0, 2.0, 4.0, 8.0],
            id=f"{request_type.lower()}-stack-unreadable",
        )
        for request_type, status in (("Update", "FAILED"), ("Delete", "SUCCESS"))
    ],
    Case(
        ("Update/Delete", "the event arrives after its deadline"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Running")],
        status="FAILED",
        reason="The Update came too late (100 s after its deadline, 700 s after CloudFormation sent it): inference "
        "experiment shadow-test was not stopped",
        sent_ago=700,
        id="update-late",
    ),
    Case(
        ("Update/Delete", "the event arrives after its deadline"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed", StatusReason=STOP["Reason"], CompletionTime=LATE_END)],
        data_status="Completed",
        decision="NoGuard",
        logged="shows this event's own stop (an earlier delivery sent it)",
        sent_ago=700,
        id="late-duplicate-answers-as-the-first-did",
    ),
    Case(
        ("Update/Delete", "the event arrives after its deadline"),
        "Delete",
        [stacks("DELETE_IN_PROGRESS"), describe("Running")],
        logged="The Delete came too late (3340 s after its deadline, 3940 s after CloudFormation sent it)",
        url_query=f"&AWSAccessKeyId=AKIAEXAMPLE&Expires={int(CLOCK_START) - 3940 + 7200}&Signature=c2lnbmF0dXJl",
        id="delete-late-sigv2",
    ),
    *[
        Case(
            ("Update/Delete", "a continuation record out of range"),
            "Update",
            [describe("Running")],
            status="FAILED",
            reason="The Update came too late",
            edit=edit,
            logged="The continuation record is out of range",
            id=case_id,
        )
        for case_id, edit in (
            ("continuation-deadline-30-days-out", continued(stop_sent=False, deadline=CLOCK_START + 30 * DAY)),
            ("continuation-link-out-of-range", continued(stop_sent=False, link=1_000_000_001)),
        )
    ],
    Case(
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed", StatusReason=STOP["Reason"], CompletionTime=AFTER_SENT)],
        data_status="Completed",
        decision="NoGuard",
        logged="shows this event's own stop (an earlier delivery sent it)",
        sent_ago=DUPLICATE_SENT_AGO,
        id="duplicate-after-own-stop",
    ),
    Case(
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe(
                "Completed",
                StatusReason=f"Promotion guard failed, shadow removed: {SLOW_WHY}",
                CompletionTime=AFTER_SENT,
            ),
        ],  # the verdict is read from the Reason it sent: the guard is not judged again
        data_status="Completed",
        decision=f"FellBack: {SLOW_WHY}",
        edit=guarded(OnFailure="FallBack"),
        sent_ago=DUPLICATE_SENT_AGO,
        id="duplicate-after-own-fallback",
    ),
    Case(
        ("Delete", "the experiment is deleted while the Delete waits"),
        "Delete",
        [
            stacks("DELETE_IN_PROGRESS"),
            describe("Running"),
            stacks("DELETE_IN_PROGRESS"),
            stop_fails("ResourceNotFound", "Inference experiment shadow-test not found"),
            describe("Running"),  # still described: being deleted, or SageMaker not yet consistent
        ],
        logged="SageMaker would not stop shadow-test (ResourceNotFound: Inference experiment shadow-test not found): "
        "it was not stopped",
        id="delete-stop-not-found-but-still-described",
    ),
    Case(
        # The previous declaration (answered at once) sent the same Reason with other actions: SageMaker's answer
        # cannot tell that stop from this event's own, so it is someone else's, and a Promote fails.
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed", StatusReason=STOP["Reason"], CompletionTime=AFTER_SENT)],
        status="FAILED",
        reason="Inference experiment shadow-test was stopped by someone else or ended on its own",
        edit=old_props(
            Reason=STOP["Reason"],
            ModelVariantActions={"shadow": "Remove", "production": "Retain"},
            DesiredModelVariants=None,
        ),
        logged="which this Update's previous declaration sends too",
        sent_ago=DUPLICATE_SENT_AGO,
        id="same-reason-sent-by-the-previous-declaration",
    ),
    Case(
        # The previous declaration (guarded, answered at once) fell back; this one changes only the Reason, so its
        # own fallback would be the very same stop: a verdict it never judged is not taken for its own.
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Stopping", StatusReason=f"Promotion guard failed, shadow removed: {SLOW_WHY}"),
            describe(
                "Completed",
                StatusReason=f"Promotion guard failed, shadow removed: {SLOW_WHY}",
                CompletionTime=AFTER_SENT,
            ),
        ],
        status="FAILED",
        reason="Inference experiment shadow-test was stopped by someone else or ended on its own",
        edit=guarded_before_and_now,
        sleeps=[2.0],
        sent_ago=DUPLICATE_SENT_AGO,
        id="previous-declarations-fallback-not-taken-for-its-own",
    ),
    Case(
        # Properties this function now refuses, with the same Reason: their Reason alone decides.
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed", StatusReason=STOP["Reason"], CompletionTime=AFTER_SENT)],
        status="FAILED",
        reason="Inference experiment shadow-test was stopped by someone else or ended on its own",
        edit=old_props(Reason=STOP["Reason"], ModelVariantActions={"shadow": "Explode"}),
        logged="which this Update's previous declaration sends too",
        sent_ago=DUPLICATE_SENT_AGO,
        id="same-reason-in-old-properties-refused-now",
    ),
    Case(
        # Its own stop, accepted though botocore's retry of it answered ConflictException: the previous
        # declaration (same Reason, other actions) cannot have stopped the experiment since this run saw it Running.
        ("Update/Delete", "Stop answers ConflictException"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop_fails("ConflictException", "Experiment is being stopped"),
            describe("Stopping", StatusReason=STOP["Reason"]),
            describe("Completed", StatusReason=STOP["Reason"], CompletionTime=AFTER_SENT),
        ],
        data_status="Completed",
        decision="NoGuard",
        edit=old_props(
            Reason=STOP["Reason"],
            ModelVariantActions={"shadow": "Retain", "production": "Retain"},
            DesiredModelVariants=None,
        ),
        sleeps=[2.0],
        sent_ago=0,
        id="conflict-of-its-own-accepted-stop-same-reason-as-before",
    ),
    Case(
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed", StatusReason=STOP["Reason"], CompletionTime=BEFORE_SENT)],
        status="FAILED",
        reason="Inference experiment shadow-test was stopped by someone else or ended on its own",
        sent_ago=DUPLICATE_SENT_AGO,
        id="same-reason-but-ended-before-the-event",
    ),
    *[
        Case(
            ("Delete", "the experiment is deleted while the Delete waits"),
            "Delete",
            calls,
            data_status="NotFound",
            logged="nothing left to stop",
            edit=edit,
            id=case_id,
        )
        for case_id, calls, edit in (
            (
                "delete-vanishes-after-the-stop",
                [
                    stacks("DELETE_IN_PROGRESS"),
                    describe("Running"),
                    stacks("DELETE_IN_PROGRESS"),
                    stop(),
                    describe_fails("ResourceNotFound", "not found"),
                ],
                None,
            ),
            (
                "delete-vanishes-before-the-stop",
                [
                    stacks("DELETE_IN_PROGRESS"),
                    describe("Running"),
                    stacks("DELETE_IN_PROGRESS"),
                    stop_fails("ResourceNotFound", "Inference experiment shadow-test does not exist"),
                    describe_fails("ResourceNotFound", "not found"),
                ],
                None,
            ),
            (
                "delete-vanishes-before-the-stop-told-as-validation-exception",
                [
                    stacks("DELETE_IN_PROGRESS"),
                    describe("Running"),
                    stacks("DELETE_IN_PROGRESS"),
                    stop_fails("ValidationException", "Inference experiment shadow-test does not exist"),
                    describe_fails("ValidationException", "Inference experiment shadow-test does not exist"),
                ],
                None,
            ),
            (
                "delete-vanishes-in-a-later-link",
                [describe("Stopping"), describe_fails("ResourceNotFound", "not found")],
                continued(stop_sent=True),
            ),
        )
    ],
    Case(
        ("Update", "a promotion guard fails, on_failure Fail"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            metrics_read(GOOD_SHADOW, PRODUCTION, status="PartialData"),
        ],
        status="FAILED",
        reason="Promotion guard for shadow-test: Inconclusive: not enough evidence: the shadow variant's "
        "InvocationModelErrors came "
        "back incomplete (PartialData); nothing stopped",
        edit=guarded(),
        id="guard-partial-metrics",
    ),
    Case(
        ("Delete", "a promotion guard fails"),
        "Delete",
        [
            stacks("DELETE_IN_PROGRESS"),
            describe("Running"),
            stacks("DELETE_IN_PROGRESS"),
            Call("cloudwatch", "get_metric_data", {}, raises=EndpointConnectionError(endpoint_url=MONITORING)),
            stacks("DELETE_IN_PROGRESS"),
            fallback_stop(UNREACHABLE_WHY, inconclusive=True),
            describe("Completed"),
        ],
        data_status="Completed",
        decision=f"Inconclusive: {UNREACHABLE_WHY}",
        edit=guarded(),
        id="delete-guard-cloudwatch-unreachable",
    ),
    *[
        Case(
            ("any", "malformed properties"),
            request_type,
            calls,
            status=status,
            reason='DesiredModelVariants[0] InstanceType must be a string; got a list ["ml.m5.xlarge"]',
            logged="Not stopping on Delete: DesiredModelVariants[0] InstanceType must be a string; got a list "
            '["ml.m5.xlarge"]'
            if request_type == "Delete"
            else "",
            edit=instance_type(["ml.m5.xlarge"]),
            id=f"{request_type.lower()}-instance-type-a-list",
        )
        for request_type, calls, status in (
            ("Update", [stacks("UPDATE_IN_PROGRESS")], "FAILED"),
            ("Delete", [], "SUCCESS"),
        )
    ],
    Case(
        ("any", "throttling / 5xx"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            describe("Stopping"),
            describe_fails("ThrottlingException", "Rate exceeded", retries=7),
            describe("Completed"),
        ],
        data_status="Completed",
        logged="Rate exceeded); still waiting",
        sleeps=[2.0, 3.0],
        id="throttled-while-waiting",
    ),
    Case(
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Stopping", StatusReason=STOP["Reason"])],
        data_status="Stopping",
        decision="NoGuard",
        edit=props(CompletionTimeoutSeconds="0"),
        sent_ago=90,  # late for a stop, but its own stop was accepted: SUCCESS, as the first delivery answered
        id="no-wait-duplicate-while-stopping",
    ),
    Case(
        ("Update/Delete", "an earlier delivery of the same event stopped it"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Completed", StatusReason=STOP["Reason"], CompletionTime=AFTER_SENT)],
        data_status="Completed",
        decision="Promoted",  # read from the Reason it sent: the guard is not judged again
        edit=guarded(),
        sent_ago=DUPLICATE_SENT_AGO,
        id="guarded-duplicate-reads-no-metrics",
    ),
    Case(
        ("Update/Delete", "the stack moved on before a postponed stop"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Starting"),
            describe("Running"),
            stacks("UPDATE_ROLLBACK_IN_PROGRESS"),
        ],
        logged="The stack is UPDATE_ROLLBACK_IN_PROGRESS: a rollback never stops an experiment",
        edit=guarded(),  # the stack is read before the guard is judged: a rollback never fails on a guard
        sleeps=[2.0],
        id="guarded-postponed-stop-rolled-back",
    ),
    Case(
        ("Update/Delete", "the event arrives after its deadline"),
        "Update",
        [stacks("UPDATE_IN_PROGRESS"), describe("Running")],
        status="FAILED",
        reason="The Update came too late (540 s after its deadline, 600 s after CloudFormation sent it)",
        edit=props(CompletionTimeoutSeconds="0"),  # "at once": within a minute of being sent
        sent_ago=600,
        id="no-wait-update-late",
    ),
    Case(
        ("Update", "completion timeout reached while still Stopping"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            *[describe_fails("ThrottlingException", "Rate exceeded")] * 6,
        ],
        status="FAILED",
        reason="Inference experiment shadow-test is still Running after 20 s (CompletionTimeoutSeconds 20)",
        edit=props(CompletionTimeoutSeconds="20"),
        sleeps=[2.0, 3.0, 4.5, 6.0, 4.5],
        id="update-stop-accepted-then-unreadable",
    ),
    Case(
        ("any", "throttling / 5xx"),
        "Delete",
        [
            stacks("DELETE_IN_PROGRESS"),
            describe("Running"),
            stacks("DELETE_IN_PROGRESS"),
            Call(
                "sagemaker",
                "stop_inference_experiment",
                STOP,
                error=("ThrottlingException", "Rate exceeded"),
                retries=7,
            ),
            describe("Running"),  # whether the stop was taken all the same: not Stopping
        ],
        logged="StopInferenceExperiment on shadow-test could not be sent (Rate exceeded); it may not have been "
        "stopped; answering SUCCESS",
        id="delete-stop-throttled",
    ),
    *[
        Case(
            ("Update/Delete", "a promotion guard's alarm is in ALARM before the stop"),
            "Update",
            [
                stacks("UPDATE_IN_PROGRESS"),
                describe("Running"),
                stacks("UPDATE_IN_PROGRESS"),
                alarms(shadow_latency="ALARM"),
                *tail,
            ],
            status=status,
            reason=reason,
            data_status="Completed" if status == "SUCCESS" else None,
            decision="FellBack: alarm shadow-latency is in ALARM" if status == "SUCCESS" else None,
            edit=alarm_guarded(OnFailure=on_failure),
            id=f"alarm-before-the-stop-{on_failure.lower()}",
        )
        for on_failure, tail, status, reason in (
            (
                "Fail",
                [],
                "FAILED",
                "Promotion guard for shadow-test: Failed: alarm shadow-latency is in ALARM; nothing stopped",
            ),
            (
                "FallBack",
                [
                    stacks("UPDATE_IN_PROGRESS"),
                    fallback_stop("alarm shadow-latency is in ALARM"),
                    describe("Completed"),
                ],
                "SUCCESS",
                "",
            ),
        )
    ],
    Case(
        ("Update/Delete", "a promotion guard's alarm is in ALARM before the stop"),
        "Update",
        [
            stacks("UPDATE_IN_PROGRESS"),
            describe("Running"),
            stacks("UPDATE_IN_PROGRESS"),
            alarms(shadow_latency="OK"),
            stacks("UPDATE_IN_PROGRESS"),
            stop(),
            describe("Completed"),
        ],
        data_status="Completed",
        decision="Promoted",
        edit=alarm_guarded(),
        id="alarms-ok-promotes-reading-no-metrics",
    ),
    *[
        Case(
            ("Update/Delete", "a promotion guard is inconclusive"),
            "Update",
            [stacks("UPDATE_IN_PROGRESS"), describe("Running"), stacks("UPDATE_IN_PROGRESS"), read, *tail],
            status=status,
            reason=f"Promotion guard for shadow-test: Inconclusive: {why}; nothing stopped"
            if status == "FAILED"
            else "",
            data_status="Completed" if status == "SUCCESS" else None,
            decision=f"Inconclusive: {why}" if status == "SUCCESS" else None,
            edit=edit,
            id=case_id,
        )
        for case_id, read, edit, why, tail, status in (
            (
                "inconclusive-fails-though-failure-falls-back",
                metrics_read({**GOOD_SHADOW, "Invocations": [10.0]}, PRODUCTION),
                guarded(OnFailure="FallBack", OnInconclusive="Fail"),
                "not enough evidence: the shadow had 10 invocations, fewer than 1,000",
                [],
                "FAILED",
            ),
            (
                "inconclusive-falls-back-though-failure-fails",
                metrics_read({**GOOD_SHADOW, "Invocations": [10.0]}, PRODUCTION),
                guarded(OnFailure="Fail", OnInconclusive="FallBack"),
                "not enough evidence: the shadow had 10 invocations, fewer than 1,000",
                [
                    stacks("UPDATE_IN_PROGRESS"),
                    fallback_stop(
                        "not enough evidence: the shadow had 10 invocations, fewer than 1,000", inconclusive=True
                    ),
                    describe("Completed"),
                ],
                "SUCCESS",
            ),
            (
                "alarm-without-data-is-inconclusive",
                alarms(shadow_latency="INSUFFICIENT_DATA"),
                alarm_guarded(),
                "no check gave evidence: alarm shadow-latency is INSUFFICIENT_DATA",
                [],
                "FAILED",
            ),
            (
                "alarm-not-found-is-inconclusive",
                alarms(shadow_latency="missing"),
                alarm_guarded(),
                "alarm shadow-latency was not found",
                [],
                "FAILED",
            ),
        )
    ],
    *[
        Case(
            ("Update/Delete", "a promotion guard's significance test"),
            "Update",
            [
                stacks("UPDATE_IN_PROGRESS"),
                describe("Running"),
                stacks("UPDATE_IN_PROGRESS"),
                metrics_read(
                    {**GOOD_SHADOW, "Latency": [max(shadow)], "LatencySeries": shadow},
                    {**PRODUCTION, "Latency": [max(PRODUCTION_SERIES)], "LatencySeries": PRODUCTION_SERIES},
                    statistic="Maximum",
                    series_period=300,
                ),
                *tail,
            ],
            status=status,
            reason=reason,
            data_status="Completed" if status == "SUCCESS" else None,
            decision="Promoted" if status == "SUCCESS" else None,
            edit=guarded(LatencyStatistic="Maximum", MaxErrorRate="", Confidence="0.95", PeriodSeconds="300"),
            logged=logged,
            id=case_id,
        )
        for case_id, shadow, tail, status, reason, logged in (
            (
                "significance-passes-a-noisy-but-equal-shadow",
                NOISY_EQUAL_SHADOW,
                [stacks("UPDATE_IN_PROGRESS"), stop(), describe("Completed")],
                "SUCCESS",
                "",
                "is not significantly higher than 1.10 x production's (Mann-Whitney U p = ",
            ),
            (
                "significance-fails-a-shadow-20-percent-slower",
                [value * 1.2 for value in PRODUCTION_SERIES],
                [],
                "FAILED",
                "Promotion guard for shadow-test: Failed: shadow Maximum ModelLatency per 5-minute period is "
                "significantly higher than 1.10 x production's (Mann-Whitney U p = ",
                "",
            ),
        )
    ],
    *[
        Case(
            ("Update/Delete", "the decision is announced"),
            "Update",
            [
                stacks("UPDATE_IN_PROGRESS"),
                describe("Running"),
                stacks("UPDATE_IN_PROGRESS"),
                stop(),
                put,
                describe("Completed"),
            ],
            data_status="Completed",
            logged=logged,
            id=case_id,
        )
        for case_id, put, logged in (
            ("decision-put-on-the-default-bus", decision_put(), '"decision": "NoGuard"'),
            (
                "decision-put-fails-and-the-answer-stands",
                decision_put(error=("AccessDeniedException", "not authorized to perform events:PutEvents")),
                "The decision was not put on the default event bus",
            ),
        )
    ],
]


def raiser(call: Call) -> Callable[..., None]:
    """A client method that raises the call's botocore error, as botocore does when AWS cannot be reached."""

    def method(**_: Any) -> None:
        assert call.raises is not None
        raise call.raises

    return method


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> Iterator[Callable[[Case], dict[str, Any]]]:
    root, botocore_level = logging.getLogger().level, logging.getLogger("botocore").level
    # The worst case for leaks: crhelper at DEBUG logs the whole event, and botocore logs every request.
    monkeypatch.setattr(index.helper, "_log_level", "DEBUG")
    monkeypatch.setattr(index.helper, "_boto_level", "DEBUG")
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)
    monkeypatch.setattr(lifecycle, "_SEEN", type(lifecycle._SEEN)(maxlen=64))  # each case is a new event
    caplog.set_level(logging.DEBUG)
    clock = FakeClock()

    def run_case(case: Case) -> dict[str, Any]:
        clients: dict[str, Any] = {
            name: boto3.client(name, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
            for name in ("sagemaker", "cloudformation", "lambda", "cloudwatch", "events")
        }
        stubbers = {name: Stubber(client) for name, client in clients.items()}
        for call in case.calls:
            stubber = stubbers[call.client]
            if call.raises is not None:
                setattr(clients[call.client], call.method, raiser(call))  # the Stubber would refuse the call first
                continue
            if call.error:
                code, message = call.error
                stubber.add_client_error(
                    call.method,
                    code,
                    message,
                    expected_params=call.params,
                    response_meta={"RetryAttempts": call.retries},
                )
            else:
                stubber.add_response(call.method, call.response or {}, call.params)
        services = lifecycle.Services(
            clients["sagemaker"],
            clients["cloudformation"],
            clock,
            clients["lambda"],
            clients["cloudwatch"],
            jitter=lambda: 0.0,  # the base pauses, so that each row's sleeps are exact
            # The decision's EventBridge put is stubbed where a row shows it; elsewhere it is only logged.
            events=clients["events"] if any(call.client == "events" for call in case.calls) else None,
        )
        monkeypatch.setattr(index, "services", lambda: services)
        event = load_event(case.request_type)
        if case.edit:
            case.edit(event)
        event["ResponseURL"] = response_server.url + case.url_query
        if case.sent_ago is not None:
            signed = datetime.datetime.fromtimestamp(clock.time() - case.sent_ago, datetime.UTC)
            event["ResponseURL"] += f"&X-Amz-Date={signed:%Y%m%dT%H%M%SZ}"
        with (
            stubbers["sagemaker"],
            stubbers["cloudformation"],
            stubbers["lambda"],
            stubbers["cloudwatch"],
            stubbers["events"],
        ):
            index.handler(event, ClockContext(clock, case.remaining_millis))
            for stubber in stubbers.values():
                stubber.assert_no_pending_responses()
        case_sleeps = clock.sleeps
        if case.sleeps is not None:
            assert case_sleeps == case.sleeps
        return response_server.only_answer

    yield run_case
    logging.getLogger().setLevel(root)
    logging.getLogger("botocore").setLevel(botocore_level)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_lifecycle_row(
    case: Case,
    run: Callable[[Case], dict[str, Any]],
    response_server: ResponseServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answer = run(case)

    assert answer["Status"] == case.status, answer["Reason"]
    assert answer["StackId"] == STACK_ID
    assert answer["LogicalResourceId"] == "StopShadowTest04108110"
    assert answer["RequestId"] == load_event(case.request_type)["RequestId"]
    if case.status == "FAILED":
        assert case.reason in answer["Reason"]
        assert len(answer["Reason"]) < 256
    else:
        assert answer["PhysicalResourceId"] == case.physical_id
        assert set(answer["Data"]) == {"InferenceExperimentArn", "Status", "EndpointStatus", "Decision"}
        stopped = any(call.method == "stop_inference_experiment" and not call.error for call in case.calls)
        assert answer["Data"]["Decision"] == (case.decision if case.decision is not None else "NoGuard" * stopped)
        assert answer["Data"]["Status"] == (case.data_status or "Unknown")
        described = case.data_status not in (None, "NotFound")
        expected_endpoint = case.endpoint_status if case.endpoint_status is not None else "InService" * described
        assert answer["Data"]["EndpointStatus"] == expected_endpoint
        if case.data_status not in (None, "NotFound"):
            assert answer["Data"]["InferenceExperimentArn"] == ARN.replace(NAME, case.physical_id)
    assert case.logged in caplog.text
    secret = "X-Amz-Signature=deadbeefcafe0123456789"
    assert "DEBUG" in {record.levelname for record in caplog.records}, "the leak check needs DEBUG records"
    assert secret not in caplog.text
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert response_server.headers[0]["Content-Type"] == ""


def test_a_failed_create_answers_with_a_physical_id_that_is_not_an_experiment_name(
    run: Callable[[Case], dict[str, Any]],
) -> None:
    answer = run(Case(("Create", "ResourceNotFound"), "Create", [describe_fails("ResourceNotFound", "not found")]))

    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"].startswith("ShadowTestStack_StopShadowTest04108110_")


def test_the_previous_declarations_reason_is_weighed_once_while_someone_elses_stop_is_waited_out(
    run: Callable[[Case], dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an Update whose previous declaration sent the same Reason with other actions, and the experiment still
    # Stopping with it over two polls
    same_reason = old_props(
        Reason=STOP["Reason"],
        ModelVariantActions={"shadow": "Remove", "production": "Retain"},
        DesiredModelVariants=None,
    )
    calls = [
        stacks("UPDATE_IN_PROGRESS"),
        describe("Stopping", StatusReason=STOP["Reason"]),
        describe("Stopping", StatusReason=STOP["Reason"]),
        describe("Completed", StatusReason=STOP["Reason"], CompletionTime=AFTER_SENT),
    ]

    # WHEN it waits the stop out
    answer = run(Case(("Update", "Stopping"), "Update", calls, edit=same_reason, sent_ago=DUPLICATE_SENT_AGO))

    # THEN the stop is not taken for its own, and that is weighed (and logged) once, not at every poll
    assert answer["Status"] == "FAILED"
    assert "stopped by someone else" in answer["Reason"]
    assert caplog.text.count("which this Update's previous declaration sends too") == 1


def readme_rows() -> set[tuple[str, str]]:
    """The (event, situation) cells of the README's lifecycle table."""
    text = README.read_text()
    table = text.split("<!-- lifecycle-table -->")[1]
    rows = set()
    for line in table.strip().splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [re.sub(r"[`*]", "", cell).strip() for cell in line.strip("|").split("|")]
        rows.add((cells[0], cells[1]))
    return rows


# Rows whose situation takes more than one run of the function, tested on their own.
ROWS_TESTED_ELSEWHERE = {
    ("Update/Delete", "a wait longer than one run of the function"): "tests/test_long_waits.py",
    ("Update", "an alarm fires during the bake"): "tests/test_bake.py",
    ("Update", "an alarm in ALARM between two looks of the bake"): "tests/test_bake.py",
    ("Update", "every alarm lacked data for the whole bake"): "tests/test_bake.py",
    ("Update", "the bake cannot end before the deadline"): "tests/test_bake.py",
    ("Update", "a late link of a bake, or the endpoint changed since"): "tests/test_bake.py",
    ("Update", "a copy of the Update during or after the bake"): "tests/test_bake.py",
    ("Update/Delete", "a promotion guard's alarm is in INSUFFICIENT_DATA before the stop"): "tests/test_guard_rows.py",
    (
        "Update/Delete",
        "a promotion guard's window reaches back before the experiment started",
    ): "tests/test_guard_rows.py",
}


def test_every_readme_lifecycle_row_has_a_case_and_every_case_a_row() -> None:
    assert readme_rows() == {case.row for case in CASES} | set(ROWS_TESTED_ELSEWHERE)
