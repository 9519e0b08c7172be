"""How long we wait, how often we look, and who goes on: the poll and the hand-on to the next run.

A wait longer than one run of the function is handed on: the function invokes itself, asynchronously, with
the event and a continuation record (the deadline, the link number, when the event was sent, and the wait's
state: its phase, the decision, the bake's window), and only the last link answers. The record is bounded by
what it cannot forge: no deadline past the one the event itself allows, and at most MAX_LINKS links.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws import Clock, code, failure
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError
from outcomes import HandedOn, StopFailed
from permission import MAX_LINKS
from properties import quote

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient

logger = logging.getLogger(__name__)

# The event key of the continuation record that a link of a long wait hands on to the next.
CONTINUATION = "InferenceExperimentStopperContinuation"
# Kept back from a run's time to hand the event on (three attempts of the Lambda client fit in it).
HAND_ON_SECONDS = 20.0
HAND_ON_ATTEMPTS = 3
# Polling: every few seconds while a stop is young (most end within two minutes), then less and less often,
# so that 50 stoppers of one stack waiting together do not crowd SageMaker's API; never more than 15 s apart,
# jitter included, so the answer reaches CloudFormation within 20 s of the final status.
FIRST_POLL_SECONDS = 2.0
EARLY_POLL_SECONDS = 6.0
EARLY_SECONDS = 120.0
MAX_POLL_SECONDS = 15.0
GROWTH = 1.5
JITTER = 0.25  # a delay is its base less up to this share, at random


@dataclass(frozen=True)
class Continuation:
    """Where a long wait stands when one run of the function hands it on to the next: the event's clock, the link,
    and the wait's state by name (stopping.State reads and writes it)."""

    deadline: float
    link: int
    sent: float | None = None
    state: Mapping[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {**self.state, "Deadline": self.deadline, "Link": self.link}
        if self.sent is not None:
            record["Sent"] = self.sent
        return record

    @property
    def in_range(self) -> bool:
        """A link number this function can have written (the deadline is bounded by the caller)."""
        return 2 <= self.link <= MAX_LINKS

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Continuation | None:
        """The event's continuation record, None for CloudFormation's own event.

        Raises:
            StopFailed: for a record this function did not write (the state's own fields are checked as read).
        """
        record = event.get(CONTINUATION)
        if record is None:
            return None
        given: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
        deadline, link, sent = given.get("Deadline"), given.get("Link"), given.get("Sent")
        if not (
            number(deadline) and isinstance(link, int) and not isinstance(link, bool) and (sent is None or number(sent))
        ):
            raise StopFailed(f"The event's {CONTINUATION} is malformed ({quote(record)}): nothing was stopped")
        state = {key: value for key, value in given.items() if key not in {"Deadline", "Link", "Sent"}}
        return cls(float(deadline), link, None if sent is None else float(sent), state)  # type: ignore[arg-type]


def number(value: object) -> bool:
    """A finite number (not a bool): what a record's times must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Poller:
    """The pauses between DescribeInferenceExperiment calls, by how long ago the event was sent."""

    def __init__(self, sent: float, now: float, jitter: Callable[[], float]) -> None:
        self._sent = sent
        self._jitter = jitter
        # A later link of a long wait starts at the slow pace it had reached.
        self._base = FIRST_POLL_SECONDS if now - sent < EARLY_SECONDS else MAX_POLL_SECONDS

    def delay(self, now: float) -> float:
        """The next pause, in seconds: jittered, at most EARLY_POLL_SECONDS early on and MAX_POLL_SECONDS later."""
        delay = self._base * (1 - JITTER * self._jitter())
        cap = EARLY_POLL_SECONDS if now - self._sent < EARLY_SECONDS else MAX_POLL_SECONDS
        self._base = min(max(self._base * GROWTH, FIRST_POLL_SECONDS), cap)
        return delay


def hand_on(  # noqa: PLR0917 (the hand-on's whole context)
    event: Mapping[str, Any],
    continuation: Continuation,
    name: str,
    request_type: str,
    lambda_: LambdaClient | None,
    function_arn: str,
    clock: Clock,
) -> None:
    """Invoke this function again, asynchronously, with the event and where the wait stands.

    The Invoke is sent so that an accepted one is never sent twice: it is tried again only after an error
    that shows it was not accepted (throttled, or no connection made), never after a read timeout.

    Raises:
        HandedOn: once the next run has been invoked, or may have been (a read timeout: the next run, if it
            runs, answers; if it does not, CloudFormation fails the event at its ServiceTimeout).
        StopFailed: where the hand-on failed on an Update (a Delete returns, and answers at once).
    """
    if continuation.link > MAX_LINKS:
        raise RuntimeError("a wait is never handed on past MAX_LINKS")  # the caller answers a deadline reached
    payload = json.dumps(
        {**{key: value for key, value in event.items() if key != CONTINUATION}, CONTINUATION: continuation.record()}
    ).encode()
    for attempt in range(1, HAND_ON_ATTEMPTS + 1):
        try:
            if lambda_ is None or not function_arn:
                raise RuntimeError("no Lambda client or function ARN to invoke")
            lambda_.invoke(FunctionName=function_arn, InvocationType="Event", Payload=payload)
            break
        except (ClientError, BotoCoreError, RuntimeError) as error:
            not_accepted = isinstance(error, ConnectionError) or (
                isinstance(error, ClientError) and code(error) == "TooManyRequestsException"
            )
            if isinstance(error, BotoCoreError) and not not_accepted:
                # A read timeout or a broken answer: the Invoke may have been accepted. Sending it again could
                # start two next links; answering now could contradict the one that runs.
                if request_type == "Delete":
                    logger.warning(
                        "The hand-on of the wait for %s may not have been accepted (%s); answering the Delete now",
                        name,
                        type(error).__name__,
                    )
                    return
                logger.warning(
                    "The hand-on of the wait for %s may or may not have been accepted (%s); not sending it again: "
                    "if no next run answers, CloudFormation fails the Update at its ServiceTimeout",
                    name,
                    type(error).__name__,
                )
                raise HandedOn from error
            if not_accepted and attempt < HAND_ON_ATTEMPTS:
                clock.sleep(0.5 * attempt)
                continue
            _hand_on_failed(error, continuation, name, request_type)
            return
    logger.info(
        "Handed the wait for %s on to link %d; %.0f s left before the deadline",
        name,
        continuation.link,
        continuation.deadline - clock.time(),
    )
    raise HandedOn


def _hand_on_failed(error: Exception, continuation: Continuation, name: str, request_type: str) -> None:
    """Raises StopFailed for an Update; a Delete returns and answers at once (teardown must not stick)."""
    if isinstance(error, ClientError):
        why = str(failure(error, "lambda:InvokeFunction", "the function itself"))
    else:
        why = str(error)
    stop_sent = continuation.state.get("StopSent") is True
    sent = "the stop was accepted and may still complete" if stop_sent else "nothing was stopped"
    summary = f"Could not hand the wait for {name} on to the function's next run ({why}); {sent}"
    if request_type == "Delete":
        logger.warning("%s; answering the Delete anyway (teardown must not stick)", summary)
        return
    raise StopFailed(summary) from error
