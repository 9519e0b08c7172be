"""The wait's state: one value with named phases, written to the continuation record by name.

    ToStop --stop accepted, or the experiment shows this event's own stop--> Stopping
    Stopping --ended as declared; a promotion that bakes--> Promoting --the endpoint serves it--> Baking
    Baking --an alarm, an alarm gone, no time left, inconclusive--> RollingBack
    (and every phase --its end, or the deadline--> an answer)

A later link, or a second delivery of the event, goes on from what AWS shows: a copy that finds the experiment
ended by this event's stop goes to Stopping, and the bake's window is read from the endpoint, so every delivery
judges the same window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from alarm_history import Window
from outcomes import StopFailed
from properties import quote
from waiting import CONTINUATION, number


class Phase(Enum):
    TO_STOP = "ToStop"  # this event's stop is not sent (the experiment is not Running yet, or someone else stops it)
    STOPPING = "Stopping"  # this event's stop was sent: waiting for the experiment to end (and its endpoint to serve)
    PROMOTING = "Promoting"  # a promotion that bakes: waiting for the endpoint to serve the promoted configuration
    BAKING = "Baking"  # watching the guard's alarms over the bake's window
    ROLLING_BACK = "RollingBack"  # the bake did not pass: the endpoint is updated back to RollBackTo


@dataclass(frozen=True)
class State:
    """Where the wait stands: its phase, the decision of this event's stop, and the bake's facts."""

    phase: Phase = Phase.TO_STOP
    decision: str = ""
    promoted: str = ""  # the endpoint configuration this event's promotion made
    window: Window | None = None
    why: str = ""  # why the endpoint is rolled back: the bake's verdict
    inconclusive: bool = False  # that verdict was inconclusive (OnInconclusive decides the answer)
    # A copy of the event: it found another delivery's stop (its own run sent none). It judges the bake as that
    # delivery does, but leaves every action to it: it never sends a rollback.
    follower: bool = False
    # This delivery's chain tried the stop itself (its answer lost, or refused as a conflict): a stop found under way
    # is its own, in this run or a later link, never a copy's.
    tried: bool = False

    @property
    def stop_sent(self) -> bool:
        return self.phase is not Phase.TO_STOP

    def record(self) -> dict[str, Any]:
        """The state by name, for the continuation record."""
        record: dict[str, Any] = {"Phase": self.phase.value, "StopSent": self.stop_sent, "Decision": self.decision}
        if self.promoted:
            record["PromotedConfig"] = self.promoted
        if self.window is not None:
            record["BakeStart"], record["BakeEnd"] = self.window.start, self.window.end
        if self.why:
            record["RollBackWhy"], record["Inconclusive"] = self.why, self.inconclusive
        if self.follower:
            record["Follower"] = True
        if self.tried:
            record["Tried"] = True
        return record

    def fits(self, bake_seconds: int | None, sent: float) -> bool:
        """Whether a bake this state carries is one this function can have written for the event: a window of the
        declared length, starting after the event was sent, on a configuration it names."""
        if self.window is None:
            return self.phase is not Phase.BAKING
        return (
            self.window.end - self.window.start == bake_seconds
            and self.window.start >= sent - 1
            and bool(self.promoted)
        )

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> State:
        """The state a continuation record holds (one without a Phase: a record of the version before, which
        knew only whether the stop was sent; its bake, if any, is found again from the endpoint).

        Raises:
            StopFailed: for a record this function did not write.
        """
        try:
            phase = Phase(record["Phase"]) if "Phase" in record else None
        except ValueError:
            phase = None
        stop_sent, decision = record.get("StopSent"), record.get("Decision", "")
        start, end = record.get("BakeStart"), record.get("BakeEnd")
        texts = [decision, record.get("PromotedConfig", ""), record.get("RollBackWhy", "")]
        if (
            (phase is None and ("Phase" in record or not isinstance(stop_sent, bool)))
            or not all(isinstance(text, str) for text in texts)
            or (start is None) != (end is None)
            or (start is not None and not (number(start) and number(end)))
            or not isinstance(record.get("Inconclusive", False), bool)
            or not isinstance(record.get("Follower", False), bool)
            or not isinstance(record.get("Tried", False), bool)
        ):
            raise StopFailed(f"The event's {CONTINUATION} is malformed ({quote(dict(record))}): nothing was stopped")
        if phase is None:
            phase = Phase.STOPPING if stop_sent else Phase.TO_STOP
        return cls(
            phase,
            decision,
            texts[1],
            None if start is None else Window(float(start), float(end or 0)),
            texts[2],
            bool(record.get("Inconclusive", False)),
            bool(record.get("Follower", False)),
            bool(record.get("Tried", False)),
        )


@dataclass(frozen=True)
class Next:
    """The state after a look; `at_once`: look again without waiting (a phase that just began)."""

    state: State
    at_once: bool = False
