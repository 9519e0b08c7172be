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
from evidence import alarm_details
from outcomes import StopFailed

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_sagemaker.client import SageMakerClient
    from properties import Guard

logger = logging.getLogger(__name__)

SERVING = "InService"
# Looks at the alarms more than this far apart leave a gap in which an alarm could have gone to ALARM and back
# unseen (a throttled read, a slow hand-on, a second delivery that starts watching late): an alarm that changed
# state in such a gap leaves the bake unproven.
BLIND_SECONDS = 60.0
ENDPOINT_FAILED = frozenset({"Failed", "UpdateRollbackFailed"})


@dataclass
class Bake:
    """Where a bake stands: until when, and the alarm that fired once the rollback was started."""

    until: float
    rolling_back: str = ""
    looked: float | None = None  # the last look at the alarms that read them all (None: none yet)


@dataclass(frozen=True)
class Watch:
    """What a bake needs: the guard, the experiment's endpoint, the clients and the announcement of its end."""

    guard: Guard
    experiment: str
    endpoint: str
    config: str  # the endpoint configuration the experiment's endpoint serves now
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
    if watch.guard.roll_back_to is not None and watch.config == watch.guard.roll_back_to:
        # An earlier delivery of this event baked, saw an alarm fire and rolled the endpoint back: answer as it did.
        watch.announce("RolledBack: by an earlier delivery", f"the endpoint serves {watch.config} again")
        raise StopFailed(
            f"RolledBack: the endpoint {watch.endpoint} serves {watch.config} again: an earlier delivery of this event "
            f"rolled {watch.experiment}'s promotion back after an alarm fired during its bake"
        )
    if watch.cloudwatch is None:
        raise StopFailed("No CloudWatch client to watch the bake's alarms with")
    try:
        details = alarm_details(watch.cloudwatch, watch.guard.alarms)
    except StopFailed as error:
        if isinstance(error.__cause__, ClientError | BotoCoreError) and transient(error.__cause__):
            logger.warning("The bake's alarms could not be read (%s); still baking", error)
            return False
        raise
    fired = [name for name in watch.guard.alarms if details.get(name, ("", None))[0] == "ALARM"]
    if fired:
        _fired(watch, bake, fired[0])
        return False
    gone = [name for name in watch.guard.alarms if name not in details]
    if gone:
        raise StopFailed(
            f"Alarm {gone[0]} was not found during the bake of {watch.experiment}'s promotion: the bake could not "
            f"watch it, so the promotion is not shown safe; the endpoint {watch.endpoint} serves the promoted model"
        )
    if bake.looked is not None and now - bake.looked > BLIND_SECONDS:
        for name in watch.guard.alarms:
            changed = details[name][1]
            if changed is None or changed > bake.looked:
                raise StopFailed(
                    f"Alarm {name} changed state during the bake of {watch.experiment}'s promotion while its alarms "
                    f"could not be watched ({now - bake.looked:.0f} s without a look): the promotion is not shown "
                    f"safe; the endpoint {watch.endpoint} serves the promoted model"
                )
    bake.looked = now
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
    except BotoCoreError as error:
        # No answer (a timeout, a broken connection): the update may be under way. Watch the endpoint: it serves
        # `config` once the rollback is done, and the deadline ends the wait if it never began.
        logger.warning("UpdateEndpoint of %s got no answer (%s); watching the endpoint", watch.endpoint, error)
    except ClientError as error:
        watch.announce(f"Failed: alarm {alarm} fired during the bake", "the rollback could not be started")
        # SageMaker's reason first: CloudFormation shows 255 characters of the reason.
        why = failure(error, "sagemaker:UpdateEndpoint", watch.endpoint)
        # The alarm and SageMaker's reason first: CloudFormation shows 255 characters of the reason.
        raise StopFailed(
            f"Rollback after alarm {alarm} fired during the bake failed: {why} (endpoint {watch.endpoint}, "
            f"configuration {config}, experiment {watch.experiment})"
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
    except BotoCoreError:
        return False  # no connection, a timeout: the rollback goes on, look again
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
            f"Rollback after alarm {alarm} fired during the bake failed: {status}: {why} (endpoint {watch.endpoint}, "
            f"configuration {config}, experiment {watch.experiment})"
        )
    return False
