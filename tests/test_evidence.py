"""The guard's evidence read whole: every GetMetricData and DescribeAlarms page, a figure complete only at the end.

Each request is checked by botocore's Stubber against the real CloudWatch model.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

import boto3
import evidence
from botocore.stub import ANY, Stubber
from described import experiment
from properties import Guard

SENT = 1_795_305_600.0
GUARD = Guard(
    latency_statistic="p99",
    min_invocations=1000,
    on_failure="Fail",
    max_latency_ratio=1.1,
    confidence=0.95,
    period_seconds=60,
    window_seconds=15 * 24 * 3600,
)


class Declaration:
    """The part of a declaration the guard reads."""

    name = "shadow-test"
    model_variant_actions: ClassVar[dict[str, str]] = {"shadow": "Promote", "production": "Remove"}


def result(query_id: str, values: list[float], status: str) -> dict[str, Any]:
    end = datetime.datetime.fromtimestamp(SENT, datetime.UTC)
    return {"Id": query_id, "Timestamps": [end] * len(values), "Values": values, "StatusCode": status}


def page(status: str, shadow: list[float], production: list[float], token: str | None) -> dict[str, Any]:
    results = [
        result("shadowLatencySeries", shadow, status),
        result("productionLatencySeries", production, status),
    ]
    if token is None:  # the aggregates come whole on the last page
        results += [
            result(f"{role}{name}", values, "Complete")
            for role in ("shadow", "production")
            for name, values in (("Latency", [30_000.0]), ("Invocations", [15_000.0]), ("ModelErrors", [3.0]))
        ]
    answer: dict[str, Any] = {"MetricDataResults": results}
    if token:
        answer["NextToken"] = token
    return answer


def test_a_long_window_at_a_short_period_is_read_over_every_page() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    stubber = Stubber(client)
    production = [30_000.0 + i % 7 for i in range(21_600)]  # 15 days at one-minute periods
    shadow = [value * 1.2 for value in production]
    halves = [(shadow[:10_800], production[:10_800]), (shadow[10_800:], production[10_800:])]
    request = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY}
    stubber.add_response("get_metric_data", page("PartialData", *halves[0], "page-2"), request)
    stubber.add_response("get_metric_data", page("Complete", *halves[1], None), {**request, "NextToken": "page-2"})

    with stubber:
        verdict = evidence.judge(GUARD, Declaration(), experiment("Running"), client, SENT)  # type: ignore[arg-type]
        stubber.assert_no_pending_responses()

    assert verdict.outcome == "fail", verdict.reason
    assert "21600 and 21600 periods" in verdict.reason


def test_a_figure_still_partial_after_the_last_page_is_inconclusive() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    stubber = Stubber(client)
    answer = page("Complete", [30_000.0] * 20, [30_000.0] * 20, None)
    answer["MetricDataResults"][0]["StatusCode"] = "PartialData"
    stubber.add_response("get_metric_data", answer, {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY})

    with stubber:
        verdict = evidence.judge(GUARD, Declaration(), experiment("Running"), client, SENT)  # type: ignore[arg-type]

    assert verdict.outcome == "inconclusive"
    assert "came back incomplete (PartialData)" in verdict.reason


def test_alarms_are_read_over_every_page_metric_and_composite_alike() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    stubber = Stubber(client)
    request = {"AlarmNames": ["a", "b", "c"], "AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "MaxRecords": 100}
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": [{"AlarmName": "a", "StateValue": "OK"}], "CompositeAlarms": [], "NextToken": "more"},
        request,
    )
    stubber.add_response(
        "describe_alarms",
        {"MetricAlarms": [], "CompositeAlarms": [{"AlarmName": "b", "StateValue": "ALARM"}]},
        {**request, "NextToken": "more"},
    )

    with stubber:
        states = evidence.alarm_states(client, ("a", "b", "c"))

    assert states == {"a": "OK", "b": "ALARM"}
    verdict = evidence.alarm_verdict(("a", "b", "c"), states)
    assert verdict.outcome == "fail"
    assert [check.outcome for check in verdict.checks] == ["pass", "fail", "inconclusive"]
    assert verdict.reason == "alarm b is in ALARM"
