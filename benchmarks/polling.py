"""Polling at scale: N stoppers deleted together, each waiting 30 minutes, today's poll schedule against the new.

Each stopper is the handler's real lifecycle (lifecycle.handle, links and all) on its own fake clock against its
own simulated experiment (tests/experiment_on_a_clock.py: a real botocore client), with its own seeded jitter.
The clocks start together at the moment CloudFormation signed the Delete (the ResponseURL's X-Amz-Date), so a
later link reads the event's true age from the URL, as it does in Lambda. The stoppers do not interact (no
throttling is simulated), so running them one after another and merging the times of their
DescribeInferenceExperiment calls gives the load SageMaker sees from all of them at once.

"Today's" schedule no longer exists in the code: OldPoller reproduces it (2 s, then each pause x1.5 up to 6 s, no
jitter, starting over at 2 s in each run of the function) and stands in for waiting.Poller in the same handler,
so the two schedules are measured through the same code.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import lifecycle
import stopping
from experiment_on_a_clock import ExperimentOnAClock
from simulated import DELIVERY_SECONDS, RUN_SECONDS, Clock, RecordingLambda, seeded, sent_at, service_timeout

EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "delete.json"
STOP_TAKES = 30 * 60.0  # the experiment is Stopping this long after the stop is accepted, then Completed
COMPLETION_TIMEOUT = 3300  # the longest CompletionTimeoutSeconds (ServiceTimeout as the construct writes it)
EARLY_SECONDS = 120.0  # the "first two minutes" of a stop
SETTLED_SECONDS = 180.0  # by then the new pause has grown to its 15 s cap (6, 9, 13.5, 15 s after EARLY_SECONDS)
STOPPERS = (1, 10, 50)


def old_delays() -> Iterator[float]:
    """Today's pauses between DescribeInferenceExperiment calls (lifecycle.poll_delays before the change)."""
    delay = 2.0
    while True:
        yield delay
        delay = min(delay * 1.5, 6.0)


class OldPoller:
    """Today's schedule behind waiting.Poller's interface: no jitter, and every run of the function starts over."""

    made = 0

    def __init__(self, sent: float, now: float, jitter: Callable[[], float]) -> None:
        OldPoller.made += 1
        self._delays = old_delays()

    def delay(self, now: float) -> float:
        return next(self._delays)


class TimedExperiment(ExperimentOnAClock):
    """The experiment on a clock, also noting when each DescribeInferenceExperiment call reaches it."""

    def __init__(self, clock: Clock, stop_takes: float, name: str) -> None:
        self.described_at: list[float] = []
        super().__init__(clock, stop_takes, name=name)

    def _answer(self, model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        if model.name == "DescribeInferenceExperiment":
            self.described_at.append(self.clock.time())
        return super()._answer(model, params, **kwargs)


class DeletingCloudFormation:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        return {"Stacks": [{"StackName": "ShadowTestStack", "StackStatus": "DELETE_IN_PROGRESS"}]}


@dataclass(frozen=True)
class Stop:
    """One stopper's wait: when it called DescribeInferenceExperiment, and how late it answered."""

    described_at: list[float]  # seconds after the Delete was sent
    answer_delay: float  # seconds from the experiment's Completed to the answer
    runs_started_at: list[float]  # seconds after the Delete was sent: each run of the function (link)


def stop(index: int, jitter: Callable[[], float]) -> Stop:
    """Stopper `index` of a stack being deleted: the Delete's runs, link by link, until one answers."""
    event: dict[str, Any] = json.loads(EVENT.read_text())
    sent = sent_at(event)
    clock = Clock(sent)
    name = f"shadow-test-{index:03d}"
    experiment = TimedExperiment(clock, STOP_TAKES, name)
    invoker = RecordingLambda()
    services = lifecycle.Services(experiment.client, DeletingCloudFormation(), clock, invoker, jitter=jitter)  # type: ignore[arg-type]
    properties = event["ResourceProperties"]
    properties.update(
        Name=name,
        CompletionTimeoutSeconds=str(COMPLETION_TIMEOUT),
        ServiceTimeout=str(service_timeout(COMPLETION_TIMEOUT)),
    )
    event.update(PhysicalResourceId=name, LogicalResourceId=f"Stop{index:03d}", RequestId=f"bench-{index:03d}")
    links = 0
    runs_started_at = []
    while True:
        links += 1
        runs_started_at.append(clock.time() - sent)
        budget = lifecycle.Budget(time_left=RUN_SECONDS, function_arn="arn:aws:lambda:us-east-1:1:function:f")
        outcome = lifecycle.handle(event, services, budget)
        if not outcome.silent:
            break
        if len(invoker.payloads) != links:
            raise RuntimeError(f"run {links} of stopper {index} neither answered nor handed the wait on")
        event = invoker.payloads[-1]
        clock.sleep(DELIVERY_SECONDS)
    if outcome.status != "Completed":
        raise RuntimeError(f"the stop of {name} did not complete: {outcome}")
    return Stop([t - sent for t in experiment.described_at], clock.time() - experiment.completed_at, runs_started_at)


def new_stops(count: int) -> list[Stop]:
    """The handler as it is: waiting.Poller, stopper i jittered by random.Random(i)."""
    return [stop(index, seeded(index)) for index in range(count)]


def old_stops(count: int) -> list[Stop]:
    """The same handler on today's schedule (OldPoller in waiting.Poller's place)."""
    made = OldPoller.made
    with mock.patch.object(stopping, "Poller", OldPoller):
        stops = [stop(index, seeded(index)) for index in range(count)]
    if OldPoller.made == made:
        raise RuntimeError("stopping no longer makes its Poller where the benchmark replaces it")
    return stops


def busiest(times: list[float], window: float, start: float = 0.0, end: float = float("inf")) -> tuple[int, float]:
    """The most calls in any `window` seconds [t, t + window) within [start, end), t anywhere (a sliding window),
    and the t of the first such window.
    """
    inside = sorted(t for t in times if start <= t < end)
    counts = [(bisect.bisect_left(inside, t + window) - i, -t) for i, t in enumerate(inside)]
    most, at = max(counts, default=(0, -start))
    return most, -at


@dataclass(frozen=True)
class Load:
    """What N stoppers started together ask of SageMaker."""

    stoppers: int
    calls: list[int]  # DescribeInferenceExperiment calls per stop
    peak_second: int  # calls in the busiest second
    peak_ten: float  # calls per second in the busiest 10 s
    sustained: float  # calls per second from EARLY_SECONDS on until the experiments complete
    settled_peak_ten: float  # calls per second in the busiest 10 s from SETTLED_SECONDS on
    settled_peak_at: float  # when that window starts, seconds after the Delete
    worst_delay: float  # seconds from Completed to the answer, the latest stopper's
    links: int  # runs of the function per stop (the most)
    hand_ons: list[tuple[float, float]]  # when the later runs started: (earliest, latest) over the stoppers, per link


def load(stops: list[Stop]) -> Load:
    times = [t for one in stops for t in one.described_at]
    # The stops are accepted as the Delete arrives, so every experiment is Completed at STOP_TAKES.
    sustained = sum(1 for t in times if EARLY_SECONDS <= t < STOP_TAKES) / (STOP_TAKES - EARLY_SECONDS)
    settled, settled_at = busiest(times, 10.0, SETTLED_SECONDS, STOP_TAKES)
    links = max(len(one.runs_started_at) for one in stops)
    later = [[one.runs_started_at[link] for one in stops if len(one.runs_started_at) > link] for link in range(links)]
    return Load(
        stoppers=len(stops),
        calls=[len(one.described_at) for one in stops],
        peak_second=busiest(times, 1.0)[0],
        peak_ten=busiest(times, 10.0)[0] / 10,
        sustained=sustained,
        settled_peak_ten=settled / 10,
        settled_peak_at=settled_at,
        worst_delay=max(one.answer_delay for one in stops),
        links=links,
        hand_ons=[(min(starts), max(starts)) for starts in later[1:]],
    )


def loads() -> dict[str, list[Load]]:
    """Today's schedule and the new one, for each N of STOPPERS (the first N stoppers of the same 50)."""
    most = max(STOPPERS)
    runs = {"today": old_stops(most), "new": new_stops(most)}
    return {schedule: [load(stops[:count]) for count in STOPPERS] for schedule, stops in runs.items()}
