"""ending.py directly: whose stop ended the experiment, and what an event answers at its deadline."""

from __future__ import annotations

import datetime
from typing import Any

import ending
import pytest
from described import experiment
from outcomes import Outcome, StopFailed
from permission import Timing
from properties import FALLBACK_REASON, parse

SENT = 1_795_000_000.0
TYPES = frozenset({"ml.m5.xlarge"})
DECLARED: dict[str, Any] = {
    "Name": "shadow-test",
    "ModelVariantActions": {"shadow": "Promote", "production": "Remove"},
    "Reason": "shadow beat production",
    "StopOn": ["Update", "Delete"],
    "CompletionTimeoutSeconds": "600",
}
GUARDED = {
    **DECLARED,
    "PromotionGuard": {
        "LatencyStatistic": "Average",
        "MinInvocations": "1000",
        "OnFailure": "FallBack",
        "MaxLatencyRatio": "1.1",
    },
}


def at(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def ended(reason: str, completed: float, status: str = "Completed") -> Any:
    return experiment(status, StatusReason=reason, CompletionTime=at(completed))


def own(properties: dict[str, Any], found: Any, request_type: str = "Update", previous: bool = False) -> str | None:
    declaration = parse(properties, TYPES)
    return ending.own_stop(declaration, request_type, Timing.of(SENT, 600, 720), found, lambda _: previous)


def test_an_end_with_the_declared_reason_after_the_event_was_sent_is_the_event_s_own() -> None:
    assert own(DECLARED, ended("shadow beat production", SENT + 60)) == "NoGuard"
    assert own(GUARDED, ended("shadow beat production", SENT + 60)) == "Promoted"


def test_a_guard_s_fallback_is_recognised_by_its_reason_and_carries_its_verdict() -> None:
    why = "shadow p99 41.2 ms > 1.10 x production 30.1 ms"

    assert own(GUARDED, ended(f"{FALLBACK_REASON}{why}", SENT + 60)) == f"FellBack: {why}"


@pytest.mark.parametrize(
    ("found", "previous"),
    [
        (ended("someone else's reason", SENT + 60), False),
        (ended("shadow beat production", SENT - 60), False),  # ended before the event was sent
        (ended("shadow beat production", SENT + 60, status="Cancelled"), False),  # not the declared status
        (ended("shadow beat production", SENT + 60), True),  # the previous declaration sends it too
    ],
    ids=["another-reason", "before-the-event", "another-status", "the-previous-declaration-s-reason"],
)
def test_an_end_that_does_not_show_this_event_s_stop_is_not_its_own(found: Any, previous: bool) -> None:
    assert own(DECLARED, found, previous=previous) is None


def test_an_own_end_after_the_deadline_fails_the_update_as_its_first_delivery_did() -> None:
    with pytest.raises(StopFailed, match=r"^Inference experiment shadow-test ended 60 s after this event's deadline"):
        own(DECLARED, ended("shadow beat production", SENT + 660))
    assert own(DECLARED, ended("shadow beat production", SENT + 660), request_type="Delete") == "NoGuard"


def test_the_previous_declaration_is_weighed_by_the_reason_it_sends_even_where_it_no_longer_parses() -> None:
    event = {"RequestType": "Update", "OldResourceProperties": {**DECLARED, "ModelVariantActions": "bad"}}

    def parsed(properties: object) -> Any:
        return parse(properties, TYPES)

    assert ending.previous_sends(event, parsed, "shadow-test", "shadow beat production") is True
    assert ending.previous_sends(event, parsed, "shadow-test", "another reason") is False
    assert (
        ending.previous_sends({**event, "RequestType": "Delete"}, parsed, "shadow-test", "shadow beat production")
        is False
    )


@pytest.mark.parametrize(
    ("request_type", "stop_sent", "answer"),
    [
        ("Delete", True, "SUCCESS"),
        ("Delete", False, "SUCCESS"),
        (
            "Update",
            True,
            "Inference experiment shadow-test is still Stopping after 600 s (CompletionTimeoutSeconds 600) note",
        ),
        (
            "Update",
            False,
            "Inference experiment shadow-test is still Stopping after 600 s and was not stopped "
            "(CompletionTimeoutSeconds 600) note",
        ),
    ],
)
def test_at_the_deadline_a_delete_succeeds_and_an_update_fails_saying_what_was_done(
    request_type: str, stop_sent: bool, answer: str
) -> None:
    declaration = parse(DECLARED, TYPES)

    def timed_out() -> Outcome:
        found: Any = experiment("Stopping")
        return ending.timed_out(declaration, request_type, found, 600, stop_sent=stop_sent, note=" note")

    if answer == "SUCCESS":
        assert timed_out().status == "Stopping"
    else:
        with pytest.raises(StopFailed) as failed:
            timed_out()
        assert str(failed.value) == answer


def test_a_stop_not_to_be_waited_for_succeeds_once_accepted() -> None:
    declaration = parse({**DECLARED, "CompletionTimeoutSeconds": "0"}, TYPES)
    found: Any = experiment("Stopping")

    assert ending.timed_out(declaration, "Update", found, 5, stop_sent=True, note="").status == "Stopping"
