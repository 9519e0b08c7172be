"""Simulated AWS around a stack of stoppers: one clock, and every service the handler calls running on it.

The handler is run as Lambda runs it, through `index.handler`, with real botocore clients: botocore validates
every request against the real service model, a `before-call` hook answers instead of the network, and every
answer is checked against the operation's output shape. What is simulated:

- Time: a fake clock that moves only when the handler sleeps, a call is slow, or the test lets time pass.
  Happenings scheduled for a time (a stop by hand, a deleted experiment, another resource failing, a
  ServiceTimeout) happen as the clock passes it, in the middle of a run if one is going on.
- SageMaker: inference experiments, Starting for a while and then Running. A stop of a Running one makes it
  Stopping, then Completed or Cancelled as asked, with the stop's Reason as its StatusReason (the service
  model documents StatusReason as the client-specified Reason) and a CompletionTime; after a Promote its
  endpoint is Updating for a while, to an endpoint configuration SageMaker makes for the promoted variant. A
  stop of one that is not Running is a ConflictException; a deleted one is ResourceNotFound.
- The endpoint every experiment runs on: DescribeEndpoint (EndpointConfigName, LastModifiedTime: when its last
  update began, or ended; PendingDeploymentSummary while Updating; FailureReason after a failed update) and
  UpdateEndpoint, refused while the endpoint is Updating (or an update is due to begin), which may take long,
  fail (Failed, or InService on the configuration it had, with a FailureReason: SageMaker undid it), be refused
  outright, or lose its answer. The experiment's EndpointMetadata shows the endpoint as it is at each read.
  Someone else (a deploy by hand, or by the stack) may update it too.
- CloudFormation: the stack's operations (create, update, delete), which send the custom-resource events
  (SigV4 ResponseURLs dated when they are sent, each with its own path and signature), take the answers PUT
  to them, clean up after a replacement or a removed resource, and roll back after a FAILED answer, a
  ServiceTimeout or another resource's failure. DescribeStacks and ListStackResources show where it stands
  (LastUpdatedTime moves as an update begins, DeletionTime is set as the deletion begins: the handler's own,
  unverified, reading of them).
- CloudWatch: GetMetricData over a guard's window, answered whole, partial or empty; one window's data,
  once read, stays what it was (every delivery of one event reads the same figures). Alarms (a metric alarm
  and a composite one) whose states change on the clock, as the test sets them (for seconds between two looks,
  flapping faster than the poll, without data for a while, deleted): DescribeAlarms (StateTransitionedTimestamp)
  and DescribeAlarmHistory (StateUpdates with their HistoryData), both paginated with fewer records a page than
  asked for (as CloudWatch may), so that the handler must follow NextToken.
- Lambda: the function's async queue (at least once, possibly late; an event older than the maximum event
  age is dropped), Invoke (how the handler hands a long wait on), and the function's timeout, at which
  crhelper's timer answers and the run ends.

Throttling (of reads: a stop that cannot be sent is another matter), slow calls, an Invoke whose answer is
lost and a stop whose answer is lost can be switched on for a while.
"""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import heapq
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import boto3
import index
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.validate import ParamValidator
from conftest import CLOCK_START, FUNCTION_ARN, FakeClock
from described import experiment

REGION = "us-east-1"
STACK_NAME = "ShadowTestStack"
STACK_ARN = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{STACK_NAME}"
STOPPER = "Custom::InferenceExperimentStop"
URL_LIFETIME_SECONDS = 7200  # the pre-signed ResponseURL's X-Amz-Expires
LAMBDA_MAX_TIMEOUT_SECONDS = 900
QUEUE_SECONDS = 0.5  # Lambda's async queue, from an Invoke (or CloudFormation's send) to the run
STOPPED = frozenset({"Completed", "Cancelled"})
THROTTLED = {  # how each service says so
    "sagemaker": (400, "ThrottlingException"),
    "cloudformation": (400, "Throttling"),
    "cloudwatch": (400, "Throttling"),
    "lambda": (429, "TooManyRequestsException"),
}
READS = frozenset(
    {
        "DescribeInferenceExperiment",
        "DescribeEndpoint",
        "DescribeStacks",
        "ListStackResources",
        "GetMetricData",
        "DescribeAlarms",
        "DescribeAlarmHistory",
        "Invoke",
    }
)
ENDPOINT = "shadow-test-endpoint"  # the endpoint of tests/described.py's experiment, every experiment's here
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/{ENDPOINT}"
# What the endpoint serves before any promotion: the configuration the stack declares (RollBackTo names it).
PRODUCTION_CONFIG = "shadow-test-endpoint-config-production"
ALARMS = {"shadow-latency": False, "shadow-errors": True}  # the alarms CloudWatch knows: name -> composite
HISTORY_PAGE = 4  # DescribeAlarmHistory answers at most this many records a page, whatever MaxRecords asks
ALARMS_PAGE = 1  # DescribeAlarms likewise


# What the handler's next UpdateEndpoint meets (the first: a rollback that goes well), and how each one ends:
# (seconds it takes, SageMaker's FailureReason where it fails, the status it leaves then).
ROLLBACKS = (
    "it takes 2 minutes",
    "it takes 25 minutes",
    "it fails",
    "SageMaker undoes it",
    "it is refused: no such configuration",
    "its answer is lost",
    "its answer is lost, and botocore's retry refused",
)
HEALTH_CHECK = "The primary container for production variant production did not pass the ping health check."
ROLLBACK_ENDS = {
    "it takes 25 minutes": (1500.0, None, "Failed"),
    "it fails": (300.0, HEALTH_CHECK, "Failed"),
    "SageMaker undoes it": (300.0, HEALTH_CHECK, "InService"),
}


class FunctionTimedOut(BaseException):
    """Lambda ended the run at the function's timeout: nothing after it runs (BaseException: no handler catches it)."""


# The declaration ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declaration:
    """What one stopper declares: its properties as the construct writes them."""

    name: str = "shadow-test"
    actions: tuple[tuple[str, str], ...] = (("shadow", "Promote"), ("production", "Remove"))
    shadow_instances: int | None = 2  # DesiredModelVariants for a promoted shadow; None for none
    desired_state: str | None = "Completed"
    reason: str | None = "shadow beat production"
    stop_on: tuple[str, ...] = ("Update", "Delete")
    completion_timeout: int = 600
    guard: str | None = None  # the promotion guard's OnFailure (Fail or FallBack); None for no guard
    alarms: tuple[str, ...] = ()  # the guard's Alarms (a bake watches them)
    thresholds: bool = True  # the guard's MaxErrorRate over a window (False: alarms alone)
    bake_seconds: int | None = None  # the guard's BakeSeconds after a promotion
    roll_back_to: str | None = None  # the guard's RollBackTo
    on_inconclusive: str | None = None  # the guard's OnInconclusive (None: not written, as OnFailure)

    @property
    def bakes(self) -> bool:
        return self.guard is not None and self.promotes and self.bake_seconds is not None

    @property
    def service_timeout(self) -> int:
        """As the construct writes it: the completion timeout plus two minutes, at most an hour."""
        return min(self.completion_timeout + 120, 3600)

    @property
    def promotes(self) -> bool:
        return "Promote" in dict(self.actions).values()

    def properties(self) -> dict[str, Any]:
        """ResourceProperties as CloudFormation passes them: every number a string."""
        properties: dict[str, Any] = {
            "ServiceToken": FUNCTION_ARN,
            "ServiceTimeout": str(self.service_timeout),
            "Name": self.name,
            "ModelVariantActions": dict(self.actions),
        }
        if self.shadow_instances is not None:
            properties["DesiredModelVariants"] = [self._shadow_infrastructure(str(self.shadow_instances))]
        if self.desired_state is not None:
            properties["DesiredState"] = self.desired_state
        if self.reason is not None:
            properties["Reason"] = self.reason
        if self.guard is not None:
            properties["PromotionGuard"] = self._guard(self.guard)
        properties["StopOn"] = list(self.stop_on)
        properties["CompletionTimeoutSeconds"] = str(self.completion_timeout)
        return properties

    def _guard(self, on_failure: str) -> dict[str, Any]:
        guard: dict[str, Any] = {"MinInvocations": "1000", "OnFailure": on_failure}
        if self.thresholds or not self.alarms:
            guard |= {"MaxErrorRate": "0.0015", "WindowSeconds": "3600"}
        if self.alarms:
            guard["Alarms"] = list(self.alarms)
        if self.bake_seconds is not None:
            guard["BakeSeconds"] = str(self.bake_seconds)
        if self.roll_back_to is not None:
            guard["RollBackTo"] = self.roll_back_to
        if self.on_inconclusive is not None:
            guard["OnInconclusive"] = self.on_inconclusive
        return guard

    def declared_variants(self) -> list[dict[str, Any]]:
        """DesiredModelVariants as SageMaker must get them (InstanceCount an int)."""
        return [] if self.shadow_instances is None else [self._shadow_infrastructure(self.shadow_instances)]

    @staticmethod
    def _shadow_infrastructure(count: object) -> dict[str, Any]:
        return {
            "ModelName": "model-b",
            "VariantName": "shadow",
            "InfrastructureConfig": {
                "InfrastructureType": "RealTimeInference",
                "RealTimeInferenceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": count},
            },
        }


# Time -------------------------------------------------------------------------------------------------------------


class SimClock(FakeClock):
    """The fake clock, whose sleeps go through the world: what is due on the way happens."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self._world = world

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self._world.advance(seconds)


@dataclass(order=True)
class Happening:
    at: float
    order: int
    what: Callable[[float], None] = field(compare=False)


@dataclass
class Alarm:
    """crhelper's timer for the run going on: it answers at `at`; Lambda ends the run at `ends`."""

    at: float
    ends: float
    fire: Callable[[], None]


# SageMaker --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackView:
    """A stack as a call found it as it left the handler: when, its status and operation, its stoppers."""

    at: float
    status: str
    operation: int  # which of the stack's operations (create, update with its rollback, delete) was going on
    stoppers: tuple[tuple[str, str, str], ...]  # (logical id, physical id, status)
    began: float = 0.0  # when that operation began (LastUpdatedTime, DeletionTime or CreationTime)


@dataclass(frozen=True)
class StopCall:
    """One StopInferenceExperiment that reached SageMaker, and the stack as it was when the handler sent it."""

    params: dict[str, Any]
    request_id: str | None  # the event whose run sent it; None for a stop by hand
    link: int  # 1 for a run of CloudFormation's own event, 2... for a later link of its wait
    accepted: bool
    stack: StackView  # when the handler sent it (a slow call reaches SageMaker later)
    evidence: str | None = None  # what the event's last GetMetricData had found by then
    alarms_seen: dict[str, str] | str | None = None  # its last DescribeAlarms by then: name -> state, or "unreadable"

    @property
    def at(self) -> float:
        return self.stack.at


@dataclass(frozen=True)
class EndpointCall:
    """One UpdateEndpoint that reached SageMaker: whose, what became of it, and the world when it was sent."""

    params: dict[str, Any]
    request_id: str | None  # the event whose run sent it; None for someone else's
    link: int
    accepted: bool  # SageMaker took it (its answer may still have been lost)
    answer: str  # what the caller got: "" where accepted; else SageMaker's words, or "no answer"
    endpoint: EndpointView  # when the handler sent it
    described: EndpointView | None  # as the run's last DescribeEndpoint had shown it
    stack: StackView  # when the handler sent it

    @property
    def at(self) -> float:
        return self.stack.at


@dataclass
class Ending:
    """The stop that ended an experiment (the first one SageMaker accepted)."""

    call: StopCall
    completes_at: float
    promotion: EndpointUpdate | None = None  # the endpoint's update a Promote made

    @property
    def state(self) -> str:
        return str(self.call.params.get("DesiredState", "Completed"))

    @property
    def actions(self) -> dict[str, str]:
        return dict(self.call.params["ModelVariantActions"])


@dataclass
class Experiment:
    name: str
    created_at: float
    running_at: float
    stop_takes: float
    endpoint_takes: float
    ending: Ending | None = None
    deleted_at: float | None = None
    updating: tuple[float, float] = (0.0, 0.0)  # Updating (e.g. its schedule changed) from, until

    def status(self, now: float) -> str:
        if self.ending is None:
            if now < self.running_at:
                return "Starting"
            return "Updating" if self.updating[0] <= now < self.updating[1] else "Running"
        return self.ending.state if now >= self.ending.completes_at else "Stopping"

    def describe(self, now: float, endpoint: EndpointView) -> dict[str, Any]:
        status = self.status(now)
        answer = experiment(status, self.name, endpoint_status=endpoint.status)
        answer["EndpointMetadata"] = endpoint.metadata()
        answer["CreationTime"] = _datetime(self.created_at)
        answer["ShadowModeConfig"] = {
            "SourceModelVariantName": "production",
            "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 100}],
        }
        if self.ending is not None:
            reason = self.ending.call.params.get("Reason")
            if reason is not None:
                answer["StatusReason"] = reason
            if status in STOPPED:
                answer["CompletionTime"] = _datetime(self.ending.completes_at)
                for variant in answer["ModelVariants"]:
                    removed = self.ending.actions.get(variant["VariantName"]) == "Remove"
                    variant["Status"] = "Deleted" if removed else "InService"
        return answer


def _datetime(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


@dataclass(frozen=True)
class EndpointUpdate:
    """One update of the endpoint: to which configuration, when, whose, and how it ends."""

    config: str
    begins: float
    ends: float
    by: str  # "promotion", "rollback" (the handler's UpdateEndpoint) or "someone else"
    request_id: str | None  # the event whose stop or rollback made it
    failure: str | None = None  # SageMaker's FailureReason where it fails
    failed_status: str = "Failed"  # or InService: SageMaker undid it, and the endpoint serves what it had


@dataclass(frozen=True)
class EndpointView:
    """The endpoint as DescribeEndpoint shows it at one moment."""

    status: str
    serving: str
    pending: str | None
    modified: float
    failure: str | None

    def metadata(self) -> dict[str, Any]:
        """As DescribeInferenceExperiment's EndpointMetadata shows it."""
        metadata: dict[str, Any] = {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": self.serving,
            "EndpointStatus": self.status,
        }
        if self.failure is not None:
            metadata["FailureReason"] = self.failure
        return metadata

    def described(self, created: float) -> dict[str, Any]:
        """As DescribeEndpoint answers."""
        answer: dict[str, Any] = {
            "EndpointName": ENDPOINT,
            "EndpointArn": ENDPOINT_ARN,
            "EndpointConfigName": self.serving,
            "EndpointStatus": self.status,
            "CreationTime": _datetime(created),
            "LastModifiedTime": _datetime(self.modified),
        }
        if self.failure is not None:
            answer["FailureReason"] = self.failure
        if self.pending is not None:
            answer["PendingDeploymentSummary"] = {"EndpointConfigName": self.pending}
        return answer


class Endpoint:
    """The endpoint: its updates, one after another (SageMaker refuses an update while one is going on)."""

    def __init__(self, created: float) -> None:
        self.created = created
        self.updates: list[EndpointUpdate] = []

    def view(self, now: float) -> EndpointView:
        status, serving, pending, modified, failure = "InService", PRODUCTION_CONFIG, None, self.created, None
        for update in self.updates:
            if update.begins > now:
                break
            if now < update.ends:
                status, pending, modified, failure = "Updating", update.config, update.begins, None
                break
            modified = update.ends
            if update.failure is None:
                status, serving, failure = "InService", update.config, None
            else:
                status, failure = update.failed_status, update.failure
        return EndpointView(status, serving, pending, modified, failure)

    def free_at(self) -> float:
        """When the last update begun or due ends."""
        return max((update.ends for update in self.updates), default=self.created)

    def busy(self, now: float) -> bool:
        """Whether an update is going on, or due to begin (a promotion's, once its experiment completes)."""
        return self.free_at() > now

    def add(self, update: EndpointUpdate) -> EndpointUpdate:
        assert update.begins >= self.free_at(), "the endpoint's updates follow one another"
        self.updates.append(update)
        return update


# CloudWatch -------------------------------------------------------------------------------------------------------

METRICS = {  # query id -> datapoints of a shadow that beats production (ModelLatency in microseconds)
    "shadowLatency": [28_000.0],
    "shadowInvocations": [15_000.0],
    "shadowModelErrors": [3.0],
    "productionLatency": [30_100.0],
    "productionInvocations": [15_200.0],
    "productionModelErrors": [5.0],
}
# How a window's data can be: only "whole" passes a guard; the others are a shadow at a 5% error rate, seen
# whole ("worse"), or seen in part: its ModelErrors with a StatusCode other than Complete, or no datapoints.
METRIC_MODES = ("whole", "worse", "partial", "empty")


def metric_result(query_id: str, mode: str, end: datetime.datetime) -> dict[str, Any]:
    values, status = list(METRICS[query_id]), "Complete"
    if query_id == "shadowModelErrors":
        if mode == "worse":
            values = [750.0]
        elif mode == "partial":
            values, status = [2.0], "PartialData"
        elif mode == "empty":
            values = []
    return {
        "Id": query_id,
        "Label": query_id,
        "Timestamps": [end] * len(values),
        "Values": values,
        "StatusCode": status,
    }


# What an alarm may do from a given moment (seconds from it, the state it goes to); it is OK before, unless told.
ALARM_PATTERNS: dict[str, tuple[tuple[float, str], ...]] = {
    "in ALARM for 3 s": ((0.0, "ALARM"), (3.0, "OK")),
    "in ALARM for 10 s": ((0.0, "ALARM"), (10.0, "OK")),
    "flapping, 4 s in ALARM every 11 s, 8 times": tuple(
        (11.0 * time + offset, state) for time in range(8) for offset, state in ((0.0, "ALARM"), (4.0, "OK"))
    ),
    "in ALARM for 10 minutes": ((0.0, "ALARM"), (600.0, "OK")),
    "in ALARM from then on": ((0.0, "ALARM"),),
    "without data for 25 minutes": ((0.0, "INSUFFICIENT_DATA"), (1500.0, "OK")),
    "without data from then on": ((0.0, "INSUFFICIENT_DATA"),),
    "without data, in ALARM for 10 s after 200 s": (
        (0.0, "INSUFFICIENT_DATA"),
        (200.0, "ALARM"),
        (210.0, "INSUFFICIENT_DATA"),
    ),
    "flapping between OK and without data every 7 s, 10 times": tuple(
        (14.0 * time + offset, state)
        for time in range(10)
        for offset, state in ((0.0, "INSUFFICIENT_DATA"), (7.0, "OK"))
    ),
    "OK": ((0.0, "OK"),),
    "deleted": (),
}


@dataclass
class SimAlarm:
    """One CloudWatch alarm: OK since `origin`, then each of `changes` (when, new state) as the clock passes it."""

    name: str
    composite: bool
    origin: float
    changes: list[tuple[float, str]] = field(default_factory=list)
    deleted_at: float | None = None

    def state(self, at: float) -> str:
        state = "OK"
        for when, new in self.changes:
            if when > at:
                break
            state = new
        return state

    def transitions(self, until: float) -> list[tuple[float, str, str]]:
        """(when, old state, new state) of every change by `until`: what CloudWatch's history records."""
        recorded, state = [], "OK"
        for when, new in self.changes:
            if when > until:
                break
            if new != state:
                recorded.append((when, state, new))
            state = new
        return recorded

    def behave(self, pattern: str, at: float) -> None:
        """From `at` on, the alarm does as `pattern` says (what it was to do from then on is forgotten)."""
        if pattern == "deleted":
            self.deleted_at = at if self.deleted_at is None else min(self.deleted_at, at)
            return
        self.changes = [(when, new) for when, new in self.changes if when < at]
        self.changes += [(at + offset, new) for offset, new in ALARM_PATTERNS[pattern]]

    def in_alarm(self, start: float, end: float) -> bool:
        """Whether it was in ALARM at any moment of [start, end]."""
        return self.state(start) == "ALARM" or any(
            start <= when <= end for when, _, new in self._all() if new == "ALARM"
        )

    def lacked_data(self, start: float, end: float) -> bool:
        """Whether it was INSUFFICIENT_DATA throughout [start, end]."""
        inside = [new for when, _, new in self._all() if start < when <= end]
        return self.state(start) == "INSUFFICIENT_DATA" and all(new == "INSUFFICIENT_DATA" for new in inside)

    def _all(self) -> list[tuple[float, str, str]]:
        return self.transitions(float("inf"))


# CloudFormation ---------------------------------------------------------------------------------------------------


@dataclass
class Resource:
    """A stopper as the stack lists it."""

    logical_id: str
    physical_id: str
    declaration: Declaration
    status: str


@dataclass
class Sent:
    """A custom-resource event CloudFormation sent."""

    request_id: str
    request_type: str
    logical_id: str
    declaration: Declaration
    old_declaration: Declaration | None
    physical_id: str | None
    sent_at: int
    stack_status: str
    operation: int  # the stack's operation it was sent for
    signature: str
    payload: dict[str, Any]

    @property
    def deadline(self) -> int:
        """The last moment a stop may be sent: sent + CompletionTimeoutSeconds, within the ServiceTimeout less 60 s."""
        waited_on_until = self.sent_at + self.declaration.service_timeout - 60
        if self.declaration.completion_timeout == 0:
            return waited_on_until
        return min(self.sent_at + self.declaration.completion_timeout, waited_on_until)

    @property
    def given_up_at(self) -> int:
        """When CloudFormation stops waiting for the answer."""
        return self.sent_at + self.declaration.service_timeout


@dataclass
class Operation:
    """A stack update: where it started from, where it goes, and what its forward phase did."""

    old: dict[str, Declaration]
    new: dict[str, Declaration]
    old_physical: dict[str, str]
    updated: set[str] = field(default_factory=set)
    replaced: dict[str, str] = field(default_factory=dict)  # logical id -> the new physical id
    created: dict[str, str] = field(default_factory=dict)  # logical id -> physical id


@dataclass(frozen=True)
class Answer:
    """One answer PUT to a ResponseURL, and the world when it arrived."""

    body: dict[str, Any]
    at: float
    expired: bool  # the URL's signature had expired: S3 refused the PUT
    stack_status: str
    operation: int  # the stack's operation going on (or last begun) then
    experiment_status: str | None  # of the experiment the answer names; None where it does not exist
    ending: Ending | None
    trouble: frozenset[str]  # what the run that answered met: throttling, slowness, a gone experiment, ...
    forged: bool  # the run was of a forged continuation


class Answers(list[dict[str, Any]]):
    """The response server's list of bodies, noting when each arrived and the world as it was then.

    S3 refuses a PUT to an expired pre-signed URL: for one, a 403 is queued for the server to answer with.
    """

    def __init__(self, world: World, statuses: list[int]) -> None:
        super().__init__()
        self._world, self._statuses = world, statuses
        self.noted: list[Answer] = []

    def append(self, body: dict[str, Any]) -> None:
        super().append(body)
        answer = self._world.note_answer(body)
        if answer.expired:
            self._statuses.insert(0, 403)
        self.noted.append(answer)


# Lambda -----------------------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """An event in the function's async queue: CloudFormation's own (link 1), or a later link of a wait."""

    payload: dict[str, Any]
    request_id: str
    link: int
    queued_at: float
    due: float
    forged: bool = False  # a continuation record this function did not write


# The world --------------------------------------------------------------------------------------------------------


class World:
    """The clock and every simulated service, with what the handler did to them."""

    def __init__(self, response_base: str) -> None:
        self.clock = SimClock(self)
        self._happenings: list[Happening] = []
        self._order = itertools.count()
        self.alarm: Alarm | None = None
        self.experiments: dict[str, Experiment] = {}
        self.stops: list[StopCall] = []
        self.metric_mode = "whole"
        self.windows: dict[int, str] = {}  # a guard window's end -> how its data was when first read
        self.evidence: dict[str, str] = {}  # an event -> what its last GetMetricData found ("unreadable" too)
        self.throttled_until: dict[str, float] = {}
        self.slow: dict[str, tuple[float, int]] = {}  # service -> (seconds each call takes, calls left)
        self.invoke_trouble: str | None = None  # the next hand-on: "lost answer", "throttled" or "twice"
        self.stop_answer_lost = False  # the next stop is accepted, its answer lost, and botocore's retry refused
        self.endpoint = Endpoint(CLOCK_START - 86_400)
        self.promotions = itertools.count(1)  # SageMaker names each promotion's endpoint configuration
        self.endpoint_calls: list[EndpointCall] = []
        self.rollback = ROLLBACKS[0]  # what the handler's next UpdateEndpoint meets (ROLLBACKS)
        self.described: EndpointView | None = None  # the run's last DescribeEndpoint answer
        self._issued_endpoint = self.endpoint.view(self.clock.now)
        origin = CLOCK_START - 86_400
        self.alarms = {name: SimAlarm(name, composite, origin) for name, composite in ALARMS.items()}
        self.on_promotion: list[tuple[str, str, float]] = []  # (alarm, pattern, seconds after it serves): to come
        self.alarm_reads: dict[str, list[tuple[float, dict[str, str]]]] = {}  # an event -> its DescribeAlarms seen
        self.alarms_seen: dict[str, dict[str, str] | str] = {}  # an event -> its last DescribeAlarms ("unreadable")
        self.history_pages = 0  # DescribeAlarmHistory pages read past the first
        self.queue: list[Delivery] = []
        self.invokes: list[Delivery] = []
        self.current: Delivery | None = None
        self.trouble: set[str] = set()  # what the run going on met (see Answer.trouble)
        self._issued = StackView(0.0, "", 0, ())
        self.numbers = itertools.count(1)  # of the events CloudFormation sends, for their RequestIds
        self.events: dict[str, Sent] = {}  # every event any incarnation of the stack sent
        self.stacks: dict[str, CloudFormation] = {}  # by StackId: a stack created again is a new stack
        self._response_base = response_base
        self.cloudformation = self.new_stack()

    def new_stack(self) -> CloudFormation:
        """A stack (again, after the last was deleted): CloudFormation gives it a StackId of its own."""
        stack = CloudFormation(
            self, self._response_base, f"{STACK_ARN}/5b8e0f00-c7a1-11ef-9d2b-{len(self.stacks):012x}"
        )
        self.stacks[stack.stack_id] = self.cloudformation = stack
        return stack

    def stack_of(self, request_id: str) -> CloudFormation:
        return self.stacks[self.events[request_id].payload["StackId"]]

    # time

    def at(self, when: float, what: Callable[[float], None]) -> None:
        """Make `what` happen at `when`, as the clock passes it (the next `advance`, for a time already passed)."""
        heapq.heappush(self._happenings, Happening(when, next(self._order), what))

    def advance(self, seconds: float) -> None:
        """Let time pass; what is due happens on the way, and a run going on may reach the function's timeout.

        Raises:
            FunctionTimedOut: the run reached the function's timeout (crhelper's timer has answered).
        """
        target = self.clock.now + seconds
        while True:
            due = self._happenings[0].at if self._happenings else float("inf")
            alarm = self.alarm.at if self.alarm else float("inf")
            if min(due, alarm) > target:
                break
            if alarm <= due and self.alarm is not None:
                fired, self.alarm = self.alarm, None
                self.clock.now = max(self.clock.now, fired.at)
                fired.fire()
                self.clock.now = max(self.clock.now, fired.ends)
                raise FunctionTimedOut
            happening = heapq.heappop(self._happenings)
            self.clock.now = max(self.clock.now, happening.at)
            happening.what(happening.at)
        self.clock.now = target

    # the services

    def call(self, service: str, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One API call: its time spent, throttling, then the service's answer."""
        self.advance(0)  # what is due by now has happened
        self._issued = self._as_sent()
        self._issued_endpoint = self.endpoint.view(self.clock.now)
        seconds, left = self.slow.get(service, (0.0, 0))
        if left:
            self.slow[service] = (seconds, left - 1)
            self.trouble.add("a slow call")
            self.advance(seconds)  # a hung connection, cut short and tried again by botocore
        if operation in READS and self.clock.now < self.throttled_until.get(service, 0.0):
            self.trouble.add("a throttled read")
            if operation == "GetMetricData":
                self._note_evidence("unreadable")
            if operation == "DescribeAlarms" and self.current is not None:
                # Before the stop, a guard whose alarms cannot be read decides nothing from its metrics either.
                self._note_evidence("unreadable")
                self.alarms_seen[self.current.request_id] = "unreadable"
            status, code = THROTTLED[service]
            return _error(status, code, "Rate exceeded")
        handler: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]] = getattr(self, f"_{operation}")
        return handler(params)

    def _DescribeInferenceExperiment(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        found = self._experiment(params["Name"])
        if found is None:
            return _not_found(params["Name"])
        return 200, found.describe(self.clock.now, self.endpoint.view(self.clock.now))

    def _StopInferenceExperiment(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        current = self.current
        status, answer = self.stop(params, current.request_id if current else None, current.link if current else 0)
        if status == 200 and self.stop_answer_lost:
            # Accepted, but the answer never came back: botocore's retry finds the experiment Stopping.
            self.stop_answer_lost = False
            self.trouble.add("a stop's answer lost")
            return _error(400, "ConflictException", f"Inference experiment {params['Name']} is Stopping")
        return status, answer

    def stop(self, params: dict[str, Any], request_id: str | None, link: int = 0) -> tuple[int, dict[str, Any]]:
        """A stop, from a run of the handler or (request_id None) by hand."""
        found = self._experiment(params["Name"])
        if found is None:
            if request_id is not None:
                self.trouble.add("a stop of a deleted experiment")
            return _not_found(params["Name"])
        status = found.status(self.clock.now)
        view = self._issued if request_id else self._as_sent()
        seen = copy.deepcopy(self.alarms_seen.get(request_id)) if request_id else None
        evidence = self.evidence.get(request_id) if request_id else None
        call = StopCall(copy.deepcopy(params), request_id, link, status == "Running", view, evidence, seen)
        self.stops.append(call)
        if status != "Running":
            return _error(400, "ConflictException", f"Inference experiment {found.name} is {status}")
        completes_at = self.clock.now + found.stop_takes
        found.ending = Ending(call, completes_at)
        if "Promote" in params["ModelVariantActions"].values():
            # The promotion is an endpoint update to a configuration SageMaker makes, once the experiment completes.
            begins = max(completes_at, self.endpoint.free_at())
            config = f"{ENDPOINT}-config-promoted-{next(self.promotions)}"
            update = EndpointUpdate(config, begins, begins + found.endpoint_takes, "promotion", request_id)
            found.ending.promotion = self.endpoint.add(update)
            for alarm, pattern, after in self.on_promotion:
                self.alarms[alarm].behave(pattern, update.ends + after)
            self.on_promotion = []
        return 200, {
            "InferenceExperimentArn": found.describe(self.clock.now, self.endpoint.view(self.clock.now))["Arn"]
        }

    # the endpoint

    def _DescribeEndpoint(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        if params["EndpointName"] != ENDPOINT:
            return _error(400, "ValidationException", f'Could not find endpoint "{params["EndpointName"]}".')
        self.described = self.endpoint.view(self.clock.now)
        return 200, self.described.described(self.endpoint.created)

    def _UpdateEndpoint(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        """The handler's UpdateEndpoint (a rollback), meeting what `rollback` says."""
        current = self.current
        how, self.rollback = self.rollback, ROLLBACKS[0]
        status, answer = self.update_endpoint(params, current.request_id if current else None, how)
        if status == 200 and how == "its answer is lost":
            self.endpoint_calls[-1] = replace(self.endpoint_calls[-1], answer="no answer")
            raise ReadTimeoutError(endpoint_url=f"https://api.sagemaker.{REGION}.amazonaws.com")
        if status == 200 and how == "its answer is lost, and botocore's retry refused":
            refused = f'Cannot update in-progress endpoint "{ENDPOINT_ARN}".'
            self.endpoint_calls[-1] = replace(self.endpoint_calls[-1], answer=refused)
            return _error(400, "ValidationException", refused)
        return status, answer

    def update_endpoint(
        self, params: dict[str, Any], request_id: str | None, how: str = "", by: str = "rollback"
    ) -> tuple[int, dict[str, Any]]:
        """An UpdateEndpoint, from a run of the handler or (request_id None) by someone else."""
        now = self.clock.now
        issued, described = (self._issued_endpoint, self.described) if request_id else (self.endpoint.view(now), None)
        refusal: tuple[str, str] | None = None
        if params["EndpointName"] != ENDPOINT:
            refusal = ("ValidationException", f'Could not find endpoint "{params["EndpointName"]}".')
        elif how == "it is refused: no such configuration":
            refusal = (
                "ValidationException",
                f'Could not find endpoint configuration "{params["EndpointConfigName"]}".',
            )
        elif self.endpoint.busy(now):
            refusal = ("ValidationException", f'Cannot update in-progress endpoint "{ENDPOINT_ARN}".')
        stack = self._issued if request_id else self._as_sent()
        link = self.current.link if self.current and request_id else 0
        words = "" if refusal is None else refusal[1]
        call = EndpointCall(copy.deepcopy(params), request_id, link, refusal is None, words, issued, described, stack)
        self.endpoint_calls.append(call)
        if refusal is not None:
            return _error(400, *refusal)
        takes, failure, failed_status = ROLLBACK_ENDS.get(how, (120.0, None, "Failed"))
        config = params["EndpointConfigName"]
        self.endpoint.add(EndpointUpdate(config, now, now + takes, by, request_id, failure, failed_status))
        return 200, {"EndpointArn": ENDPOINT_ARN}

    # CloudWatch's alarms

    def _DescribeAlarms(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        now = self.clock.now
        types = params.get("AlarmTypes", ["MetricAlarm"])  # CloudWatch's default: metric alarms only
        found = [
            alarm
            for name in params.get("AlarmNames", list(self.alarms))
            if (alarm := self.alarms.get(name)) is not None
            and (alarm.deleted_at is None or alarm.deleted_at > now)
            and ("CompositeAlarm" if alarm.composite else "MetricAlarm") in types
        ]
        first = int(params.get("NextToken", "0"))
        last = first + min(int(params.get("MaxRecords", 50)), ALARMS_PAGE)
        if self.current is not None:
            seen = {alarm.name: alarm.state(now) for alarm in found[first:last]}
            rid = self.current.request_id
            if first == 0:
                self.alarms_seen[rid] = {}
                self.alarm_reads.setdefault(rid, []).append((now, {}))
            so_far = self.alarms_seen.get(rid)
            if isinstance(so_far, dict):
                so_far.update(seen)
            self.alarm_reads[rid][-1][1].update(seen)
        answer: dict[str, Any] = {
            "MetricAlarms": [self._alarm(alarm, now) for alarm in found[first:last] if not alarm.composite],
            "CompositeAlarms": [self._alarm(alarm, now) for alarm in found[first:last] if alarm.composite],
        }
        if last < len(found):
            answer["NextToken"] = str(last)
        return 200, answer

    @staticmethod
    def _alarm(alarm: SimAlarm, now: float) -> dict[str, Any]:
        state = alarm.state(now)
        changes = alarm.transitions(now)
        since = _datetime(changes[-1][0] if changes else alarm.origin)
        described: dict[str, Any] = {
            "AlarmName": alarm.name,
            "AlarmArn": f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{alarm.name}",
            "StateValue": state,
            "StateReason": "Threshold Crossed" if state == "ALARM" else "Within the threshold",
            "StateUpdatedTimestamp": since,
            "StateTransitionedTimestamp": since,
        }
        if alarm.composite:
            return {**described, "AlarmRule": f'ALARM("{alarm.name}-5xx") OR ALARM("{alarm.name}-4xx")'}
        return {
            **described,
            "MetricName": "ModelLatency",
            "Namespace": "AWS/SageMaker",
            "Statistic": "Average",
            "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "shadow"}],
            "Period": 60,
            "EvaluationPeriods": 3,
            "Threshold": 50_000.0,
            "ComparisonOperator": "GreaterThanThreshold",
        }

    def _DescribeAlarmHistory(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        alarm = self.alarms.get(params.get("AlarmName", ""))
        types = params.get("AlarmTypes", ["MetricAlarm"])
        if alarm is None or ("CompositeAlarm" if alarm.composite else "MetricAlarm") not in types:
            return 200, {"AlarmHistoryItems": []}
        start = params["StartDate"].timestamp() if "StartDate" in params else float("-inf")
        end = params["EndDate"].timestamp() if "EndDate" in params else float("inf")
        wanted = params.get("HistoryItemType")
        items = [
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if alarm.composite else "MetricAlarm",
                "Timestamp": _datetime(when),
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old} to {new}",
                "HistoryData": json.dumps(
                    {"version": "1.0", "oldState": {"stateValue": old}, "newState": {"stateValue": new}}
                ),
            }
            for when, old, new in alarm.transitions(self.clock.now)
            if start <= when <= end and wanted in {None, "StateUpdate"}
        ]
        if params.get("ScanBy", "TimestampDescending") == "TimestampDescending":
            items.reverse()
        first = int(params.get("NextToken", "0"))
        self.history_pages += first > 0
        last = first + min(int(params.get("MaxRecords", 100)), HISTORY_PAGE)
        answer: dict[str, Any] = {"AlarmHistoryItems": items[first:last]}
        if last < len(items):
            answer["NextToken"] = str(last)
        return 200, answer

    def in_trouble(self) -> bool:
        """Whether some trouble is still switched on (a throttle, slow calls, a coming Invoke's trouble)."""
        throttled = any(until > self.clock.now for until in self.throttled_until.values())
        coming = self.invoke_trouble is not None or self.stop_answer_lost or self.rollback != ROLLBACKS[0]
        return throttled or any(left for _, left in self.slow.values()) or coming

    def _as_sent(self) -> StackView:
        """The stack of the event whose run is going on, as a call leaves the handler."""
        stack = self.stack_of(self.current.request_id) if self.current else self.cloudformation
        began = max(stack.created_at, stack.last_updated, stack.deleted_at or 0.0)
        return StackView(self.clock.now, stack.status, stack.operations, stack.stoppers(), began)

    def _experiment(self, name: str) -> Experiment | None:
        found = self.experiments.get(name)
        if found is not None and found.deleted_at is not None:
            self.trouble.add("a deleted experiment")
            return None
        return found

    def _DescribeStacks(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        stack = self.stacks.get(params["StackName"])
        if stack is None:
            return _error(400, "ValidationError", f"Stack with id {params['StackName']} does not exist")
        described = {
            "StackName": STACK_NAME,
            "StackId": stack.stack_id,
            "CreationTime": _datetime(stack.created_at),
            "LastUpdatedTime": _datetime(stack.last_updated),
            "StackStatus": stack.status,
        }
        if stack.deleted_at is not None:
            described["DeletionTime"] = _datetime(stack.deleted_at)
        return 200, {"Stacks": [described]}

    def _ListStackResources(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        stack = self.stacks.get(params["StackName"])
        if stack is None:
            return _error(400, "ValidationError", f"Stack with id {params['StackName']} does not exist")
        summaries: list[dict[str, Any]] = [
            {
                "LogicalResourceId": "ShadowTestEndpoint",
                "PhysicalResourceId": "shadow-test-endpoint",
                "ResourceType": "AWS::SageMaker::Endpoint",
                "LastUpdatedTimestamp": _datetime(stack.created_at),
                "ResourceStatus": "CREATE_COMPLETE",
            }
        ]
        for logical_id, physical_id, status in stack.stoppers():
            summary = {
                "LogicalResourceId": logical_id,
                "ResourceType": STOPPER,
                "LastUpdatedTimestamp": _datetime(self.clock.now),
                "ResourceStatus": status,
            }
            if physical_id:
                summary["PhysicalResourceId"] = physical_id
            summaries.append(summary)
        page = int(params.get("NextToken", "0"))  # two to a page, so that the handler must follow NextToken
        answer: dict[str, Any] = {"StackResourceSummaries": summaries[page : page + 2]}
        if page + 2 < len(summaries):
            answer["NextToken"] = str(page + 2)
        return 200, answer

    def _GetMetricData(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        end = params["EndTime"]
        mode = self.windows.setdefault(int(end.timestamp()), self.metric_mode)
        self._note_evidence(mode)
        results = [metric_result(query["Id"], mode, end) for query in params["MetricDataQueries"]]
        return 200, {"MetricDataResults": results}

    def _note_evidence(self, found: str) -> None:
        if self.current is not None:
            self.evidence[self.current.request_id] = found

    def _Invoke(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:  # noqa: N802
        trouble, self.invoke_trouble = self.invoke_trouble, None
        if trouble:
            self.trouble.add(f"an Invoke {trouble}")
        if trouble == "throttled":
            self.throttled_until["lambda"] = self.clock.now + 5
            return _error(429, "TooManyRequestsException", "Rate exceeded")
        payload = json.loads(params["Payload"])
        link = int(payload["InferenceExperimentStopperContinuation"]["Link"])
        for _ in range(2 if trouble == "twice" else 1):
            delivery = Delivery(payload, payload["RequestId"], link, self.clock.now, self.clock.now + QUEUE_SECONDS)
            self.queue.append(delivery)
            self.invokes.append(delivery)
        if trouble == "lost answer":  # accepted, but the answer never came back: botocore read-timed out
            raise ReadTimeoutError(endpoint_url=f"https://lambda.{REGION}.amazonaws.com")
        return 202, {"StatusCode": 202}

    # answers

    def note_answer(self, body: dict[str, Any]) -> Answer:
        sent = self.events.get(str(body.get("RequestId")))
        expired = sent is not None and self.clock.now > sent.sent_at + URL_LIFETIME_SECONDS
        stack = self.stack_of(sent.request_id) if sent else self.cloudformation
        arn = str(body.get("Data", {}).get("InferenceExperimentArn", ""))
        name = arn.rpartition("/")[2] or (sent.declaration.name if sent else "")
        found = self.experiments.get(name)
        gone = found is None or found.deleted_at is not None
        return Answer(
            copy.deepcopy(body),
            self.clock.now,
            expired,
            stack.status,
            stack.operations,
            None if gone or found is None else found.status(self.clock.now),
            found.ending if found else None,
            frozenset(self.trouble),
            self.current is not None and self.current.forged,
        )


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}


def _not_found(name: str) -> tuple[int, dict[str, Any]]:
    return _error(400, "ResourceNotFound", f"Inference experiment {name} not found")


# CloudFormation's engine ------------------------------------------------------------------------------------------


class CloudFormation:
    """The stack's life: operations, the events they send, the answers they take, clean-ups and rollbacks."""

    def __init__(self, world: World, response_base: str, stack_id: str) -> None:
        self._world = world
        self._response_base = response_base
        self.stack_id = stack_id
        self.created_at = self.last_updated = world.clock.now
        self.deleted_at: float | None = None  # when its deletion began
        self.operations = 0  # how many operations (create, update, delete) the stack has begun
        self.status = "CREATE_IN_PROGRESS"
        self.resources: dict[str, Resource] = {}
        self.template: dict[str, Declaration] = {}
        self.pending: dict[str, Sent] = {}  # the events of the current phase still waited for
        self.operation: Operation | None = None
        self.on_cleanup: list[Callable[[float], None]] = []  # told when the next update's clean-up begins
        self._taken = 0  # answers taken so far

    @property
    def stable(self) -> bool:
        """Whether a new update may begin."""
        return self.status in {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}

    @property
    def deletable(self) -> bool:
        return self.stable or self.status in {"UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "ROLLBACK_COMPLETE"}

    def stoppers(self) -> tuple[tuple[str, str, str], ...]:
        return tuple((r.logical_id, r.physical_id, r.status) for r in self.resources.values())

    def longest_wait(self) -> int:
        """The longest completion timeout among the stack's stoppers (the function's timeout follows it)."""
        return max((d.completion_timeout for d in self.template.values()), default=0)

    # operations

    def create(self, template: dict[str, Declaration]) -> None:
        self.operations += 1
        self.template = dict(template)
        self.status = "CREATE_IN_PROGRESS"
        for logical_id, declaration in template.items():
            self.resources[logical_id] = Resource(logical_id, "", declaration, "CREATE_IN_PROGRESS")
            self._send("Create", logical_id, declaration)

    def update(self, template: dict[str, Declaration]) -> None:
        assert self.stable
        self.operations += 1
        self.last_updated = self._world.clock.now
        physical = {logical_id: r.physical_id for logical_id, r in self.resources.items()}
        self.operation = Operation(dict(self.template), dict(template), physical)
        self.template = dict(template)
        self.status = "UPDATE_IN_PROGRESS"
        for logical_id, declaration in template.items():
            resource = self.resources.get(logical_id)
            if resource is None:
                self.resources[logical_id] = Resource(logical_id, "", declaration, "CREATE_IN_PROGRESS")
                self._send("Create", logical_id, declaration)
            elif declaration != resource.declaration:
                self.operation.updated.add(logical_id)
                resource.status = "UPDATE_IN_PROGRESS"
                self._send("Update", logical_id, declaration, resource.declaration, resource.physical_id)
        if not self.pending:
            self._forward_done()

    def delete(self) -> None:
        assert self.deletable
        self.operations += 1
        self.operation, self.status = None, "DELETE_IN_PROGRESS"
        self.deleted_at = self._world.clock.now
        self.pending.clear()
        for resource in list(self.resources.values()):
            resource.status = "DELETE_IN_PROGRESS"
            self._send("Delete", resource.logical_id, resource.declaration, physical_id=resource.physical_id)
        if not self.pending:
            self.status = "DELETE_COMPLETE"

    def another_resource_fails(self) -> Callable[[float], None]:
        """Another resource of the update going on fails (when called): the update rolls back, if still going on."""
        operation = self.operation

        def fail(_at: float) -> None:
            if self.status == "UPDATE_IN_PROGRESS" and self.operation is operation:
                self._roll_back()

        return fail

    # answers

    def take_answers(self, answers: Answers) -> None:
        """Take the answers that arrived since the last look: the first for each event still waited for."""
        for answer in answers.noted[self._taken :]:
            self._taken += 1
            sent = self.pending.get(str(answer.body.get("RequestId")))
            if sent is not None and not answer.expired and answer.at <= sent.given_up_at:
                self._take(sent, answer.body["Status"], str(answer.body.get("PhysicalResourceId", "")))

    def _timed_out(self, request_id: str) -> None:
        sent = self.pending.get(request_id)
        if sent is not None:
            self._take(sent, "FAILED", "")

    def _take(self, sent: Sent, status: str, physical_id: str) -> None:  # noqa: PLR0912, PLR0915 (a branch a phase)
        del self.pending[sent.request_id]
        resource = self.resources.get(sent.logical_id)
        operation = self.operation
        if self.status == "CREATE_IN_PROGRESS":
            assert resource is not None
            resource.physical_id, resource.status = (
                physical_id,
                f"CREATE_{'FAILED' if status == 'FAILED' else 'COMPLETE'}",
            )
            if status == "FAILED":  # the creation rolls back: every resource is deleted
                self.status = "ROLLBACK_IN_PROGRESS"
                self.pending.clear()
                for each in self.resources.values():
                    if each.physical_id:
                        each.status = "DELETE_IN_PROGRESS"
                        self._send("Delete", each.logical_id, each.declaration, physical_id=each.physical_id)
            if not self.pending:
                self.status = "ROLLBACK_COMPLETE" if self.status == "ROLLBACK_IN_PROGRESS" else "CREATE_COMPLETE"
        elif self.status == "ROLLBACK_IN_PROGRESS":
            self.resources.pop(sent.logical_id, None)
            if not self.pending:
                self.status = "ROLLBACK_COMPLETE"
        elif self.status == "UPDATE_IN_PROGRESS":
            assert resource is not None
            assert operation is not None
            if status == "FAILED":
                resource.status = f"{sent.request_type.upper()}_FAILED"
                self._roll_back()
                return
            resource.physical_id, resource.declaration = physical_id, sent.declaration
            resource.status = f"{sent.request_type.upper()}_COMPLETE"
            if sent.request_type == "Create":
                operation.created[sent.logical_id] = physical_id
            elif physical_id != operation.old_physical[sent.logical_id]:
                operation.replaced[sent.logical_id] = physical_id
            if not self.pending:
                self._forward_done()
        elif self.status == "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":
            if resource is not None and resource.status == "DELETE_IN_PROGRESS":
                del self.resources[sent.logical_id]
            if not self.pending:
                self.status, self.operation = "UPDATE_COMPLETE", None
        elif self.status == "UPDATE_ROLLBACK_IN_PROGRESS":
            assert resource is not None
            if status == "FAILED":
                self.status, self.operation = "UPDATE_ROLLBACK_FAILED", None
                resource.status = "UPDATE_FAILED"
                self.pending.clear()
                return
            resource.physical_id, resource.declaration, resource.status = (
                physical_id,
                sent.declaration,
                "UPDATE_COMPLETE",
            )
            if not self.pending:
                self._rollback_done()
        elif self.status == "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS":
            if (
                resource is not None
                and resource.status == "DELETE_IN_PROGRESS"
                and resource.physical_id == (sent.physical_id)
            ):
                del self.resources[sent.logical_id]
            if not self.pending:
                self.status, self.operation = "UPDATE_ROLLBACK_COMPLETE", None
        elif self.status == "DELETE_IN_PROGRESS":
            assert resource is not None
            if status == "FAILED":
                resource.status = "DELETE_FAILED"
            else:
                del self.resources[sent.logical_id]
            if not self.pending:
                self.status = "DELETE_FAILED" if self.resources else "DELETE_COMPLETE"

    def _forward_done(self) -> None:
        operation = self.operation
        assert operation is not None
        self.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
        told, self.on_cleanup = self.on_cleanup, []
        for tell in told:
            tell(self._world.clock.now)
        for logical_id in operation.replaced:  # the old physical resource of a replacement, by its old declaration
            self._send("Delete", logical_id, operation.old[logical_id], physical_id=operation.old_physical[logical_id])
        for logical_id in set(operation.old) - set(operation.new):
            resource = self.resources[logical_id]
            resource.status = "DELETE_IN_PROGRESS"
            self._send("Delete", logical_id, resource.declaration, physical_id=resource.physical_id)
        if not self.pending:
            self.status, self.operation = "UPDATE_COMPLETE", None

    def _roll_back(self) -> None:
        operation = self.operation
        assert operation is not None
        self.status = "UPDATE_ROLLBACK_IN_PROGRESS"
        self.on_cleanup = []  # a rollback keeps what the update would have replaced
        self.pending.clear()  # answers to the forward phase's events no longer count
        self.template = dict(operation.old)
        for logical_id in operation.updated:
            resource = self.resources[logical_id]
            old = operation.old[logical_id]
            if logical_id in operation.replaced:  # the old physical resource is still there: back to it
                resource.physical_id, resource.declaration = operation.old_physical[logical_id], old
                resource.status = "UPDATE_COMPLETE"
                continue
            resource.status = "UPDATE_IN_PROGRESS"
            new = operation.new[logical_id]
            self._send("Update", logical_id, old, new, operation.old_physical[logical_id])
        for logical_id in set(operation.new) - set(operation.old):
            if logical_id not in operation.created:
                self.resources.pop(logical_id, None)  # its Create is abandoned
        if not self.pending:
            self._rollback_done()

    def _rollback_done(self) -> None:
        operation = self.operation
        assert operation is not None
        self.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
        for logical_id, physical_id in operation.replaced.items():
            self._send("Delete", logical_id, operation.new[logical_id], physical_id=physical_id)
        for logical_id, physical_id in operation.created.items():
            self.resources[logical_id].status = "DELETE_IN_PROGRESS"
            self._send("Delete", logical_id, operation.new[logical_id], physical_id=physical_id)
        if not self.pending:
            self.status, self.operation = "UPDATE_ROLLBACK_COMPLETE", None

    # events

    def _send(
        self,
        request_type: str,
        logical_id: str,
        declaration: Declaration,
        old: Declaration | None = None,
        physical_id: str | None = None,
    ) -> None:
        number = next(self._world.numbers)
        request_id = f"{number:08x}-0000-4000-8000-00000000c0de"
        now = self._world.clock.now
        sent_at = int(now)
        signature = hashlib.sha256(request_id.encode()).hexdigest()
        payload: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": FUNCTION_ARN,
            "ResponseURL": self._response_url(logical_id, request_id, sent_at, signature),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": STOPPER,
            "ResourceProperties": declaration.properties(),
        }
        if physical_id is not None:
            payload["PhysicalResourceId"] = physical_id
        if old is not None:
            payload["OldResourceProperties"] = old.properties()
        sent = Sent(
            request_id,
            request_type,
            logical_id,
            declaration,
            old,
            physical_id,
            sent_at,
            self.status,
            self.operations,
            signature,
            payload,
        )
        self._world.events[request_id] = self.pending[request_id] = sent
        self._world.queue.append(Delivery(payload, request_id, 1, now, now + QUEUE_SECONDS))
        self._world.at(sent.given_up_at, lambda _at: self._timed_out(request_id))

    def _response_url(self, logical_id: str, request_id: str, sent_at: int, signature: str) -> str:
        """A pre-signed S3 URL as CloudFormation makes them (SigV4), pointing at the local response server."""
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(sent_at))
        key = quote(f"{self.stack_id}|{logical_id}|{request_id}", safe="")
        return (
            f"{self._response_base}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}"
            f"&X-Amz-SignedHeaders=host&X-Amz-Expires={URL_LIFETIME_SECONDS}"
            f"&X-Amz-Credential=AKIAEXAMPLE%2F{date[:8]}%2F{REGION}%2Fs3%2Faws4_request&X-Amz-Signature={signature}"
        )


# The clients ------------------------------------------------------------------------------------------------------


class _Body(io.BytesIO):
    """An HTTP response body as botocore reads one (stream() for content, read() for a streaming payload)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class Captured:
    """The API parameters of the call being made (kept apart: botocore logs its handlers' reprs at DEBUG)."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.params = copy.deepcopy(params)

    def __repr__(self) -> str:
        return "<the simulated call's parameters>"


class Answerer:
    """A `before-call` handler that answers from the current world (SageMaker, CloudFormation, CloudWatch)."""

    def __init__(self, pool: Clients, service: str, captured: Captured) -> None:
        self._pool, self._service, self._captured = pool, service, captured

    def __call__(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        status, answer = self._pool.current.call(self._service, model.name, self._captured.params)
        if status < 300:
            self._pool.validate(answer, model)
        headers: Any = {}
        return AWSResponse(f"https://{self._service}.{REGION}.amazonaws.com", status, headers, None), answer

    def __repr__(self) -> str:
        return f"<the simulated {self._service}>"


class Sender:
    """A `before-send` handler that answers Lambda's Invoke over HTTP, as the service would."""

    def __init__(self, pool: Clients, captured: Captured) -> None:
        self._pool, self._captured = pool, captured

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        status, answer = self._pool.current.call("lambda", "Invoke", self._captured.params)
        body, headers = b"", dict[str, str]()
        if status >= 300:
            error = answer["Error"]
            body = json.dumps({"Type": "User", "message": error["Message"]}).encode()
            headers = {"x-amzn-ErrorType": error["Code"], "Content-Type": "application/json"}
        raw: Any = headers  # botocore's HTTPHeaders in its stubs; any mapping works
        return AWSResponse(request.url, status, raw, _Body(body))

    def __repr__(self) -> str:
        return "<the simulated lambda>"


class Clients:
    """Real botocore clients, configured as index.py configures them, answered by whichever world is current.

    SageMaker, CloudFormation and CloudWatch are answered at `before-call`, with the parsed answer. Lambda is
    answered at `before-send`, with an HTTP response: the Invoke goes all the way through botocore (serialised,
    signed and logged at DEBUG, body and all) as the real hand-on does.
    """

    def __init__(self) -> None:
        self.world: World | None = None
        self.clients: dict[str, Any] = {}
        self._answered: Counter[str] = Counter()
        for service in ("sagemaker", "cloudformation", "cloudwatch", "lambda"):
            client = boto3.client(
                service,
                region_name=REGION,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=index.HAND_ON if service == "lambda" else index.RETRIES,
            )
            captured = Captured()
            client.meta.events.register("before-parameter-build", captured)
            # A before-send or before-call handler that answers short-circuits the HTTP request.
            answer: Any = Sender(self, captured) if service == "lambda" else Answerer(self, service, captured)
            client.meta.events.register_first("before-send" if service == "lambda" else "before-call", answer)
            self.clients[service] = client

    @property
    def current(self) -> World:
        assert self.world is not None, "no simulated world is current"
        return self.world

    def validate(self, answer: dict[str, Any], model: Any) -> None:
        """Check an answer against the operation's output shape: every one of the first answers of each operation,
        then one in fifty (polls repeat themselves, and the check is the slow part of a call)."""
        self._answered[model.name] += 1
        count = self._answered[model.name]
        if count <= 300 or count % 50 == 0:
            report = ParamValidator().validate(answer, model.output_shape)
            assert not report.has_errors(), report.generate_report()


@functools.cache
def clients() -> Clients:
    """The clients, made once per test process (making boto3 clients is the slow part)."""
    return Clients()
