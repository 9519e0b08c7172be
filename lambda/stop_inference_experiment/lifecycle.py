"""What each CloudFormation event does to the inference experiment.

`next_step` is the decision table (a plain function of the event and the experiment's status);
`handle` carries one event out against SageMaker and CloudFormation, waiting on an injected clock.
The README's lifecycle table says the same in prose, row for row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import rules
from botocore.exceptions import ClientError
from properties import InvalidProperties, StopDeclaration, StopFailed, parse, quote

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment

logger = logging.getLogger(__name__)

WAITING_TO_RUN = frozenset({"Creating", "Starting", "Updating"})
STOPPED = frozenset({"Completed", "Cancelled"})
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
# Polling backs off to this cap so the answer reaches CloudFormation within 10 s of the final status.
FIRST_POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 6.0
# Updates that change only these say nothing new about the stop (e.g. the function was replaced).
NOT_DECLARATIONS = frozenset({"ServiceToken", "ServiceTimeout"})


class Clock(Protocol):
    """Time as the lifecycle sees it; tests pass a fake one."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Services:
    """The AWS clients and the clock an event is carried out with."""

    sagemaker: SageMakerClient
    cloudformation: CloudFormationClient
    clock: Clock

    def parse(self, properties: object) -> StopDeclaration:
        """Properties parsed against the instance types of the SageMaker model this function's boto3 ships."""
        return parse(properties, rules.instance_types(self.sagemaker.meta.service_model))


@dataclass(frozen=True)
class Outcome:
    """A successful answer: the physical id and the Data CloudFormation's GetAtt reads."""

    physical_id: str
    arn: str = ""
    status: str = "Unknown"

    @property
    def data(self) -> dict[str, str]:
        return {"InferenceExperimentArn": self.arn, "Status": self.status}


class Step(Enum):
    STOP = "stop"
    WAIT = "wait"
    DONE = "done"


def next_step(request_type: str, experiment: Experiment, *, promotes: bool, stopping: bool) -> Step:
    """What to do next with an experiment.

    Args:
        request_type: Update or Delete.
        experiment: the latest DescribeInferenceExperiment answer.
        promotes: whether a variant is declared Promote.
        stopping: whether this event has sent the stop or seen the experiment Stopping.

    Raises:
        StopFailed: where the event must fail (an Update that cannot do what was declared).
    """
    status = experiment["Status"]
    name = experiment["Name"]
    if status in STOPPED:
        if request_type == "Update" and promotes and not stopping:
            raise StopFailed(f"Inference experiment {name} is already {status}: its shadow can no longer be promoted")
        return Step.DONE
    if stopping or status in WAITING_TO_RUN or status == "Stopping":
        return Step.WAIT
    if status == "Running":
        return Step.STOP
    if status == "Created":
        if request_type == "Delete":
            return Step.DONE
        start = experiment.get("Schedule", {}).get("StartTime")
        when = f"it is scheduled to start at {start:%Y-%m-%d %H:%M:%S %Z}".strip() if start else "it has no start time"
        raise StopFailed(f"Inference experiment {name} has not started yet ({when}): there is nothing to stop")
    raise StopFailed(f"Inference experiment {name} is in an unexpected status {status!r}: not stopped")


def poll_delays() -> Iterator[float]:
    """Seconds between DescribeInferenceExperiment calls: quick at first, then every MAX_POLL_SECONDS."""
    delay = FIRST_POLL_SECONDS
    while True:
        yield delay
        delay = min(delay * 1.5, MAX_POLL_SECONDS)


def handle(event: Mapping[str, Any], services: Services, time_left: float) -> Outcome:
    """Carry out one CloudFormation event.

    Args:
        event: the custom-resource event.
        services: AWS clients and clock.
        time_left: seconds the function may still spend before it must answer; waiting stops at the
            declared completion timeout or at this, whichever comes first.

    Raises:
        StopFailed: the event is answered FAILED with this reason.
    """
    request_type = event.get("RequestType")
    if request_type == "Create":
        return _create(services.parse(event.get("ResourceProperties")), services)
    if request_type == "Update":
        return _update(event, services, time_left)
    if request_type == "Delete":
        return _delete(event, services, time_left)
    raise StopFailed(f"Unknown RequestType {quote(request_type)}: nothing was stopped")


def _create(declaration: StopDeclaration, services: Services) -> Outcome:
    experiment = _describe(declaration.name, services)
    if experiment is None:
        raise StopFailed(_not_found(declaration.name, services))
    check_variants(declaration, experiment)
    return _outcome(experiment)


def _update(event: Mapping[str, Any], services: Services, time_left: float) -> Outcome:
    properties: Any = event.get("ResourceProperties")  # services.parse() refuses anything but an object
    physical_id = event.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        raise StopFailed(f"The Update has no PhysicalResourceId (got {quote(physical_id)}): nothing was stopped")
    if _rolling_back(event["StackId"], services):
        # A rollback must never fail: answer with what can be found out, and never stop.
        return _rollback_outcome(properties, physical_id, services)
    declaration = services.parse(properties)
    experiment = _describe(declaration.name, services)
    if experiment is None:
        raise StopFailed(_not_found(declaration.name, services))
    check_variants(declaration, experiment)
    if "Update" not in declaration.stop_on:
        return _outcome(experiment)
    old = event.get("OldResourceProperties")
    if not isinstance(old, Mapping):
        # Without the old declaration there is no telling whether the stop was asked for: fail safe, stop nothing.
        raise StopFailed(f"OldResourceProperties must be an object; got {quote(old)}: nothing was stopped")
    changed = {key for key in {*properties, *old} if properties.get(key) != old.get(key)}
    if changed and changed <= NOT_DECLARATIONS:
        logger.info(
            "Only %s changed; the declared stop did not, so %s is not stopped", sorted(changed), declaration.name
        )
        return _outcome(experiment)
    return _outcome(_stop_and_wait(declaration, "Update", experiment, services, time_left))


def _delete(event: Mapping[str, Any], services: Services, time_left: float) -> Outcome:  # noqa: PLR0911 (one per row)
    physical_id = event.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        logger.warning("The Delete has no PhysicalResourceId (got %s): nothing to stop", quote(physical_id))
        return Outcome("")
    try:
        declaration = services.parse(event.get("ResourceProperties"))
    except InvalidProperties as error:
        logger.warning("Not stopping on Delete: %s", error)
        return Outcome(physical_id)
    if physical_id != declaration.name:
        logger.info(
            "Physical id %r is not the experiment %s (its Create failed): nothing to stop",
            physical_id,
            declaration.name,
        )
        return Outcome(physical_id)
    if "Delete" not in declaration.stop_on:
        return Outcome(physical_id)
    if _rolling_back(event["StackId"], services):
        return Outcome(physical_id)
    experiment = _describe(declaration.name, services)
    if experiment is None:
        logger.info("Inference experiment %s does not exist: nothing to stop", declaration.name)
        return Outcome(physical_id, status="NotFound")
    try:
        check_variants(declaration, experiment)
    except InvalidProperties as error:
        logger.warning("Not stopping on Delete: %s", error)
        return _outcome(experiment)
    return _outcome(_stop_and_wait(declaration, "Delete", experiment, services, time_left))


def check_variants(declaration: StopDeclaration, experiment: Experiment) -> None:
    """Every variant the declaration names must be one of the experiment's, and only its shadow may be promoted.

    Raises:
        InvalidProperties: naming the first unknown variant and listing the experiment's.
    """
    known = [variant["VariantName"] for variant in experiment.get("ModelVariants", [])]
    for variant in declaration.variant_names:
        if variant not in known:
            raise InvalidProperties(
                f"Variant {variant!r} is not in inference experiment {declaration.name}, "
                f"whose variants are {', '.join(known) or 'none'}"
            )
    config = experiment.get("ShadowModeConfig")
    if config is None:
        return
    shadows = [shadow["ShadowModelVariantName"] for shadow in config.get("ShadowModelVariants", [])]
    for variant, action in declaration.model_variant_actions.items():
        if action == "Promote" and variant not in shadows:
            raise InvalidProperties(
                f"Variant {variant!r} is declared Promote but is not the shadow variant of inference experiment "
                f"{declaration.name} ({', '.join(shadows) or 'none'}): only a shadow can replace production"
            )


def _stop_and_wait(
    declaration: StopDeclaration, request_type: str, experiment: Experiment, services: Services, time_left: float
) -> Experiment:
    clock = services.clock
    started = clock.monotonic()
    deadline = started + max(0.0, min(declaration.completion_timeout_seconds, time_left))
    delays = poll_delays()
    stopping = False
    while True:
        stopping = stopping or experiment["Status"] == "Stopping"
        step = next_step(request_type, experiment, promotes=declaration.promotes, stopping=stopping)
        if step is Step.DONE:
            return experiment
        if step is Step.STOP:
            conflict = _stop(declaration, services)
            stopping = conflict is None
            experiment = _describe_existing(declaration.name, services)
            if conflict is not None and experiment["Status"] not in {"Stopping", *STOPPED}:
                raise StopFailed(f"SageMaker would not stop {declaration.name}: {conflict}")
            continue
        left = deadline - clock.monotonic()
        if left <= 0:
            return _timed_out(declaration, request_type, experiment, stopping, clock.monotonic() - started)
        clock.sleep(min(next(delays), left))
        experiment = _describe_existing(declaration.name, services)


def _stop(declaration: StopDeclaration, services: Services) -> str | None:
    """Send the declared stop; None once accepted, SageMaker's message where it answered ConflictException."""
    try:
        services.sagemaker.stop_inference_experiment(**declaration.stop_request())
    except ClientError as error:
        if _code(error) != "ConflictException":
            raise _failure(error, "sagemaker:StopInferenceExperiment", declaration.name) from error
        logger.info("StopInferenceExperiment conflicted (%s); describing again", _message(error))
        return f"ConflictException: {_message(error)}"
    logger.info("Stop of %s accepted: %s", declaration.name, dict(declaration.model_variant_actions))
    return None


def _timed_out(
    declaration: StopDeclaration, request_type: str, experiment: Experiment, stopping: bool, waited: float
) -> Experiment:
    status = experiment["Status"]
    summary = f"Inference experiment {declaration.name} is still {status} after {waited:.0f} s"
    if request_type == "Delete":
        # A stop is irreversible and teardown must not stick: succeed, loudly.
        logger.warning("%s; answering the Delete anyway (%s)", summary, "stop accepted" if stopping else "NOT stopped")
        return experiment
    if stopping and declaration.completion_timeout_seconds == 0:
        return experiment  # CompletionTimeoutSeconds 0: the stop was accepted and waiting was not asked for.
    if stopping:
        raise StopFailed(f"{summary} (CompletionTimeoutSeconds {declaration.completion_timeout_seconds})")
    raise StopFailed(
        f"{summary} and was not stopped (CompletionTimeoutSeconds {declaration.completion_timeout_seconds})"
    )


def _describe(name: str, services: Services) -> Experiment | None:
    """The experiment, or None where SageMaker says it does not exist."""
    try:
        return services.sagemaker.describe_inference_experiment(Name=name)
    except ClientError as error:
        if _is_not_found(error):
            return None
        raise _failure(error, "sagemaker:DescribeInferenceExperiment", name) from error


def _describe_existing(name: str, services: Services) -> Experiment:
    experiment = _describe(name, services)
    if experiment is None:
        raise StopFailed(f"Inference experiment {name} disappeared while it was being stopped")
    return experiment


def _is_not_found(error: ClientError) -> bool:
    # ResourceNotFound is the documented error. Some SageMaker Describe calls answer a missing resource
    # with ValidationException instead (*unverified* for this one), so that is read as not found too.
    code, message = _code(error), _message(error).lower()
    return code == "ResourceNotFound" or (
        code == "ValidationException" and ("not found" in message or "does not exist" in message)
    )


def _not_found(name: str, services: Services) -> str:
    return f"Inference experiment {name} was not found in {services.sagemaker.meta.region_name}"


def _rolling_back(stack_id: str, services: Services) -> bool:
    try:
        stacks = services.cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as error:
        raise _failure(error, "cloudformation:DescribeStacks", stack_id) from error
    status = stacks[0]["StackStatus"] if stacks else ""
    rolling_back = status.endswith("ROLLBACK_IN_PROGRESS") or status == "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    if rolling_back:
        logger.info("The stack is %s: a rollback never stops an experiment", status)
    return rolling_back


def _rollback_outcome(properties: object, physical_id: str, services: Services) -> Outcome:
    try:
        name = services.parse(properties).name
        experiment = _describe(name, services)
    except StopFailed as error:
        logger.warning("During the rollback: %s", error)
        return Outcome(physical_id)
    return _outcome(experiment) if experiment else Outcome(name, status="NotFound")


def _outcome(experiment: Experiment) -> Outcome:
    return Outcome(experiment["Name"], experiment["Arn"], experiment["Status"])


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")).strip()


def _failure(error: ClientError, action: str, resource: str) -> StopFailed:
    """A readable reason for a call that failed (after botocore's retries)."""
    code = _code(error)
    if code in ACCESS_DENIED:
        return StopFailed(f"Access denied: the function's role may not call {action} on {resource}")
    retries = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
    after = f" after {retries} retries" if retries else ""
    return StopFailed(f"{action} on {resource} failed{after}: {code}: {_message(error)}")
