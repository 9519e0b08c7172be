"""A promotion guard's evidence, through index.handler: what counts as evidence, and what is announced.

Rows of issue 20: an alarm in INSUFFICIENT_DATA is no evidence; the window never starts before the experiment
did; every announcement is strict JSON. SageMaker, CloudWatch and EventBridge requests are checked by botocore
(Stubber with `expected_params`, or, where figures must depend on the window asked for, a metric store that
validates each request against CloudWatch's model); CloudFormation answers that the stack is updating however
often it is read; the answer is really PUT to a local server, and time is a fake clock.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import announce
import boto3
import evidence
import index
import lifecycle
import pytest
from botocore.stub import ANY, Stubber
from botocore.validate import validate_parameters
from conftest import ARN, CLOCK_START, NAME, REGION, ClockContext, FakeClock, ResponseServer, experiment, load_event
from metrics import Check, Verdict
from properties import Guard
from simulated_aws import METRICS
from test_lifecycle import STOP

HOUR, DAY = 3600, 86400
Call = tuple[str, dict[str, Any], dict[str, Any]]  # (method, expected params, answer)
THRESHOLDS = {
    "MaxLatencyRatio": "1.1",
    "LatencyStatistic": "p99",
    "MaxErrorRate": "0.001",
    "MinInvocations": "1000",
    "OnFailure": "Fail",
}
GOOD = METRICS  # a shadow that beats production


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
        # The Detail as the client was asked to send it (botocore then validates the request, the Stubber answers).
        events.meta.events.register(
            "before-parameter-build.events.PutEvents",
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


# --- The window never starts before the experiment did: figures from before the test are not its evidence ------------


@dataclass
class MetricStore:
    """CloudWatch's AWS/SageMaker figures for the endpoint, one datapoint a minute per variant, answered as
    GetMetricData does: what lies from StartTime (rounded down to the whole minute, as CloudWatch rounds a start
    less than 15 days ago) to EndTime, as one aggregate per query. Every request is validated against
    CloudWatch's service model and recorded."""

    minutes: dict[str, list[tuple[float, float]]]  # variant -> [(minute, invocations)]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        model = client("cloudwatch").meta.service_model.operation_model("GetMetricData")
        validate_parameters(request, model.input_shape)  # raises on a request CloudWatch would refuse
        self.requests.append(request)
        start = math.floor(request["StartTime"].timestamp() / 60) * 60
        end = request["EndTime"].timestamp()
        results = []
        for query in request["MetricDataQueries"]:
            stat = query["MetricStat"]
            [variant] = [d["Value"] for d in stat["Metric"]["Dimensions"] if d["Name"] == "VariantName"]
            counts = [count for minute, count in self.minutes.get(variant, []) if start <= minute < end]
            value = {"Invocations": sum(counts), "InvocationModelErrors": 0.0, "ModelLatency": 28_000.0}
            found = [value[stat["Metric"]["MetricName"]]] if counts else []
            results.append({"Id": query["Id"], "Timestamps": [request["EndTime"]] * len(found), "Values": found})
            results[-1]["StatusCode"] = "Complete"
        return {"MetricDataResults": results}


def busy(variant: str, since: float, until: float) -> list[tuple[float, float]]:
    """A variant's invocations: 200 a minute, at each whole minute from `since` to `until`."""
    first = math.ceil(since / 60) * 60
    return [(minute, 200.0) for minute in range(int(first), int(until), 60)]


def at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


SEVEN_DAYS = {**THRESHOLDS, "WindowSeconds": str(7 * DAY)}
TWO_HOURS_AGO = CLOCK_START - 2 * HOUR  # the experiment's start: the event is sent at CLOCK_START


@pytest.mark.parametrize(
    "started",
    [
        {"CreationTime": at(TWO_HOURS_AGO)},
        {"CreationTime": at(CLOCK_START - DAY), "Schedule": {"StartTime": at(TWO_HOURS_AGO)}},
    ],
    ids=["created-two-hours-ago", "created-a-day-ago-scheduled-to-start-two-hours-ago"],
)
def test_a_seven_day_window_on_a_two_hour_old_experiment_reads_from_its_start(
    run: Callable[[Row], Ran], started: dict[str, Any]
) -> None:
    # GIVEN an experiment that started two hours ago on an endpoint whose variants served since, a guard of 7 days
    store = MetricStore({name: busy(name, TWO_HOURS_AGO - DAY, CLOCK_START) for name in ("shadow", "production")})
    sagemaker = [describe("Running", **started), stop(), describe("Completed")]

    # WHEN the Update judges it
    ran = run(Row(SEVEN_DAYS, sagemaker, store))

    # THEN one read, from no earlier than the experiment's start (after CloudWatch rounds it down) to the event
    assert ran.answer["Status"] == "SUCCESS", ran.answer.get("Reason")
    assert ran.answer["Data"]["Decision"] == "Promoted"
    [read] = store.requests
    assert read["EndTime"] == at(CLOCK_START)
    assert read["StartTime"] >= at(TWO_HOURS_AGO)
    assert math.floor(read["StartTime"].timestamp() / 60) * 60 >= TWO_HOURS_AGO
    assert read["EndTime"] - read["StartTime"] > datetime.timedelta(hours=1, minutes=58)  # the whole test is read
    assert not ran.pending


@pytest.mark.parametrize(
    "started",
    [
        {"CreationTime": at(TWO_HOURS_AGO)},
        {"CreationTime": at(CLOCK_START - DAY), "Schedule": {"StartTime": at(TWO_HOURS_AGO)}},
    ],
    ids=["created-two-hours-ago", "created-a-day-ago-scheduled-to-start-two-hours-ago"],
)
def test_a_previous_tests_figures_on_the_same_endpoint_are_not_this_tests_evidence(
    run: Callable[[Row], Ran], started: dict[str, Any]
) -> None:
    # GIVEN a previous test's shadow variant, of the same name on the same endpoint, busy until three hours ago, and
    # this experiment, two hours old, whose shadow has had no invocations of its own
    before = {name: busy(name, CLOCK_START - 3 * DAY, CLOCK_START - 3 * HOUR) for name in ("shadow", "production")}
    store = MetricStore(
        {"shadow": before["shadow"], "production": [*before["production"], *busy("p", TWO_HOURS_AGO, CLOCK_START)]}
    )

    # WHEN an Update with a 7-day window judges it
    ran = run(Row(SEVEN_DAYS, [describe("Running", **started)], store))

    # THEN nothing is promoted: the shadow has no invocations since the experiment started
    assert ran.answer["Status"] == "FAILED"
    assert ran.answer["Reason"] == (
        "Promotion guard for shadow-test: Inconclusive: not enough evidence: the shadow variant's Invocations has no "
        "datapoints; nothing stopped"
    )
    assert not ran.pending


class Declaration:
    """The part of a declaration the guard reads."""

    name = NAME
    model_variant_actions: ClassVar[dict[str, str]] = {"shadow": "Promote", "production": "Remove"}


WINDOWS = {
    # id: (what the experiment says of its start, the guard's window, the read's start or the inconclusive reason)
    "a-window-shorter-than-the-test-is-kept": ({"CreationTime": at(CLOCK_START - DAY)}, HOUR, CLOCK_START - HOUR),
    "no-start-known-keeps-the-window": ({}, HOUR, CLOCK_START - HOUR),
    "no-window-reads-from-the-first-whole-minute-of-the-test": (
        {"CreationTime": at(TWO_HOURS_AGO + 30)},
        None,
        CLOCK_START - 7080,  # its first whole minute is 7,120 s before the end: 118 whole minutes fit
    ),
    "no-window-and-no-start-is-inconclusive": (
        {},
        None,
        "not enough evidence: the experiment's start is not known; give the guard a window",
    ),
    "a-test-younger-than-a-minute-is-inconclusive": (
        {"CreationTime": at(CLOCK_START - 30)},
        None,
        "not enough evidence: the experiment had run less than a whole minute when the event was sent",
    ),
    "a-window-on-a-test-younger-than-a-minute-is-inconclusive": (
        {"CreationTime": at(CLOCK_START - 30)},
        HOUR,
        "not enough evidence: the experiment had run less than a whole minute when the event was sent",
    ),
}


@pytest.mark.parametrize(("started", "window", "expected"), WINDOWS.values(), ids=WINDOWS.keys())
def test_the_window_is_the_guards_but_never_before_the_experiments_start(
    started: dict[str, Any], window: int | None, expected: float | str
) -> None:
    store = MetricStore({name: busy(name, CLOCK_START - 3 * DAY, CLOCK_START) for name in ("shadow", "production")})
    guard = Guard("p99", 1000, "Fail", max_latency_ratio=1.1, window_seconds=window)

    verdict = evidence.judge(guard, Declaration(), experiment("Running", **started), store, CLOCK_START)  # type: ignore[arg-type]

    if isinstance(expected, str):
        assert (verdict.outcome, verdict.reason) == ("inconclusive", expected)
        assert store.requests == []
        return
    assert verdict.outcome == "pass", verdict.reason
    [read] = store.requests
    assert (read["StartTime"], read["EndTime"]) == (at(expected), at(CLOCK_START))
    periods = {query["MetricStat"]["Period"] for query in read["MetricDataQueries"]}
    assert periods == {CLOCK_START - expected}


# --- Every announcement is strict JSON: no NaN or Infinity, also where the significance test has no p-value ----------


def strict(text: str) -> Any:
    """JSON as every parser reads it: NaN, Infinity and -Infinity are refused (Python's json accepts them)."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


TIED = {
    **{query_id: values for query_id, values in GOOD.items()},
    "shadowLatencySeries": [30_000.0] * 12,
    "productionLatencySeries": [30_000.0 / 1.1] * 12,  # x 1.1: every value the same as the shadow's
}
SIGNIFICANCE = {**THRESHOLDS, "MaxErrorRate": None, "WindowSeconds": "86400", "Confidence": "0.95"}
TIED_WHY = "not enough evidence: every p99 ModelLatency per 5-minute period value is tied, so the test has no p-value"


@pytest.mark.parametrize(
    ("on_inconclusive", "sagemaker", "status"),
    [
        ("Fail", [describe("Running")], "FAILED"),
        (
            "FallBack",
            [
                describe("Running"),
                (
                    "stop_inference_experiment",
                    {
                        "Name": NAME,
                        "ModelVariantActions": {"shadow": "Remove", "production": "Retain"},
                        "DesiredState": "Completed",
                        "Reason": f"Promotion guard inconclusive, shadow removed: {TIED_WHY}",
                    },
                    {"InferenceExperimentArn": ARN},
                ),
                describe("Completed"),
            ],
            "SUCCESS",
        ),
    ],
    ids=["fails-the-update", "falls-back"],
)
def test_a_tied_significance_test_is_announced_as_strict_json_with_a_null_p_value(
    run: Callable[[Row], Ran], on_inconclusive: str, sagemaker: list[Call], status: str
) -> None:
    # GIVEN a significance test whose every value is tied (no p-value exists)
    guard = {key: value for key, value in {**SIGNIFICANCE, "OnInconclusive": on_inconclusive}.items() if value}

    # WHEN an Update judges it
    ran = run(Row(guard, sagemaker, [metrics(TIED)], puts=1))

    # THEN its decision is announced in the log and on the bus as JSON that any parser reads, the p-value null and why
    assert ran.answer["Status"] == status, ran.answer.get("Reason")
    assert [len(ran.log_lines), len(ran.details)] == [1, 1]
    logged = strict(ran.log_lines[0])["InferenceExperimentStopDecision"]
    put = strict(ran.details[0])
    assert logged == put
    assert put["decision"] == f"Inconclusive: {TIED_WHY}"
    [latency] = [check for check in put["checks"] if check["name"] == "latency"]
    assert latency["outcome"] == "inconclusive"
    assert latency["p_value"] is None
    assert latency["text"] == TIED_WHY
    assert not ran.pending


def test_no_figure_that_is_not_a_finite_number_reaches_an_announcement(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN checks whose figures hold NaN and infinities, at any depth, and a put that records its Detail
    nan, inf = float("nan"), float("inf")
    figures = {"p_value": nan, "ratios": [1.0, inf, (-inf, 2.0)], "nested": {"deep": {"z": nan}}, "u": 72.0}
    verdict = Verdict((Check("latency", "inconclusive", "why", figures), Check("alarm a", "pass", "ok", {"x": -inf})))
    sent: list[str] = []

    class Events:
        def put_events(self, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
            sent.extend(entry["Detail"] for entry in Entries)
            return {"FailedEntryCount": 0}

    caplog.set_level(logging.INFO)
    context = announce.Context(NAME, "stack", "Stopper", "request", "Update")

    # WHEN the decision is announced
    announce.announce(
        Events(),  # type: ignore[arg-type]
        context,
        "Inconclusive: why",
        "nothing stopped",
        declared={},
        sent=None,
        verdict=verdict,
        thresholds={"max_latency_ratio": inf},
    )

    # THEN the log line and the Detail are strict JSON, each non-finite figure null and every finite one kept
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith('{"InferenceExperimentStopDecision"')]
    for text in (strict(line)["InferenceExperimentStopDecision"], strict(sent[0])):
        assert text["thresholds"] == {"max_latency_ratio": None}
        assert text["checks"] == [
            {
                "name": "latency",
                "outcome": "inconclusive",
                "text": "why",
                "p_value": None,
                "ratios": [1.0, None, [None, 2.0]],
                "nested": {"deep": {"z": None}},
                "u": 72.0,
            },
            {"name": "alarm a", "outcome": "pass", "text": "ok", "x": None},
        ]
