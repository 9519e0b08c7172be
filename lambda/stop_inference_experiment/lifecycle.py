"""What each CloudFormation event does to the inference experiment.

`next_step` is the decision table (a plain function of the event and the experiment's status);
`handle` carries one event out against SageMaker and CloudFormation, waiting on an injected clock.
A wait longer than one run of the function is handed on: the function invokes itself with the event and
a continuation record (the absolute deadline, whether the stop was sent, the link number), and only the
last link answers. The README's lifecycle table says the same in prose, row for row.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import metrics
import rules
from botocore.exceptions import BotoCoreError, ClientError
from properties import InvalidProperties, StopDeclaration, StopFailed, parse, quote

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest

logger = logging.getLogger(__name__)

WAITING_TO_RUN = frozenset({"Creating", "Starting", "Updating"})
STOPPED = frozenset({"Completed", "Cancelled"})
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})
# Polling backs off to this cap so the answer reaches CloudFormation within 10 s of the final status.
FIRST_POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 6.0
# Only these properties declare the stop: an Update that changes none of them (a longer completion timeout,
# StopOn, a replaced function) never stops anything.
DECLARATIONS = frozenset({"Name", "ModelVariantActions", "DesiredModelVariants", "DesiredState", "Reason"})
# The event key of the continuation record that a link of a long wait hands on to the next.
CONTINUATION = "InferenceExperimentStopperContinuation"
# Kept back from a run's time to hand the event on (the Lambda client's own retries fit in it).
HAND_ON_SECONDS = 20.0
ENDPOINT_FAILED = frozenset({"Failed", "UpdateRollbackFailed"})
# Continuations this process has carried out, so that a duplicate delivery to a warm function is not run twice.
_SEEN: deque[tuple[str, int]] = deque(maxlen=64)


class Clock(Protocol):
    """Wall-clock time (epoch seconds, comparable across runs of the function); tests pass a fake one."""

    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Services:
    """The AWS clients and the clock an event is carried out with."""

    sagemaker: SageMakerClient
    cloudformation: CloudFormationClient
    clock: Clock
    lambda_: LambdaClient | None = None
    cloudwatch: CloudWatchClient | None = None

    def parse(self, properties: object) -> StopDeclaration:
        """Properties parsed against the instance types of the SageMaker model this function's boto3 ships."""
        return parse(properties, rules.instance_types(self.sagemaker.meta.service_model))


@dataclass(frozen=True)
class Budget:
    """What this run of the function may spend waiting, and the function to hand a longer wait on to."""

    time_left: float
    function_arn: str = ""


@dataclass(frozen=True)
class Continuation:
    """Where a long wait stands when one run of the function hands it on to the next."""

    deadline: float
    stop_sent: bool
    link: int
    decision: str = ""

    def record(self) -> dict[str, Any]:
        return {"Deadline": self.deadline, "StopSent": self.stop_sent, "Link": self.link, "Decision": self.decision}

    @classmethod
    def of(cls, event: Mapping[str, Any]) -> Continuation | None:
        """The event's continuation record, None for CloudFormation's own event.

        Raises:
            StopFailed: for a record this function did not write.
        """
        record = event.get(CONTINUATION)
        if record is None:
            return None
        deadline, stop_sent, link = (record.get(k) if isinstance(record, Mapping) else None for k in cls._KEYS)
        decision = record.get("Decision", "") if isinstance(record, Mapping) else None
        if not (
            isinstance(deadline, int | float)
            and isinstance(stop_sent, bool)
            and isinstance(link, int)
            and isinstance(decision, str)
        ):
            raise StopFailed(f"The event's {CONTINUATION} is malformed ({quote(record)}): nothing was stopped")
        return cls(float(deadline), stop_sent, link, decision)

    _KEYS = ("Deadline", "StopSent", "Link")


class HandedOn(Exception):
    """The wait was handed on to the next run of the function, which answers in this run's stead."""


@dataclass(frozen=True)
class Outcome:
    """A successful answer (the physical id and the Data CloudFormation's GetAtt reads), or none from this run."""

    physical_id: str
    arn: str = ""
    status: str = "Unknown"
    endpoint_status: str = ""
    decision: str = ""  # what the stop this event sent decided: Promoted, FellBack: <why>, NoGuard ("" for none)
    silent: bool = False  # a later link of the wait answers, or the copy of this continuation already did

    @property
    def data(self) -> dict[str, str]:
        return {
            "InferenceExperimentArn": self.arn,
            "Status": self.status,
            "EndpointStatus": self.endpoint_status,
            "Decision": self.decision,
        }


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
        if stopping and promotes and not endpoint_settled(experiment):
            return Step.WAIT  # the promotion is an endpoint update: wait until the endpoint serves it
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


def endpoint_settled(experiment: Experiment) -> bool:
    """Whether the experiment's endpoint is InService again, or has failed (its FailureReason says why).

    EndpointStatus is optional in the service model (*unverified* whether SageMaker always reports it here):
    an endpoint whose status is not reported is not taken to be serving, so the wait goes on to the deadline.
    """
    endpoint = experiment.get("EndpointMetadata", {})
    return (
        endpoint.get("EndpointStatus") == "InService"
        or endpoint.get("EndpointStatus") in ENDPOINT_FAILED
        or bool(endpoint.get("FailureReason"))
    )


def poll_delays() -> Iterator[float]:
    """Seconds between DescribeInferenceExperiment calls: quick at first, then every MAX_POLL_SECONDS."""
    delay = FIRST_POLL_SECONDS
    while True:
        yield delay
        delay = min(delay * 1.5, MAX_POLL_SECONDS)


def handle(event: Mapping[str, Any], services: Services, budget: Budget) -> Outcome:
    """Carry out one CloudFormation event, or one link of a wait handed on from an earlier run.

    Args:
        event: the custom-resource event (with a continuation record after the first link).
        services: AWS clients and clock.
        budget: how long this run may wait before it must answer or hand the wait on, and its function's ARN.

    Raises:
        StopFailed: the event is answered FAILED with this reason.
    """
    request_type = event.get("RequestType")
    try:
        continuation = Continuation.of(event)
        if continuation is not None:
            return _go_on(event, continuation, services, budget)
        if request_type == "Create":
            return _create(services.parse(event.get("ResourceProperties")), services)
        if request_type == "Update":
            return _update(event, services, budget)
        if request_type == "Delete":
            return _delete(event, services, budget)
    except HandedOn:
        return Outcome("", silent=True)
    raise StopFailed(f"Unknown RequestType {quote(request_type)}: nothing was stopped")


def _go_on(event: Mapping[str, Any], continuation: Continuation, services: Services, budget: Budget) -> Outcome:
    """A later link: wait on where the last run left off (never a second stop once one was sent)."""
    request_type = event.get("RequestType")
    if request_type not in ("Update", "Delete"):
        raise StopFailed(f"A continuation of a {quote(request_type)} event cannot be: nothing was stopped")
    seen = (str(event.get("RequestId")), continuation.link)
    if seen in _SEEN:
        logger.warning("Link %d of request %s was delivered twice; this copy does nothing", seen[1], seen[0])
        return Outcome("", silent=True)
    _SEEN.append(seen)
    declaration = services.parse(event.get("ResourceProperties"))
    logger.info(
        "Link %d goes on waiting for %s (stop sent: %s)", continuation.link, declaration.name, continuation.stop_sent
    )
    experiment = _describe_existing(declaration.name, services)
    physical_id = declaration.name if request_type == "Update" else str(event.get("PhysicalResourceId"))
    return replace(
        _stop_and_wait(declaration, request_type, experiment, services, budget, event, continuation),
        physical_id=physical_id,
    )


def _create(declaration: StopDeclaration, services: Services) -> Outcome:
    experiment = _describe(declaration.name, services)
    if experiment is None:
        raise StopFailed(_not_found(declaration.name, services))
    check_variants(declaration, experiment)
    return _outcome(experiment)


def _update(event: Mapping[str, Any], services: Services, budget: Budget) -> Outcome:
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
    if not changed & DECLARATIONS:
        logger.info(
            "Only %s changed; the declared stop did not, so %s is not stopped", sorted(changed), declaration.name
        )
        return _outcome(experiment)
    return _stop_and_wait(declaration, "Update", experiment, services, budget, event)


def _delete(event: Mapping[str, Any], services: Services, budget: Budget) -> Outcome:  # noqa: PLR0911 (one per row)
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
    return _stop_and_wait(declaration, "Delete", experiment, services, budget, event)


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


def _stop_and_wait(  # noqa: PLR0917 (the wait's whole context)
    declaration: StopDeclaration,
    request_type: str,
    experiment: Experiment,
    services: Services,
    budget: Budget,
    event: Mapping[str, Any],
    continuation: Continuation | None = None,
) -> Outcome:
    """Stop (once) and wait until the experiment has stopped and, for a Promote, its endpoint serves again.

    Raises:
        HandedOn: the wait goes on in the next run of the function, which answers.
        StopFailed: where the event must be answered FAILED.
    """
    clock = services.clock
    deadline = continuation.deadline if continuation else clock.time() + declaration.completion_timeout_seconds
    run_ends = clock.time() + max(0.0, budget.time_left)
    stopping = continuation.stop_sent if continuation else False
    decision = continuation.decision if continuation else ""
    delays = poll_delays()
    while True:
        stopping = stopping or experiment["Status"] == "Stopping"
        step = next_step(request_type, experiment, promotes=declaration.promotes, stopping=stopping)
        if step is Step.DONE:
            _verify(
                declaration, request_type, experiment, stopping=stopping, promoting=not decision.startswith("FellBack")
            )
            return replace(_outcome(experiment), decision=decision)
        if step is Step.STOP:
            request, decided = _decide(declaration, request_type, experiment, services)
            conflict = _stop(request, services)
            stopping = conflict is None
            decision = decided if stopping else decision  # someone else's stop carried out no decision of ours
            experiment = _describe_existing(declaration.name, services)
            if conflict is not None and experiment["Status"] not in {"Stopping", *STOPPED}:
                raise StopFailed(f"SageMaker would not stop {declaration.name}: {conflict}")
            continue
        now = clock.time()
        if deadline - now <= 0:
            waited = declaration.completion_timeout_seconds - (deadline - now)
            timed_out = _timed_out(declaration, request_type, experiment, stopping, waited)
            return replace(_outcome(timed_out), decision=decision)
        delay = min(next(delays), deadline - now)
        if now + delay > run_ends - HAND_ON_SECONDS:
            link = continuation.link + 1 if continuation else 2
            handed = Continuation(deadline, stopping, link, decision)
            _hand_on(event, handed, declaration, request_type, services, budget)
            return replace(_outcome(experiment), decision=decision)  # a Delete whose hand-on failed answers now
        clock.sleep(delay)
        experiment = _describe_existing(declaration.name, services)


def _hand_on(  # noqa: PLR0917 (the wait's whole context)
    event: Mapping[str, Any],
    continuation: Continuation,
    declaration: StopDeclaration,
    request_type: str,
    services: Services,
    budget: Budget,
) -> None:
    """Invoke this function again, asynchronously, with the event and where the wait stands.

    Raises:
        HandedOn: once the next run has been invoked.
        StopFailed: where the hand-on failed on an Update (a Delete returns, and answers at once).
    """
    payload = {
        **{key: value for key, value in event.items() if key != CONTINUATION},
        CONTINUATION: continuation.record(),
    }
    try:
        if services.lambda_ is None or not budget.function_arn:
            raise RuntimeError("no Lambda client or function ARN to invoke")
        services.lambda_.invoke(
            FunctionName=budget.function_arn, InvocationType="Event", Payload=json.dumps(payload).encode()
        )
    except (ClientError, BotoCoreError, RuntimeError) as error:
        why = (
            str(_failure(error, "lambda:InvokeFunction", "the function itself"))
            if isinstance(error, ClientError)
            else str(error)
        )
        sent = "the stop was accepted and may still complete" if continuation.stop_sent else "nothing was stopped"
        summary = f"Could not hand the wait for {declaration.name} on to the function's next run ({why}); {sent}"
        if request_type == "Delete":
            logger.warning("%s; answering the Delete anyway (teardown must not stick)", summary)
            return
        raise StopFailed(summary) from error
    logger.info(
        "Handed the wait for %s on to link %d; %.0f s left before the deadline",
        declaration.name,
        continuation.link,
        continuation.deadline - services.clock.time(),
    )
    raise HandedOn


def _verify(
    declaration: StopDeclaration, request_type: str, experiment: Experiment, *, stopping: bool, promoting: bool = True
) -> None:
    """After a stop this event waited through, the experiment must have ended as declared, its endpoint serving.

    Raises:
        StopFailed: on an Update that did not end as declared (a Delete logs a warning and succeeds).
    """
    name, status = declaration.name, experiment["Status"]
    reason = experiment.get("StatusReason")
    if reason:
        logger.info("SageMaker's reason for %s being %s: %s", name, status, reason)
    if not stopping:
        if request_type == "Delete" and declaration.promotes and status in STOPPED:
            logger.warning(
                "Inference experiment %s had already ended (%s) on its own: the declared promotion never happened, "
                "and its endpoint went back to its production variant",
                name,
                status,
            )
        return
    problems = []
    declared = declaration.desired_state or "Completed"
    if status != declared:
        problems.append(f"ended {status}, not {declared} as declared" + (f" ({reason})" if reason else ""))
    endpoint = experiment.get("EndpointMetadata", {})
    if (
        promoting
        and declaration.promotes
        and (endpoint.get("EndpointStatus") in ENDPOINT_FAILED or endpoint.get("FailureReason"))
    ):
        problems.append(
            f"its endpoint {endpoint.get('EndpointName')} is {endpoint.get('EndpointStatus', 'not reported')}: "
            f"{endpoint.get('FailureReason') or 'SageMaker gave no reason'}"
        )
    if not problems:
        return
    message = f"Inference experiment {name} " + "; ".join(problems)
    if request_type == "Delete":
        logger.warning("%s; answering the Delete anyway (teardown must not stick)", message)
        return
    raise StopFailed(message)


def _stop(request: StopRequest, services: Services) -> str | None:
    """Send the stop; None once accepted, SageMaker's message where it answered ConflictException."""
    try:
        services.sagemaker.stop_inference_experiment(**request)
    except ClientError as error:
        if _code(error) != "ConflictException":
            raise _failure(error, "sagemaker:StopInferenceExperiment", request["Name"]) from error
        logger.info("StopInferenceExperiment conflicted (%s); describing again", _message(error))
        return f"ConflictException: {_message(error)}"
    logger.info("Stop of %s accepted: %s", request["Name"], dict(request["ModelVariantActions"]))
    return None


def _decide(
    declaration: StopDeclaration, request_type: str, experiment: Experiment, services: Services
) -> tuple[StopRequest, str]:
    """The stop to send, and its decision: the declared one, or, where a promotion guard fails, the fallback.

    Raises:
        StopFailed: an Update whose guard failed with on_failure Fail, or whose metrics could not be read.
    """
    guard = declaration.guard
    if guard is None or not declaration.promotes:
        return declaration.stop_request(), "NoGuard"
    try:
        verdict = _judge(declaration, experiment, services)
    except StopFailed as error:
        if request_type != "Delete":
            raise
        verdict = metrics.Verdict(False, str(error))  # a Delete never fails on a guard: it falls back
    name = declaration.name
    if verdict.passed:
        logger.info("Promotion guard for %s passed: %s; promoting as declared", name, verdict.reason)
        return declaration.stop_request(), "Promoted"
    if request_type == "Update" and guard.on_failure == "Fail":
        logger.info("Promotion guard for %s failed: %s; nothing stopped", name, verdict.reason)
        raise StopFailed(f"Promotion guard for {name}: {verdict.reason}; nothing stopped")
    logger.warning("Promotion guard for %s failed: %s; falling back (the shadow is removed)", name, verdict.reason)
    return declaration.fallback_request(verdict.reason), f"FellBack: {verdict.reason}"


def _judge(declaration: StopDeclaration, experiment: Experiment, services: Services) -> metrics.Verdict:
    """Read both variants' metrics over the window in one GetMetricData call, and judge them.

    Raises:
        StopFailed: where the metrics could not be read (after botocore's retries).
    """
    guard = declaration.guard
    assert guard is not None  # noqa: S101 (only called with a guard)
    endpoint = experiment["EndpointMetadata"]["EndpointName"]
    [shadow] = [variant for variant, action in declaration.model_variant_actions.items() if action == "Promote"]
    production = experiment.get("ShadowModeConfig", {}).get("SourceModelVariantName")
    if production is None:
        others = [v["VariantName"] for v in experiment.get("ModelVariants", []) if v["VariantName"] != shadow]
        production = others[0] if others else shadow
    end = services.clock.time()
    start = experiment.get("Schedule", {}).get("StartTime") or experiment.get("CreationTime")
    if guard.window_seconds is not None:
        span = float(guard.window_seconds)
    elif start is not None:
        span = min(max(end - start.timestamp(), 60.0), float(rules.MAX_WINDOW_SECONDS))
    else:
        return metrics.Verdict(
            False, "not enough evidence: the experiment's start is not known; give the guard a window"
        )
    period = metrics.period_for(span)
    if services.cloudwatch is None:
        raise StopFailed("No CloudWatch client to read the promotion guard's metrics with")
    try:
        response = services.cloudwatch.get_metric_data(
            MetricDataQueries=metrics.queries(  # type: ignore[arg-type]
                endpoint, {"shadow": shadow, "production": production}, guard.latency_statistic, period
            ),
            StartTime=datetime.datetime.fromtimestamp(end - period, datetime.UTC),
            EndTime=datetime.datetime.fromtimestamp(end, datetime.UTC),
        )
    except ClientError as error:
        raise _failure(error, "cloudwatch:GetMetricData", endpoint) from error
    results = response["MetricDataResults"]
    return metrics.judge(guard, metrics.figures(results, "shadow"), metrics.figures(results, "production"))


def _timed_out(
    declaration: StopDeclaration, request_type: str, experiment: Experiment, stopping: bool, waited: float
) -> Experiment:
    status = experiment["Status"]
    summary = f"Inference experiment {declaration.name} is still {status} after {waited:.0f} s"
    if status in STOPPED:
        endpoint = experiment.get("EndpointMetadata", {})
        summary = (
            f"Inference experiment {declaration.name} is {status}, but its endpoint {endpoint.get('EndpointName')} "
            f"is still {endpoint.get('EndpointStatus', 'not reported')} after {waited:.0f} s"
        )
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
    endpoint_status = experiment.get("EndpointMetadata", {}).get("EndpointStatus", "")
    return Outcome(experiment["Name"], experiment["Arn"], experiment["Status"], endpoint_status)


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
