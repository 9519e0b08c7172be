"""The bake after a guarded promotion, run by index.handler link by link on the fake clock.

The guard of every case is Alarms + BakeSeconds 600 (+ RollBackTo where a rollback is declared), with the
properties as the construct writes them and CloudFormation sends them (strings; BakeSeconds at most half of
CompletionTimeoutSeconds; ServiceTimeout = CompletionTimeoutSeconds + 120). SageMaker is an experiment and its
endpoint on the fake clock, CloudWatch alarms that are OK until a given time (tests/alarms_on_a_clock.py): real
botocore clients, every request validated against the service model, every answer against the output shape.
Each hand-on Invoke is answered 202 and its payload delivered, as Lambda's async queue would, to a fresh run.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import index
import lifecycle
import pytest
from alarms_on_a_clock import (
    NEVER,
    PRODUCTION_CONFIG,
    Alarm,
    AlarmsOnAClock,
    EndpointOnAClock,
    EventBus,
    Request,
    SelfInvoker,
    StackInProgress,
)
from conftest import FUNCTION_ARN, ClockContext, FakeClock, ResponseServer, load_event

ALARM = "shadow-latency"
BAKE_SECONDS = 600
COMPLETION_TIMEOUT = 1800  # the bake is at most half of it
# As the construct writes the guard (LatencyStatistic, MinInvocations and OnFailure always), as CloudFormation sends it.
GUARD: dict[str, Any] = {
    "LatencyStatistic": "Average",
    "MinInvocations": "1000",
    "OnFailure": "Fail",
    "Alarms": [ALARM],
    "BakeSeconds": str(BAKE_SECONDS),
    "RollBackTo": PRODUCTION_CONFIG,
}
NO_ROLLBACK = {key: value for key, value in GUARD.items() if key != "RollBackTo"}
FULL_RUN_MILLIS = 900_000  # Lambda's longest run, which the construct gives a stopper waiting this long
SHORT_RUN_MILLIS = 600_000  # a run shorter than the promotion and its bake: the bake goes on in the next run
DELIVERY_SECONDS = 1.0  # Lambda's async queue, between one link's Invoke and the next link's start
MAX_POLL_SECONDS = 15.0  # waiting.MAX_POLL_SECONDS: how late an alarm or an endpoint's change may be seen
DESCRIBE_ALARMS = {"AlarmNames": [ALARM], "AlarmTypes": ["CompositeAlarm", "MetricAlarm"], "MaxRecords": 100}


@dataclass
class Chain:
    """What a chain of runs did, and what it was run against."""

    links: int
    answer: dict[str, Any]
    answered_at: float
    payloads: list[dict[str, Any]]
    endpoint: EndpointOnAClock
    alarms: AlarmsOnAClock
    bus: EventBus
    decisions: list[dict[str, Any]]  # the decision log lines (logger "announce"), parsed
    hand_ons: list[float]  # when each run handed the wait on

    @property
    def bake_reads(self) -> list[Request]:
        """The DescribeAlarms calls of the bake (the one before the stop is the guard's judgement)."""
        return [read for read in self.alarms.recorder.of("DescribeAlarms") if read.at >= self.endpoint.serving_at]

    @property
    def fired_at(self) -> float:
        return self.alarms.alarms[ALARM].fires_at()

    def endpoint_calls(self) -> list[str]:
        return [call for call in self.endpoint.calls if call.endswith("Endpoint")]


@pytest.fixture
def bake(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> Callable[..., Chain]:
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)
    # Every fixture event has the same RequestId; real events each have their own.
    monkeypatch.setattr(lifecycle, "_SEEN", type(lifecycle._SEEN)(maxlen=64))
    caplog.set_level(logging.INFO)

    def run(
        guard: dict[str, Any],
        *,
        request_type: str = "Update",
        fires_after: float = NEVER,
        run_millis: int = FULL_RUN_MILLIS,
        completion_timeout: int = COMPLETION_TIMEOUT,
        stop_takes: float = 120,
        **endpoint: Any,
    ) -> Chain:
        """Carry the event out, link by link, until it is answered.

        Args:
            guard: the PromotionGuard property.
            request_type: Update or Delete.
            fires_after: seconds after the endpoint serves the promotion when the guard's alarm goes to ALARM.
            run_millis: how long each run of the function may last.
            completion_timeout: CompletionTimeoutSeconds (ServiceTimeout is two minutes more).
            stop_takes: seconds the experiment is Stopping (its endpoint then updates for a minute).
            endpoint: EndpointOnAClock's update_takes, update_fails, failed_status, refuse_update.
        """
        clock = FakeClock()
        # By default a 3-minute promotion: with a 10-minute bake and a 3-minute rollback, all in one 15-minute run.
        experiment = EndpointOnAClock(clock, stop_takes, endpoint_takes=60, **{"update_takes": 180, **endpoint})
        alarms = AlarmsOnAClock(clock, [Alarm(ALARM, lambda: experiment.serving_at + fires_after)])
        stack = StackInProgress(clock, f"{request_type.upper()}_IN_PROGRESS")
        invoker, bus = SelfInvoker(clock), EventBus(clock)
        services = lifecycle.Services(
            experiment.client, stack.client, clock, invoker.client, alarms.client, lambda: 0.5, bus.client
        )
        monkeypatch.setattr(index, "services", lambda: services)

        event = load_event(request_type)
        properties = event["ResourceProperties"]
        properties["CompletionTimeoutSeconds"] = str(completion_timeout)
        properties["ServiceTimeout"] = str(completion_timeout + 120)  # as the construct writes it
        properties["PromotionGuard"] = guard
        if request_type == "Update":
            event["OldResourceProperties"] = {**properties, "Reason": "shadow test running"}
        event["ResponseURL"] = response_server.url
        links = 0
        while not response_server.bodies:
            links += 1
            assert links <= 8, "the chain never answered"
            assert len(invoker.payloads) == links - 1, "a run neither answered nor handed the wait on"
            index.handler(event, ClockContext(clock, run_millis))
            if len(invoker.payloads) == links:
                assert invoker.recorder.of("Invoke")[-1].params["FunctionName"] == FUNCTION_ARN
                event = invoker.payloads[-1]
                clock.sleep(DELIVERY_SECONDS)
        decisions = [
            json.loads(record.getMessage())["InferenceExperimentStopDecision"]
            for record in caplog.records
            if record.name == "announce" and "InferenceExperimentStopDecision" in record.getMessage()
        ]
        return Chain(
            links,
            response_server.only_answer,
            clock.time(),
            invoker.payloads,
            experiment,
            alarms,
            bus,
            decisions,
            [invoke.at for invoke in invoker.recorder.of("Invoke")],
        )

    return run


def test_an_alarm_at_minute_7_of_the_bake_rolls_the_endpoint_back_and_fails_the_update(
    bake: Callable[..., Chain],
) -> None:
    # GIVEN a promotion baked 10 minutes, rolled back to the production configuration, whose alarm fires at minute 7
    # WHEN the Update is carried out
    chain = bake(GUARD, fires_after=7 * 60)

    # THEN the alarm fired in the bake's 7th minute, and the rollback was asked for at the next look
    baked_from = chain.bake_reads[0].at
    assert 6 * 60 < chain.fired_at - baked_from <= 7 * 60
    [update] = chain.endpoint.recorder.of("UpdateEndpoint")
    assert update.params == {"EndpointName": "shadow-test-endpoint", "EndpointConfigName": PRODUCTION_CONFIG}
    assert 0 <= update.at - chain.fired_at <= MAX_POLL_SECONDS
    assert all(read.params == DESCRIBE_ALARMS for read in chain.alarms.recorder.of("DescribeAlarms"))
    # AND the endpoint was waited for, Updating, until it served the production configuration again
    described = chain.endpoint.recorder.of("DescribeEndpoint")
    assert described[0].at < chain.endpoint.updated_at <= described[-1].at == chain.answered_at
    assert chain.answered_at - chain.endpoint.updated_at <= MAX_POLL_SECONDS
    # AND the Update failed, naming the alarm and saying the endpoint was rolled back
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == (
        "RolledBack: shadow-latency: alarm shadow-latency went to ALARM during the bake of shadow-test's promotion; "
        "the endpoint shadow-test-endpoint was rolled back to shadow-test-endpoint-config-production and serves it"
    )
    assert chain.answer["Data"] == {}  # a FAILED answer carries no attributes: the decision is in the reason
    assert len(chain.endpoint.stops) == 1
    # AND the decision was logged as one JSON line, and put on the default bus, after the promotion's own
    assert [decision["decision"] for decision in chain.decisions] == ["Promoted", "RolledBack: shadow-latency"]
    rolled_back = chain.decisions[-1]
    assert rolled_back["action"] == "the endpoint serves shadow-test-endpoint-config-production again"
    assert rolled_back["experiment"] == "shadow-test"
    assert rolled_back["thresholds"]["roll_back_to"] == PRODUCTION_CONFIG
    assert rolled_back["thresholds"]["bake_seconds"] == BAKE_SECONDS
    assert chain.bus.details == chain.decisions


def test_an_alarm_during_the_bake_without_roll_back_to_fails_saying_the_promoted_model_still_serves(
    bake: Callable[..., Chain],
) -> None:
    chain = bake(NO_ROLLBACK, fires_after=7 * 60)

    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == (
        "Alarm shadow-latency went to ALARM during the bake of shadow-test's promotion; the endpoint "
        "shadow-test-endpoint still serves the promoted model (no roll_back_to declared)"
    )
    assert chain.endpoint_calls() == []  # nothing rolled back, nothing waited for
    assert 0 <= chain.answered_at - chain.fired_at <= MAX_POLL_SECONDS
    assert [decision["decision"] for decision in chain.decisions] == [
        "Promoted",
        "Failed: alarm shadow-latency fired during the bake",
    ]
    assert chain.decisions[-1]["action"] == "the endpoint still serves the promoted model"


def test_a_bake_without_an_alarm_answers_promoted_once_the_bake_is_over(bake: Callable[..., Chain]) -> None:
    chain = bake(GUARD)

    assert chain.answer["Status"] == "SUCCESS", chain.answer["Reason"]
    assert chain.answer["Data"] == {
        "InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/shadow-test",
        "Status": "Completed",
        "EndpointStatus": "InService",
        "Decision": "Promoted",
    }
    assert BAKE_SECONDS <= chain.answered_at - chain.endpoint.serving_at <= BAKE_SECONDS + 2 * MAX_POLL_SECONDS
    reads = [read.at for read in chain.bake_reads]
    assert reads[-1] == chain.answered_at
    assert max(later - earlier for earlier, later in itertools.pairwise(reads)) <= MAX_POLL_SECONDS
    assert chain.endpoint_calls() == []
    assert [decision["decision"] for decision in chain.decisions] == ["Promoted"]  # announced once, at the stop


def test_a_bake_that_outlasts_a_run_is_handed_on_and_answered_once(bake: Callable[..., Chain]) -> None:
    # GIVEN runs of 10 minutes, shorter than the promotion (3 minutes) and its bake (10 minutes) together
    # WHEN the Update is carried out
    chain = bake(GUARD, run_millis=SHORT_RUN_MILLIS)

    # THEN the first run started the bake and handed it on; the second went on baking and answered
    assert chain.links == 2
    [handed_on] = chain.payloads
    continuation = handed_on[lifecycle.CONTINUATION]
    baked_from = chain.bake_reads[0].at
    assert continuation["BakeUntil"] == baked_from + BAKE_SECONDS
    assert continuation["RollingBack"] == ""
    assert continuation["StopSent"] is True
    assert continuation["Decision"] == "Promoted"
    [hand_on] = chain.hand_ons
    assert baked_from < hand_on < baked_from + BAKE_SECONDS
    assert any(read.at > hand_on for read in chain.bake_reads)
    assert len(chain.endpoint.stops) == 1
    assert chain.answer["Status"] == "SUCCESS", chain.answer["Reason"]
    assert chain.answer["Data"]["Decision"] == "Promoted"
    assert chain.answered_at >= baked_from + BAKE_SECONDS


def test_a_bake_that_cannot_end_by_the_deadline_fails_the_update(bake: Callable[..., Chain]) -> None:
    # GIVEN a promotion that takes 11 minutes of a 20-minute completion timeout, then a 10-minute bake
    chain = bake(GUARD, completion_timeout=1200, stop_takes=600)

    # THEN the bake is cut short at the deadline: no alarm fired, but the promotion is not shown safe
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == (
        "The bake of shadow-test's promotion had not finished by the deadline (CompletionTimeoutSeconds 1200): no "
        "alarm fired, but the promotion is not shown safe"
    )
    assert chain.answered_at - chain.endpoint.completed_at < 1200
    assert chain.endpoint_calls() == []


def test_a_bake_cut_short_at_the_deadline_is_announced(bake: Callable[..., Chain]) -> None:
    chain = bake(GUARD, completion_timeout=1200, stop_takes=600)

    assert chain.decisions[0]["decision"] == "Promoted"
    assert len(chain.decisions) == 2  # and the decision that failed the Update
    assert chain.bus.details == chain.decisions


def test_a_rollback_that_outlasts_a_run_is_handed_on_and_waited_for(bake: Callable[..., Chain]) -> None:
    # GIVEN 10-minute runs, an alarm at minute 7 of the bake and an endpoint that takes 10 minutes to roll back
    chain = bake(GUARD, fires_after=7 * 60, run_millis=SHORT_RUN_MILLIS, update_takes=10 * 60)

    # THEN the second run started the rollback and handed it on; the third waited for it and answered
    assert [payload[lifecycle.CONTINUATION]["RollingBack"] for payload in chain.payloads] == ["", ALARM]
    assert len(chain.endpoint.updates) == 1  # the rollback is asked for once, whichever run waits for it
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"].startswith("RolledBack: shadow-latency: ")
    assert chain.endpoint.updated_at <= chain.answered_at <= chain.endpoint.updated_at + MAX_POLL_SECONDS
    assert chain.links == 3


# A link that carries a bake goes straight to it: the endpoint's rollback, not the experiment, is what it watches.
def test_a_rollback_done_before_the_deadline_in_the_next_run_answers_rolled_back(bake: Callable[..., Chain]) -> None:
    # GIVEN a 20-minute completion timeout, and a rollback (5 minutes) that the first run hands on as it ends
    chain = bake(GUARD, fires_after=7 * 60, completion_timeout=1200, update_takes=5 * 60)

    # THEN the second run sees the endpoint serve production's configuration again, well before the deadline
    assert [payload[lifecycle.CONTINUATION]["RollingBack"] for payload in chain.payloads] == [ALARM]
    assert chain.answer["Reason"].startswith("RolledBack: shadow-latency: "), chain.answer["Reason"]
    assert chain.answered_at <= chain.endpoint.updated_at + MAX_POLL_SECONDS


# SageMaker's own words where a rollback fails: the refusal of UpdateEndpoint, or the endpoint's FailureReason.
REFUSED = f'Could not find endpoint configuration "{PRODUCTION_CONFIG}".'
HEALTH_CHECK = (
    "The primary container for production variant shadow did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint."
)
FAILED_ROLLBACKS = [
    pytest.param({"refuse_update": ("ValidationException", REFUSED)}, REFUSED, id="update-endpoint-refused"),
    pytest.param({"update_fails": HEALTH_CHECK}, HEALTH_CHECK, id="endpoint-failed"),
    pytest.param(
        {"update_fails": HEALTH_CHECK, "failed_status": "InService"},
        HEALTH_CHECK,
        id="endpoint-update-undone-by-sagemaker",
    ),
]


@pytest.mark.parametrize(("endpoint", "sagemaker_says"), FAILED_ROLLBACKS)
def test_a_rollback_that_fails_answers_failed_quoting_sagemaker(
    bake: Callable[..., Chain], endpoint: dict[str, Any], sagemaker_says: str
) -> None:
    chain = bake(GUARD, fires_after=7 * 60, **endpoint)

    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"].startswith("Rollback after alarm shadow-latency fired during the bake failed: ")
    assert sagemaker_says in chain.answer["Reason"]  # within the 255 characters CloudFormation shows
    assert len(chain.endpoint.updates) == 1  # a failed rollback is not tried again
    assert chain.decisions[-1]["decision"] == "Failed: alarm shadow-latency fired during the bake"
    assert chain.bus.details[-1] == chain.decisions[-1]


def test_a_delete_bakes_nothing(bake: Callable[..., Chain]) -> None:
    # GIVEN a guard with a bake and a rollback, whose alarm fires a second after the endpoint serves the promotion
    # WHEN the stack is deleted
    chain = bake(GUARD, request_type="Delete", fires_after=1)

    # THEN the Delete answers as soon as the endpoint serves: no alarm watched, nothing rolled back
    assert chain.answer["Status"] == "SUCCESS", chain.answer["Reason"]
    assert chain.answer["Data"]["Decision"] == "Promoted"
    assert 0 <= chain.answered_at - chain.endpoint.serving_at <= MAX_POLL_SECONDS
    assert chain.bake_reads == []
    assert len(chain.alarms.recorder.of("DescribeAlarms")) == 1  # the guard's judgement, before the stop
    assert chain.endpoint_calls() == []
