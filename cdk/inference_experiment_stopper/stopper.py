"""The InferenceExperimentStopper construct (its prop types are in ``props``, and importable from here too)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from inference_experiment_stopper import _validation as check
from inference_experiment_stopper._asset import load_handler_module
from inference_experiment_stopper._function import StopperFunction, service_timeout
from inference_experiment_stopper.guard import PromotionGuard
from inference_experiment_stopper.props import DesiredState, ModelVariantAction, ModelVariantConfig

if TYPE_CHECKING:
    import rules
else:
    rules = load_handler_module("rules")  # the resource type the function finds its twins by, written once

__all__ = ["DesiredState", "InferenceExperimentStopper", "ModelVariantAction", "ModelVariantConfig"]


class InferenceExperimentStopper(Construct):
    """Declares how a SageMaker inference experiment ends, and ends it that way when the stack is updated or deleted.

    A Lambda-backed custom resource (one function per stack, however many stoppers) calls
    StopInferenceExperiment with the declared variant actions and waits until the experiment has stopped.
    Create only checks that the experiment and the named variants exist.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_variant_actions: Mapping[str, ModelVariantAction | str],
        experiment_name: str | None = None,
        experiment: sagemaker.CfnInferenceExperiment | None = None,
        desired_model_variants: Sequence[ModelVariantConfig] | None = None,
        desired_state: DesiredState | str | None = None,
        reason: str | None = None,
        stop_on_update: bool = True,
        stop_on_delete: bool = True,
        completion_timeout: Duration | None = None,
        function: StopperFunction | None = None,
        promotion_guard: PromotionGuard | None = None,
    ) -> None:
        """Declare the stop.

        Args:
            scope: the parent construct.
            construct_id: the construct id.
            model_variant_actions: variant name to Promote, Remove or Retain (1 or 2 entries, at most one Promote).
            experiment_name: the experiment's name. Give this or ``experiment``, not both.
            experiment: the experiment defined in this app; the stopper then depends on it, so on stack deletion
                the stop runs before CloudFormation deletes the experiment. Give this or ``experiment_name``.
            desired_model_variants: infrastructure for the variants that stay. Default: SageMaker keeps each
                remaining variant's current infrastructure.
            desired_state: Completed or Cancelled. Default: SageMaker's default (Completed).
            reason: why the experiment stops, recorded by SageMaker. Default: no reason.
            stop_on_update: stop when a stack update changes this stopper's properties. Default: True.
            stop_on_delete: stop when this stopper is deleted (stack deletion included). Default: True.
            completion_timeout: how long an event waits for the experiment to reach Completed or Cancelled
                and, after a Promote, for its endpoint to serve again (including waiting for a starting
                experiment to run). ``Duration.seconds(0)`` answers as soon as SageMaker accepts the stop. Whole
                seconds, at most 55 minutes; a wait longer than one run of the function goes on in the next.
                Default: 30 minutes.
            function: the StopperFunction that carries the stop out, in this stopper's stack. Default: the
                stack's default function, shared by every stopper given none.
            promotion_guard: promote only if the guard's alarms and the shadow's measured metrics pass;
                otherwise do what the guard says for a failure or an inconclusive verdict; then bake and roll
                back where it says so. Needs a Promote. Default: no guard (the function then gets no CloudWatch
                permission at all).

        Raises:
            ValueError: naming the prop and the bad value, for any prop SageMaker or this construct would reject.
        """
        super().__init__(scope, construct_id)
        name = _experiment_name(experiment_name, experiment)
        actions = check.model_variant_actions(model_variant_actions)
        variants = check.desired_model_variants(desired_model_variants, actions)
        if experiment is not None:
            check.check_against_experiment(experiment, actions, variants)
        state = check.plain(desired_state)
        check.check_desired_state(state)
        check.check_reason(reason)
        seconds = check.completion_timeout_seconds(completion_timeout)
        timeout = Duration.seconds(seconds)
        stop_on = [event for event, wanted in (("Update", stop_on_update), ("Delete", stop_on_delete)) if wanted]
        if not stop_on:
            raise ValueError("stop_on_update and stop_on_delete are both False: the stopper would never stop anything")
        _claim_the_stop(self, name, stop_on)
        guard_seconds = (
            None
            if promotion_guard is None
            else check.promotion_guard_seconds(
                promotion_guard, actions, seconds, experiment_given=experiment is not None
            )
        )
        if promotion_guard is not None and promotion_guard.bake is not None and experiment is None:
            # The bake starts from what DescribeEndpoint says of the experiment's endpoint: IAM must name it.
            raise ValueError(
                "promotion_guard.bake needs the stopper's experiment= (not experiment_name=): the bake judges the "
                "experiment's endpoint, which the function's role may describe by its name only; got "
                f"experiment_name={experiment_name!r}"
            )

        properties: dict[str, Any] = {"Name": name, "ModelVariantActions": actions}
        if variants:
            properties["DesiredModelVariants"] = [variant.to_api() for variant in variants]
        if state is not None:
            properties["DesiredState"] = state
        if reason is not None:
            properties["Reason"] = reason
        if promotion_guard is not None:
            properties["PromotionGuard"] = promotion_guard.to_api(guard_seconds or {})
        properties["StopOn"] = stop_on
        properties["CompletionTimeoutSeconds"] = seconds

        self._function = _function_for(self, function)
        needs = self._function.serve(
            name,
            timeout,
            guard=promotion_guard,
            endpoint_name=experiment.endpoint_name if experiment is not None else None,
        )
        self._resource = CustomResource(
            self,
            "Resource",
            service_token=self._function.function.function_arn,
            resource_type=rules.RESOURCE_TYPE,
            properties=properties,
            service_timeout=service_timeout(timeout),
        )
        self._resource.node.add_dependency(*needs)
        if experiment is not None:
            self._resource.node.add_dependency(experiment)

    @property
    def function(self) -> lambda_.IFunction:
        """The Lambda function that carries out this stopper's events (its ``role`` is the function's role)."""
        return self._function.function

    @property
    def log_group(self) -> logs.ILogGroup:
        """The function's log group, where every stop is logged."""
        return self._function.log_group

    @property
    def experiment_arn(self) -> str:
        """The experiment's ARN (a token: GetAtt InferenceExperimentArn)."""
        return self._resource.get_att_string("InferenceExperimentArn")

    @property
    def decision(self) -> str:
        """What the last stop decided (a token: GetAtt Decision): Promoted, FellBack: <why>, Inconclusive: <why>,
        NoGuard or "" (at most 256 characters; the full figures are in the decision's log line and event)."""
        return self._resource.get_att_string("Decision")

    @property
    def endpoint_status(self) -> str:
        """The experiment's endpoint status after the stopper's last event (a token: GetAtt EndpointStatus)."""
        return self._resource.get_att_string("EndpointStatus")

    @property
    def status(self) -> str:
        """The experiment's status after the stopper's last event (a token: GetAtt Status)."""
        return self._resource.get_att_string("Status")


# Per stack: (experiment name, event) -> the path of the stopper that stops it then.
_CLAIMED: weakref.WeakKeyDictionary[Stack, dict[tuple[str, str], str]] = weakref.WeakKeyDictionary()


def _claim_the_stop(stopper: Construct, name: str, events: list[str]) -> None:
    """One stop per experiment and event in a stack: two declarations would contradict, and both would be sent.

    Raises:
        ValueError: naming both stoppers' construct paths.
    """
    claimed = _CLAIMED.setdefault(Stack.of(stopper), {})
    for event in events:
        other = claimed.setdefault((name, event), stopper.node.path)
        if other != stopper.node.path:
            raise ValueError(
                f"{other} and {stopper.node.path} both stop inference experiment {name} on {event}: two declarations "
                "of one stop contradict each other and both would be sent; give one of them "
                f"stop_on_{event.lower()}=False"
            )


def _function_for(stopper: Construct, function: StopperFunction | None) -> StopperFunction:
    if function is None:
        return StopperFunction.default_for(stopper)
    if not isinstance(function, StopperFunction):
        raise ValueError(f"function must be a StopperFunction; got {function!r}")
    if Stack.of(function) is not Stack.of(stopper):
        raise ValueError(
            f"function {function.node.path} must be in the stopper's own stack {Stack.of(stopper).node.path}, "
            "so that its role and the stop are deployed and deleted together"
        )
    return function


def _experiment_name(name: str | None, experiment: sagemaker.CfnInferenceExperiment | None) -> str:
    if experiment is not None and name is None:
        if not isinstance(experiment, sagemaker.CfnInferenceExperiment):
            raise ValueError(f"experiment must be an aws_sagemaker.CfnInferenceExperiment; got {experiment!r}")
        check.check_experiment_name(experiment.name, "experiment.name")
        return experiment.name
    if name is not None and experiment is None:
        check.check_experiment_name(name, "experiment_name")
        return name
    given = "a CfnInferenceExperiment" if experiment is not None else None
    raise ValueError(
        f"Give exactly one of experiment_name and experiment; got experiment_name={name!r} and experiment={given}"
    )
