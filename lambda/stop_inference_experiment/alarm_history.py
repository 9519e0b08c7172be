"""What CloudWatch recorded of a guard's alarms over a bake's window, and the verdict it gives.

As SageMaker's deployment guardrails do (AutoRollbackConfiguration, a baking period), the bake starts when AWS
says the endpoint began serving the promoted configuration: DescribeEndpoint's LastModifiedTime at the first
look that finds it InService on the configuration the experiment's promotion made, never earlier than the
experiment's CompletionTime. LastModifiedTime also moves with auto scaling, so only the configuration's name
says whose endpoint it is. Every delivery of one event reads the same window, so every one reaches the same
verdict at the same time:
- an alarm in ALARM for any part of the window fails the bake: from its state at the window's start and every
  StateUpdate in it (DescribeAlarmHistory, read only for alarms whose StateTransitionedTimestamp is after the
  start), not only from the states a look happened to see. A look that sees an alarm in ALARM fails it at once;
- an alarm CloudWatch no longer knows, or a history that cannot be read, fails it too (missing evidence is
  never a pass);
- an alarm in INSUFFICIENT_DATA throughout is no evidence either way: a bake in which every alarm lacked data
  throughout is inconclusive (OnInconclusive decides); one alarm OK throughout and another without data pass;
- the pass is taken no earlier than the window's end plus SETTLE_SECONDS, reading up to the end.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import rules
from aws import failure, transient
from botocore.exceptions import BotoCoreError, ClientError
from outcomes import StopFailed

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.client import CloudWatchClient
    from mypy_boto3_sagemaker.type_defs import DescribeEndpointOutputTypeDef as Endpoint

logger = logging.getLogger(__name__)

# CloudWatch records a state change a little after it happens: the verdict waits this long after the window's end.
SETTLE_SECONDS = 30.0
# Kept before the deadline for the rollback: a bake that cannot end by the deadline less this cannot pass.
RESERVE_SECONDS = 60.0
MAX_PAGES = 20
ALARM_TYPES = ["CompositeAlarm", "MetricAlarm"]  # left out, DescribeAlarms and the history omit composite alarms


@dataclass(frozen=True)
class Window:
    """The bake: from when the endpoint began serving the promotion, for the declared bake."""

    start: float
    end: float

    @property
    def judged_at(self) -> float:
        """When the verdict may be taken: CloudWatch has recorded the window by then."""
        return self.end + SETTLE_SECONDS


@dataclass(frozen=True)
class BakeVerdict:
    """The bake's outcome: pass, fail or inconclusive, and why in a sentence."""

    outcome: str
    why: str


def window_of(endpoint: Endpoint, completed: datetime.datetime | None, bake_seconds: int) -> Window:
    """The window of a bake whose endpoint was just found serving the promotion."""
    start = endpoint["LastModifiedTime"].timestamp()
    if completed is not None:
        start = max(start, completed.timestamp())
    return Window(start, start + bake_seconds)


def look(cloudwatch: CloudWatchClient | None, alarms: tuple[str, ...]) -> BakeVerdict | None:
    """A look during the bake: a failed verdict where an alarm is in ALARM now, or is gone; else None.

    A read that is throttled or cannot connect says nothing (the verdict at the end reads the whole window).

    Raises:
        StopFailed: the alarms could not be read for any other reason (AccessDenied, say).
    """
    try:
        found = described(cloudwatch, alarms)
    except StopFailed as error:
        if isinstance(error.__cause__, ClientError | BotoCoreError) and transient(error.__cause__):
            logger.warning("The bake's alarms could not be read (%s); still baking", error)
            return None
        raise
    for name in alarms:
        if name not in found:
            return BakeVerdict("fail", f"alarm {name} was not found during the bake")
        if found[name]["StateValue"] == "ALARM":
            return BakeVerdict("fail", f"alarm {name} was in ALARM during the bake")
    return None


def verdict(cloudwatch: CloudWatchClient | None, alarms: tuple[str, ...], window: Window) -> BakeVerdict:
    """The bake's verdict from what CloudWatch recorded over the window, each alarm's states in it.

    Raises:
        StopFailed: the alarms or their history could not be read (a transient failure included: the caller
            decides whether to look again).
    """
    found = described(cloudwatch, alarms)
    lacking = []
    for name in alarms:
        alarm = found.get(name)
        if alarm is None:
            return BakeVerdict("fail", f"alarm {name} was not found during the bake")
        states = _states(cloudwatch, alarm, window)
        if states is None:
            return BakeVerdict(
                "fail", f"alarm {name} changed state during the bake, but CloudWatch's history does not show it yet"
            )
        if "ALARM" in states:
            return BakeVerdict("fail", f"alarm {name} was in ALARM during the bake")
        if states == {"INSUFFICIENT_DATA"}:
            lacking.append(name)
    if lacking and len(lacking) == len(alarms):
        return BakeVerdict("inconclusive", f"every alarm ({', '.join(lacking)}) lacked data for the whole bake")
    return BakeVerdict("pass", f"no alarm was in ALARM for the whole bake ({window.end - window.start:.0f} s)")


def described(cloudwatch: CloudWatchClient | None, names: tuple[str, ...]) -> dict[str, Any]:
    """DescribeAlarms of every name, metric and composite alike (every page); a name not found is absent. The
    guard's judgement before the stop reads its alarms through this too.

    Raises:
        StopFailed: where the alarms could not be read.
    """
    if cloudwatch is None:
        raise StopFailed("No CloudWatch client to watch the bake's alarms with")
    found: dict[str, Any] = {}
    request: dict[str, Any] = {"AlarmNames": list(names), "AlarmTypes": ALARM_TYPES, "MaxRecords": rules.MAX_ALARMS}
    try:
        for _ in range(MAX_PAGES):
            page = cloudwatch.describe_alarms(**request)
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found[str(alarm.get("AlarmName"))] = alarm
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    except ClientError as error:
        raise failure(error, "cloudwatch:DescribeAlarms", ", ".join(names)[:80]) from error
    except BotoCoreError as error:
        raise StopFailed(f"cloudwatch:DescribeAlarms could not be reached: {error}") from error
    return found


def _states(cloudwatch: CloudWatchClient | None, alarm: Any, window: Window) -> set[str] | None:
    """Every state the alarm was in during the window; None where its history does not show its change yet."""
    transitioned = alarm.get("StateTransitionedTimestamp") or alarm.get("StateUpdatedTimestamp")
    if transitioned is not None and transitioned.timestamp() <= window.start:
        return {str(alarm["StateValue"])}  # no change since before the bake: one state throughout
    updates = _history(cloudwatch, str(alarm["AlarmName"]), window.start, window.end)
    if updates:
        return {updates[0][0], *(new for _, new in updates)}
    if transitioned is not None and transitioned.timestamp() > window.end:
        # Its only changes came after the window: the state it left is the one it had throughout.
        later = _history(cloudwatch, str(alarm["AlarmName"]), window.end, None)
        return {later[0][0]} if later else None
    return None


def _history(cloudwatch: CloudWatchClient | None, name: str, start: float, end: float | None) -> list[tuple[str, str]]:
    """The alarm's state updates from `start` to `end` (None: to now), oldest first, as (old state, new state).

    Raises:
        StopFailed: where the history could not be read.
    """
    assert cloudwatch is not None  # noqa: S101 (_described checked it)
    request: dict[str, Any] = {
        "AlarmName": name,
        "AlarmTypes": ALARM_TYPES,
        "HistoryItemType": "StateUpdate",
        "StartDate": datetime.datetime.fromtimestamp(start, datetime.UTC),
        "ScanBy": "TimestampAscending",
        "MaxRecords": 100,
    }
    if end is not None:
        request["EndDate"] = datetime.datetime.fromtimestamp(end, datetime.UTC)
    updates = []
    try:
        for _ in range(MAX_PAGES):
            page = cloudwatch.describe_alarm_history(**request)
            updates += [_update(item) for item in page.get("AlarmHistoryItems", [])]
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
    except ClientError as error:
        raise failure(error, "cloudwatch:DescribeAlarmHistory", name) from error
    except BotoCoreError as error:
        raise StopFailed(f"cloudwatch:DescribeAlarmHistory could not be reached: {error}") from error
    return updates


def _update(item: Any) -> tuple[str, str]:
    """(old state, new state) of a StateUpdate; a record that does not say counts as ALARM (never a pass)."""
    try:
        data = json.loads(item.get("HistoryData") or "{}")
        return str(data["oldState"]["stateValue"]), str(data["newState"]["stateValue"])
    except (ValueError, KeyError, TypeError):
        logger.warning("A StateUpdate of alarm %s does not say its states: taken as ALARM", item.get("AlarmName"))
        return "ALARM", "ALARM"
