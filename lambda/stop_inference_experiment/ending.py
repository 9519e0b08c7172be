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
from typing import TYPE_CHECKING

from outcomes import StopFailed

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment
    from mypy_boto3_sagemaker.type_defs import StopInferenceExperimentRequestTypeDef as StopRequest

logger = logging.getLogger(__name__)

STOPPED = frozenset({"Completed", "Cancelled"})
ENDPOINT_FAILED = frozenset({"Failed", "UpdateRollbackFailed"})


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
