"""What each CloudFormation event does to the inference experiment: the event's dispatcher.

`handle` carries one event (or one link of a long wait) out over small modules that each own one question:
- permission.py: may this event stop now (its deadline, the stack's state, a twin resource)?
- waiting.py: how often do we look, and who goes on (the poll, the continuation, the hand-on)?
- evidence.py: what do a promotion guard's metrics say?
- ending.py: did the experiment end as this event declares?
- properties.py and rules.py: what the event declares, checked.
`next_step` is the decision table, a plain function of the experiment's status. The README's lifecycle
table says the same in prose, row for row.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

import bake
import ending
import evidence
import permission
import rules
from announce import Context, announce
from aws import Clock, Unreadable, code, failure, message, not_found, read, transient
from botocore.exceptions import BotoCoreError, ClientError
from metrics import Verdict
from outcomes import HandedOn, InvalidProperties, NoStop, Outcome, StopFailed
from permission import MAX_LINKS, Stack, Timing
from properties import FALLBACKS, StopDeclaration, parse, quote
from waiting import CONTINUATION, HAND_ON_SECONDS, Continuation, Poller, hand_on

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest

__all__ = ["CONTINUATION", "Budget", "Outcome", "Services", "Step", "handle", "next_step"]

logger = logging.getLogger(__name__)

WAITING_TO_RUN = frozenset({"Creating", "Starting", "Updating"})
# Only these properties declare the stop: an Update that changes none of them (a longer completion timeout,
# StopOn, a replaced function) never stops anything.
DECLARATIONS = frozenset({"Name", "ModelVariantActions", "DesiredModelVariants", "DesiredState", "Reason"})
# Continuations this process has carried out, so that a duplicate delivery to a warm function is not run twice.
_SEEN: deque[tuple[str, int]] = deque(maxlen=64)


@dataclass(frozen=True)
class Services:
    """The AWS clients, the clock and the randomness (poll jitter) an event is carried out with."""

    sagemaker: SageMakerClient
    cloudformation: CloudFormationClient
    clock: Clock
    lambda_: LambdaClient | None = None
    cloudwatch: CloudWatchClient | None = None
    jitter: Callable[[], float] = field(default=random.random)
    events: EventBridgeClient | None = None

    def parse(self, properties: object) -> StopDeclaration:
        """Properties parsed against the instance types of the SageMaker model this function's boto3 ships."""
        return parse(properties, rules.instance_types(self.sagemaker.meta.service_model))


@dataclass(frozen=True)
class Budget:
    """What this run of the function may spend waiting, and the function to hand a longer wait on to."""

    time_left: float
    function_arn: str = ""


class Step(Enum):
    STOP = "stop"
    WAIT = "wait"
    DONE = "done"


def next_step(request_type: str, experiment: Experiment, *, stopping: bool, promoting: bool) -> Step:
    """What to do next with an experiment.

    Args:
        request_type: Update or Delete.
        experiment: the latest DescribeInferenceExperiment answer.
        stopping: whether this event's stop was sent, or the experiment is being stopped.
        promoting: whether the stop this event sent promotes (its endpoint must then serve again).

    Raises:
        StopFailed: where the event must fail (an Update of an experiment that has not started).
    """
    status = experiment["Status"]
    name = experiment["Name"]
    if status in ending.STOPPED:
        if stopping and promoting and not ending.endpoint_settled(experiment):
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


@dataclass(frozen=True)
class Run:
    """One run of the function for one event: what it declares, its clock, and the stack it belongs to."""

    event: Mapping[str, Any]
    request_type: str
    declaration: StopDeclaration
    services: Services
    budget: Budget
    timing: Timing
    stack: Stack
    run_ends: float
    arrived: float
    continuation: Continuation | None = None

    @classmethod
    def of(
        cls,
        event: Mapping[str, Any],
        declaration: StopDeclaration,
        services: Services,
        budget: Budget,
        continuation: Continuation | None = None,
    ) -> Run:
        now = services.clock.time()
        sent = permission.sent_time(event, now, continuation.sent if continuation else None)
        timing = Timing.of(sent, declaration.completion_timeout_seconds, declaration.service_timeout_seconds)
        if continuation is not None:
            timing = _bounded(timing, continuation, now)
        # The stack's times are CloudFormation's: compared with the URL's signing time itself, not capped by
        # this function's clock (which may run behind), lest an event seem older than its own operation.
        signed = permission.signed_at(event.get("ResponseURL"))
        signed = timing.sent if signed is None else signed
        # Where no Reason is declared, the stop names the event: SageMaker reports it as the experiment's
        # StatusReason, and a second delivery of this event recognises its own stop by it.
        if declaration.reason is None:
            declaration = replace(declaration, reason=_reason_naming(event))
        return cls(
            event,
            str(event.get("RequestType")),
            declaration,
            services,
            budget,
            timing,
            Stack(services.cloudformation, str(event.get("StackId")), services.clock, services.jitter, signed),
            now + max(0.0, budget.time_left),
            now,
            continuation,
        )

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def context(self) -> Context:
        """Where this event's decisions are made, for their announcement."""
        event = self.event
        return Context(
            self.name,
            str(event.get("StackId")),
            str(event.get("LogicalResourceId")),
            str(event.get("RequestId")),
            self.request_type,
        )

    def reads_until(self) -> float:
        """How long a throttled read may be tried again: the deadline, or the end of this run."""
        return min(max(self.timing.stop_by, self.timing.deadline), self.run_ends - HAND_ON_SECONDS)


def _bounded(timing: Timing, continuation: Continuation, now: float) -> Timing:
    """A later link's clock: the record's deadline, where the event allows it; else one that has passed."""
    if continuation.in_range and continuation.deadline <= timing.deadline:
        return replace(timing, deadline=continuation.deadline)
    logger.warning(
        "The continuation record is out of range (link %d, deadline %.0f s after the event's own): answering as "
        "at the deadline",
        continuation.link,
        continuation.deadline - timing.deadline,
    )
    passed = min(now, timing.sent) - 1
    return replace(timing, deadline=passed, waited_on_until=passed)


def _reason_naming(event: Mapping[str, Any]) -> str:
    stack = str(event.get("StackId", "")).split("/")
    stack_name = stack[1] if len(stack) > 1 else str(event.get("StackId"))
    reason = (
        f"Stopped by CloudFormation: stack {stack_name}, resource {event.get('LogicalResourceId')}, "
        f"request {event.get('RequestId')}"
    )
    return reason[: rules.MAX_REASON]


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
    run = Run.of(event, declaration, services, budget, continuation)
    logger.info("Link %d goes on waiting for %s (stop sent: %s)", continuation.link, run.name, continuation.stop_sent)
    physical_id = run.name if request_type == "Update" else str(event.get("PhysicalResourceId"))
    experiment = _describe_during(run)
    if experiment is None:
        return Outcome(physical_id, status="NotFound")
    return replace(_stop_and_wait(run, experiment), physical_id=physical_id)


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
    experiment = _describe(declaration.name, services)
    if experiment is None:
        raise StopFailed(_not_found(declaration.name, services))
    check_variants(declaration, experiment)
    if "Update" not in declaration.stop_on:
        return _outcome(experiment)
    changed = {key for key in {*properties, *old} if properties.get(key) != old.get(key)}
    if not changed & DECLARATIONS:
        logger.info(
            "Only %s changed; the declared stop did not, so %s is not stopped", sorted(changed), declaration.name
        )
        return _outcome(experiment)
    run = Run.of(event, declaration, services, budget)
    return _stop_and_wait(run, experiment)


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
        _refuse_if_twin(run, physical_id)
    experiment = _describe_during(run)
    if experiment is None:
        return Outcome(physical_id, status="NotFound")
    try:
        check_variants(declaration, experiment)
    except InvalidProperties as error:
        logger.warning("Not stopping on Delete: %s", error)
        return _outcome(experiment)
    return _stop_and_wait(run, experiment)


def _refuse_if_late(run: Run) -> None:
    """An event (or link) that arrived after its deadline, or after CloudFormation stopped waiting, stops nothing
    and waits for nothing. (It may still find the end its own first delivery left, and answer as that did.)

    Raises:
        NoStop: FAILED for an Update, SUCCESS for a Delete, saying it came too late.
    """
    now = run.arrived
    if run.timing.too_late(now) or (run.continuation is not None and now > run.timing.deadline):
        late = now - (run.timing.deadline if run.continuation is not None else run.timing.stop_by)
        raise NoStop(
            f"The {run.request_type} came too late ({late:.0f} s after its deadline, "
            f"{now - run.timing.sent:.0f} s after CloudFormation sent it): inference experiment {run.name} was "
            "not stopped",
            answers_failed=run.request_type == "Update",
        )


def _refuse_if_twin(run: Run, physical_id: str) -> None:
    """A clean-up Delete of a stopper whose construct moved: the new one still names the experiment.

    Raises:
        NoStop: SUCCESS, nothing stopped (also where the stack's resources could not be read: fail safe).
    """
    try:
        twin = run.stack.twin(str(run.event.get("LogicalResourceId")), physical_id, run.reads_until())
    except (Unreadable, StopFailed) as error:
        raise NoStop(
            f"In the stack's clean-up, its resources could not be read ({error}), so whether another stopper still "
            f"names inference experiment {run.name} is unknown: it was not stopped",
            answers_failed=False,
        ) from error
    if twin is not None:
        raise NoStop(
            f"In the stack's clean-up, stopper {twin} of the same stack still names inference experiment "
            f"{run.name} (the construct moved to a new logical id): it was not stopped",
            answers_failed=False,
        )


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


def _stop_and_wait(run: Run, experiment: Experiment) -> Outcome:
    """Stop (once, where permitted) and wait until the experiment has stopped and, after a promotion, serves again
    (and, where the guard says so, has baked).

    Raises:
        HandedOn: the wait goes on in the next run of the function, which answers.
        NoStop: where this event may not stop the experiment.
        StopFailed: where the event must be answered FAILED.
    """
    return _Wait(run, experiment).carry_out()


class _Done(Exception):
    """The wait is over: its answer."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__()
        self.outcome = outcome


class _Wait:
    """One run's part of a stop's wait: the experiment as last seen, whether this event's stop was sent (and
    what it decided), the bake under way, and the poll."""

    def __init__(self, run: Run, experiment: Experiment) -> None:
        self.run, self.experiment = run, experiment
        self.stop_sent = run.continuation.stop_sent if run.continuation else False
        self.sent_here = self.stop_sent  # the stop was sent by this delivery's chain (not recognised afterwards)
        self.tried = False  # this run saw the experiment Running and tried its stop (ConflictException, say)
        self.previous_sends: dict[str, bool] = {}  # per StatusReason: whether the previous declaration sends it
        self.decision = run.continuation.decision if run.continuation else ""
        self.baking = _bake_of(run.continuation)
        self.first_look = run.continuation is None
        self.poller = Poller(run.timing.sent, run.services.clock.time(), run.services.jitter)

    def carry_out(self) -> Outcome:
        try:
            while True:
                self._look()
        except _Done as done:
            return done.outcome

    def _answer(self, experiment: Experiment | None = None) -> _Done:
        if experiment is None:  # a Delete whose experiment is gone
            physical_id = str(self.run.event.get("PhysicalResourceId"))
            return _Done(Outcome(physical_id, status="NotFound", decision=self.decision))
        return _Done(replace(_outcome(experiment), decision=self.decision if self.stop_sent else ""))

    def _look(self) -> None:
        """One look at the experiment (or the bake): answer, stop, or wait a while."""
        run, experiment = self.run, self.experiment
        if self.baking is not None:
            # The link that began the bake saw the experiment end as declared: watch the alarms (or the rollback).
            self._bake()
            self._wait()
            return
        if not self.stop_sent and experiment["Status"] in {"Stopping", *ending.STOPPED}:
            # A stop this run did not send: an earlier delivery of this event's own, or someone else's.
            own = _own_stop(run, experiment, self._previous_sent)
            if own is None and experiment["Status"] in ending.STOPPED:
                ending.check_foreign_end(run.declaration.stop_request(), run.request_type, experiment)
                raise self._answer(experiment)
            if own is not None:
                logger.info(
                    "Inference experiment %s shows this event's own stop (an earlier delivery sent it)", run.name
                )
                self.stop_sent, self.decision = True, own
        sent_request = _sent_request(run.declaration, self.decision) if self.stop_sent else None
        promoting = sent_request is not None and ending.promotes(sent_request)
        stopping = self.stop_sent or experiment["Status"] == "Stopping"
        step = next_step(run.request_type, experiment, stopping=stopping, promoting=promoting)
        if step is Step.DONE:
            if sent_request is not None:
                ending.check_own_end(sent_request, run.request_type, experiment)
            self._bake()
        elif not self.stop_sent:
            _refuse_if_late(run)  # a late event neither stops nor waits (a stop it sent is waited out to its deadline)
        if step is Step.STOP:
            self._stop()
            return
        self._wait()

    def _previous_sent(self, reason: str) -> bool:
        """Whether the previous declaration sends this Reason too, read once per Reason (polls repeat the question);
        never once this run tried its own stop: no earlier declaration's stop can have come since, as a late copy
        of an older event is refused."""
        if self.tried:
            return False
        if reason not in self.previous_sends:
            self.previous_sends[reason] = _old_stop_sent(self.run, reason)
        return self.previous_sends[reason]

    def _bake(self) -> None:
        """The experiment ended as this event declared: answer, or bake its promotion a while."""
        run, clock = self.run, self.run.services.clock
        if not _bakes(run, self.decision):
            raise self._answer(self.experiment)
        if self.baking is None:
            self.baking = _bake_start(run, self.experiment, own=self.sent_here)
            logger.info("%s serves the promotion: watching its alarms until %.0f", run.name, self.baking.until)
        if bake.step(_watch(run, self.experiment), self.baking, clock.time()):
            logger.info("The bake of %s's promotion passed: no alarm fired", run.name)
            raise self._answer(self.experiment)

    def _stop(self) -> None:
        run = self.run
        conflict, decided = _stop_once(run, self.experiment, first_look=self.first_look)
        self.tried = True
        if conflict is None:
            self.stop_sent, self.sent_here, self.decision = True, True, decided
        # After an accepted stop, an experiment that cannot be read is still being stopped: wait on.
        described = _describe_during(run, last=self.experiment if conflict is None else None)
        if described is None:
            raise self._answer()
        if conflict is not None and described["Status"] not in {"Stopping", *ending.STOPPED}:
            if run.request_type == "Delete" and not conflict.startswith("ConflictException"):
                # Not found by the stop, yet still described (being deleted, or not yet consistent): teardown
                # must not stick on it, and nothing was stopped.
                raise NoStop(
                    f"SageMaker would not stop {run.name} ({conflict}): it was not stopped", answers_failed=False
                )
            raise StopFailed(f"SageMaker would not stop {run.name}: {conflict}")
        self.experiment = described

    def _wait(self) -> None:
        """Sleep until the next look, or answer at the deadline, or hand the wait on to the next run."""
        run, clock = self.run, self.run.services.clock
        now = clock.time()
        if now >= run.timing.deadline:
            if self.baking is not None:
                unbaked = _unbaked(run, self.baking)
                _announce(run, f"Failed: {unbaked}", "the bake did not finish by the deadline", None, None)
                raise StopFailed(unbaked)
            raise _Done(replace(_timed_out(run, self.experiment, stop_sent=self.stop_sent), decision=self.decision))
        delay = min(self.poller.delay(now), run.timing.deadline - now)
        # Hand on only a wait that outlasts this run: one whose deadline falls within it is answered here.
        if now + delay > run.run_ends - HAND_ON_SECONDS and run.timing.deadline > run.run_ends:
            self._hand_on()
        clock.sleep(delay)
        self.first_look = False
        if self.baking is not None:
            return  # the experiment has ended: the bake watches alarms, and the rollback the endpoint
        polled = _describe_during(run, last=self.experiment)
        if polled is None:
            raise self._answer()
        self.experiment = polled

    def _hand_on(self) -> None:
        run = self.run
        link = run.continuation.link + 1 if run.continuation else 2
        if link > MAX_LINKS:
            logger.warning("The wait for %s was handed on %d times: answering now", run.name, MAX_LINKS - 1)
            raise _Done(replace(_timed_out(run, self.experiment, stop_sent=self.stop_sent), decision=self.decision))
        baking = self.baking
        handed = Continuation(
            run.timing.deadline,
            self.stop_sent,
            link,
            self.decision,
            run.timing.sent,
            baking.until if baking else None,
            baking.rolling_back if baking else "",
            baking.looked if baking else None,
        )
        services = run.services
        hand_on(
            run.event, handed, run.name, run.request_type, services.lambda_, run.budget.function_arn, services.clock
        )
        raise _Done(replace(_outcome(self.experiment), decision=self.decision))  # a Delete whose hand-on failed


def _bakes(run: Run, decision: str) -> bool:
    """Whether this event's promotion is baked: an Update whose guard declares a bake, and promoted."""
    guard = run.declaration.guard
    return run.request_type == "Update" and decision == "Promoted" and guard is not None and bool(guard.bake_seconds)


def _bake_of(continuation: Continuation | None) -> bake.Bake | None:
    if continuation is None or continuation.bake_until is None:
        return None
    return bake.Bake(continuation.bake_until, continuation.rolling_back, continuation.bake_looked)


def _bake_start(run: Run, experiment: Experiment, *, own: bool) -> bake.Bake:
    """A bake from now, for this delivery's own promotion. A second delivery, which found the promotion done,
    bakes from when the experiment completed, and did not see the alarms since: any change since then leaves the
    bake unproven, as it may have been the first delivery's failed bake."""
    seconds = run.declaration.guard.bake_seconds or 0  # type: ignore[union-attr]
    completed = experiment.get("CompletionTime")
    if own or completed is None:
        return bake.Bake(run.services.clock.time() + seconds)
    return bake.Bake(completed.timestamp() + seconds, looked=completed.timestamp())


def _watch(run: Run, experiment: Experiment) -> bake.Watch:
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a guard bakes)
    return bake.Watch(
        guard,
        run.name,
        experiment["EndpointMetadata"]["EndpointName"],
        experiment["EndpointMetadata"].get("EndpointConfigName", ""),
        run.services.cloudwatch,
        run.services.sagemaker,
        lambda decision, action: _announce(run, decision, action, None, None),
    )


def _unbaked(run: Run, baking: bake.Bake) -> str:
    if baking.rolling_back:
        return (
            f"Alarm {baking.rolling_back} went to ALARM during the bake of {run.name}'s promotion; rolling its "
            "endpoint back had not finished by the deadline "
            f"(CompletionTimeoutSeconds {run.declaration.completion_timeout_seconds})"
        )
    return (
        f"The bake of {run.name}'s promotion had not finished by the deadline (CompletionTimeoutSeconds "
        f"{run.declaration.completion_timeout_seconds}): no alarm fired, but the promotion is not shown safe"
    )


def _own_stop(run: Run, experiment: Experiment, previous_sent: Callable[[str], bool]) -> str | None:
    """The decision of this event's own stop, where the experiment shows it sent it (an earlier delivery); else None.

    Read from the experiment alone, never by judging a guard again: the declared stop's Reason, or the Reason of
    its guard's fallback, which carries the verdict. Stopping counts where SageMaker already reports the Reason
    (*unverified* that it does before the experiment has ended: where it does not, the end is waited for).
    A Reason the previous declaration sends too (`previous_sent`) cannot be told apart: not its own.

    Raises:
        StopFailed: an Update whose own stop ended only after its deadline, as its first delivery then answered.
    """
    reason = str(experiment.get("StatusReason") or "")
    sent = run.declaration.sent_with(reason)
    if sent is None or previous_sent(reason):
        return None
    request, decision = sent
    if experiment["Status"] == "Stopping":
        return decision
    if not ending.left_by(request, experiment, run.timing.sent):
        return None
    completed = experiment["CompletionTime"].timestamp()
    if run.request_type == "Update" and not run.timing.at_once_only and completed > run.timing.deadline:
        raise StopFailed(
            f"Inference experiment {run.name} ended {completed - run.timing.deadline:.0f} s after this event's "
            f"deadline (CompletionTimeoutSeconds {run.declaration.completion_timeout_seconds})"
        )
    return decision


def _old_stop_sent(run: Run, reason: str) -> bool:
    """Whether an Update's previous declaration would have sent a stop with this same Reason: SageMaker's answer
    cannot then tell this event's own stop from that one's (answered at once, say), so it is not taken for this
    event's own (fail safe: a Promote then answers FAILED, as for someone else's stop)."""
    if run.request_type != "Update":
        return False
    properties = run.event.get("OldResourceProperties")
    try:
        old = run.services.parse(properties)
    except InvalidProperties:
        # Properties an earlier version carried out may be refused now: their Reason alone decides.
        clash = isinstance(properties, Mapping) and properties.get("Reason") == reason
    else:
        clash = old.sent_with(reason) is not None
    if clash:
        logger.warning(
            "Inference experiment %s was stopped with the Reason %r, which this Update's previous declaration "
            "sends too: it is not taken for this event's own",
            run.name,
            reason,
        )
    return clash


def _stop_once(run: Run, experiment: Experiment, *, first_look: bool) -> tuple[str | None, str]:
    """Decide the stop and send it where this event may, checked right before; its conflict (None once accepted)
    and its decision.

    Raises:
        NoStop: the stack's state does not warrant the stop, or the deadline passed (checked before a guard
            reads its metrics, so that a stack rolling back never fails on a guard, and again right before the
            stop where a guard's read took time); a Delete whose stop could not be sent for throttling or no
            connection (SUCCESS with a warning: teardown must not stick).
        StopFailed: a guard that fails an Update; SageMaker refused the stop (other than ConflictException).
    """
    clock = run.services.clock

    def gate() -> None:
        permission.check_stack(run.request_type, run.stack.status(run.reads_until()), run.name)
        permission.check_time(run.request_type, run.timing, clock.time(), run.name, first_look=first_look)

    gate()
    decided = _decide(run, experiment)
    if run.declaration.guard is not None and run.declaration.promotes:
        gate()
    try:
        conflict = _stop(decided.request, run.services)
    except (ClientError, BotoCoreError) as error:
        if run.request_type != "Delete" or not transient(error):
            raise
        raise NoStop(
            f"StopInferenceExperiment on {run.name} could not be sent ({type(error).__name__}: "
            f"{message(error) if isinstance(error, ClientError) else error}); it may not have been stopped",
            answers_failed=False,
        ) from error
    if conflict is None:
        _announce(run, decided.decision, decided.action, decided.verdict, decided.request)
    return conflict, decided.decision


def _decide(run: Run, experiment: Experiment) -> evidence.Decided:
    def tell(decision: str, action: str, verdict: Verdict | None) -> None:
        _announce(run, decision, action, verdict, None)

    return evidence.decide(
        run.declaration, run.request_type, experiment, run.services.cloudwatch, run.timing.sent, tell
    )


def _announce(run: Run, decision: str, action: str, verdict: Verdict | None, sent: StopRequest | None) -> None:
    announce(
        run.services.events,
        run.context,
        decision,
        action,
        declared=run.declaration.model_variant_actions,
        sent=sent["ModelVariantActions"] if sent is not None else None,
        verdict=verdict,
        thresholds=_thresholds(run.declaration),
    )


def _thresholds(declaration: StopDeclaration) -> dict[str, Any]:
    guard = declaration.guard
    if guard is None:
        return {}
    return {key: value for key, value in asdict(guard).items() if value not in (None, ())}


def _sent_request(declaration: StopDeclaration, decision: str) -> StopRequest:
    """The stop this event sent, from its decision (a fallback is the only stop that differs from the declared;
    its Reason holds the verdict that its decision names)."""
    for _, named, inconclusive in FALLBACKS:
        if decision.startswith(f"{named}: "):
            return declaration.fallback_request(decision.removeprefix(f"{named}: "), inconclusive=inconclusive)
    return declaration.stop_request()


def _timed_out(run: Run, experiment: Experiment, *, stop_sent: bool) -> Outcome:
    declaration, status = run.declaration, experiment["Status"]
    waited = run.services.clock.time() - run.timing.sent
    summary = f"Inference experiment {run.name} is still {status} after {waited:.0f} s"
    if status in ending.STOPPED:
        endpoint = experiment.get("EndpointMetadata", {})
        summary = (
            f"Inference experiment {run.name} is {status}, but its endpoint {endpoint.get('EndpointName')} "
            f"is still {endpoint.get('EndpointStatus', 'not reported')} after {waited:.0f} s"
        )
    if run.request_type == "Delete":
        # A stop is irreversible and teardown must not stick: succeed, loudly.
        logger.warning("%s; answering the Delete anyway (%s)", summary, "stop accepted" if stop_sent else "NOT stopped")
        return _outcome(experiment)
    if stop_sent and declaration.completion_timeout_seconds == 0:
        return _outcome(experiment)  # CompletionTimeoutSeconds 0: the stop was accepted and waiting was not asked for.
    if stop_sent:
        raise StopFailed(f"{summary} (CompletionTimeoutSeconds {declaration.completion_timeout_seconds})")
    raise StopFailed(
        f"{summary} and was not stopped (CompletionTimeoutSeconds {declaration.completion_timeout_seconds})"
    )


def _stop(request: StopRequest, services: Services) -> str | None:
    """Send the stop; None once accepted, SageMaker's code and message where it refused it as ConflictException or
    ResourceNotFound."""
    try:
        services.sagemaker.stop_inference_experiment(**request)
    except ClientError as error:
        if transient(error):
            raise  # the caller says what a stop that could not be sent means for its event
        if code(error) != "ConflictException" and not not_found(error):
            raise failure(error, "sagemaker:StopInferenceExperiment", request["Name"]) from error
        # Describing again tells what it means: stopped meanwhile, or gone (a Delete then has nothing left to stop).
        logger.info("StopInferenceExperiment was refused (%s); describing again", message(error))
        return f"{code(error)}: {message(error)}"
    logger.info("Stop of %s accepted: %s", request["Name"], dict(request["ModelVariantActions"]))
    return None


def _describe(name: str, services: Services) -> Experiment | None:
    """The experiment, or None where SageMaker says it does not exist.

    Raises:
        StopFailed: for any other error (after botocore's retries), with a readable reason.
    """
    try:
        return _describe_or_raise(name, services)
    except ClientError as error:
        raise failure(error, "sagemaker:DescribeInferenceExperiment", name) from error


def _describe_or_raise(name: str, services: Services) -> Experiment | None:
    """The experiment, None where SageMaker says it does not exist; any other error as botocore raised it."""
    try:
        return services.sagemaker.describe_inference_experiment(Name=name)
    except ClientError as error:
        if not_found(error):
            return None
        raise


def _describe_during(run: Run, last: Experiment | None = None) -> Experiment | None:
    """The experiment during a stop; None where a Delete finds it gone (nothing left to stop).

    A read that is throttled (or cannot connect) is tried again until the deadline; while polling (`last`
    given) it is not: the poll itself comes again, and the last answer stands ("still waiting").

    Raises:
        NoStop: an experiment that could not be read in time: a Delete answers SUCCESS, an Update FAILED.
        StopFailed: an Update whose experiment disappeared.
    """
    services = run.services
    try:
        experiment = read(
            lambda: _describe_or_raise(run.name, services),
            "sagemaker:DescribeInferenceExperiment",
            run.name,
            services.clock,
            services.clock.time() if last is not None else run.reads_until(),
            services.jitter,
        )
    except Unreadable as error:
        if last is not None:
            logger.warning("%s; still waiting", error)
            return last
        raise NoStop(f"{error}: it was not stopped", answers_failed=run.request_type == "Update") from error
    if experiment is not None:
        return experiment
    if run.request_type == "Delete":
        logger.info("Inference experiment %s does not exist (any more): nothing left to stop", run.name)
        return None
    raise StopFailed(f"Inference experiment {run.name} disappeared while it was being stopped")


def _not_found(name: str, services: Services) -> str:
    return f"Inference experiment {name} was not found in {services.sagemaker.meta.region_name}"


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
