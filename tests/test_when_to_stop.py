"""The pieces that say when a stop may be sent and how often the wait looks: units of permission.py and waiting.py.

The lifecycle rows (tests/test_lifecycle.py) show them through index.handler; these pin their arithmetic.
"""

from __future__ import annotations

import itertools
from typing import Any

import permission
import pytest
from outcomes import NoStop
from permission import StackState, Timing
from waiting import Continuation, Poller

SENT = 1_795_305_600.0  # 2026-11-22T00:00:00Z


@pytest.mark.parametrize(
    ("url", "signed"),
    [
        ("https://s3/x?X-Amz-Date=20261122T000000Z&X-Amz-Expires=7200&X-Amz-Signature=ab", SENT),
        ("https://s3/x?AWSAccessKeyId=AKIA&Expires=1795312800&Signature=c2ln", SENT),  # Expires = signed + 7200
        ("https://s3/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab", None),  # says nothing of when
        ("https://s3/x?X-Amz-Date=yesterday&X-Amz-Signature=ab", None),
        ("https://s3/x?Expires=1795312800", None),  # an Expires without a signature is no SigV2 URL
        (None, None),
    ],
)
def test_when_the_event_was_sent_is_read_from_its_url(url: object, signed: float | None) -> None:
    assert permission.signed_at(url) == signed


def test_a_url_dated_ahead_of_the_clock_cannot_extend_a_deadline() -> None:
    event = {"ResponseURL": "https://s3/x?X-Amz-Date=20261122T000000Z&X-Amz-Signature=ab"}

    assert permission.sent_time(event, now=SENT - 3600) == SENT - 3600
    assert permission.sent_time(event, now=SENT + 5) == SENT
    assert permission.sent_time({"ResponseURL": "https://s3/x"}, now=SENT + 5, recorded=SENT) == SENT


@pytest.mark.parametrize(
    ("completion", "service", "deadline", "stop_by"),
    [
        (1800, 1920, SENT + 1800, SENT + 1800),  # as the construct writes them: the completion timeout rules
        (1800, 900, SENT + 840, SENT + 840),  # a ServiceTimeout shorter than the wait bounds it, less a minute
        (0, 120, SENT, SENT + 60),  # 0: no wait, and a stop only while CloudFormation still waits
    ],
)
def test_the_deadline_is_the_completion_timeout_bounded_by_the_service_timeout(
    completion: int, service: int, deadline: float, stop_by: float
) -> None:
    timing = Timing.of(SENT, completion, service)

    assert (timing.deadline, timing.stop_by) == (deadline, stop_by)
    assert not timing.too_late(stop_by)
    assert timing.too_late(stop_by + 1)


def test_with_no_wait_only_the_first_look_may_stop() -> None:
    timing = Timing.of(SENT, 0, 120)

    permission.check_time("Update", timing, SENT + 2, "e", first_look=True)
    with pytest.raises(NoStop, match="CompletionTimeoutSeconds 0 does not wait") as refused:
        permission.check_time("Update", timing, SENT + 2, "e", first_look=False)
    assert refused.value.answers_failed


@pytest.mark.parametrize(
    ("request_type", "status", "answers_failed"),
    [
        ("Update", "UPDATE_ROLLBACK_IN_PROGRESS", False),
        ("Update", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", True),
        ("Update", None, True),
        ("Delete", "DELETE_FAILED", False),
        ("Delete", None, False),
        ("Delete", "UPDATE_IN_PROGRESS", False),
    ],
)
def test_a_stack_that_does_not_warrant_the_stop_refuses_it(
    request_type: str, status: str | None, answers_failed: bool
) -> None:
    with pytest.raises(NoStop) as refused:
        permission.check_stack(request_type, _state(status), "e")

    assert refused.value.answers_failed is answers_failed


@pytest.mark.parametrize(
    ("request_type", "status"),
    [
        ("Update", "UPDATE_IN_PROGRESS"),
        ("Delete", "DELETE_IN_PROGRESS"),
        ("Delete", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
    ],
)
def test_the_stack_states_that_warrant_a_stop(request_type: str, status: str) -> None:
    permission.check_stack(request_type, _state(status), "e")


@pytest.mark.parametrize(
    ("request_type", "status"),
    [("Update", "UPDATE_IN_PROGRESS"), ("Delete", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")],
)
def test_a_stack_that_began_another_operation_since_the_event_refuses_the_stop(request_type: str, status: str) -> None:
    with pytest.raises(NoStop, match="began another operation after this") as refused:
        permission.check_stack(request_type, StackState(status, later_operation=True), "e")

    assert refused.value.answers_failed is (request_type == "Update")


def _state(status: str | None) -> StackState | None:
    return None if status is None else StackState(status, later_operation=False)


def test_polls_are_quick_for_two_minutes_then_grow_to_fifteen_seconds() -> None:
    poller, now, delays = Poller(SENT, SENT, lambda: 0.0), SENT, []
    while now < SENT + 300:
        delays.append(poller.delay(now))
        now += delays[-1]

    early = [d for d, t in zip(delays, itertools.accumulate([SENT, *delays]), strict=False) if t < SENT + 120]
    assert early[:5] == [2.0, 3.0, 4.5, 6.0, 6.0]
    assert max(early) == 6.0
    assert delays[-3:] == [15.0, 15.0, 15.0]
    assert max(delays) == 15.0


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_jitter_only_shortens_a_pause_by_at_most_a_quarter(draw: float) -> None:
    poller = Poller(SENT, SENT + 600, lambda: draw)  # a later link starts at the slow pace

    delay = poller.delay(SENT + 600)

    assert 15.0 * 0.75 < delay <= 15.0
    assert delay == pytest.approx(15.0 * (1 - 0.25 * draw))


@pytest.mark.parametrize(("link", "in_range"), [(1, False), (2, True), (8, True), (9, False), (1_000_000_001, False)])
def test_a_continuation_holds_a_link_this_function_can_have_written(link: int, in_range: bool) -> None:
    assert Continuation(SENT + 600, link).in_range is in_range


# The rollback's gate, directly: the stack first, then the endpoint, then the clock.
SENT_AT = 1_795_000_000.0
TIMING = Timing.of(SENT_AT, 1800, 1920)


class _Stack:
    """The stack as the gate reads it (permission.Stack's one method the gate calls)."""

    def __init__(self, status: str, *, later: bool = False) -> None:
        self.state = StackState(status, later_operation=later)

    def status(self, until: float) -> StackState | None:
        return self.state


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def gate(status: str = "UPDATE_IN_PROGRESS", *, later: bool = False, now: float = SENT_AT + 900) -> permission.Gate:
    stack: Any = _Stack(status, later=later)
    return permission.Gate("Update", "shadow-test", TIMING, stack, _Clock(now), SENT_AT + 1800)


def endpoint(status: str, config: str, pending: str | None = None, failure: str = "") -> Any:
    described: dict[str, Any] = {"EndpointStatus": status, "EndpointConfigName": config}
    if pending is not None:
        described["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
    if failure:
        described["FailureReason"] = failure
    return described


@pytest.mark.parametrize(
    ("described", "send"),
    [
        (endpoint("InService", "promoted"), True),
        (endpoint("Updating", "promoted"), True),  # auto scaling: the same configuration
        (endpoint("Updating", "promoted", pending="production"), False),  # this event's rollback, under way
        (endpoint("InService", "production"), False),  # done
    ],
    ids=["on-the-promotion", "scaling-the-promotion", "rollback-under-way", "rollback-done"],
)
def test_the_gate_sends_a_rollback_once_and_only_from_the_promotion(described: Any, send: bool) -> None:
    assert gate().roll_back(lambda: described, "ep", "production", "promoted") is send


@pytest.mark.parametrize(
    ("the_gate", "described", "said"),
    [
        (gate(later=True), endpoint("InService", "promoted"), "the stack began another operation"),
        (gate("UPDATE_COMPLETE"), endpoint("InService", "promoted"), "the stack is UPDATE_COMPLETE"),
        (gate(), None, "the endpoint could not be read right before"),
        (gate(), endpoint("Updating", "promoted", pending="newer"), "someone else changed the endpoint since"),
        (gate(), endpoint("InService", "newer"), "someone else changed the endpoint since"),
        (gate(), endpoint("Failed", "promoted", failure="health check"), "the endpoint is Failed on promoted"),
        (gate(now=SENT_AT + 1801), endpoint("InService", "promoted"), "the deadline passed 1 s ago"),
    ],
    ids=["later-operation", "update-completed", "unreadable", "someone-updating", "someone-serving", "failed", "late"],
)
def test_the_gate_refuses_a_rollback_saying_why(the_gate: permission.Gate, described: Any, said: str) -> None:
    with pytest.raises(NoStop, match=f"^endpoint ep was not rolled back to production: {said}") as refused:
        the_gate.roll_back(lambda: described, "ep", "production", "promoted")
    assert refused.value.answers_failed


def test_a_stack_rolling_back_does_not_refuse_the_rollback() -> None:
    rolling_back = gate("UPDATE_ROLLBACK_IN_PROGRESS")

    assert rolling_back.roll_back(lambda: endpoint("InService", "promoted"), "ep", "production", "promoted")
