"""The guard's evidence read whole: every GetMetricData and DescribeAlarms page, a figure complete only at the end.

Each request is checked by botocore's Stubber against the real CloudWatch model.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

import boto3
import evidence
import pytest
from botocore.stub import ANY, Stubber
from described import experiment
from metrics import Check, Verdict
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


@pytest.mark.parametrize(
    ("outcomes", "outcome", "reason"),
    [
        (["pass", "no evidence"], "pass", "check 0; check 1 (no evidence)"),
        (["no evidence", "pass", "no evidence"], "pass", "check 0 (no evidence); check 1; check 2 (no evidence)"),
        (["no evidence", "fail"], "fail", "check 1"),
        (["no evidence", "inconclusive", "pass"], "inconclusive", "check 1"),
        (["no evidence"], "inconclusive", "no check gave evidence: check 0"),
        (["no evidence", "no evidence"], "inconclusive", "no check gave evidence: check 0; check 1"),
        ([], "inconclusive", "no check gave evidence: the guard has no checks"),
        (["pass", "pass"], "pass", "check 0; check 1"),
    ],
    ids=[
        "a-pass-beside-no-evidence-passes",
        "no-evidence-on-both-sides-of-a-pass",
        "a-failure-beside-no-evidence-fails",
        "inconclusive-beside-no-evidence-stays-inconclusive",
        "no-evidence-alone-is-inconclusive",
        "every-check-without-evidence-is-inconclusive",
        "no-checks-is-no-pass",
        "every-check-passes",
    ],
)
def test_a_check_without_evidence_neither_passes_nor_fails_the_verdict(
    outcomes: list[Any], outcome: str, reason: str
) -> None:
    verdict = Verdict(tuple(Check(f"check {i}", found, f"check {i}") for i, found in enumerate(outcomes)))

    assert (verdict.outcome, verdict.reason) == (outcome, reason)


def test_an_alarm_without_data_gives_no_evidence_and_one_not_found_is_inconclusive() -> None:
    states = {"a": "OK", "b": "INSUFFICIENT_DATA"}

    verdict = evidence.alarm_verdict(("a", "b", "c"), states)

    assert [check.outcome for check in verdict.checks] == ["pass", "no evidence", "inconclusive"]
    assert verdict.outcome == "inconclusive"
    assert verdict.reason == "alarm c was not found"
    passed = evidence.alarm_verdict(("a", "b"), states)
    assert (passed.outcome, passed.reason) == ("pass", "alarm a is OK; alarm b is INSUFFICIENT_DATA (no evidence)")
