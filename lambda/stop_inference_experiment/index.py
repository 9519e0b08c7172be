"""Lambda entry point of the InferenceExperimentStopper custom resource: thin crhelper wiring over lifecycle."""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, cast

import boto3
import lifecycle
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from outcomes import StopFailed
from responder import CfnResponder

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_lambda.client import LambdaClient

logger = logging.getLogger(__name__)

# Kept back from the function's remaining time for the last describe, crhelper's pause on Delete and the answer.
ANSWER_RESERVE_SECONDS = 15
# botocore's standard mode backs off with jitter; 8 attempts ride out a burst of throttling or 5xx. Control-plane
# calls answer in well under a second: a hung connection is cut short and retried rather than waited on for 60 s.
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 8}, connect_timeout=5, read_timeout=20)
# Handing a long wait on (an async Invoke, answered at once) must fit in waiting.HAND_ON_SECONDS. One attempt per
# call: botocore would also retry a read timeout of an Invoke that Lambda accepted, starting two next links;
# waiting.hand_on tries again only where the Invoke was surely not accepted.
HAND_ON = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=2, read_timeout=4)

# Announcing a decision on EventBridge is one attempt, soon given up: it never delays or changes the answer.
ANNOUNCE = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1, read_timeout=2)

helper = CfnResponder(log_level="INFO", sleep_on_delete=2)


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@functools.cache
def services() -> lifecycle.Services:
    """The clients, made on the first event rather than at import, so a missing region fails that event readably."""
    return lifecycle.Services(
        sagemaker=boto3.client("sagemaker", config=RETRIES),
        cloudformation=boto3.client("cloudformation", config=RETRIES),
        clock=SystemClock(),
        lambda_=cast("LambdaClient", LazyClient("lambda", HAND_ON)),
        cloudwatch=cast("CloudWatchClient", LazyClient("cloudwatch", RETRIES)),
        events=cast("EventBridgeClient", LazyClient("events", ANNOUNCE)),
    )


class LazyClient:
    """A boto3 client made on first use: events that neither hand a wait on nor judge a guard never pay for it."""

    def __init__(self, service: str, config: Config) -> None:
        self._service, self._config = service, config
        self._client: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._client is None:
            self._client = boto3.client(self._service, config=self._config)  # type: ignore[call-overload]
        return getattr(self._client, attribute)


@helper.create
@helper.update
@helper.delete
def on_event(event: dict[str, Any], context: Any) -> str:
    """Carry the event out; crhelper answers with the returned physical id and helper.Data, or FAILED on a raise."""
    budget = lifecycle.Budget(
        time_left=context.get_remaining_time_in_millis() / 1000 - ANSWER_RESERVE_SECONDS,
        function_arn=str(getattr(context, "invoked_function_arn", "")),
    )
    try:
        outcome = lifecycle.handle(event, services(), budget)
    except StopFailed:
        raise
    except BotoCoreError as error:  # no region, no credentials, an endpoint out of reach: botocore's own sentences
        raise StopFailed(f"The function could not call AWS: {error}") from error
    except Exception as error:
        # A bug, not a declared outcome: the traceback (with the error's class) goes to the log, a sentence to
        # CloudFormation.
        logger.exception("Unexpected error during the %s", event.get("RequestType"))
        during = event.get("RequestType")
        raise StopFailed(
            f"The stop function failed unexpectedly during the {during}; its log group has the details"
        ) from error
    if outcome.silent:
        helper.stay_silent()
        return ""
    helper.Data.update(outcome.data)
    return outcome.physical_id


def handler(event: dict[str, Any], context: Any) -> None:
    """The function's handler (index.handler)."""
    helper(event, context)
