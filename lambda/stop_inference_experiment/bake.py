"""After a guarded promotion: its bake, and the rollback where the bake does not pass (the wait's last phases).

As SageMaker's deployment guardrails do (AutoRollbackConfiguration, a baking period), the bake starts when AWS
says the endpoint began serving the promoted configuration (alarm_history.window_of), and is judged from what
CloudWatch recorded over its window (alarm_history.verdict), so that every delivery of the event judges the
same window the same way. A bake that does not pass (an alarm, an alarm gone or unreadable, no time left before
the deadline less the rollback's reserve, inconclusive) rolls the endpoint back to RollBackTo, through the gate;
without RollBackTo the Update fails saying the endpoint still serves the promoted model.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import alarm_history
from alarm_history import RESERVE_SECONDS, BakeVerdict
from aws import Unreadable
from outcomes import NoStop, Outcome, StopFailed
from permission import COMPLETED
from sagemaker_api import ENDPOINT_FAILED, serves, updating_to
from state import Next, Phase, State

if TYPE_CHECKING:
    from invocation import Run
    from mypy_boto3_sagemaker.type_defs import DescribeEndpointOutputTypeDef as Endpoint
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment

logger = logging.getLogger(__name__)


def promoting(run: Run, experiment: Experiment, state: State) -> Next | Outcome:
    """Wait for the endpoint to serve this event's promotion; the bake's window begins when it does."""
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a bake promotes through this phase)
    assert guard.bake_seconds  # noqa: S101
    config = guard.roll_back_to
    endpoint = _endpoint(run, experiment)
    if endpoint is None:
        return Next(state)
    status, serving = endpoint["EndpointStatus"], endpoint.get("EndpointConfigName")
    if state.follower and _shows_rollback(endpoint, config, experiment):
        return _rolled_back_before(state)
    # A promotion makes a configuration of its own, never RollBackTo: an experiment that names RollBackTo (or none)
    # right after it completed still shows the endpoint before the promotion (*unverified* how long SageMaker
    # reports the old configuration): the one it serves next, InService, is the promotion's.
    promoted = state.promoted if state.promoted != config else ""
    if not promoted and status == "InService" and serving != config:
        logger.warning("The experiment does not name its promotion's configuration: taking the one served, %s", serving)
        promoted = str(serving)
    state = replace(state, promoted=promoted)
    if promoted and serves(endpoint, promoted):
        return _begin(run, experiment, state, endpoint, guard.bake_seconds)
    if status in ENDPOINT_FAILED or (status == "InService" and promoted and serving not in (promoted, config)):
        raise StopFailed(
            f"The bake could not start, nothing rolled back: the endpoint {endpoint['EndpointName']} is {status} on "
            f"{serving}, not on {promoted}, which {run.name}'s promotion made "
            f"({endpoint.get('FailureReason') or 'changed since'})"
        )
    return Next(state)  # still updating to the promotion: the deadline ends the wait


def _begin(run: Run, experiment: Experiment, state: State, endpoint: Endpoint, bake_seconds: int) -> Next | Outcome:
    """The endpoint serves this event's promotion: the bake's window starts when it began to (AWS's time)."""
    if state.follower and _answered_success(run):
        return replace(Outcome.of(experiment, state.decision), endpoint_status=endpoint["EndpointStatus"])
    window = alarm_history.window_of(endpoint, experiment.get("CompletionTime"), bake_seconds)
    baking = replace(state, phase=Phase.BAKING, window=window)
    logger.info("%s serves the promotion since %.0f: baking until %.0f", run.name, window.start, window.end)
    # A copy cannot know when the endpoint began serving, only when it first saw it (auto scaling moves
    # LastModifiedTime): its window says nothing about the time left.
    if not state.follower and window.end > run.timing.deadline - RESERVE_SECONDS:
        why = (
            f"the bake cannot end {RESERVE_SECONDS:.0f} s before the deadline "
            f"(CompletionTimeoutSeconds {run.declaration.completion_timeout_seconds}), which the rollback needs"
        )
        return fail(run, experiment, baking, BakeVerdict("fail", why))
    return Next(baking, at_once=True)


def baking(run: Run, experiment: Experiment, state: State) -> Next | Outcome:
    """A look during the bake (within its window), or, once CloudWatch has recorded it, its verdict."""
    guard, window = run.declaration.guard, state.window
    assert guard is not None  # noqa: S101 (a bake has both)
    assert window is not None  # noqa: S101
    cloudwatch, now = run.services.cloudwatch, run.now()
    if now < window.end:
        try:
            seen = alarm_history.look(cloudwatch, guard.alarms)
        except StopFailed as error:  # not throttling (alarm_history.look rides that out): AccessDenied, say
            seen = BakeVerdict("fail", f"its alarms could not be read ({error})")
        return Next(state) if seen is None else fail(run, experiment, state, seen)
    if now < window.judged_at:
        return Next(state)  # after the window, a state seen now is not the window's: the history will tell
    try:
        verdict = alarm_history.verdict(cloudwatch, guard.alarms, window)
    except StopFailed as error:
        if now < run.timing.deadline - RESERVE_SECONDS / 2:
            logger.warning("The bake's verdict could not be read (%s); looking again", error)
            return Next(state)
        verdict = BakeVerdict("fail", f"its alarms could not be read ({error})")
    if verdict.outcome != "pass":
        return fail(run, experiment, state, verdict)
    return _passed(run, experiment, state, verdict)


def _passed(run: Run, experiment: Experiment, state: State, verdict: BakeVerdict) -> Next | Outcome:
    """The alarms passed the bake: SUCCESS where the endpoint still serves the promotion (judged by its
    configuration, never its status alone). A copy answers as the delivery that stopped did: it waits for that
    one's answer (the stack completes the update) or its rollback; only where that delivery is evidently gone (no
    word by the deadline less the reserve) does its own verdict answer."""
    endpoint = _endpoint(run, experiment)
    config = run.declaration.guard.roll_back_to if run.declaration.guard else None
    if endpoint is None:
        if run.now() < run.timing.deadline - RESERVE_SECONDS / 2:
            return Next(state)
        return fail(run, experiment, state, BakeVerdict("fail", "the endpoint could not be read at the bake's end"))
    if config is not None and (updating_to(endpoint) == config or (state.follower and serves(endpoint, config))):
        return _rolled_back_before(state)
    if serves(endpoint, state.promoted):
        answered = not state.follower or _answered_success(run) or run.now() >= run.timing.deadline - RESERVE_SECONDS
        if not answered:
            return Next(state)  # a copy: the delivery that stopped answers first
        logger.info("The bake of %s's promotion passed: %s", run.name, verdict.why)
        return replace(Outcome.of(experiment, state.decision), endpoint_status=endpoint["EndpointStatus"])
    shown = f"{endpoint['EndpointStatus']} on {endpoint.get('EndpointConfigName')}"
    reason = f"; {endpoint['FailureReason']}" if endpoint.get("FailureReason") else ""
    gone = BakeVerdict("fail", f"the endpoint no longer serves the promotion ({shown}{reason})")
    return fail(run, experiment, state, gone)


def fail(run: Run, experiment: Experiment, state: State, verdict: BakeVerdict) -> Next | Outcome:
    """A bake that did not pass: roll back where the guard says to (a copy leaves it to the delivery that
    stopped, unless that one is evidently gone), else fail saying what serves.

    Raises:
        StopFailed: without RollBackTo, or where SageMaker refused the rollback.
        NoStop: where the gate refused the rollback (FAILED, saying so first).
    """
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a guard bakes)
    endpoint = experiment["EndpointMetadata"]["EndpointName"]
    named = "Inconclusive" if verdict.outcome == "inconclusive" else "Failed"
    did_not_pass = f"the bake of {run.name}'s promotion did not pass: {verdict.why}"
    if guard.roll_back_to is None:
        run.announcer.tell(f"{named}: {verdict.why}", "the endpoint still serves the promoted model")
        raise StopFailed(
            f"The endpoint {endpoint} still serves the promoted model (no roll_back_to declared): {did_not_pass}"
        )
    inconclusive = verdict.outcome == "inconclusive"
    rolling_back = replace(state, phase=Phase.ROLLING_BACK, why=verdict.why, inconclusive=inconclusive)
    if state.follower and run.now() < run.timing.deadline - RESERVE_SECONDS:
        if _answered_success(run):
            return Outcome.of(experiment, state.decision)
        logger.warning("%s; this copy leaves the rollback to the delivery that stopped, and watches", did_not_pass)
        return Next(rolling_back)
    try:
        sent = run.sagemaker.roll_back(endpoint, guard.roll_back_to, state.promoted, run.gate)
    except NoStop as refused:
        run.announcer.tell(f"{named}: {verdict.why}", "the rollback was not sent")
        raise NoStop(f"{refused}; {did_not_pass}", answers_failed=refused.answers_failed) from refused
    except StopFailed as error:
        run.announcer.tell(f"{named}: {verdict.why}", "the rollback could not be started")
        raise StopFailed(
            f"Rollback to {guard.roll_back_to} failed: {error} (after {verdict.why}; endpoint {endpoint}, "
            f"experiment {run.name})"
        ) from error
    logger.warning("%s; rollback %s", did_not_pass, sent.value)
    return Next(replace(rolling_back, follower=False))  # whoever sent it waits for it as its own


def rolling_back(run: Run, experiment: Experiment, state: State) -> Next | Outcome:
    """Wait for the endpoint to serve RollBackTo again: then answer (FAILED RolledBack, or an inconclusive bake's
    fallback SUCCESS); a rollback that failed is FAILED quoting SageMaker. A copy waiting for the delivery that
    stopped rolls back itself once that one is evidently gone (no rollback by the deadline less the reserve)."""
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a rollback is here)
    assert guard.roll_back_to is not None  # noqa: S101
    config = guard.roll_back_to
    endpoint = _endpoint(run, experiment)
    if endpoint is None:
        return Next(state)
    name = endpoint["EndpointName"]
    if serves(endpoint, config):
        return _rolled_back(run, experiment, state, endpoint, config)
    status = endpoint["EndpointStatus"]
    if state.follower:
        if updating_to(endpoint) != config and run.now() >= run.timing.deadline - RESERVE_SECONDS:
            logger.warning("No rollback from the delivery that stopped: this copy rolls %s back itself", name)
            return fail(
                run, experiment, state, BakeVerdict("inconclusive" if state.inconclusive else "fail", state.why)
            )
        return Next(state)
    if status in ENDPOINT_FAILED or (status == "InService" and endpoint.get("FailureReason")):
        why = endpoint.get("FailureReason") or f"it serves {endpoint.get('EndpointConfigName')}"
        run.announcer.tell(f"Failed: {state.why}", "the rollback failed")
        raise StopFailed(
            f"Rollback to {config} failed: {status}: {why} (after {state.why}; endpoint {name}, experiment {run.name})"
        )
    return Next(state)


def _rolled_back(run: Run, experiment: Experiment, state: State, endpoint: Endpoint, config: str) -> Next | Outcome:
    """The endpoint serves RollBackTo again. A copy that did not judge the bake itself cannot tell an inconclusive
    bake's fallback (SUCCESS) from a failed one: with OnInconclusive FallBack it answers as the stack shows the
    first answer was taken (the update completed: SUCCESS; else FAILED).

    Raises:
        StopFailed: RolledBack, saying so first.
    """
    guard = run.declaration.guard
    fallback = guard is not None and guard.on_inconclusive == "FallBack"
    if state.follower and not state.why and fallback:
        if _answered_success(run):
            state = replace(state, why="inconclusive", inconclusive=True)
        elif _still_answering(run):
            return Next(state)  # the first delivery's answer is not taken yet: wait for it
    if state.inconclusive and fallback:
        decision = f"Inconclusive: {state.why}; rolled back to {config}"
        run.announcer.tell(decision, f"the endpoint serves {config} again")
        return replace(Outcome.of(experiment, decision), endpoint_status=endpoint["EndpointStatus"])
    why = state.why or "another delivery of this event rolled the promotion back after its bake did not pass"
    run.announcer.tell(f"RolledBack: {why}", f"the endpoint serves {config} again")
    raise StopFailed(
        f"RolledBack: the endpoint {endpoint['EndpointName']} of {run.name} was rolled back to {config} and serves "
        f"it: {why}"
    )


def _shows_rollback(endpoint: Endpoint, config: str | None, experiment: Experiment) -> bool:
    """Whether the endpoint shows a rollback to RollBackTo: updating to it, or serving it since after the
    experiment completed (serving it since before is the endpoint before the promotion took over)."""
    if config is None:
        return False
    if updating_to(endpoint) == config:
        return True
    completed = experiment.get("CompletionTime")
    modified = endpoint.get("LastModifiedTime")
    return (
        serves(endpoint, config)
        and completed is not None
        and modified is not None
        and modified.timestamp() > completed.timestamp()
    )


def _answered_success(run: Run) -> bool:
    """Whether CloudFormation already completed this update: the delivery that stopped answered SUCCESS (its bake
    passed), and a copy, which cannot tell when the endpoint began serving (auto scaling moves LastModifiedTime),
    answers as it did."""
    stack = run.stack.status(run.reads_until())
    answered = stack is not None and not stack.later_operation and stack.status in COMPLETED
    if answered:
        logger.info("The stack completed this update: the delivery that stopped answered SUCCESS; so does this copy")
    return answered


def _still_answering(run: Run) -> bool:
    """Whether CloudFormation is still waiting for this update's answers, with time left to wait for them."""
    stack = run.stack.status(run.reads_until())
    waiting = stack is not None and stack.status == "UPDATE_IN_PROGRESS" and not stack.later_operation
    return waiting and run.now() < run.timing.deadline - RESERVE_SECONDS


def _rolled_back_before(state: State) -> Next:
    """Another delivery of this event rolled the endpoint back: wait for it to serve RollBackTo, and answer then."""
    return Next(replace(state, phase=Phase.ROLLING_BACK), at_once=True)


def _endpoint(run: Run, experiment: Experiment) -> Endpoint | None:
    """The experiment's endpoint now; None where the read is throttled (still waiting)."""
    name = experiment["EndpointMetadata"]["EndpointName"]
    try:
        return run.sagemaker.endpoint(name, run.now())
    except Unreadable as error:
        logger.warning("%s; still waiting", error)
        return None
