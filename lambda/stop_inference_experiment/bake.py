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
from sagemaker_api import ENDPOINT_FAILED, serves, updating_to
from state import Next, Phase, State

if TYPE_CHECKING:
    from invocation import Run
    from mypy_boto3_sagemaker.type_defs import DescribeEndpointOutputTypeDef as Endpoint
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment

logger = logging.getLogger(__name__)


def promoting(run: Run, experiment: Experiment, state: State) -> Next | Outcome:
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a bake promotes through this phase)
    assert guard.bake_seconds  # noqa: S101
    if guard.roll_back_to is not None and state.promoted == guard.roll_back_to:
        return _rolled_back_before(state)
    endpoint = _endpoint(run, experiment)
    if endpoint is None:
        return Next(state)
    if not state.promoted and endpoint["EndpointStatus"] == "InService":
        # EndpointMetadata.EndpointConfigName is optional in the service model (*unverified* whether SageMaker
        # reports it after a promotion). Without it, the configuration the endpoint serves once InService after
        # the experiment completed is taken for the promotion's; where it is RollBackTo, it was rolled back.
        logger.warning("The experiment does not name its endpoint's configuration: taking the one it serves")
        state = replace(state, promoted=endpoint["EndpointConfigName"])
        if state.promoted == guard.roll_back_to:
            return _rolled_back_before(state)
    if serves(endpoint, state.promoted):
        return _begin(run, experiment, state, endpoint, guard.bake_seconds)
    if guard.roll_back_to is not None and guard.roll_back_to in (updating_to(endpoint), _serving(endpoint)):
        return _rolled_back_before(state)
    if endpoint["EndpointStatus"] in ENDPOINT_FAILED or endpoint["EndpointStatus"] == "InService":
        raise StopFailed(
            f"The endpoint {endpoint['EndpointName']} is {endpoint['EndpointStatus']} on "
            f"{endpoint.get('EndpointConfigName')}, not on {state.promoted}, which {run.name}'s promotion made "
            f"({endpoint.get('FailureReason') or 'changed since'}): the bake could not start, nothing rolled back"
        )
    return Next(state)


def _begin(run: Run, experiment: Experiment, state: State, endpoint: Endpoint, bake_seconds: int) -> Next:
    """The endpoint serves this event's promotion: the bake's window starts when it began to (AWS's time)."""
    window = alarm_history.window_of(endpoint, experiment.get("CompletionTime"), bake_seconds)
    baking = replace(state, phase=Phase.BAKING, window=window)
    logger.info("%s serves the promotion since %.0f: baking until %.0f", run.name, window.start, window.end)
    if window.end > run.timing.deadline - RESERVE_SECONDS:
        why = (
            f"the bake cannot end {RESERVE_SECONDS:.0f} s before the deadline "
            f"(CompletionTimeoutSeconds {run.declaration.completion_timeout_seconds}), which the rollback needs"
        )
        return fail(run, experiment, baking, BakeVerdict("fail", why))
    return Next(baking, at_once=True)


def baking(run: Run, experiment: Experiment, state: State) -> Next | Outcome:
    guard, window = run.declaration.guard, state.window
    assert guard is not None  # noqa: S101 (a bake has both)
    assert window is not None  # noqa: S101
    cloudwatch = run.services.cloudwatch
    if run.now() < window.judged_at:
        try:
            seen = alarm_history.look(cloudwatch, guard.alarms)
        except StopFailed as error:  # not throttling (bake.look rides that out): AccessDenied, say
            seen = BakeVerdict("fail", f"its alarms could not be read ({error})")
        return Next(state) if seen is None else fail(run, experiment, state, seen)
    try:
        verdict = alarm_history.verdict(cloudwatch, guard.alarms, window)
    except StopFailed as error:
        if run.now() < run.timing.deadline - RESERVE_SECONDS / 2:
            logger.warning("The bake's verdict could not be read (%s); looking again", error)
            return Next(state)
        verdict = BakeVerdict("fail", f"its alarms could not be read ({error})")
    if verdict.outcome == "pass":
        logger.info("The bake of %s's promotion passed: %s", run.name, verdict.why)
        return Outcome.of(experiment, state.decision)
    return fail(run, experiment, state, verdict)


def fail(run: Run, experiment: Experiment, state: State, verdict: BakeVerdict) -> Next:
    """A bake that did not pass: roll back where the guard says to, else fail saying what serves.

    Raises:
        StopFailed: without RollBackTo, or where SageMaker refused the rollback.
        NoStop: where the gate refused the rollback (FAILED, saying so).
    """
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a guard bakes)
    endpoint = experiment["EndpointMetadata"]["EndpointName"]
    named = "Inconclusive" if verdict.outcome == "inconclusive" else "Failed"
    did_not_pass = f"The bake of {run.name}'s promotion did not pass: {verdict.why}"
    if guard.roll_back_to is None:
        run.announcer.tell(f"{named}: {verdict.why}", "the endpoint still serves the promoted model")
        raise StopFailed(
            f"{did_not_pass}; the endpoint {endpoint} still serves the promoted model (no roll_back_to declared)"
        )
    try:
        sent = run.sagemaker.roll_back(endpoint, guard.roll_back_to, state.promoted, run.gate)
    except NoStop as refused:
        run.announcer.tell(f"{named}: {verdict.why}", "the rollback was not sent")
        raise NoStop(f"{did_not_pass}; {refused}", answers_failed=refused.answers_failed) from refused
    except StopFailed as error:
        run.announcer.tell(f"{named}: {verdict.why}", "the rollback could not be started")
        raise StopFailed(
            f"Rollback after {verdict.why} failed: {error} (endpoint {endpoint}, configuration "
            f"{guard.roll_back_to}, experiment {run.name})"
        ) from error
    logger.warning("%s; rollback %s", did_not_pass, sent.value)  # under way: an earlier delivery's (same answer)
    inconclusive = verdict.outcome == "inconclusive"
    return Next(replace(state, phase=Phase.ROLLING_BACK, why=verdict.why, inconclusive=inconclusive))


def _rolled_back_before(state: State) -> Next:
    """An earlier delivery of this event baked, saw the bake fail and rolled the endpoint back: answer as it did."""
    why = state.why or "an earlier delivery of this event rolled the promotion back after its bake did not pass"
    return Next(replace(state, phase=Phase.ROLLING_BACK, why=why), at_once=True)


def rolling_back(run: Run, experiment: Experiment, state: State) -> Next | Outcome:
    guard = run.declaration.guard
    assert guard is not None  # noqa: S101 (only a rollback is here)
    assert guard.roll_back_to is not None  # noqa: S101
    config = guard.roll_back_to
    endpoint = _endpoint(run, experiment)
    if endpoint is None:
        return Next(state)
    name = endpoint["EndpointName"]
    if serves(endpoint, config):
        if state.inconclusive and guard.on_inconclusive == "FallBack":
            decision = f"Inconclusive: {state.why}; rolled back to {config}"
            run.announcer.tell(decision, f"the endpoint serves {config} again")
            return replace(Outcome.of(experiment, decision), endpoint_status=endpoint["EndpointStatus"])
        run.announcer.tell(f"RolledBack: {state.why}", f"the endpoint serves {config} again")
        raise StopFailed(
            f"RolledBack: {state.why}: the endpoint {name} of {run.name} was rolled back to {config} and serves it"
        )
    status = endpoint["EndpointStatus"]
    if status in ENDPOINT_FAILED or (status == "InService" and endpoint.get("FailureReason")):
        why = endpoint.get("FailureReason") or f"it serves {endpoint.get('EndpointConfigName')}"
        run.announcer.tell(f"Failed: {state.why}", "the rollback failed")
        raise StopFailed(
            f"Rollback after {state.why} failed: {status}: {why} (endpoint {name}, configuration {config}, "
            f"experiment {run.name})"
        )
    return Next(state)


def _endpoint(run: Run, experiment: Experiment) -> Endpoint | None:
    """The experiment's endpoint now; None where the read is throttled (still waiting)."""
    name = experiment["EndpointMetadata"]["EndpointName"]
    try:
        return run.sagemaker.endpoint(name, run.now())
    except Unreadable as error:
        logger.warning("%s; still waiting", error)
        return None


def _serving(endpoint: Endpoint) -> str | None:
    return endpoint.get("EndpointConfigName") if endpoint.get("EndpointStatus") == "InService" else None
