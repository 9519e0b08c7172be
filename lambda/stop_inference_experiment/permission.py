"""When may this event act: when it was sent, its deadline, the stack's state, a twin resource; and the gate.

Every call that changes AWS passes the `Gate` right before it is sent (sagemaker_api.py sends them all).
A stop cannot be undone, so it is sent only where all of these hold:
- the event's own declaration asks for it (the dispatcher in lifecycle.py decides that);
- its deadline has not passed: when CloudFormation sent the event plus CompletionTimeoutSeconds, never later
  than that time plus the ServiceTimeout less a margin; with CompletionTimeoutSeconds 0, only at once, in
  the first run;
- the stack is still in the state that warrants it: UPDATE_IN_PROGRESS for an Update; DELETE_IN_PROGRESS or
  UPDATE_COMPLETE_CLEANUP_IN_PROGRESS for a Delete;
- the stack has not begun another operation since the event was sent (a late copy of an event of an update that
  is over finds the stack UPDATE_IN_PROGRESS again, in the next update);
- in a clean-up, no other stopper of the stack still names the experiment (the construct moved).
A rollback (UpdateEndpoint back to RollBackTo after a bake that did not pass) is sent only before the deadline,
where the stack has begun no later operation and has not completed this one (where it can be read: a stack
rolling back does not refuse it, as restoring the endpoint is what makes it agree with the rolled-back stack;
one that completed took a SUCCESS answer, and the endpoint stays as it declares), and where the endpoint is
still on the configuration this event's promotion made; one already updating to RollBackTo, or serving it,
is not sent again. Anything else raises NoStop, with the answer it deserves.
"""

from __future__ import annotations

import calendar
import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, urlsplit

import rules
from aws import Clock, Unreadable, read
from outcomes import NoStop, StopFailed
from sagemaker_api import serves, updating_to

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_sagemaker.type_defs import DescribeEndpointOutputTypeDef as Endpoint

logger = logging.getLogger(__name__)

# CloudFormation stops waiting at the ServiceTimeout; a stop is sent no later than this before it, so that the
# answer still reaches CloudFormation.
MARGIN_SECONDS = 60
DEFAULT_SERVICE_TIMEOUT_SECONDS = 3600
# With CompletionTimeoutSeconds 0, a stop is sent only "at once": in the first run, this soon after the event was sent.
AT_ONCE_SECONDS = 60
# The pre-signed ResponseURL is valid this long after signing (SigV2's Expires is the signing time plus this).
URL_LIFETIME_SECONDS = 7200
# A wait of at most 55 minutes in runs of at least 14 minutes needs 5 links; more is a record gone wrong.
MAX_LINKS = 8
WARRANTS = {
    "Update": frozenset({"UPDATE_IN_PROGRESS"}),
    "Delete": frozenset({"DELETE_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"}),
}
CLEANUP = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
# An update CloudFormation has completed: it took a SUCCESS answer from each of its resources.
COMPLETED = frozenset({"UPDATE_COMPLETE", CLEANUP})
# X-Amz-Date is whole seconds: a LastUpdatedTime (or DeletionTime) up to this much after it can still be the
# event's own operation.
SENT_PRECISION_SECONDS = 1.0


def signed_at(response_url: object) -> float | None:
    """When CloudFormation signed the event's ResponseURL (it signs it as it sends the event); None if unknown.

    A SigV4 URL holds X-Amz-Date; a SigV2 URL holds Expires, the signing time plus 7200 s.
    """
    if not isinstance(response_url, str):
        return None
    query = parse_qs(urlsplit(response_url).query)
    date = query.get("X-Amz-Date", [""])[0]
    if date:
        try:
            return float(calendar.timegm(time.strptime(date, "%Y%m%dT%H%M%SZ")))
        except ValueError:
            return None
    expires = query.get("Expires", [""])[0]
    if expires.isdigit() and "Signature" in query:
        return float(int(expires) - URL_LIFETIME_SECONDS)
    return None


@dataclass(frozen=True)
class Timing:
    """An event's clock: when it was sent, and until when a stop may be sent and the wait may last."""

    sent: float
    deadline: float  # the wait's end, and the last moment a stop may be sent
    at_once_only: bool  # CompletionTimeoutSeconds 0: a stop only in the first run, before any wait
    waited_on_until: float  # when CloudFormation stops waiting (less the margin)

    @classmethod
    def of(cls, sent: float, completion_timeout: int, service_timeout: int) -> Timing:
        waited_on_until = sent + service_timeout - MARGIN_SECONDS
        return cls(
            sent=sent,
            deadline=min(sent + completion_timeout, waited_on_until),
            at_once_only=completion_timeout == 0,
            waited_on_until=waited_on_until,
        )

    @property
    def stop_by(self) -> float:
        """The last moment a stop may be sent. With a timeout of 0 the deadline is the sending itself: "at once"
        then allows Lambda's delivery a minute (AT_ONCE_SECONDS), never past CloudFormation's wait."""
        return min(self.sent + AT_ONCE_SECONDS, self.waited_on_until) if self.at_once_only else self.deadline

    def too_late(self, now: float) -> bool:
        """Whether an event arriving now arrives after its deadline or after CloudFormation stopped waiting."""
        return now > self.stop_by


def sent_time(event: Mapping[str, Any], now: float, recorded: float | None = None) -> float:
    """When CloudFormation sent the event: its URL's signing time, else the first run's start (`recorded`, or
    now in the first run); never later than now, so that a URL dated ahead of the clock cannot extend a deadline.
    """
    candidates = [now]
    signed = signed_at(event.get("ResponseURL"))
    if signed is not None:
        candidates.append(signed)
    elif recorded is not None:
        candidates.append(recorded)
    return min(candidates)


def rolling_back(status: str) -> bool:
    """A stack rolling back, or rolled back: its events never stop, and never fail."""
    return "ROLLBACK" in status


@dataclass(frozen=True)
class StackState:
    """The stack as DescribeStacks shows it to one event."""

    status: str
    later_operation: bool  # the stack began another operation after the event was sent


@dataclass(frozen=True)
class Stack:
    """Reads the event's own stack (IAM allows nothing else)."""

    cloudformation: CloudFormationClient
    stack_id: str
    clock: Clock
    jitter: Callable[[], float]
    sent: float  # when CloudFormation sent the event, by its own clock where the ResponseURL is signed

    def status(self, until: float) -> StackState | None:
        """The stack's state, read again after throttling until `until`; None where it could not be read.

        LastUpdatedTime and DeletionTime are taken for the start of the stack's latest update and of its deletion
        (*unverified*: the API reference says only "the time the stack was last updated" / "deleted"). Either one
        later than the event marks another operation; should CloudFormation move them at other moments too, an
        event is refused that could have stopped: the safe side. Without them, no update or deletion began.
        """
        try:
            stacks = read(
                lambda: self.cloudformation.describe_stacks(StackName=self.stack_id)["Stacks"],
                "cloudformation:DescribeStacks",
                self.stack_id,
                self.clock,
                until,
                self.jitter,
            )
        except Unreadable as error:
            logger.warning("%s", error)
            return None
        if not stacks:
            return None
        began = [stacks[0].get("LastUpdatedTime"), stacks[0].get("DeletionTime")]
        later = any(time is not None and time.timestamp() > self.sent + SENT_PRECISION_SECONDS for time in began)
        return StackState(stacks[0]["StackStatus"], later_operation=later)

    def refuse_if_twin(self, logical_id: str, physical_id: str, until: float, name: str) -> None:
        """A clean-up Delete of a stopper whose construct moved: the new one still names the experiment.

        Raises:
            NoStop: SUCCESS, nothing stopped (also where the stack's resources could not be read: fail safe).
        """
        try:
            twin = self.twin(logical_id, physical_id, until)
        except (Unreadable, StopFailed) as error:
            raise NoStop(
                f"In the stack's clean-up, its resources could not be read ({error}), so whether another stopper "
                f"still names inference experiment {name} is unknown: it was not stopped",
                answers_failed=False,
            ) from error
        if twin is not None:
            raise NoStop(
                f"In the stack's clean-up, stopper {twin} of the same stack still names inference experiment "
                f"{name} (the construct moved to a new logical id): it was not stopped",
                answers_failed=False,
            )

    def twin(self, logical_id: str, physical_id: str, until: float) -> str | None:
        """Another stopper of this stack that still names the experiment: its logical id, else None.

        Raises:
            Unreadable: where the stack's resources could not be read in time.
        """
        request: dict[str, str] = {"StackName": self.stack_id}
        while True:
            page = read(
                functools.partial(self.cloudformation.list_stack_resources, **request),
                "cloudformation:ListStackResources",
                self.stack_id,
                self.clock,
                until,
                self.jitter,
            )
            for resource in page.get("StackResourceSummaries", []):
                if (
                    resource.get("ResourceType") == rules.RESOURCE_TYPE
                    and resource.get("LogicalResourceId") != logical_id
                    and resource.get("PhysicalResourceId") == physical_id
                    and not str(resource.get("ResourceStatus", "")).startswith("DELETE_")
                ):
                    return str(resource["LogicalResourceId"])
            token = page.get("NextToken")
            if not token:
                return None
            request = {**request, "NextToken": token}


def check_stack(request_type: str, state: StackState | None, name: str) -> None:
    """The stack's state must warrant a stop by this event, in the operation that sent it.

    Raises:
        NoStop: SUCCESS for a Delete or a stack rolling back; FAILED for an Update otherwise.
    """
    status = state.status if state is not None else None
    if state is not None and status in WARRANTS[request_type]:
        if not state.later_operation:
            return
        raise NoStop(
            f"The stack began another operation after this {request_type} was sent (its LastUpdatedTime or "
            "DeletionTime is later): "
            f"inference experiment {name} was not stopped",
            answers_failed=request_type == "Update",
        )
    if status is None:
        raise NoStop(
            f"The stack's state could not be read, so inference experiment {name} was not stopped",
            answers_failed=request_type == "Update",
        )
    if rolling_back(status):
        raise NoStop(f"The stack is {status}: a rollback never stops an experiment", answers_failed=False, routine=True)
    raise NoStop(
        f"The stack is {status}, not {' or '.join(sorted(WARRANTS[request_type]))}: inference experiment {name} "
        f"was not stopped",
        answers_failed=request_type == "Update",
    )


def check_time(request_type: str, timing: Timing, now: float, name: str, *, first_look: bool) -> None:
    """The event's deadline must not have passed; with a completion timeout of 0, only the first look may stop.

    Raises:
        NoStop: FAILED for an Update, SUCCESS for a Delete.
    """
    if timing.at_once_only and not first_look:
        raise NoStop(
            f"Inference experiment {name} was not Running at once, and CompletionTimeoutSeconds 0 does not wait: "
            "it was not stopped",
            answers_failed=request_type == "Update",
        )
    if now > timing.stop_by:
        raise NoStop(
            f"The {request_type} came too late: its deadline passed {now - timing.stop_by:.0f} s ago, so "
            f"inference experiment {name} was not stopped",
            answers_failed=request_type == "Update",
        )


@dataclass(frozen=True)
class Gate:
    """The one check right before each action this event sends: per kind of action, may it be sent now?"""

    request_type: str
    name: str
    timing: Timing
    stack: Stack
    clock: Clock
    reads_until: float  # how long a throttled read of the stack may be tried again

    def stop(self, *, first_look: bool) -> None:
        """The stop: the stack in this event's operation (not rolling back, no later one), before the deadline.

        Raises:
            NoStop: SUCCESS for a Delete or a stack rolling back; FAILED for an Update.
        """
        check_stack(self.request_type, self.stack.status(self.reads_until), self.name)
        check_time(self.request_type, self.timing, self.clock.time(), self.name, first_look=first_look)

    def roll_back(self, describe: Callable[[], Endpoint | None], name: str, config: str, promoted: str) -> bool:
        """The rollback to `config`: whether to send it (False: already updating to it, or serving it).

        The stack is read first, then the endpoint, then the clock: whatever these reads take, the deadline is
        checked last, right before the call.

        Args:
            describe: DescribeEndpoint, read right before (None: it could not be read).
            name: the endpoint's name.
            config: the configuration to roll back to.
            promoted: the configuration this event's promotion made.

        Raises:
            NoStop: FAILED for the Update (SUCCESS for any other event): the stack began a later operation or
                completed this one (CloudFormation took a SUCCESS answer), the endpoint could not be read or is
                not on the promotion (someone else changed it, or it failed), or the deadline passed.
        """
        refused = f"endpoint {name} was not rolled back to {config}"
        state = self.stack.status(min(self.reads_until, self.timing.deadline))
        if state is not None and state.later_operation:
            self._refuse(
                f"{refused}: the stack began another operation after this {self.request_type} was sent (its "
                "LastUpdatedTime or DeletionTime is later)"
            )
        if state is not None and state.status in COMPLETED:
            self._refuse(
                f"{refused}: the stack is {state.status}: CloudFormation took a SUCCESS answer for this update, and "
                "the endpoint is left as the stack declares"
            )
        endpoint = describe()
        if endpoint is None:
            self._refuse(f"{refused}: the endpoint could not be read right before")
        serving, status = endpoint.get("EndpointConfigName"), endpoint.get("EndpointStatus")
        pending = endpoint.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
        if updating_to(endpoint) == config or serves(endpoint, config):
            return False  # this event's rollback, sent before (by this delivery or another): not sent again
        on_promotion = serving == promoted and (
            status == "InService" or (status == "Updating" and pending in (None, promoted))
        )
        if not on_promotion and (serving != promoted or pending not in (None, promoted)):
            now_on = f"updating to {pending}" if pending else f"{status} on {serving}"
            self._refuse(
                f"{refused}: someone else changed the endpoint since (it is {now_on}, not on {promoted}, which this "
                "event's promotion made)"
            )
        if not on_promotion:
            why = endpoint.get("FailureReason") or "SageMaker gave no reason"
            self._refuse(f"{refused}: the endpoint is {status} on {promoted} ({why})")
        now = self.clock.time()
        if now > self.timing.deadline:
            self._refuse(f"{refused}: the deadline passed {now - self.timing.deadline:.0f} s ago")
        return True

    def _refuse(self, reason: str) -> NoReturn:
        raise NoStop(reason, answers_failed=self.request_type == "Update")
