"""Every way an event can end, each with its own name: a reader sees the outcomes in the types.

- `Outcome`: a SUCCESS answer (the physical id and the attributes GetAtt reads), or no answer from this run.
- `StopFailed`: a FAILED answer; `InvalidProperties` is one whose properties cannot be carried out.
- `NoStop`: this event may not stop the experiment (too late, the stack moved on, its state unknown, a twin
  still names it); it answers without stopping, SUCCESS or FAILED as `answers_failed` says.
- `HandedOn`: the wait goes on in the next run of the function, which answers in this run's stead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DescribeInferenceExperimentResponseTypeDef as Experiment

# Decision is a GetAtt, and the whole answer must stay under CloudFormation's 4 KB: the full figures are in the
# decision's log line and event.
MAX_DECISION = 256


class StopFailed(Exception):
    """The event must be answered FAILED; the message is the reason CloudFormation shows."""


class InvalidProperties(StopFailed):
    """The declared properties cannot be carried out; the message names the property and the value."""


class NoStop(Exception):
    """This event may not act (stop, or roll back); nothing is sent, and the message says why, in a sentence.

    Args:
        reason: why nothing was stopped.
        answers_failed: answer FAILED (an Update that cannot carry out its declaration) rather than SUCCESS
            (a Delete, or any event of a stack that is rolling back: teardown and rollbacks must not stick).
        routine: an ordinary part of CloudFormation's life (a rollback), logged at INFO rather than WARNING.
    """

    def __init__(self, reason: str, *, answers_failed: bool, routine: bool = False) -> None:
        super().__init__(reason)
        self.answers_failed = answers_failed
        self.routine = routine


class HandedOn(Exception):
    """The wait was handed on to the next run of the function, which answers in this run's stead."""


@dataclass(frozen=True)
class Outcome:
    """A successful answer (the physical id and the Data CloudFormation's GetAtt reads), or none from this run."""

    physical_id: str
    arn: str = ""
    status: str = "Unknown"
    endpoint_status: str = ""
    decision: str = ""  # what the stop this event sent decided: Promoted, FellBack: <why>, NoGuard ("" for none)
    silent: bool = False  # a later link of the wait answers, or the copy of this continuation already did

    @classmethod
    def of(cls, experiment: Experiment, decision: str = "") -> Outcome:
        """The answer that reports the experiment as SageMaker describes it."""
        endpoint_status = experiment.get("EndpointMetadata", {}).get("EndpointStatus", "")
        return cls(experiment["Name"], experiment["Arn"], experiment["Status"], endpoint_status, decision)

    @property
    def data(self) -> dict[str, str]:
        return {
            "InferenceExperimentArn": self.arn,
            "Status": self.status,
            "EndpointStatus": self.endpoint_status,
            "Decision": self.decision
            if len(self.decision) <= MAX_DECISION
            else self.decision[: MAX_DECISION - 3] + "...",
        }
