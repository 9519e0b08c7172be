"""One run of the function for one event: its clients, its clock, what it declares, and its gate."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import permission
import rules
from announce import Announcer, Context
from permission import Gate, Stack, Timing
from properties import StopDeclaration, parse
from sagemaker_api import SageMaker
from waiting import HAND_ON_SECONDS, Continuation

if TYPE_CHECKING:
    from aws import Clock
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_sagemaker.client import SageMakerClient

logger = logging.getLogger(__name__)


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

    @property
    def sagemaker_api(self) -> SageMaker:
        return SageMaker(self.sagemaker, self.clock, self.jitter)


@dataclass(frozen=True)
class Budget:
    """What this run of the function may spend waiting, and the function to hand a longer wait on to."""

    time_left: float
    function_arn: str = ""


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
    def sagemaker(self) -> SageMaker:
        return self.services.sagemaker_api

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

    @property
    def announcer(self) -> Announcer:
        """This event's decisions, announced (a guard's thresholds with them)."""
        guard = self.declaration.guard
        thresholds = {} if guard is None else {k: v for k, v in asdict(guard).items() if v not in (None, ())}
        return Announcer(self.services.events, self.context, self.declaration.model_variant_actions, thresholds)

    @property
    def gate(self) -> Gate:
        """The check every action of this event passes right before it is sent."""
        return Gate(self.request_type, self.name, self.timing, self.stack, self.services.clock, self.reads_until())

    def now(self) -> float:
        return self.services.clock.time()

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
