"""After a guarded promotion: watch the guard's alarms for its bake, and roll the endpoint back if one fires.

As SageMaker's deployment guardrails do (AutoRollbackConfiguration, a baking period): the bake starts once
the endpoint serves the promoted variant (experiment Completed, EndpointStatus InService). An alarm that goes
to ALARM during the bake fails the promotion; with RollBackTo the endpoint is updated back to that endpoint
configuration and the Update fails once it serves it again, saying so. An alarm in INSUFFICIENT_DATA is no
evidence of failure; an alarm CloudWatch no longer knows ends the bake unfinished (no rollback, FAILED). A read
that is throttled is "still baking". The bake is part of the wait, so it is handed on across runs like it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws import failure, transient
from botocore.exceptions import BotoCoreError, ClientError
from evidence import alarm_states
from outcomes import StopFailed

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_sagemaker.client import SageMakerClient
    from properties import Guard

logger = logging.getLogger(__name__)

SERVING = "InService"
ENDPOINT_FAILED = frozenset({"Failed", "UpdateRollbackFailed"})


@dataclass
class Bake:
    """Where a bake stands: until when, and the alarm that fired once the rollback was started."""

    until: float
    rolling_back: str = ""


@dataclass(frozen=True)
class Watch:
    """What a bake needs: the guard, the experiment's endpoint, the clients and the announcement of its end."""

    guard: Guard
    experiment: str
    endpoint: str
    cloudwatch: CloudWatchClient | None
    sagemaker: SageMakerClient
    announce: Callable[[str, str], None]  # (decision, action)


def step(watch: Watch, bake: Bake, now: float) -> bool:
    """One look at the bake: True once it passed; False while it goes on (or the rollback does).

    Raises:
        StopFailed: an alarm fired (after the rollback, where there is one, is done or failed), or an alarm is gone.
    """
    if bake.rolling_back:
        return _rollback_done(watch, bake)
    if watch.cloudwatch is None:
        raise StopFailed("No CloudWatch client to watch the bake's alarms with")
    try:
        states = alarm_states(watch.cloudwatch, watch.guard.alarms)
    except StopFailed as error:
        if isinstance(error.__cause__, ClientError | BotoCoreError) and transient(error.__cause__):
            logger.warning("The bake's alarms could not be read (%s); still baking", error)
            return False
        raise
    fired = [name for name in watch.guard.alarms if states.get(name) == "ALARM"]
    if fired:
        _fired(watch, bake, fired[0])
        return False
    gone = [name for name in watch.guard.alarms if name not in states]
    if gone:
        raise StopFailed(
            f"Alarm {gone[0]} was not found during the bake of {watch.experiment}'s promotion: the bake could not "
            f"watch it, so the promotion is not shown safe; the endpoint {watch.endpoint} serves the promoted model"
        )
    return now >= bake.until


def _fired(watch: Watch, bake: Bake, alarm: str) -> None:
    """An alarm fired during the bake: roll back where the guard says to, else fail saying what serves.

    Raises:
        StopFailed: without a rollback, or where the rollback could not be started.
    """
    config = watch.guard.roll_back_to
    if config is None:
        watch.announce(f"Failed: alarm {alarm} fired during the bake", "the endpoint still serves the promoted model")
        raise StopFailed(
            f"Alarm {alarm} went to ALARM during the bake of {watch.experiment}'s promotion; the endpoint "
            f"{watch.endpoint} still serves the promoted model (no roll_back_to declared)"
        )
    logger.warning("Alarm %s fired during the bake: rolling %s back to %s", alarm, watch.endpoint, config)
    try:
        watch.sagemaker.update_endpoint(EndpointName=watch.endpoint, EndpointConfigName=config)
    except ClientError as error:
        watch.announce(f"Failed: alarm {alarm} fired during the bake", "the rollback could not be started")
        # SageMaker's reason first: CloudFormation shows 255 characters of the reason.
        why = failure(error, "sagemaker:UpdateEndpoint", watch.endpoint)
        raise StopFailed(
            f"Rolling {watch.endpoint} back to {config} failed ({why}) after alarm {alarm} went to ALARM during the "
            f"bake of {watch.experiment}'s promotion"
        ) from error
    bake.rolling_back = alarm


def _rollback_done(watch: Watch, bake: Bake) -> bool:
    """The rollback's endpoint update: False while it goes on.

    Raises:
        StopFailed: once it is done (the Update fails, saying the endpoint was rolled back), or if it failed.
    """
    config, alarm = watch.guard.roll_back_to, bake.rolling_back
    try:
        endpoint = watch.sagemaker.describe_endpoint(EndpointName=watch.endpoint)
    except ClientError as error:
        if transient(error):
            return False
        raise failure(error, "sagemaker:DescribeEndpoint", watch.endpoint) from error
    status = endpoint["EndpointStatus"]
    if status == SERVING and endpoint.get("EndpointConfigName") == config:
        watch.announce(f"RolledBack: {alarm}", f"the endpoint serves {config} again")
        raise StopFailed(
            f"RolledBack: {alarm}: alarm {alarm} went to ALARM during the bake of {watch.experiment}'s promotion; "
            f"the endpoint {watch.endpoint} was rolled back to {config} and serves it"
        )
    if status in ENDPOINT_FAILED or (status == SERVING and endpoint.get("FailureReason")):
        why = endpoint.get("FailureReason") or "SageMaker gave no reason"
        watch.announce(f"Failed: alarm {alarm} fired during the bake", "the rollback failed")
        raise StopFailed(
            f"Rolling {watch.endpoint} back to {config} failed ({status}: {why}) after alarm {alarm} went to ALARM "
            f"during the bake of {watch.experiment}'s promotion"
        )
    return False
