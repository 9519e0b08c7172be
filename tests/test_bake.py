"""The bake after a guarded promotion, run by index.handler link by link on the fake clock.

The guard of every case is Alarms + BakeSeconds 600 (+ RollBackTo where a rollback is declared), with the
properties as the construct writes them and CloudFormation sends them (strings; BakeSeconds at most half of
CompletionTimeoutSeconds; ServiceTimeout = CompletionTimeoutSeconds + 120). SageMaker is an experiment and its
endpoint on the fake clock, CloudWatch alarms that are OK until a given time (tests/alarms_on_a_clock.py): real
botocore clients, every request validated against the service model, every answer against the output shape.
Each hand-on Invoke is answered 202 and its payload delivered, as Lambda's async queue would, to a fresh run.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import alarm_history
import index
import lifecycle
import pytest
from alarms_on_a_clock import (
    NEVER,
    PRODUCTION_CONFIG,
    PROMOTED_CONFIG,
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


@dataclass
class World:
    """A stopper's Update and the AWS it runs against, on one fake clock: deliver the event, or a link, and see."""

    clock: FakeClock
    endpoint: EndpointOnAClock
    alarms: AlarmsOnAClock
    stack: StackInProgress
    invoker: SelfInvoker
    bus: EventBus
    server: ResponseServer
    event: dict[str, Any]
    caplog: pytest.LogCaptureFixture
    answers_at: list[float]

    def deliver(self, event: dict[str, Any], run_millis: int = FULL_RUN_MILLIS) -> None:
        """One run of the function for `event` (CloudFormation's, a copy of it, or a link handed on)."""
        answered = len(self.server.bodies)
        index.handler(copy.deepcopy(event), ClockContext(self.clock, run_millis))
        self.answers_at += [self.clock.time()] * (len(self.server.bodies) - answered)

    def chain(self, run_millis: int = FULL_RUN_MILLIS) -> Chain:
        """The event carried out link by link (each link delivered a second after its hand-on) until answered."""
        event, links = self.event, 0
        while not self.server.bodies:
            links += 1
            assert links <= 8, "the chain never answered"
            assert len(self.invoker.payloads) == links - 1, "a run neither answered nor handed the wait on"
            self.deliver(event, run_millis)
            if len(self.invoker.payloads) == links:
                assert self.invoker.recorder.of("Invoke")[-1].params["FunctionName"] == FUNCTION_ARN
                event = self.invoker.payloads[-1]
                self.clock.sleep(DELIVERY_SECONDS)
        return self.result(links)

    def result(self, links: int) -> Chain:
        return Chain(
            links,
            self.server.only_answer,
            self.answers_at[0],
            self.invoker.payloads,
            self.endpoint,
            self.alarms,
            self.bus,
            self.decisions(),
            [invoke.at for invoke in self.invoker.recorder.of("Invoke")],
        )

    def decisions(self) -> list[dict[str, Any]]:
        return [
            json.loads(record.getMessage())["InferenceExperimentStopDecision"]
            for record in self.caplog.records
            if record.name == "announce" and "InferenceExperimentStopDecision" in record.getMessage()
        ]


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> Callable[..., World]:
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)
    # Every fixture event has the same RequestId; real events each have their own.
    monkeypatch.setattr(lifecycle, "_SEEN", type(lifecycle._SEEN)(maxlen=64))
    caplog.set_level(logging.INFO)

    def make(
        guard: dict[str, Any],
        *,
        request_type: str = "Update",
        fires_after: float = NEVER,
        alarms: Callable[[EndpointOnAClock], list[Alarm]] | None = None,
        completion_timeout: int = COMPLETION_TIMEOUT,
        stop_takes: float = 120,
        **endpoint: Any,
    ) -> World:
        """The world of one event.

        Args:
            guard: the PromotionGuard property.
            request_type: Update or Delete.
            fires_after: seconds after the endpoint serves the promotion when the guard's alarm goes to ALARM.
            alarms: the alarms instead, made from the endpoint (whose times they may name).
            completion_timeout: CompletionTimeoutSeconds (ServiceTimeout is two minutes more).
            stop_takes: seconds the experiment is Stopping (its endpoint then updates for a minute).
            endpoint: EndpointOnAClock's update_takes, update_fails, failed_status, refuse_update.
        """
        clock = FakeClock()
        # By default a 3-minute promotion: with a 10-minute bake and a 3-minute rollback, all in one 15-minute run.
        experiment = EndpointOnAClock(clock, stop_takes, endpoint_takes=60, **{"update_takes": 180, **endpoint})
        made = alarms(experiment) if alarms else [Alarm(ALARM, lambda: experiment.serving_at + fires_after)]
        stack = StackInProgress(clock, f"{request_type.upper()}_IN_PROGRESS")
        world = World(
            clock,
            experiment,
            AlarmsOnAClock(clock, made),
            stack,
            SelfInvoker(clock),
            EventBus(clock),
            response_server,
            load_event(request_type),
            caplog,
            [],
        )
        services = lifecycle.Services(
            experiment.client,
            stack.client,
            clock,
            world.invoker.client,
            world.alarms.client,
            lambda: 0.5,
            world.bus.client,
        )
        monkeypatch.setattr(index, "services", lambda: services)
        properties = world.event["ResourceProperties"]
        properties["CompletionTimeoutSeconds"] = str(completion_timeout)
        properties["ServiceTimeout"] = str(completion_timeout + 120)  # as the construct writes it
        properties["PromotionGuard"] = guard
        if request_type == "Update":
            world.event["OldResourceProperties"] = {**properties, "Reason": "shadow test running"}
        # Signed as CloudFormation signs it, now: every delivery of the event, and every link, reads one clock.
        signed = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock.time()))
        world.event["ResponseURL"] = f"{response_server.url}&X-Amz-Date={signed}"
        return world

    return make


@pytest.fixture
def bake(world: Callable[..., World]) -> Callable[..., Chain]:
    def run(guard: dict[str, Any], *, run_millis: int = FULL_RUN_MILLIS, **given: Any) -> Chain:
        """Carry the event out, link by link, until it is answered (`given`: the world's)."""
        return world(guard, **given).chain(run_millis)

    return run


FIRED = "alarm shadow-latency was in ALARM during the bake"
ROLLED_BACK_TO = (
    "RolledBack: the endpoint shadow-test-endpoint of shadow-test was rolled back to "
    f"{PRODUCTION_CONFIG} and serves it: "
)
ROLLED_BACK = f"{ROLLED_BACK_TO}{FIRED}"


def test_an_alarm_at_minute_7_of_the_bake_rolls_the_endpoint_back_and_fails_the_update(
    bake: Callable[..., Chain],
) -> None:
    # GIVEN a promotion baked 10 minutes, rolled back to the production configuration, whose alarm fires at minute 7
    # WHEN the Update is carried out
    chain = bake(GUARD, fires_after=7 * 60)

    # THEN the bake began when the endpoint began serving the promotion (its LastModifiedTime)
    baked_from = chain.bake_reads[0].at
    assert chain.endpoint.serving_at <= baked_from <= chain.endpoint.serving_at + MAX_POLL_SECONDS
    # AND the alarm fired in the bake's 7th minute, and the rollback was asked for at the next look
    [update] = chain.endpoint.recorder.of("UpdateEndpoint")
    assert update.params == {"EndpointName": "shadow-test-endpoint", "EndpointConfigName": PRODUCTION_CONFIG}
    assert 0 <= update.at - chain.fired_at <= MAX_POLL_SECONDS
    assert all(read.params == DESCRIBE_ALARMS for read in chain.alarms.recorder.of("DescribeAlarms"))
    # AND the endpoint was described right before the rollback (the gate), then waited for until it served production
    described = chain.endpoint.recorder.of("DescribeEndpoint")
    assert any(read.at == update.at for read in described)
    assert described[-1].at == chain.answered_at
    assert 0 <= chain.answered_at - chain.endpoint.updated_at <= MAX_POLL_SECONDS
    # AND the Update failed, naming the alarm and saying the endpoint was rolled back
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == ROLLED_BACK
    assert chain.answer["Data"] == {}  # a FAILED answer carries no attributes: the decision is in the reason
    assert len(chain.endpoint.stops) == 1
    # AND the decision was logged as one JSON line, and put on the default bus, after the promotion's own
    assert [decision["decision"] for decision in chain.decisions] == ["Promoted", f"RolledBack: {FIRED}"]
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
        "The endpoint shadow-test-endpoint still serves the promoted model (no roll_back_to declared): the bake of "
        f"shadow-test's promotion did not pass: {FIRED}"
    )
    assert "UpdateEndpoint" not in chain.endpoint_calls()  # nothing rolled back
    assert 0 <= chain.answered_at - chain.fired_at <= MAX_POLL_SECONDS
    assert [decision["decision"] for decision in chain.decisions] == ["Promoted", f"Failed: {FIRED}"]
    assert chain.decisions[-1]["action"] == "the endpoint still serves the promoted model"


def test_a_bake_without_an_alarm_answers_promoted_once_the_bake_and_its_settling_are_over(
    bake: Callable[..., Chain],
) -> None:
    chain = bake(GUARD)

    assert chain.answer["Status"] == "SUCCESS", chain.answer["Reason"]
    assert chain.answer["Data"] == {
        "InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/shadow-test",
        "Status": "Completed",
        "EndpointStatus": "InService",
        "Decision": "Promoted",
    }
    # The verdict is taken from what CloudWatch recorded, SETTLE_SECONDS after the window's end, and not before.
    window_end = chain.endpoint.serving_at + BAKE_SECONDS
    assert window_end + alarm_history.SETTLE_SECONDS <= chain.answered_at
    assert chain.answered_at <= window_end + alarm_history.SETTLE_SECONDS + MAX_POLL_SECONDS
    reads = [read.at for read in chain.bake_reads]
    assert reads[-1] == chain.answered_at  # the verdict's read
    looks = [at for at in reads if at < window_end]  # a look after the window would see a state not the window's
    assert max(later - earlier for earlier, later in itertools.pairwise(looks)) <= MAX_POLL_SECONDS
    assert window_end - looks[-1] <= MAX_POLL_SECONDS
    assert "UpdateEndpoint" not in chain.endpoint_calls()
    assert [decision["decision"] for decision in chain.decisions] == ["Promoted"]  # announced once, at the stop


def test_a_bake_that_outlasts_a_run_is_handed_on_with_its_window_and_answered_once(bake: Callable[..., Chain]) -> None:
    # GIVEN runs of 10 minutes, shorter than the promotion (3 minutes) and its bake (10 minutes) together
    # WHEN the Update is carried out
    chain = bake(GUARD, run_millis=SHORT_RUN_MILLIS)

    # THEN the first run started the bake and handed it on, its window by name; the second went on and answered
    assert chain.links == 2
    [handed_on] = chain.payloads
    continuation = handed_on[lifecycle.CONTINUATION]
    assert continuation["Phase"] == "Baking"
    assert continuation["BakeStart"] == chain.endpoint.serving_at
    assert continuation["BakeEnd"] == chain.endpoint.serving_at + BAKE_SECONDS
    assert continuation["PromotedConfig"] == PROMOTED_CONFIG
    assert continuation["StopSent"] is True
    assert continuation["Decision"] == "Promoted"
    [hand_on] = chain.hand_ons
    assert chain.endpoint.serving_at < hand_on < chain.endpoint.serving_at + BAKE_SECONDS
    assert any(read.at > hand_on for read in chain.bake_reads)
    assert len(chain.endpoint.stops) == 1
    assert chain.answer["Status"] == "SUCCESS", chain.answer["Reason"]
    assert chain.answer["Data"]["Decision"] == "Promoted"
    assert chain.answered_at >= chain.endpoint.serving_at + BAKE_SECONDS + alarm_history.SETTLE_SECONDS


# Situation 3 of issue 20: a bake that cannot end before the deadline less the rollback's reserve cannot pass. It
# fails at once and rolls back (before, the promotion stayed in place and the Update failed "not shown safe").
@pytest.mark.parametrize(
    ("completion_timeout", "stop_takes"), [(1200, 600), (1800, 21 * 60)], ids=["11-of-20-minutes", "22-of-30-minutes"]
)
def test_a_bake_that_cannot_end_by_the_deadline_rolls_back_at_once(
    bake: Callable[..., Chain], completion_timeout: int, stop_takes: int
) -> None:
    # GIVEN a promotion that leaves too little of the completion timeout for a 10-minute bake and its rollback
    chain = bake(GUARD, completion_timeout=completion_timeout, stop_takes=stop_takes)

    # THEN the endpoint is rolled back as soon as it serves the promotion, and the Update fails saying why
    [update] = chain.endpoint.recorder.of("UpdateEndpoint")
    assert 0 <= update.at - chain.endpoint.serving_at <= MAX_POLL_SECONDS
    assert update.params["EndpointConfigName"] == PRODUCTION_CONFIG
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == (
        f"{ROLLED_BACK_TO}the bake cannot end 60 s before the deadline "
        f"(CompletionTimeoutSeconds {completion_timeout}), which the rollback needs"
    )
    assert chain.answered_at - chain.endpoint.completed_at < completion_timeout
    assert chain.decisions[0]["decision"] == "Promoted"
    assert chain.decisions[-1]["decision"].startswith("RolledBack: the bake cannot end")
    assert chain.bus.details == chain.decisions


def test_a_promotion_still_updating_at_the_deadline_says_roll_back_to_could_not_be_applied(
    bake: Callable[..., Chain],
) -> None:
    # GIVEN a promotion whose stop takes longer than the whole completion timeout
    chain = bake(GUARD, completion_timeout=1200, stop_takes=1300)

    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"].endswith(
        f"(CompletionTimeoutSeconds 1200); roll_back_to {PRODUCTION_CONFIG} could not be applied while the promotion "
        "was still under way"
    ), chain.answer["Reason"]
    assert "UpdateEndpoint" not in chain.endpoint_calls()


def test_a_rollback_that_outlasts_a_run_is_handed_on_and_waited_for(bake: Callable[..., Chain]) -> None:
    # GIVEN 10-minute runs, an alarm at minute 7 of the bake and an endpoint that takes 10 minutes to roll back
    chain = bake(GUARD, fires_after=7 * 60, run_millis=SHORT_RUN_MILLIS, update_takes=10 * 60)

    # THEN the second run started the rollback and handed it on; the third waited for it and answered
    phases = [payload[lifecycle.CONTINUATION]["Phase"] for payload in chain.payloads]
    assert phases == ["Baking", "RollingBack"]
    assert chain.payloads[-1][lifecycle.CONTINUATION]["RollBackWhy"] == FIRED
    assert len(chain.endpoint.updates) == 1  # the rollback is asked for once, whichever run waits for it
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == ROLLED_BACK
    assert chain.endpoint.updated_at <= chain.answered_at <= chain.endpoint.updated_at + MAX_POLL_SECONDS
    assert chain.links == 3


# A link that carries a bake goes straight to it: the endpoint's rollback, not the experiment, is what it watches.
def test_a_rollback_done_before_the_deadline_in_the_next_run_answers_rolled_back(bake: Callable[..., Chain]) -> None:
    # GIVEN a 20-minute completion timeout, and a rollback (5 minutes) that the first run hands on as it ends
    chain = bake(GUARD, fires_after=2 * 60, completion_timeout=1800, update_takes=5 * 60, run_millis=SHORT_RUN_MILLIS)

    # THEN the second run sees the endpoint serve production's configuration again, well before the deadline
    assert [payload[lifecycle.CONTINUATION]["Phase"] for payload in chain.payloads] == ["RollingBack"]
    assert chain.answer["Reason"] == ROLLED_BACK
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
    assert chain.answer["Reason"].startswith(f"Rollback to {PRODUCTION_CONFIG} failed: ")
    assert sagemaker_says in chain.answer["Reason"]  # within the 255 characters CloudFormation shows
    assert len(chain.endpoint.updates) == 1  # a failed rollback is not tried again
    assert chain.decisions[-1]["decision"] == f"Failed: {FIRED}"
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


# Issue 20, situation 1: a late link never rolls back a later deploy.
def test_a_late_link_after_a_later_deploy_sends_no_rollback(world: Callable[..., World]) -> None:
    # GIVEN a bake handed on by a 10-minute run, whose alarm fires at minute 7 of the bake
    w = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    # AND Lambda holds the next link 1,700 s (past the deadline and CloudFormation's wait), while a new deploy
    # updates the endpoint to a configuration of its own
    w.clock.sleep(1000)
    w.endpoint.updated = (w.clock.time(), "shadow-test-endpoint-config-newer")
    w.stack.last_updated = w.clock.time()
    w.clock.sleep(700)

    # WHEN the late link runs
    w.deliver(link)

    # THEN it sends nothing, and answers FAILED naming the deadline and what it did not do
    assert w.endpoint.recorder.of("UpdateEndpoint") == []
    [answer] = w.server.bodies
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(
        f"endpoint shadow-test-endpoint was not rolled back to {PRODUCTION_CONFIG}: the stack began another "
    )


def test_a_late_link_after_the_deadline_sends_no_rollback(world: Callable[..., World]) -> None:
    # GIVEN a bake handed on at minute ~6, whose alarm fires at minute 7; nothing else changes
    w = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    # WHEN Lambda delivers the next link 1,700 s later, past the deadline
    w.clock.sleep(1700)
    w.deliver(link)

    # THEN the gate refuses the rollback at the deadline, and the answer says so
    assert w.endpoint.updates == []
    said = f"endpoint shadow-test-endpoint was not rolled back to {PRODUCTION_CONFIG}: the deadline passed "
    assert said in w.caplog.text
    assert w.server.only_answer["Status"] == "FAILED"


# Issue 20, situation 2: two deliveries of one event agree, and the rollback is sent once.
def test_a_copy_delivered_during_the_bake_judges_the_same_window_and_agrees(world: Callable[..., World]) -> None:
    # GIVEN the first delivery baking, handed on at minute ~6 of the bake; the alarm fires at minute 7
    w = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    # WHEN Lambda delivers a copy of the Update now (it runs until its own run ends, and hands on), then the first
    # delivery's next link, then the copy's
    w.deliver(w.event)
    [_, copy_link] = w.invoker.payloads
    w.deliver(link)
    w.deliver(copy_link)

    # THEN both answer FAILED, rolled back, and UpdateEndpoint was sent once, by the delivery that stopped: the copy
    # saw the alarm too, and left the rollback to it
    assert [body["Status"] for body in w.server.bodies] == ["FAILED", "FAILED"]
    assert {body["Reason"] for body in w.server.bodies} == {ROLLED_BACK}
    assert len(w.endpoint.updates) == 1
    assert len(w.endpoint.stops) == 1


def test_a_copy_during_a_bake_that_passes_answers_no_earlier_than_the_first(world: Callable[..., World]) -> None:
    # GIVEN the first delivery baking (no alarm fires), handed on at minute ~6 of the bake
    w = world(GUARD)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    # WHEN a copy of the Update is delivered now (it waits for the first delivery's answer, and hands on), then the
    # first delivery's next link, which answers; CloudFormation completes the update; then the copy's next link
    w.deliver(w.event)
    [_, copy_link] = w.invoker.payloads
    w.deliver(link)
    w.stack.status = "UPDATE_COMPLETE"
    w.deliver(copy_link)

    # THEN both answer SUCCESS Promoted, each after the bake's end (not 30 s after the endpoint began serving)
    assert [body["Status"] for body in w.server.bodies] == ["SUCCESS", "SUCCESS"]
    assert {body["Data"]["Decision"] for body in w.server.bodies} == {"Promoted"}
    window_end = w.endpoint.serving_at + BAKE_SECONDS
    assert all(at >= window_end + alarm_history.SETTLE_SECONDS for at in w.answers_at)
    assert w.endpoint.updates == []


def test_a_copy_after_the_update_completed_and_an_alarm_fired_later_sends_nothing(
    world: Callable[..., World],
) -> None:
    # GIVEN an Update that baked and answered SUCCESS; the alarm fires two minutes after the bake's window
    w = world(GUARD, fires_after=BAKE_SECONDS + 120)
    first = w.chain()
    assert first.answer["Status"] == "SUCCESS", first.answer["Reason"]
    w.stack.status = "UPDATE_COMPLETE"
    w.clock.sleep(300)  # the alarm is in ALARM now

    # WHEN Lambda delivers a copy of the Update
    w.deliver(w.event)

    # THEN the copy judges the same window, agrees, and rolls nothing back
    assert [body["Status"] for body in w.server.bodies] == ["SUCCESS", "SUCCESS"]
    assert w.endpoint.updates == []


# Issue 20, situation 4: an alarm in ALARM between two looks is found in CloudWatch's history.
def test_an_alarm_in_alarm_for_10_s_between_two_looks_fails_the_bake(world: Callable[..., World]) -> None:
    # GIVEN an alarm that goes to ALARM 1 s after the bake's sixth look and back to OK 10 s later, before the next
    def flapping(endpoint: EndpointOnAClock) -> list[Alarm]:
        def sixth_look() -> float:
            looks = [r.at for r in w.alarms.recorder.of("DescribeAlarms") if r.at >= endpoint.serving_at]
            return looks[5] + 1 if len(looks) > 5 else NEVER

        return [Alarm(ALARM, sixth_look, clears_at=lambda: sixth_look() + 10)]

    w = world(GUARD, alarms=flapping)

    # WHEN the Update is carried out
    chain = w.chain()

    # THEN no look saw the alarm in ALARM, yet the bake failed from the history and rolled back
    fired = chain.fired_at
    assert all(w.alarms.alarms[ALARM].state(read.at) == "OK" for read in chain.bake_reads)
    assert any(
        earlier < fired < fired + 10 < later for earlier, later in itertools.pairwise(r.at for r in chain.bake_reads)
    )
    history = w.alarms.recorder.of("DescribeAlarmHistory")
    assert history
    assert history[0].params["AlarmName"] == ALARM
    assert history[0].params["AlarmTypes"] == ["CompositeAlarm", "MetricAlarm"]
    assert history[0].params["HistoryItemType"] == "StateUpdate"
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == ROLLED_BACK
    assert len(chain.endpoint.updates) == 1


# Issue 20, situation 5 (the bake): INSUFFICIENT_DATA throughout is no pass; one OK alarm beside it passes.
@pytest.mark.parametrize(
    ("on_inconclusive", "status", "decision"),
    [
        ("Fail", "FAILED", None),
        (
            "FallBack",
            "SUCCESS",
            "Inconclusive: every alarm (shadow-latency) lacked data for the whole bake; rolled back to "
            f"{PRODUCTION_CONFIG}",
        ),
    ],
)
def test_a_bake_whose_every_alarm_lacked_data_is_inconclusive_and_rolls_back(
    world: Callable[..., World], on_inconclusive: str, status: str, decision: str | None
) -> None:
    # GIVEN an alarm OK when the guard judges, without data from just before the endpoint serves the promotion
    w = world(
        {**GUARD, "OnInconclusive": on_inconclusive},
        alarms=lambda endpoint: [Alarm(ALARM, lacks_data_from=lambda: endpoint.serving_at - 5)],
    )

    chain = w.chain()

    # THEN the endpoint is rolled back, and OnInconclusive decides the answer
    assert len(chain.endpoint.updates) == 1
    assert chain.answer["Status"] == status, chain.answer.get("Reason")
    if decision is None:
        assert chain.answer["Reason"].startswith(
            f"{ROLLED_BACK_TO}every alarm (shadow-latency) lacked data for the whole bake"
        )
    else:
        assert chain.answer["Data"]["Decision"] == decision
        assert chain.answer["Data"]["EndpointStatus"] == "InService"


def test_a_bake_with_one_alarm_ok_and_another_without_data_passes(world: Callable[..., World]) -> None:
    w = world(
        {**GUARD, "Alarms": [ALARM, "shadow-errors"]},
        alarms=lambda endpoint: [
            Alarm(ALARM),
            Alarm("shadow-errors", lacks_data_from=lambda: endpoint.serving_at - 5),
        ],
    )

    chain = w.chain()

    assert chain.answer["Status"] == "SUCCESS", chain.answer.get("Reason")
    assert chain.answer["Data"]["Decision"] == "Promoted"
    assert chain.endpoint.updates == []


def test_an_alarm_that_was_in_alarm_when_the_bake_began_fails_it(world: Callable[..., World]) -> None:
    # GIVEN an alarm that goes to ALARM as the endpoint's update ends and clears before the bake's first look
    w = world(
        GUARD,
        alarms=lambda endpoint: [
            Alarm(ALARM, lambda: endpoint.serving_at - 1, clears_at=lambda: endpoint.serving_at + 1)
        ],
    )

    chain = w.chain()

    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"] == ROLLED_BACK


# The rollback's gate, within the deadline: someone else's change is left alone; a stack rolling back is no bar.
def test_a_bake_whose_endpoint_someone_else_changed_sends_no_rollback(world: Callable[..., World]) -> None:
    # GIVEN a bake handed on at minute ~6, and another deploy that moves the endpoint to its own configuration then
    w = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    w.endpoint.updated = (w.clock.time(), "shadow-test-endpoint-config-newer")

    # WHEN the next link sees the alarm fire
    w.deliver(link)

    # THEN it sends no UpdateEndpoint, and says whose endpoint it found
    assert w.endpoint.updates == []
    [answer] = w.server.bodies
    assert answer["Status"] == "FAILED"
    said = (
        f"endpoint shadow-test-endpoint was not rolled back to {PRODUCTION_CONFIG}: someone else changed the endpoint "
        "since (it is updating to shadow-test-endpoint-config-newer, not on shadow-test-endpoint-config-promoted, "
        f"which this event's promotion made); the bake of shadow-test's promotion did not pass: {FIRED}"
    )
    assert said in w.caplog.text  # the whole reason; CloudFormation shows its first 255 characters
    assert said.startswith(answer["Reason"].removesuffix("..."))


def test_a_bake_whose_stack_began_another_operation_sends_no_rollback(world: Callable[..., World]) -> None:
    w = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    w.stack.last_updated = w.clock.time()  # the next update began (this one was answered by a copy, say)

    w.deliver(link)

    assert w.endpoint.updates == []
    [answer] = w.server.bodies
    assert answer["Status"] == "FAILED"
    assert (
        "was not rolled back to shadow-test-endpoint-config-production: the stack began another operation"
        in (answer["Reason"])
    )


def test_a_stack_rolling_back_does_not_keep_the_endpoint_from_being_rolled_back(world: Callable[..., World]) -> None:
    w = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    w.stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"  # another resource failed: CloudFormation rolls the stack back

    w.deliver(link)

    assert len(w.endpoint.updates) == 1
    assert w.server.only_answer["Reason"] == ROLLED_BACK


def test_a_bake_whose_wait_cannot_be_handed_on_rolls_back_before_it_answers(world: Callable[..., World]) -> None:
    # GIVEN 10-minute runs, and a function that may no longer invoke itself (its permission was taken away)
    w = world(GUARD)
    w.invoker.refuse = ("AccessDeniedException", "not authorized to perform: lambda:InvokeFunction")

    # WHEN the first run reaches its end in the middle of the bake
    w.deliver(w.event, SHORT_RUN_MILLIS)

    # THEN the bake, which can no longer be watched to its end, does not pass: the endpoint is rolled back first
    [update] = w.endpoint.recorder.of("UpdateEndpoint")
    assert update.params["EndpointConfigName"] == PRODUCTION_CONFIG
    [answer] = w.server.bodies
    assert answer["Status"] == "FAILED"
    assert "the rollback to shadow-test-endpoint-config-production was sent and may still complete" in w.caplog.text
