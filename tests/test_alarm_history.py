"""alarm_history.py directly: the bake's verdict from what CloudWatch recorded over its window, each request as
botocore's Stubber checks it against the service model (the shape of DescribeAlarmHistory's request is the point)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import alarm_history
import boto3
import pytest
from botocore.stub import Stubber
from outcomes import StopFailed

START = 1_795_000_000.0
WINDOW = alarm_history.Window(START, START + 600)
DESCRIBE = {"AlarmNames": ["a"], "AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "MaxRecords": 100}


def at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def described(state: str, transitioned: float, name: str = "a", *, composite: bool = False) -> dict[str, Any]:
    alarm = {"AlarmName": name, "StateValue": state, "StateTransitionedTimestamp": at(transitioned)}
    return {"MetricAlarms": [] if composite else [alarm], "CompositeAlarms": [alarm] if composite else []}


def history_item(when: float, old: str, new: str) -> dict[str, Any]:
    data = {"version": "1.0", "oldState": {"stateValue": old}, "newState": {"stateValue": new}}
    return {"AlarmName": "a", "Timestamp": at(when), "HistoryItemType": "StateUpdate", "HistoryData": json.dumps(data)}


def history_request(start: float, end: float | None, token: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AlarmName": "a",
        "AlarmTypes": ["CompositeAlarm", "MetricAlarm"],
        "HistoryItemType": "StateUpdate",
        "StartDate": at(start),
        "ScanBy": "TimestampAscending",
        "MaxRecords": 100,
    }
    if end is not None:
        request["EndDate"] = at(end)
    if token is not None:
        request["NextToken"] = token
    return request


@pytest.fixture
def cloudwatch() -> Any:
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")


def test_an_alarm_unchanged_since_before_the_bake_is_judged_without_its_history(cloudwatch: Any) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("OK", START - 3600), DESCRIBE)

    with stubber:
        verdict = alarm_history.verdict(cloudwatch, ("a",), WINDOW)

    assert verdict == alarm_history.BakeVerdict("pass", "no alarm was in ALARM for the whole bake (600 s)")
    stubber.assert_no_pending_responses()


def test_an_alarm_in_alarm_between_two_looks_is_read_from_every_page_of_its_history(cloudwatch: Any) -> None:
    # GIVEN an alarm OK now, that went to ALARM and back during the window (on the history's second page)
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("OK", START + 310), DESCRIBE)
    first = {"AlarmHistoryItems": [history_item(START + 100, "OK", "INSUFFICIENT_DATA")], "NextToken": "more"}
    stubber.add_response("describe_alarm_history", first, history_request(START, START + 600))
    second = {
        "AlarmHistoryItems": [
            history_item(START + 300, "INSUFFICIENT_DATA", "ALARM"),
            history_item(START + 310, "ALARM", "OK"),
        ]
    }
    stubber.add_response("describe_alarm_history", second, history_request(START, START + 600, "more"))

    with stubber:
        verdict = alarm_history.verdict(cloudwatch, ("a",), WINDOW)

    assert verdict == alarm_history.BakeVerdict("fail", "alarm a was in ALARM during the bake")


def test_an_alarm_in_alarm_when_the_window_began_fails_though_it_cleared(cloudwatch: Any) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("OK", START + 5), DESCRIBE)
    stubber.add_response(
        "describe_alarm_history",
        {"AlarmHistoryItems": [history_item(START + 5, "ALARM", "OK")]},
        history_request(START, START + 600),
    )

    with stubber:
        assert alarm_history.verdict(cloudwatch, ("a",), WINDOW).outcome == "fail"


def test_an_alarm_whose_only_change_came_after_the_window_keeps_the_state_it_left(cloudwatch: Any) -> None:
    # GIVEN an alarm in ALARM now, since 10 s after the window's end; OK throughout the window
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("ALARM", START + 610), DESCRIBE)
    stubber.add_response("describe_alarm_history", {"AlarmHistoryItems": []}, history_request(START, START + 600))
    stubber.add_response(
        "describe_alarm_history",
        {"AlarmHistoryItems": [history_item(START + 610, "OK", "ALARM")]},
        history_request(START + 600, None),
    )

    with stubber:
        assert alarm_history.verdict(cloudwatch, ("a",), WINDOW).outcome == "pass"


def test_a_change_in_the_window_that_the_history_does_not_show_yet_is_no_pass(cloudwatch: Any) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("OK", START + 300), DESCRIBE)
    stubber.add_response("describe_alarm_history", {"AlarmHistoryItems": []}, history_request(START, START + 600))

    with stubber:
        verdict = alarm_history.verdict(cloudwatch, ("a",), WINDOW)

    assert verdict.outcome == "fail"
    assert verdict.why == "alarm a changed state during the bake, but CloudWatch's history does not show it yet"


def test_a_history_record_that_does_not_say_its_states_counts_as_alarm(cloudwatch: Any) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("OK", START + 300), DESCRIBE)
    unreadable = {**history_item(START + 300, "OK", "OK"), "HistoryData": "not json"}
    stubber.add_response(
        "describe_alarm_history", {"AlarmHistoryItems": [unreadable]}, history_request(START, START + 600)
    )

    with stubber:
        assert alarm_history.verdict(cloudwatch, ("a",), WINDOW).outcome == "fail"


@pytest.mark.parametrize(
    ("states", "outcome"),
    [
        ({"a": "INSUFFICIENT_DATA", "b": "INSUFFICIENT_DATA"}, "inconclusive"),
        ({"a": "OK", "b": "INSUFFICIENT_DATA"}, "pass"),
        ({"a": "ALARM", "b": "INSUFFICIENT_DATA"}, "fail"),
    ],
    ids=["every-alarm-without-data", "one-ok-one-without-data", "one-in-alarm"],
)
def test_insufficient_data_throughout_is_no_evidence_either_way(
    cloudwatch: Any, states: dict[str, str], outcome: str
) -> None:
    stubber = Stubber(cloudwatch)
    answer = {
        "MetricAlarms": [described(state, START - 60, name)["MetricAlarms"][0] for name, state in states.items()],
        "CompositeAlarms": [],
    }
    stubber.add_response("describe_alarms", answer, {**DESCRIBE, "AlarmNames": ["a", "b"]})

    with stubber:
        verdict = alarm_history.verdict(cloudwatch, ("a", "b"), WINDOW)

    assert verdict.outcome == outcome


def test_a_composite_alarm_is_described_and_judged_as_a_metric_alarm_is(cloudwatch: Any) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", described("ALARM", START - 60, composite=True), DESCRIBE)

    with stubber:
        assert alarm_history.verdict(cloudwatch, ("a",), WINDOW).outcome == "fail"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"MetricAlarms": [], "CompositeAlarms": []}, "alarm a was not found during the bake"),
        (described("ALARM", START + 30), "alarm a was in ALARM during the bake"),
    ],
    ids=["gone", "in-alarm"],
)
def test_a_look_fails_the_bake_at_once_on_an_alarm_gone_or_in_alarm(
    cloudwatch: Any, answer: dict[str, Any], why: str
) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_response("describe_alarms", answer, DESCRIBE)

    with stubber:
        assert alarm_history.look(cloudwatch, ("a",)) == alarm_history.BakeVerdict("fail", why)


def test_a_throttled_look_says_nothing_and_access_denied_is_a_failure(cloudwatch: Any) -> None:
    stubber = Stubber(cloudwatch)
    stubber.add_client_error("describe_alarms", "Throttling", "Rate exceeded", 400, expected_params=DESCRIBE)
    stubber.add_client_error("describe_alarms", "AccessDenied", "not authorized", 403, expected_params=DESCRIBE)

    with stubber:
        assert alarm_history.look(cloudwatch, ("a",)) is None
        with pytest.raises(
            StopFailed, match=r"^Access denied: the function's role may not call cloudwatch:DescribeAlarms"
        ):
            alarm_history.look(cloudwatch, ("a",))


def test_the_window_starts_when_the_endpoint_began_serving_never_before_the_experiment_completed() -> None:
    endpoint: Any = {"LastModifiedTime": at(START)}

    assert alarm_history.window_of(endpoint, at(START - 100), 600) == alarm_history.Window(START, START + 600)
    assert alarm_history.window_of(endpoint, at(START + 100), 600) == alarm_history.Window(START + 100, START + 700)
    assert alarm_history.window_of(endpoint, None, 600).judged_at == START + 600 + alarm_history.SETTLE_SECONDS
