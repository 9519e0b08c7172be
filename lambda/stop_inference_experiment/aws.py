"""Calling AWS: readable reasons for failed calls, and reads that ride out throttling until a deadline.

botocore's standard mode already retries each call (index.RETRIES); a read that is still throttled after
that is tried again here, with growing, jittered pauses on the event's clock, for as long as the caller
may wait. What a read that never succeeded means (no stop, SUCCESS or FAILED) is the caller's to say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError
from outcomes import StopFailed

logger = logging.getLogger(__name__)

ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "LimitExceededException",
    }
)
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 15.0
T = TypeVar("T")


class Clock(Protocol):
    """Wall-clock time (epoch seconds, comparable across runs of the function); tests pass a fake one."""

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class Unreadable(Exception):
    """A read that was still throttled (or could not connect) when the caller's time ran out."""


def code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")).strip()


def transient(error: Exception) -> bool:
    """Throttling, a 5xx or a connection that failed: the same read may well succeed a little later."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code(error) in THROTTLED or int(status or 0) >= 500
    return isinstance(error, ConnectionError | HTTPClientError)


def failure(error: ClientError, action: str, resource: str) -> StopFailed:
    """A readable reason for a call that failed (after botocore's retries)."""
    error_code = code(error)
    if error_code in ACCESS_DENIED:
        return StopFailed(f"Access denied: the function's role may not call {action} on {resource}")
    retries = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    after = f" after {retries} retries" if retries else ""
    return StopFailed(f"{action} on {resource} failed{after}: {error_code}: {message(error)}")


def read(  # noqa: PLR0917 (a read's whole context)
    call: Callable[[], T], action: str, resource: str, clock: Clock, until: float, jitter: Callable[[], float]
) -> T:
    """A read (idempotent), tried again after throttling, a 5xx or a failed connection while time is left.

    Raises:
        Unreadable: still throttled (or unreachable) when `until` came; its message says what and why.
        StopFailed: for any other error (AccessDenied, a validation error), with a readable reason.
    """
    pause = FIRST_RETRY_SECONDS
    while True:
        try:
            return call()
        except (ClientError, BotoCoreError) as error:
            if not transient(error):
                if isinstance(error, ClientError):
                    raise failure(error, action, resource) from error
                raise StopFailed(f"{action} on {resource} failed: {error}") from error
            why = (
                f"{code(error)}: {message(error)}" if isinstance(error, ClientError) else str(error)
            )  # botocore's words
            wait = pause * (1 - 0.25 * jitter())
            if clock.time() + wait >= until:
                raise Unreadable(f"{action} on {resource} could not be read ({why})") from error
            logger.warning("%s on %s: %s; trying again in %.1f s", action, resource, why, wait)
            clock.sleep(wait)
            pause = min(pause * 2, MAX_RETRY_SECONDS)


def not_found(error: ClientError) -> bool:
    # ResourceNotFound is the documented error. Some SageMaker Describe calls answer a missing resource
    # with ValidationException instead (*unverified* for this one), so that is read as not found too.
    error_code, text = code(error), message(error).lower()
    return error_code == "ResourceNotFound" or (
        error_code == "ValidationException" and ("not found" in text or "does not exist" in text)
    )
