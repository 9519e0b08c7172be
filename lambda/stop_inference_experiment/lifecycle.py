"""What each CloudFormation event does to the inference experiment: the event's dispatcher.

`handle` carries one event (or one link of a long wait) out over small modules that each own one question:
- permission.py: may this event act now (its deadline, the stack's state, a twin resource), and the gate;
- stopping.py: the wait for the end as one state with named phases (the stop, the end, the bake, the rollback);
- waiting.py: how often do we look, and who goes on (the poll, the continuation, the hand-on)?
- evidence.py and bake.py: what a promotion guard's evidence says, before the stop and over the bake;
- ending.py: did the experiment end as this event declares?
- sagemaker_api.py: SageMaker, the one place actions leave from;
- properties.py and rules.py: what the event declares, checked.
The README's lifecycle table says the same in prose, row for row.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import permission
import stopping
from invocation import Budget, Run, Services
from outcomes import HandedOn, InvalidProperties, NoStop, Outcome, StopFailed
from permission import Stack, Timing
from properties import quote
from stopping import Step, next_step
from waiting import CONTINUATION, HAND_ON_SECONDS, Continuation

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from properties import StopDeclaration

__all__ = ["CONTINUATION", "Budget", "Outcome", "Services", "Step", "handle", "next_step"]

logger = logging.getLogger(__name__)

# Only these properties declare the stop: an Update that changes none of them (a longer completion timeout,
# StopOn, a replaced function) never stops anything.
DECLARATIONS = frozenset({"Name", "ModelVariantActions", "DesiredModelVariants", "DesiredState", "Reason"})
# Continuations this process has carried out, so that a duplicate delivery to a warm function is not run twice.
# Keyed by the whole record: two chains of one event (a copy's and the first delivery's) carry different records.
_SEEN: deque[tuple[str, int, str]] = deque(maxlen=64)


def handle(event: Mapping[str, Any], services: Services, budget: Budget) -> Outcome:
    """Carry out one CloudFormation event, or one link of a wait handed on from an earlier run.

    Args:
        event: the custom-resource event (with a continuation record after the first link).
        services: AWS clients, clock and jitter.
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
    except NoStop as refused:
        if refused.answers_failed:
            raise StopFailed(str(refused)) from refused
        logger.log(logging.INFO if refused.routine else logging.WARNING, "%s; answering SUCCESS", refused)
        return Outcome(str(event.get("PhysicalResourceId") or ""))
    raise StopFailed(f"Unknown RequestType {quote(request_type)}: nothing was stopped")


def _go_on(event: Mapping[str, Any], continuation: Continuation, services: Services, budget: Budget) -> Outcome:
    """A later link: wait on where the last run left off (never a second stop once one was sent)."""
    request_type = event.get("RequestType")
    if request_type not in ("Update", "Delete"):
        raise StopFailed(f"A continuation of a {quote(request_type)} event cannot be: nothing was stopped")
    seen = (str(event.get("RequestId")), continuation.link, json.dumps(continuation.record(), sort_keys=True))
    if seen in _SEEN:
        logger.warning("Link %d of request %s was delivered twice; this copy does nothing", seen[1], seen[0])
        return Outcome("", silent=True)
    _SEEN.append(seen)
    declaration = services.parse(event.get("ResourceProperties"))
    run = Run.of(event, declaration, services, budget, continuation)
    logger.info("Link %d goes on waiting for %s (%s)", continuation.link, run.name, continuation.state.get("Phase"))
    physical_id = run.name if request_type == "Update" else str(event.get("PhysicalResourceId"))
    experiment = stopping.describe(run)
    if experiment is None:
        return Outcome(physical_id, status="NotFound")
    return replace(stopping.carry_out(run, experiment), physical_id=physical_id)


def _create(declaration: StopDeclaration, services: Services) -> Outcome:
    experiment = services.sagemaker_api.experiment(declaration.name)
    if experiment is None:
        raise StopFailed(f"Inference experiment {declaration.name} was not found in {services.sagemaker_api.region}")
    check_variants(declaration, experiment)
    return Outcome.of(experiment)


def _update(event: Mapping[str, Any], services: Services, budget: Budget) -> Outcome:
    properties: Any = event.get("ResourceProperties")  # services.parse() refuses anything but an object
    physical_id = event.get("PhysicalResourceId")
    if not isinstance(physical_id, str) or not physical_id:
        raise StopFailed(f"The Update has no PhysicalResourceId (got {quote(physical_id)}): nothing was stopped")
    declaration = _parse_unless_rolling_back(event, properties, physical_id, services, budget)
    if isinstance(declaration, Outcome):
        return declaration
    old = event.get("OldResourceProperties")
    if not isinstance(old, Mapping):
        # Without the old declaration there is no telling whether the stop was asked for: fail safe, stop nothing.
        raise StopFailed(f"OldResourceProperties must be an object; got {quote(old)}: nothing was stopped")
    if declaration.name != physical_id or declaration.name != old.get("Name"):
        # A new name is a new experiment (a replacement): checked as a Create would, never stopped. The Delete
        # CloudFormation then sends for the old physical id ends the old experiment by its old declaration.
        logger.info("Name changed to %s: a replacement, checked as a Create is; nothing stopped", declaration.name)
        return _create(declaration, services)
    experiment = services.sagemaker_api.experiment(declaration.name)
    if experiment is None:
        raise StopFailed(f"Inference experiment {declaration.name} was not found in {services.sagemaker_api.region}")
    check_variants(declaration, experiment)
    if "Update" not in declaration.stop_on:
        return Outcome.of(experiment)
    changed = {key for key in {*properties, *old} if properties.get(key) != old.get(key)}
    if not changed & DECLARATIONS:
        logger.info(
            "Only %s changed; the declared stop did not, so %s is not stopped", sorted(changed), declaration.name
        )
        return Outcome.of(experiment)
    run = Run.of(event, declaration, services, budget)
    return stopping.carry_out(run, experiment)


def _parse_unless_rolling_back(
    event: Mapping[str, Any], properties: object, physical_id: str, services: Services, budget: Budget
) -> StopDeclaration | Outcome:
    """The Update's declaration; or, for a stack rolling back, the answer (a rollback never stops, never fails).

    The stack is read before the properties are parsed, so that a rollback to properties this function
    refuses still succeeds.

    Raises:
        NoStop: FAILED where the stack's state could not be read (within the event's deadline).
        InvalidProperties: for properties that cannot be carried out.
    """
    clock = services.clock
    run_ends = clock.time() + max(0.0, budget.time_left - HAND_ON_SECONDS)
    try:
        declaration: StopDeclaration | None = services.parse(properties)
    except InvalidProperties:
        declaration = None
    until = run_ends
    sent = permission.sent_time(event, clock.time())
    if declaration is not None:
        timing = Timing.of(sent, declaration.completion_timeout_seconds, declaration.service_timeout_seconds)
        until = min(timing.stop_by, run_ends)
    state = Stack(services.cloudformation, str(event.get("StackId")), clock, services.jitter, sent).status(until)
    if state is not None and permission.rolling_back(state.status):
        logger.info("The stack is %s: a rollback never stops an experiment", state.status)
        return _rollback_outcome(properties, physical_id, services)
    if state is None:
        raise NoStop("The stack's state could not be read: nothing was stopped", answers_failed=True)
    return declaration if declaration is not None else services.parse(properties)


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
            "Physical id %r is not the experiment %s (its Create failed, or it was replaced): nothing to stop",
            physical_id,
            declaration.name,
        )
        return Outcome(physical_id)
    if "Delete" not in declaration.stop_on:
        return Outcome(physical_id)
    run = Run.of(event, declaration, services, budget)
    state = run.stack.status(run.reads_until())
    permission.check_stack("Delete", state, run.name)
    if state is not None and state.status == permission.CLEANUP:
        run.stack.refuse_if_twin(str(event.get("LogicalResourceId")), physical_id, run.reads_until(), run.name)
    experiment = stopping.describe(run)
    if experiment is None:
        return Outcome(physical_id, status="NotFound")
    try:
        check_variants(declaration, experiment)
    except InvalidProperties as error:
        logger.warning("Not stopping on Delete: %s", error)
        return Outcome.of(experiment)
    return stopping.carry_out(run, experiment)


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


def _rollback_outcome(properties: object, physical_id: str, services: Services) -> Outcome:
    try:
        name = services.parse(properties).name
        experiment = services.sagemaker_api.experiment(name)
    except StopFailed as error:
        logger.warning("During the rollback: %s", error)
        return Outcome(physical_id)
    return Outcome.of(experiment) if experiment else Outcome(name, status="NotFound")
