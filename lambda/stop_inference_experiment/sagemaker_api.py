"""SageMaker, as the stop sees it: describe the experiment and its endpoint, stop the one, roll back the other.

The one place from which a call that changes AWS leaves: `stop` and `roll_back` each take the gate
(permission.Gate) and pass it right before the request is sent, so that no run sends an action its event may
no longer take. Reads come back as SageMaker answered them, or None where the resource does not exist; a read
that is throttled is tried again until the caller's time (aws.read). Failures become readable sentences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from aws import Clock, code, failure, message, not_found, read, transient
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from collections.abc import Callable

    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DescribeEndpointOutputTypeDef as Endpoint
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest
    from permission import Gate

logger = logging.getLogger(__name__)

SERVING = "InService"
# An endpoint in one of these has failed (its FailureReason says why).
ENDPOINT_FAILED = frozenset({"Failed", "UpdateRollbackFailed"})


class Rollback(Enum):
    """What became of a rollback's UpdateEndpoint."""

    SENT = "sent"  # accepted, or no answer came (it may be under way: the endpoint will tell)
    UNDER_WAY = "under way"  # not sent: the endpoint already updates to the configuration, or serves it


@dataclass(frozen=True)
class SageMaker:
    """The SageMaker calls of one run, on its clock."""

    client: SageMakerClient
    clock: Clock
    jitter: Callable[[], float]

    @property
    def region(self) -> str:
        return self.client.meta.region_name

    def experiment(self, name: str) -> Experiment | None:
        """The experiment, None where SageMaker says it does not exist.

        Raises:
            StopFailed: any other error (after botocore's retries), in a sentence.
        """
        try:
            return self._experiment(name)
        except ClientError as error:
            raise failure(error, "sagemaker:DescribeInferenceExperiment", name) from error

    def read_experiment(self, name: str, until: float) -> Experiment | None:
        """The experiment (None: it does not exist), a throttled read tried again until `until`.

        Raises:
            Unreadable: still throttled (or unreachable) at `until`.
            StopFailed: any other error.
        """
        return read(
            lambda: self._experiment(name),
            "sagemaker:DescribeInferenceExperiment",
            name,
            self.clock,
            until,
            self.jitter,
        )

    def endpoint(self, name: str, until: float) -> Endpoint:
        """The endpoint as DescribeEndpoint shows it, a throttled read tried again until `until`.

        Raises:
            Unreadable: still throttled (or unreachable) at `until`.
            StopFailed: any other error (the endpoint not found included).
        """
        return read(
            lambda: self.client.describe_endpoint(EndpointName=name),
            "sagemaker:DescribeEndpoint",
            name,
            self.clock,
            until,
            self.jitter,
        )

    def stop(self, request: StopRequest, gate: Gate, *, first_look: bool) -> str | None:
        """Send the stop, once the gate let it pass: None once accepted; SageMaker's code and message where it
        refused it as ConflictException or not found (describing again tells what that means).

        Raises:
            NoStop: the gate refused it (nothing sent).
            ClientError, BotoCoreError: throttled or no connection after botocore's retries (the caller says what
                a stop that could not be sent means for its event).
            StopFailed: any other refusal, in a sentence.
        """
        gate.stop(first_look=first_look)
        try:
            self.client.stop_inference_experiment(**request)
        except ClientError as error:
            if transient(error):
                raise
            if code(error) != "ConflictException" and not not_found(error):
                raise failure(error, "sagemaker:StopInferenceExperiment", request["Name"]) from error
            logger.info("StopInferenceExperiment was refused (%s); describing again", message(error))
            return f"{code(error)}: {message(error)}"
        logger.info("Stop of %s accepted: %s", request["Name"], dict(request["ModelVariantActions"]))
        return None

    def roll_back(self, endpoint: str, config: str, promoted: str, gate: Gate) -> Rollback:
        """Update the endpoint back to `config`, once the gate let it pass (the endpoint described right before).

        Raises:
            NoStop: the gate refused it (the deadline passed, the stack moved on, someone else changed the
                endpoint): nothing sent.
            StopFailed: SageMaker refused it, and the endpoint does not show it under way (SageMaker's words quoted).
        """
        if not gate.roll_back(lambda: self._endpoint_now(endpoint, gate.reads_until), endpoint, config, promoted):
            logger.info("The rollback of %s to %s is already under way or done: not sent again", endpoint, config)
            return Rollback.UNDER_WAY
        logger.warning("Rolling endpoint %s back to %s", endpoint, config)
        try:
            self.client.update_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        except BotoCoreError as error:
            # No answer (a timeout, a broken connection): the update may be under way. The endpoint tells.
            logger.warning("UpdateEndpoint of %s got no answer (%s); watching the endpoint", endpoint, error)
        except ClientError as error:
            # A refusal followed by an endpoint updating to `config` was accepted after all (botocore's retry of an
            # accepted update, say).
            after = self._endpoint_now(endpoint, gate.reads_until)
            if after is not None and updating_to(after) == config:
                return Rollback.SENT
            raise failure(error, "sagemaker:UpdateEndpoint", endpoint) from error
        return Rollback.SENT

    def _endpoint_now(self, name: str, until: float) -> Endpoint | None:
        """The endpoint, or None where it could not be read (the gate then judges without it)."""
        try:
            return self.endpoint(name, until)
        except Exception as error:  # noqa: BLE001 (Unreadable or StopFailed: the caller's rule decides)
            logger.warning("%s", error)
            return None

    def _experiment(self, name: str) -> Experiment | None:
        try:
            return self.client.describe_inference_experiment(Name=name)
        except ClientError as error:
            if not_found(error):
                return None
            raise


def updating_to(endpoint: Endpoint) -> str | None:
    """The configuration an Updating endpoint moves to (None where it is not updating, or does not say)."""
    if endpoint.get("EndpointStatus") != "Updating":
        return None
    return endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")


def serves(endpoint: Endpoint, config: str) -> bool:
    """Whether the endpoint is InService on `config`: judged by the configuration it serves, never by its status
    alone (an update that SageMaker rolled back also ends InService, on the configuration it had)."""
    return endpoint.get("EndpointStatus") == SERVING and endpoint.get("EndpointConfigName") == config
