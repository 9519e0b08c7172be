"""Every decision, announced: one JSON log line with every figure (for Logs Insights), and an EventBridge event
on the account's default bus that users route to SNS, chat or a ticket with a rule.

The put is one attempt with a short timeout (index.ANNOUNCE): a function in a VPC without an EventBridge
endpoint must not spend its answer's time on it. A failure is logged and never changes the answer. Both are
strict JSON: a figure that is not a finite number (a significance test with every value tied has no p-value) is
announced as null, so that every parser reads the announcement.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metrics import Verdict
    from mypy_boto3_events.client import EventBridgeClient

logger = logging.getLogger(__name__)

SOURCE = "inference-experiment-stopper"
DETAIL_TYPE = "Inference Experiment Stop Decision"


@dataclass(frozen=True)
class Context:
    """Where a decision was made: the experiment, the stack and the event."""

    experiment: str
    stack_id: str
    logical_id: str
    request_id: str
    request_type: str


def announce(
    events: EventBridgeClient | None,
    context: Context,
    decision: str,
    action: str,
    *,
    declared: Mapping[str, str],
    sent: Mapping[str, str] | None,
    verdict: Verdict | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> None:
    """Log the decision as one JSON line and put it on the default event bus (one attempt; failures only logged).

    Args:
        events: the EventBridge client (None: log only).
        context: the experiment, stack and event.
        decision: Promoted, FellBack: <why>, Inconclusive: <why>, RolledBack: <alarm>, NoGuard, Failed: <why>.
        action: what followed, in words (e.g. "the declared stop was sent", "nothing stopped; the Update failed").
        declared: the declared ModelVariantActions.
        sent: the ModelVariantActions sent (None where nothing was sent).
        verdict: the guard's checks, where a guard decided.
        thresholds: the guard's thresholds.
    """
    detail: dict[str, Any] = {
        **asdict(context),
        "decision": decision,
        "action": action,
        "declared_actions": dict(declared),
        "sent_actions": dict(sent) if sent is not None else None,
        "thresholds": dict(thresholds or {}),
        "outcome": verdict.outcome if verdict is not None else None,
        "checks": [
            {"name": check.name, "outcome": check.outcome, "text": check.text, **dict(check.figures)}
            for check in (verdict.checks if verdict is not None else ())
        ],
    }
    detail = _finite(detail)
    logger.info("%s", _json({"InferenceExperimentStopDecision": detail}))
    if events is None:
        return
    try:
        answer = events.put_events(Entries=[{"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": _json(detail)}])
        if answer.get("FailedEntryCount"):
            entry = (answer.get("Entries") or [{}])[0]
            logger.warning(
                "The decision was not put on the default event bus: %s %s",
                entry.get("ErrorCode"),
                entry.get("ErrorMessage"),
            )
    except Exception as error:  # noqa: BLE001 (whatever the put does, it never changes the answer)
        logger.warning("The decision was not put on the default event bus (%s); the answer is unchanged", error)


def _finite(value: Any) -> Any:
    """The value with every float that is not finite (NaN, Infinity), however deep, made None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _json(value: Any) -> str:
    """Strict JSON: allow_nan=False makes a NaN that _finite missed an error, never a bare NaN in the output."""
    return json.dumps(value, default=str, allow_nan=False)


@dataclass(frozen=True)
class Announcer:
    """One event's announcements: where it is made, what it declares, and the guard's thresholds."""

    events: EventBridgeClient | None
    context: Context
    declared: Mapping[str, str]
    thresholds: Mapping[str, Any]

    def tell(
        self, decision: str, action: str, verdict: Verdict | None = None, sent: Mapping[str, str] | None = None
    ) -> None:
        """Announce a decision (`sent`: the ModelVariantActions of the stop sent, where one was)."""
        announce(
            self.events,
            self.context,
            decision,
            action,
            declared=self.declared,
            sent=sent,
            verdict=verdict,
            thresholds=self.thresholds,
        )
