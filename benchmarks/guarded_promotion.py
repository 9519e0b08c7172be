"""A simulated promotion with a bake, delivered once or twice: the handler's real lifecycle, links and all.

Each delivery of the Update is carried out link by link (lifecycle.handle, a run of at most 15 minutes, a longer
wait handed on and delivered a second later, as section 4 does), against tests/alarms_on_a_clock.py's doubles:
real botocore clients, every request validated against the service model, every call recorded. A copy of the
Update delivered while the first bakes runs beside it on one clock (taking_turns.py), as Lambda runs two
deliveries in two execution environments. The poll's jitter is seeded, one seed per delivery, so the figures are
exact and the same on every run.

lifecycle.handle rather than index.handler: crhelper's CfnResource is one object per process, which two
deliveries in one process cannot share; what index.handler adds (the Budget from the context, FAILED for
StopFailed) is done here as it does it.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lifecycle
from alarms_on_a_clock import (
    PRODUCTION_CONFIG,
    Alarm,
    AlarmsOnAClock,
    EndpointOnAClock,
    EventBus,
    SelfInvoker,
    StackInProgress,
)
from outcomes import StopFailed
from simulated import (
    DELIVERY_SECONDS,
    ENDPOINT_UPDATE_SECONDS,
    EVENT,
    JITTER_SEED,
    RUN_SECONDS,
    seeded,
    sent_at,
    service_timeout,
)
from taking_turns import TakingTurns

PROMOTION_SECONDS = 300  # the experiment Completed 2 minutes before its endpoint serves the shadow, as in section 5
BAKE_SECONDS = 600
COMPLETION_TIMEOUT = 3300
FIRES_AFTER = 7 * 60  # the alarm fires at minute 7 of the bake
FLAP_SECONDS = 10  # how long an alarm that flaps is in ALARM, between two looks
ALARM = "shadow-latency"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:1:function:f"

ALARMS = {"Alarms": [ALARM]}
BAKE = {**ALARMS, "BakeSeconds": str(BAKE_SECONDS)}
ROLLBACK = {**BAKE, "RollBackTo": PRODUCTION_CONFIG}


@dataclass(frozen=True)
class Answer:
    """What one delivery of the Update (its later links included) answered, and when (on the simulated clock)."""

    status: str
    decision: str  # SUCCESS: its Decision; FAILED: the last decision it announced (else its reason)
    reason: str  # FAILED: the reason CloudFormation is given
    links: int
    at: float


@dataclass(frozen=True)
class Promotion:
    """One simulated guarded promotion, as CloudFormation and the AWS APIs saw it."""

    answers: list[Answer]  # the first delivery's, then the copy's where one was delivered
    calls: Counter[str]  # operation -> calls, of every delivery
    serving_at: float  # when the endpoint began serving the promotion: its LastModifiedTime, the bake's start
    fired: float | None  # when the alarm went to ALARM
    looks: list[float]  # the DescribeAlarms calls from the endpoint serving on, of every delivery
    rollbacks: list[float]  # the UpdateEndpoint calls, of every delivery

    @property
    def window_end(self) -> float:
        """The end of the bake's window, as the handler reads it (the endpoint's LastModifiedTime + the bake)."""
        return self.serving_at + BAKE_SECONDS

    def after_end(self, delivery: int = 0) -> float:
        """Seconds from the window's end to a delivery's answer."""
        return self.answers[delivery].at - self.window_end

    def after_alarm(self) -> float | None:
        """Seconds from the alarm going to ALARM to the first delivery's answer."""
        return None if self.fired is None else self.answers[0].at - self.fired

    def rollback_after_alarm(self) -> float | None:
        """Seconds from the alarm going to ALARM to the first UpdateEndpoint."""
        return None if self.fired is None or not self.rollbacks else self.rollbacks[0] - self.fired


Alarming = Callable[[EndpointOnAClock], Alarm]


def quiet(endpoint: EndpointOnAClock) -> Alarm:
    """The alarm stays OK."""
    return Alarm(ALARM)


def at_minute_7(endpoint: EndpointOnAClock) -> Alarm:
    """The alarm goes to ALARM at minute 7 of the bake, and stays there."""
    return Alarm(ALARM, lambda: endpoint.serving_at + FIRES_AFTER)


def flapping(calm: Promotion) -> Alarming:
    """The alarm in ALARM for FLAP_SECONDS, from a second after the first look from minute 7 of the bake on that is
    followed by a longer pause; `calm`: the same promotion with an alarm that stays OK, whose looks are this one's
    until the window's end (no look sees the alarm in ALARM)."""
    after = calm.serving_at + FIRES_AFTER
    pairs = itertools.pairwise(calm.looks)
    fires = next(look + 1 for look, then in pairs if look >= after and then - look > FLAP_SECONDS + 2)
    return lambda endpoint: Alarm(ALARM, lambda: fires, clears_at=lambda: fires + FLAP_SECONDS)


def promote(guard: dict[str, Any] | None, alarm: Alarming = quiet, copy_at: float | None = None) -> Promotion:
    """An Update that promotes, its endpoint serving the shadow PROMOTION_SECONDS after the stop; where the bake
    rolls back, the endpoint takes as long again (ENDPOINT_UPDATE_SECONDS) to serve production's configuration.

    Args:
        guard: the PromotionGuard property (None: no guard).
        alarm: the guard's alarm, made from the endpoint (whose times it may name).
        copy_at: when Lambda delivers a copy of the Update, while the first delivery runs (None: no copy).
    """
    event: dict[str, Any] = json.loads(EVENT.read_text())
    properties = event["ResourceProperties"]
    properties["CompletionTimeoutSeconds"] = str(COMPLETION_TIMEOUT)
    properties["ServiceTimeout"] = str(service_timeout(COMPLETION_TIMEOUT))
    if guard is not None:
        properties["PromotionGuard"] = guard
    event["RequestId"] = str(uuid.uuid4())
    clock = TakingTurns(sent_at(event))
    endpoint = EndpointOnAClock(
        clock,
        stop_takes=PROMOTION_SECONDS - ENDPOINT_UPDATE_SECONDS,
        endpoint_takes=ENDPOINT_UPDATE_SECONDS,
        update_takes=ENDPOINT_UPDATE_SECONDS,
    )
    alarms = AlarmsOnAClock(clock, [alarm(endpoint)])
    stack = StackInProgress(clock, "UPDATE_IN_PROGRESS")
    answers: dict[int, Answer] = {}

    def delivery(number: int, arrives: float) -> Callable[[], None]:
        invoker, bus = SelfInvoker(clock), EventBus(clock)  # its own hand-ons, its own announcements
        jitter = seeded(JITTER_SEED + number)  # another execution environment: its own jitter
        services = lifecycle.Services(
            endpoint.client, stack.client, clock, invoker.client, alarms.client, jitter, bus.client
        )

        def deliver() -> None:
            clock.sleep(arrives - clock.time())
            answers[number] = carry_out(copy.deepcopy(event), services, invoker, bus, clock, stack)

        return deliver

    deliveries = [delivery(0, clock.time())]
    if copy_at is not None:
        deliveries.append(delivery(1, copy_at))
    clock.run(*deliveries)
    requests = [*endpoint.recorder.requests, *alarms.recorder.requests, *stack.recorder.requests]
    fired = alarms.alarms[ALARM].fires_at()
    return Promotion(
        [answers[number] for number in sorted(answers)],
        Counter(request.operation for request in requests),
        endpoint.serving_at,
        fired if math.isfinite(fired) else None,
        [read.at for read in alarms.recorder.of("DescribeAlarms") if read.at >= endpoint.serving_at],
        [update.at for update in endpoint.recorder.of("UpdateEndpoint")],
    )


def carry_out(  # noqa: PLR0917 (one delivery's whole world)
    event: dict[str, Any],
    services: lifecycle.Services,
    invoker: SelfInvoker,
    bus: EventBus,
    clock: TakingTurns,
    stack: StackInProgress,
) -> Answer:
    """One delivery of the event, link by link (each delivered a second after its hand-on) until it is answered;
    CloudFormation takes the first answer of the event: the stack completes the update, or rolls it back."""
    links = 0
    while True:
        links += 1
        try:
            outcome = lifecycle.handle(event, services, lifecycle.Budget(RUN_SECONDS, FUNCTION_ARN))
        except StopFailed as failed:
            announced = [detail["decision"] for detail in bus.details]
            reason = str(failed)
            taken(stack, "UPDATE_ROLLBACK_IN_PROGRESS")
            return Answer("FAILED", announced[-1] if announced else reason, reason, links, clock.time())
        if not outcome.silent:
            taken(stack, "UPDATE_COMPLETE")
            return Answer("SUCCESS", outcome.decision, "", links, clock.time())
        if len(invoker.payloads) != links:
            raise RuntimeError(f"run {links} neither answered nor handed the wait on")
        event = invoker.payloads[-1]
        clock.sleep(DELIVERY_SECONDS)


def taken(stack: StackInProgress, status: str) -> None:
    """The first answer of the event moves the stack on; later ones change nothing."""
    if stack.status == "UPDATE_IN_PROGRESS":
        stack.status = status
