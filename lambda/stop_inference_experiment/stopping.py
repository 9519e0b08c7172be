"""The wait for one event's end: each look a transition from one state (state.py) to the next, or an answer.

This module carries the wait: the looks at the experiment (ToStop: stop once, where the gate lets it;
Stopping: until it ended as declared), the pauses between looks, the hand-on to the next run and the answer at
the deadline. A promotion that bakes goes on in bake.py (Promoting, Baking, RollingBack). Every action (the
stop, the rollback) leaves through sagemaker_api.py, past the run's gate.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from enum import Enum
from typing import TYPE_CHECKING

import bake
import ending
import evidence
from alarm_history import BakeVerdict
from aws import Unreadable, message
from botocore.exceptions import BotoCoreError, ClientError
from outcomes import NoStop, Outcome, StopFailed
from permission import MAX_LINKS
from state import Next, Phase, State
from waiting import CONTINUATION, HAND_ON_SECONDS, Continuation, Poller, hand_on

if TYPE_CHECKING:
    from invocation import Run
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment

logger = logging.getLogger(__name__)

WAITING_TO_RUN = frozenset({"Creating", "Starting", "Updating"})


class Step(Enum):
    STOP = "stop"
    WAIT = "wait"
    DONE = "done"


def next_step(request_type: str, experiment: Experiment, *, stopping: bool, promoting: bool) -> Step:
    """What to do next with an experiment: the decision table (the README's lifecycle table, row for row).

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


def carry_out(run: Run, experiment: Experiment) -> Outcome:
    """Stop (once, where the gate lets it) and wait until the experiment has ended as declared, its endpoint serves
    again, and a promotion that bakes has baked (or been rolled back).

    Raises:
        HandedOn: the wait goes on in the next run of the function, which answers.
        NoStop: where this event may not act.
        StopFailed: where the event must be answered FAILED.
    """
    state = State.of(run.continuation.state) if run.continuation else State()
    guard = run.declaration.guard
    if not state.fits(guard.bake_seconds if guard else None, run.timing.sent):
        raise StopFailed(f"The event's {CONTINUATION} holds a bake this event cannot have: nothing was done")
    wait = _Wait(run, experiment)
    while True:
        step = wait.look(state)
        if isinstance(step, Outcome):
            return step
        state = step.state
        if not step.at_once:
            paused = wait.pause(state)
            if isinstance(paused, Outcome):
                return paused
            if paused is not None:
                state = paused.state  # a bake the deadline (or a failed hand-on) ended: its rollback


class _Wait:
    """One run's looks: the experiment as last seen, the poll, and what this run did (not part of the state)."""

    def __init__(self, run: Run, experiment: Experiment) -> None:
        self.run, self.experiment = run, experiment
        self.poller = Poller(run.timing.sent, run.now(), run.services.jitter)
        self.first_look = run.continuation is None
        self.tried = False  # this run saw the experiment Running and tried its stop (ConflictException, say)
        self.previous: dict[str, bool] = {}  # per StatusReason: whether the previous declaration sends it too

    def look(self, state: State) -> Next | Outcome:
        phase = state.phase
        if phase is Phase.TO_STOP:
            return self._to_stop(state)
        if phase is Phase.STOPPING:
            return self._stopping(state)
        if phase is Phase.PROMOTING:
            return bake.promoting(self.run, self.experiment, state)
        if phase is Phase.BAKING:
            return bake.baking(self.run, self.experiment, state)
        return bake.rolling_back(self.run, self.experiment, state)

    # ToStop and Stopping: the experiment

    def _to_stop(self, state: State) -> Next | Outcome:
        run, experiment = self.run, self.experiment
        self.tried = self.tried or state.tried  # an earlier link of this chain tried the stop
        if experiment["Status"] in {"Stopping", *ending.STOPPED}:
            # A stop this run did not send: an earlier delivery of this event's own, or someone else's.
            own = ending.own_stop(run.declaration, run.request_type, run.timing, experiment, self._previous_sent)
            if own is not None:
                logger.info(
                    "Inference experiment %s shows this event's own stop (an earlier delivery sent it)", run.name
                )
                # A run that tried the stop itself (its answer lost) is the delivery that stopped; any other is a copy.
                return Next(State(Phase.STOPPING, own, follower=not self.tried), at_once=True)
            if experiment["Status"] in ending.STOPPED:
                ending.check_foreign_end(run.declaration.stop_request(), run.request_type, experiment)
                return Outcome.of(experiment)
        step = next_step(run.request_type, experiment, stopping=experiment["Status"] == "Stopping", promoting=False)
        if step is Step.DONE:
            return Outcome.of(experiment)
        _refuse_if_late(run)  # a late event neither stops nor waits (a stop it sent is waited out to its deadline)
        return self._stop() if step is Step.STOP else Next(state)

    def _stop(self) -> Next | Outcome:
        run, decision = self.run, ""
        if run.declaration.guard is not None and run.declaration.promotes:
            run.gate.stop(first_look=self.first_look)  # before a guard reads: a rollback never fails on a guard
        decided = evidence.decide(
            run.declaration,
            run.request_type,
            self.experiment,
            run.services.cloudwatch,
            run.timing.sent,
            run.announcer.tell,
        )
        try:
            conflict = run.sagemaker.stop(decided.request, run.gate, first_look=self.first_look)
        except (ClientError, BotoCoreError) as error:
            self.tried = True
            return self._unanswered(error)
        self.tried = True
        if conflict is None:
            decision = decided.decision
            run.announcer.tell(decision, decided.action, decided.verdict, decided.request["ModelVariantActions"])
        # After an accepted stop, an experiment that cannot be read is still being stopped: wait on.
        described = describe(self.run, last=self.experiment if conflict is None else None)
        if described is None:
            return self._gone(decision)
        if conflict is not None and described["Status"] not in {"Stopping", *ending.STOPPED}:
            if run.request_type == "Delete" and not conflict.startswith("ConflictException"):
                # Not found by the stop, yet still described (being deleted, or not yet consistent): teardown
                # must not stick on it, and nothing was stopped.
                raise NoStop(
                    f"SageMaker would not stop {run.name} ({conflict}): it was not stopped", answers_failed=False
                )
            raise StopFailed(f"SageMaker would not stop {run.name}: {conflict}")
        self.experiment = described
        return Next(State(Phase.STOPPING, decision) if conflict is None else State(tried=True), at_once=True)

    def _unanswered(self, error: ClientError | BotoCoreError) -> Next:
        """A stop that got no answer (throttled, or no connection, after botocore's retries): SageMaker may have
        accepted it all the same (a read timeout), so the experiment is described again: a stop under way is this
        run's own (it tried it); an experiment still Running was not stopped.

        Raises:
            NoStop: a Delete (SUCCESS with a warning: teardown must not stick).
            StopFailed: an Update whose experiment was not stopped.
        """
        run = self.run
        why = message(error) if isinstance(error, ClientError) else str(error)
        unsent = f"StopInferenceExperiment on {run.name} could not be sent ({why})"
        described = None
        try:
            described = run.sagemaker.read_experiment(run.name, run.reads_until())
        except (Unreadable, StopFailed) as unread:
            logger.warning("%s", unread)
        if described is not None and described["Status"] in {"Stopping", *ending.STOPPED}:
            logger.warning("%s, but the experiment is %s: looking whose stop it is", unsent, described["Status"])
            self.experiment = described
            return Next(State(tried=True), at_once=True)
        if run.request_type == "Delete":
            raise NoStop(f"{unsent}; it may not have been stopped", answers_failed=False) from error
        raise StopFailed(f"{unsent}, and the experiment is not seen stopping: it may not have been stopped") from error

    def _stopping(self, state: State) -> Next | Outcome:
        run, experiment = self.run, self.experiment
        request = run.declaration.sent_request(state.decision)
        step = next_step(run.request_type, experiment, stopping=True, promoting=ending.promotes(request))
        if step is not Step.DONE:
            return Next(state)
        ending.check_own_end(request, run.request_type, experiment)
        if run.request_type != "Update" or state.decision != "Promoted" or not run.declaration.bakes:
            return Outcome.of(experiment, state.decision)
        promoted = experiment.get("EndpointMetadata", {}).get("EndpointConfigName", "")
        return Next(replace(state, phase=Phase.PROMOTING, promoted=promoted), at_once=True)

    def _previous_sent(self, reason: str) -> bool:
        """Whether the previous declaration sends this Reason too, read once per Reason (polls repeat the question);
        never once this run tried its own stop: no earlier declaration's stop can have come since, as a late copy
        of an older event is refused."""
        if self.tried:
            return False
        if reason not in self.previous:
            self.previous[reason] = ending.previous_sends(
                self.run.event, self.run.services.parse, self.run.name, reason
            )
        return self.previous[reason]

    # reads, pauses and the hand-on (Promoting, Baking and RollingBack are bake.py's)

    def _gone(self, decision: str) -> Outcome:
        return Outcome(str(self.run.event.get("PhysicalResourceId")), status="NotFound", decision=decision)

    def pause(self, state: State) -> Outcome | Next | None:
        """Sleep until the next look (then read the experiment again, in the phases that watch it), or answer at
        the deadline, or hand the wait on to the next run."""
        run, clock = self.run, self.run.services.clock
        now = clock.time()
        if now >= run.timing.deadline:
            return self._at_deadline(state)
        delay = min(self.poller.delay(now), run.timing.deadline - now)
        if state.phase is Phase.BAKING and state.window is not None and now < state.window.judged_at:
            delay = min(delay, state.window.judged_at - now)
        # Hand on only a wait that outlasts this run: one whose deadline falls within it is answered here.
        if now + delay > run.run_ends - HAND_ON_SECONDS and run.timing.deadline > run.run_ends:
            return self._hand_on(state)
        clock.sleep(delay)
        self.first_look = False
        if state.phase in {Phase.TO_STOP, Phase.STOPPING}:
            described = describe(self.run, last=self.experiment)
            if described is None:
                return self._gone(state.decision)
            self.experiment = described
        return None

    def _at_deadline(self, state: State) -> Outcome | Next:
        """The answer at the deadline; for a bake, its failure (the gate then says whether it may roll back)."""
        run = self.run
        guard = run.declaration.guard
        config = guard.roll_back_to if guard is not None else None
        if state.phase in {Phase.TO_STOP, Phase.STOPPING}:
            note = ""
            if state.decision == "Promoted" and run.declaration.bakes and config is not None:
                note = f"; roll_back_to {config} could not be applied while the promotion was still under way"
            waited = run.now() - run.timing.sent
            answer = ending.timed_out(
                run.declaration, run.request_type, self.experiment, waited, stop_sent=state.stop_sent, note=note
            )
            return replace(answer, decision=state.decision)
        if state.phase is Phase.ROLLING_BACK and state.follower:
            why = (
                f"This copy of the event sent nothing, and the endpoint did not serve {config} yet: the bake of "
                f"{run.name}'s promotion did not pass by its reading ({state.why or 'rolled back by another delivery'})"
            )
        elif state.phase is Phase.ROLLING_BACK:
            why = f"The rollback of {run.name}'s endpoint to {config} after {state.why} was still under way"
        elif state.phase is Phase.PROMOTING:
            why = f"The endpoint had not begun serving {run.name}'s promotion, {state.promoted}"
            why += f"; roll_back_to {config} could not be applied" if config else ""
        else:
            limit = f"CompletionTimeoutSeconds {run.declaration.completion_timeout_seconds}"
            unfinished = BakeVerdict("fail", f"the bake had not finished at the deadline ({limit})")
            return bake.fail(run, self.experiment, state, unfinished)
        why += f" at the deadline (CompletionTimeoutSeconds {run.declaration.completion_timeout_seconds})"
        run.announcer.tell(f"Failed: {why}", "the deadline came first")
        raise StopFailed(why)

    def _hand_on(self, state: State) -> Outcome | Next:
        run = self.run
        link = run.continuation.link + 1 if run.continuation else 2
        if link > MAX_LINKS:
            logger.warning("The wait for %s was handed on %d times: answering now", run.name, MAX_LINKS - 1)
            return self._at_deadline(state)
        handed = Continuation(run.timing.deadline, link, run.timing.sent, state.record())
        services = run.services
        try:
            hand_on(
                run.event, handed, run.name, run.request_type, services.lambda_, run.budget.function_arn, services.clock
            )
        except StopFailed as error:
            if state.phase is Phase.ROLLING_BACK and not state.follower:
                config = run.declaration.guard.roll_back_to if run.declaration.guard else None
                raise StopFailed(f"{error}; the rollback to {config} was sent and may still complete") from error
            if state.phase is not Phase.BAKING:
                raise
            # A bake that cannot be watched to its end does not pass: it rolls back, as any bake that does not.
            unwatched = BakeVerdict("fail", f"the bake could not be watched to its end ({error})")
            return bake.fail(run, self.experiment, state, unwatched)
        return Outcome.of(self.experiment, state.decision)  # a Delete whose hand-on failed answers now


def describe(run: Run, last: Experiment | None = None) -> Experiment | None:
    """The experiment during a stop; None where a Delete finds it gone (nothing left to stop). A throttled read
    is tried again until the deadline; while polling (`last` given) it is not: the poll itself comes again, and
    the last answer stands ("still waiting").

    Raises:
        NoStop: an experiment that could not be read in time (a Delete SUCCESS, an Update FAILED).
        StopFailed: an Update whose experiment disappeared.
    """
    try:
        until = run.now() if last is not None else run.reads_until()
        experiment = run.sagemaker.read_experiment(run.name, until)
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
