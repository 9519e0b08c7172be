"""How the experiment ended, weighed against what this event declares: what SUCCESS means.

SUCCESS means the declared end happened, whoever stopped the experiment: the declared status (Completed
unless declared Cancelled) and, after a promotion, an endpoint that serves again. A stop this event did not
send in this run is taken for its own only where SageMaker's answer shows it: the status it asked for, the
Reason it sent as StatusReason (the service model documents StatusReason as "the client-specified Reason
from the StopInferenceExperiment API") and a CompletionTime after the event was sent. That is how a second
delivery of one event answers as the first did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from outcomes import InvalidProperties, Outcome, StopFailed
from sagemaker_api import ENDPOINT_FAILED

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest
    from permission import Timing
    from properties import StopDeclaration

logger = logging.getLogger(__name__)

STOPPED = frozenset({"Completed", "Cancelled"})


def promotes(request: StopRequest) -> bool:
    return "Promote" in request["ModelVariantActions"].values()


def declared_state(request: StopRequest) -> str:
    return request.get("DesiredState", "Completed")


def left_by(request: StopRequest, experiment: Experiment, sent: float) -> bool:
    """Whether the experiment's end is the one this stop request leaves, made after the event was sent.

    Missing evidence is no match: without a Reason to compare, or a CompletionTime, it is not recognised.
    """
    reason, completed = request.get("Reason"), experiment.get("CompletionTime")
    return (
        experiment["Status"] == declared_state(request)
        and reason is not None
        and experiment.get("StatusReason") == reason
        and completed is not None
        and completed.timestamp() >= sent
    )


def endpoint_settled(experiment: Experiment) -> bool:
    """Whether the experiment's endpoint is InService again, or has failed (its FailureReason says why).

    EndpointStatus is optional in the service model (*unverified* whether SageMaker always reports it here):
    an endpoint whose status is not reported is not taken to be serving, so the wait goes on to the deadline.
    """
    endpoint = experiment.get("EndpointMetadata", {})
    return (
        endpoint.get("EndpointStatus") == "InService"
        or endpoint.get("EndpointStatus") in ENDPOINT_FAILED
        or bool(endpoint.get("FailureReason"))
    )


def check_own_end(request: StopRequest, request_type: str, experiment: Experiment) -> None:
    """After this event's own stop: the declared status, and after a promotion an endpoint that did not fail.

    Raises:
        StopFailed: on an Update that did not end as declared (a Delete logs a warning and succeeds).
    """
    name, status, reason = experiment["Name"], experiment["Status"], experiment.get("StatusReason")
    problems = []
    declared = declared_state(request)
    if status != declared:
        problems.append(f"ended {status}, not {declared} as declared" + (f" ({reason})" if reason else ""))
    endpoint = experiment.get("EndpointMetadata", {})
    if promotes(request) and (endpoint.get("EndpointStatus") in ENDPOINT_FAILED or endpoint.get("FailureReason")):
        problems.append(
            f"its endpoint {endpoint.get('EndpointName')} is {endpoint.get('EndpointStatus', 'not reported')}: "
            f"{endpoint.get('FailureReason') or 'SageMaker gave no reason'}"
        )
    _answer(f"Inference experiment {name} " + "; ".join(problems) if problems else "", request_type)


def check_foreign_end(request: StopRequest, request_type: str, experiment: Experiment) -> None:
    """After an end this event's stop did not leave (someone else's stop, the schedule's end, a failure).

    A declared promotion cannot be taken as done: which variant statuses SageMaker reports after a Promote is
    *unverified*, and an end that is not this event's own may have kept production. So an Update that
    declares a Promote fails safe, saying how the experiment ended; one that does not needs the declared status.

    Raises:
        StopFailed: on an Update whose declared end did not (or cannot be shown to have) happened.
    """
    name, status, reason = experiment["Name"], experiment["Status"], experiment.get("StatusReason")
    how = f"{status}" + (f" ({reason})" if reason else "")
    if promotes(request):
        [shadow] = [variant for variant, action in request["ModelVariantActions"].items() if action == "Promote"]
        shown = {v["VariantName"]: v.get("Status") for v in experiment.get("ModelVariants", [])}
        seen = (
            f"its shadow variant {shadow} is {shown[shadow]}"
            if shown.get(shadow) in ("Deleting", "Deleted")
            else "SageMaker's answer does not show its shadow promoted"
        )
        _answer(
            f"Inference experiment {name} was stopped by someone else or ended on its own: it ended {how}, and "
            f"{seen}; the declared promotion did not happen",
            request_type,
        )
        return
    declared = declared_state(request)
    if status != declared:
        _answer(
            f"Inference experiment {name} was stopped by someone else or ended on its own: it ended {how}, "
            f"not {declared} as declared",
            request_type,
        )
        return
    logger.info("Inference experiment %s had already ended %s, as declared", name, how)


def _answer(problem: str, request_type: str) -> None:
    if not problem:
        return
    if request_type == "Delete":
        logger.warning("%s; answering the Delete anyway (teardown must not stick)", problem)
        return
    raise StopFailed(problem)


def own_stop(
    declaration: StopDeclaration,
    request_type: str,
    timing: Timing,
    experiment: Experiment,
    previous_sent: Callable[[str], bool],
) -> str | None:
    """The decision of this event's own stop, where the experiment shows it sent it (an earlier delivery); else None.

    Read from the experiment alone, never by judging a guard again: the declared stop's Reason, or the Reason of
    its guard's fallback, which carries the verdict. Stopping counts where SageMaker already reports the Reason
    (*unverified* that it does before the experiment has ended: where it does not, the end is waited for).
    A Reason the previous declaration sends too (`previous_sent`) cannot be told apart: not its own.

    Raises:
        StopFailed: an Update whose own stop ended only after its deadline, as its first delivery then answered.
    """
    reason = str(experiment.get("StatusReason") or "")
    sent = declaration.sent_with(reason)
    if sent is None or previous_sent(reason):
        return None
    request, decision = sent
    if experiment["Status"] == "Stopping":
        return decision
    if not left_by(request, experiment, timing.sent):
        return None
    completed = experiment["CompletionTime"].timestamp()
    if request_type == "Update" and not timing.at_once_only and completed > timing.deadline:
        raise StopFailed(
            f"Inference experiment {declaration.name} ended {completed - timing.deadline:.0f} s after this event's "
            f"deadline (CompletionTimeoutSeconds {declaration.completion_timeout_seconds})"
        )
    return decision


def previous_sends(
    event: Mapping[str, Any], parse: Callable[[object], StopDeclaration], name: str, reason: str
) -> bool:
    """Whether an Update's previous declaration would have sent a stop with this same Reason: SageMaker's answer
    cannot then tell this event's own stop from that one's (answered at once, say), so it is not taken for this
    event's own (fail safe: a Promote then answers FAILED, as for someone else's stop)."""
    if event.get("RequestType") != "Update":
        return False
    properties = event.get("OldResourceProperties")
    try:
        old = parse(properties)
    except InvalidProperties:
        # Properties an earlier version carried out may be refused now: their Reason alone decides.
        clash = isinstance(properties, Mapping) and properties.get("Reason") == reason
    else:
        clash = old.sent_with(reason) is not None
    if clash:
        logger.warning(
            "Inference experiment %s was stopped with the Reason %r, which this Update's previous declaration "
            "sends too: it is not taken for this event's own",
            name,
            reason,
        )
    return clash


def timed_out(
    declaration: StopDeclaration,
    request_type: str,
    experiment: Experiment,
    waited: float,
    *,
    stop_sent: bool,
    note: str,
) -> Outcome:
    """The answer at the deadline: SUCCESS for a Delete (loudly) and for a stop that was not to be waited for.

    Raises:
        StopFailed: an Update whose end was not reached by its deadline (`note` added to the reason).
    """
    name, status = declaration.name, experiment["Status"]
    summary = f"Inference experiment {name} is still {status} after {waited:.0f} s"
    if status in STOPPED:
        endpoint = experiment.get("EndpointMetadata", {})
        summary = (
            f"Inference experiment {name} is {status}, but its endpoint {endpoint.get('EndpointName')} "
            f"is still {endpoint.get('EndpointStatus', 'not reported')} after {waited:.0f} s"
        )
    if request_type == "Delete":
        # A stop is irreversible and teardown must not stick: succeed, loudly.
        logger.warning("%s; answering the Delete anyway (%s)", summary, "stop accepted" if stop_sent else "NOT stopped")
        return Outcome.of(experiment)
    if stop_sent and declaration.completion_timeout_seconds == 0:
        return Outcome.of(experiment)  # CompletionTimeoutSeconds 0: the stop was accepted, waiting was not asked for
    stopped = "" if stop_sent else " and was not stopped"
    raise StopFailed(f"{summary}{stopped} (CompletionTimeoutSeconds {declaration.completion_timeout_seconds}){note}")
