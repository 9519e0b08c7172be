"""ShadowTest: a whole SageMaker shadow test in one declaration (experiment, role, end, dashboard, metrics).

Built on InferenceExperimentStopper, which stays the low-level construct: the test writes the experiment and
derives the stop from the same variants, so the two cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jsii
from aws_cdk import Acknowledgment, Annotations, Aspects, Aws, Duration, IAspect, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IConstruct

from inference_experiment_stopper import _arns
from inference_experiment_stopper import _validation as check
from inference_experiment_stopper._asset import load_handler_module
from inference_experiment_stopper._function import StopperFunction, as_cdk_nag_shows
from inference_experiment_stopper.guard import PromotionGuard
from inference_experiment_stopper.props import DesiredState, ModelVariantAction, ModelVariantConfig
from inference_experiment_stopper.stopper import InferenceExperimentStopper

if TYPE_CHECKING:
    import rules
else:
    rules = load_handler_module("rules")

__all__ = ["ShadowTest", "ShadowTestDataCapture", "ShadowTestEnd", "ShadowTestVariant"]

# EndpointName (CreateEndpoint's pattern; the CloudFormation schema of AWS::SageMaker::InferenceExperiment repeats it).
# An experiment runs at most 30 days (SageMaker developer guide, shadow-tests-create).
LONGEST_TEST = dt.timedelta(days=30)
DEFAULT_PERIOD = Duration.minutes(5)
WARNING_ID = "inference-experiment-stopper:shadowTestEndTime"
# Why the construct acknowledges the compliance findings on the experiment's role; the README repeats these.
ACKNOWLEDGED = {
    "endpoint": "The endpoint's name is a token that names no CfnEndpoint of this app, and SageMaker writes endpoint "
    "ARNs in lower case, which a token cannot be turned into at synth: the role may describe and update the "
    "account's and region's endpoints; give the CfnEndpoint or a name known at synth to allow that endpoint only",
    "endpoint-config": "SageMaker names the endpoint configurations it creates for the shadow test itself, so the "
    "role may create and describe endpoint configurations of any name; it may update only the test's own endpoint",
    "ecr-token": "ecr:GetAuthorizationToken supports no resource-level permissions, so IAM accepts only '*' for it; "
    "image pulls themselves are allowed only from the models' own repositories",
    "data-capture": "Captured requests and responses are written under the data capture prefix, as objects whose "
    "names SageMaker chooses; the role may write there and nowhere else in the bucket",
}


@dataclass(frozen=True, kw_only=True)
class ShadowTestVariant:
    """One side of a shadow test: a model on real-time instances.

    Args:
        model: the SageMaker model, as the ``aws_sagemaker.CfnModel`` of this app or by model name.
        instance_type: a real-time inference instance type, e.g. "ml.m5.xlarge".
        variant_name: the variant's name in the experiment. Default: "production" for the production
            variant, "shadow" for the shadow.
        instance_count: how many instances, at least 1. Default: 1.
    """

    model: sagemaker.CfnModel | str
    instance_type: str
    variant_name: str | None = None
    instance_count: int = 1


@dataclass(frozen=True, kw_only=True)
class ShadowTestDataCapture:
    """Where SageMaker writes the requests and responses of both variants during the test.

    Args:
        bucket: the S3 bucket.
        prefix: the folder in the bucket, e.g. "shadow-tests/my-test"; the role may write only under it.
        kms_key: the KMS key SageMaker encrypts the captured data with. Default: the bucket's own encryption
            (the bucket's key, if it has one, is granted to the role).
    """

    bucket: s3.IBucket
    prefix: str
    kms_key: kms.IKey | None = None


@dataclass(frozen=True)
class ShadowTestEnd:
    """How a shadow test ends when the stack is updated or deleted.

    Make one with ``promote``, ``remove_shadow`` or ``retain``; the fields are what the factory was given.

    Args:
        kind: "promote", "remove_shadow" or "retain".
        guard: a promotion's PromotionGuard, or None.
        desired_state: Completed or Cancelled, or None for SageMaker's default.
        reason: the reason recorded by SageMaker, or None.
        instance_type: a promotion's instance type, or None for the shadow's.
        instance_count: a promotion's instance count, or None for the shadow's.
    """

    kind: str
    guard: PromotionGuard | None = None
    desired_state: DesiredState | str | None = None
    reason: str | None = None
    instance_type: str | None = None
    instance_count: int | None = None

    @classmethod
    def promote(
        cls,
        *,
        guard: PromotionGuard | None = None,
        desired_state: DesiredState | str | None = None,
        reason: str | None = None,
        instance_type: str | None = None,
        instance_count: int | None = None,
    ) -> ShadowTestEnd:
        """The shadow replaces production (shadow Promote, production Remove).

        Args:
            guard: promote only if the shadow's metrics pass it. Default: no guard.
            desired_state: Completed or Cancelled. Default: SageMaker's default (Completed).
            reason: why the test ends, recorded by SageMaker. Default: a reason naming the stack and the request.
            instance_type: the promoted variant's instance type. Default: the shadow's.
            instance_count: the promoted variant's instance count. Default: the shadow's.
        """
        return cls("promote", guard, desired_state, reason, instance_type, instance_count)

    @classmethod
    def remove_shadow(
        cls, *, desired_state: DesiredState | str | None = None, reason: str | None = None
    ) -> ShadowTestEnd:
        """Production stays as it is and the shadow is removed (shadow Remove, production Retain).

        Args:
            desired_state: Completed or Cancelled. Default: SageMaker's default (Completed).
            reason: why the test ends. Default: a reason naming the stack and the request.
        """
        return cls("remove_shadow", desired_state=desired_state, reason=reason)

    @classmethod
    def retain(cls, *, desired_state: DesiredState | str | None = None, reason: str | None = None) -> ShadowTestEnd:
        """Both variants stay as they are (every variant Retain).

        Args:
            desired_state: Completed or Cancelled. Default: SageMaker's default (Completed).
            reason: why the test ends. Default: a reason naming the stack and the request.
        """
        return cls("retain", desired_state=desired_state, reason=reason)


class ShadowTest(Construct):
    """A SageMaker shadow test of one endpoint: the inference experiment, its role, how it ends, and a dashboard.

    The experiment (construct id ``Experiment``) runs the shadow variant beside production on the endpoint. How
    the test ends is declared with ``on_end`` or, once and later, ``end_with``: an InferenceExperimentStopper
    (``Stopper``) derived from the same variants then stops it that way on a stack update or deletion. With no
    end, the test ends on its schedule and nothing is stopped.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        endpoint: sagemaker.CfnEndpoint | str,
        production: ShadowTestVariant,
        shadow: ShadowTestVariant,
        sampling_percentage: int = 100,
        end_time: dt.datetime | None = None,
        data_capture: ShadowTestDataCapture | None = None,
        role: iam.IRole | None = None,
        on_end: ShadowTestEnd | None = None,
        stop_on_update: bool = True,
        stop_on_delete: bool = True,
        completion_timeout: Duration | None = None,
        function: StopperFunction | None = None,
        dashboard: bool = True,
    ) -> None:
        """Declare the shadow test.

        Args:
            scope: the parent construct.
            construct_id: the construct id.
            name: the experiment's name. Required, so that moving the construct in the app never renames (and so
                replaces, and ends) the experiment.
            endpoint: the endpoint that serves production today: the ``aws_sagemaker.CfnEndpoint`` of this app, or
                an endpoint name.
            production: the variant the endpoint serves; its variant name defaults to "production".
            shadow: the variant under test; its variant name defaults to "shadow".
            sampling_percentage: the share of production's requests copied to the shadow, 1 to 100. Default: 100.
            end_time: when the test ends on its own, a timezone-aware ``datetime`` (a fixed time, so that the
                template does not change at every synth). One that has passed or lies more than 30 days ahead
                is a synth warning. Default: SageMaker's own, 7 days after the test starts.
            data_capture: where SageMaker writes both variants' requests and responses; the default role may
                write there. Default: no data capture.
            role: the role SageMaker runs the test with, used as it is (nothing is added to it). Default: a role
                made for this test, allowed only what the README lists.
            on_end: how the test ends on a stack update or deletion. Default: no end (see ``end_with``).
            stop_on_update: passed to the stopper. Default: True.
            stop_on_delete: passed to the stopper. Default: True.
            completion_timeout: passed to the stopper. Default: 30 minutes.
            function: passed to the stopper. Default: the stack's default StopperFunction.
            dashboard: make a CloudWatch dashboard comparing the variants. Default: True.

        Raises:
            ValueError: naming the prop and the bad value, for any prop SageMaker or this construct would reject.
        """
        super().__init__(scope, construct_id)
        check.check_experiment_name(name, "name")
        self._production = _variant(production, "production")
        self._shadow = _variant(shadow, "shadow")
        if (
            not check.unresolved(self._shadow.name)
            and not check.unresolved(self._production.name)
            and self._shadow.name == self._production.name
        ):
            raise ValueError(
                f"shadow.variant_name {self._shadow.name!r} is production's too: the two variants of a shadow test "
                "need different names"
            )
        self._endpoint_name, endpoint_arn = _endpoint(self, endpoint)
        _check_sampling(sampling_percentage)
        schedule = None if end_time is None else self._schedule(end_time)
        check.completion_timeout_seconds(completion_timeout)
        if not (stop_on_update or stop_on_delete):
            raise ValueError("stop_on_update and stop_on_delete are both False: the stopper would never stop anything")
        if function is not None and not isinstance(function, StopperFunction):
            raise ValueError(f"function must be a StopperFunction; got {function!r}")
        if data_capture is not None and not isinstance(data_capture, ShadowTestDataCapture):
            raise ValueError(f"data_capture must be a ShadowTestDataCapture; got {data_capture!r}")
        if data_capture is not None:
            _check_capture(data_capture)
        if role is not None and not hasattr(role, "role_arn"):
            raise ValueError(f"role must be an aws_iam.IRole (e.g. iam.Role.from_role_arn(...)); got {role!r}")
        capture_prefix = None if data_capture is None else _capture_prefix(data_capture.prefix)

        policy = None
        if role is None:
            made = iam.Role(
                self,
                "Role",
                assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                description=f"Runs the SageMaker shadow test {name}",
            )
            policy = self._allow(made, endpoint_arn, data_capture, capture_prefix)
            role = made
        self.role: iam.IRole = role
        """The role SageMaker runs the test with (the one given, or the one made for it)."""

        self.experiment = sagemaker.CfnInferenceExperiment(
            self,
            "Experiment",
            name=name,
            type="ShadowMode",
            role_arn=role.role_arn,
            endpoint_name=self._endpoint_name,
            model_variants=[self._production.to_experiment(), self._shadow.to_experiment()],
            shadow_mode_config=sagemaker.CfnInferenceExperiment.ShadowModeConfigProperty(
                source_model_variant_name=self._production.name,
                shadow_model_variants=[
                    sagemaker.CfnInferenceExperiment.ShadowModelVariantConfigProperty(
                        shadow_model_variant_name=self._shadow.name, sampling_percentage=sampling_percentage
                    )
                ],
            ),
            schedule=schedule,
            data_storage_config=None
            if data_capture is None
            else sagemaker.CfnInferenceExperiment.DataStorageConfigProperty(
                destination=f"s3://{data_capture.bucket.bucket_name}/{capture_prefix}",
                kms_key=None if data_capture.kms_key is None else data_capture.kms_key.key_arn,
            ),
        )
        """The ``aws_sagemaker.CfnInferenceExperiment``."""
        if policy is not None:
            # SageMaker may check the role when the experiment is created: its policy first.
            self.experiment.node.add_dependency(policy)

        self._stop_on_update, self._stop_on_delete = stop_on_update, stop_on_delete
        self._completion_timeout, self._function = completion_timeout, function
        self._end: ShadowTestEnd | None = None
        self._stopper: InferenceExperimentStopper | None = None
        self._dashboard = self._make_dashboard() if dashboard else None
        if on_end is not None:
            self._end_with(on_end, "on_end")

    @property
    def stopper(self) -> InferenceExperimentStopper | None:
        """The stopper that ends the test as declared; None while no end is declared (then nothing is stopped)."""
        return self._stopper

    @property
    def dashboard(self) -> cloudwatch.Dashboard | None:
        """The dashboard comparing the variants; None with ``dashboard=False``."""
        return self._dashboard

    @property
    def end(self) -> ShadowTestEnd | None:
        """How the test ends; None while no end is declared."""
        return self._end

    def end_with(self, end: ShadowTestEnd) -> InferenceExperimentStopper:
        """Declare how the test ends, when it could not be given as ``on_end`` (e.g. a guard on the test's metrics).

        Returns:
            The stopper (construct id ``Stopper``) that ends the test that way.

        Raises:
            ValueError: when the test already has an end, or for an end SageMaker or the stopper would reject.
        """
        return self._end_with(end, "end_with")

    def metric_model_latency(
        self, variant: str, *, statistic: str = "Average", period: Duration | None = None
    ) -> cloudwatch.Metric:
        """The variant's ModelLatency, in microseconds (AWS/SageMaker; dimensions EndpointName, VariantName).

        Args:
            variant: the variant's name.
            statistic: e.g. Average, Maximum or a percentile such as p99. Default: Average.
            period: Default: 5 minutes.
        """
        return self._metric("ModelLatency", variant, statistic, period)

    def metric_invocations(
        self, variant: str, *, statistic: str = "Sum", period: Duration | None = None
    ) -> cloudwatch.Metric:
        """The variant's Invocations (for the shadow: the requests copied to it).

        Args:
            variant: the variant's name.
            statistic: Default: Sum.
            period: Default: 5 minutes.
        """
        return self._metric("Invocations", variant, statistic, period)

    def metric_model_errors(
        self, variant: str, *, statistic: str = "Sum", period: Duration | None = None
    ) -> cloudwatch.Metric:
        """The variant's InvocationModelErrors (every answer of the model that is not a 2xx, its 4xx and 5xx included).

        Args:
            variant: the variant's name.
            statistic: Default: Sum.
            period: Default: 5 minutes.
        """
        return self._metric("InvocationModelErrors", variant, statistic, period)

    def metric_error_rate(self, variant: str, *, period: Duration | None = None) -> cloudwatch.MathExpression:
        """The variant's InvocationModelErrors / Invocations: the error rate a PromotionGuard's max_error_rate bounds.

        No datapoint where the variant had no invocations. The 4xx/5xx metrics are not added: the model errors
        already count them.

        Args:
            variant: the variant's name.
            period: Default: 5 minutes.
        """
        side = "shadow" if variant == self._shadow.name else "production"
        return cloudwatch.MathExpression(
            expression=f"{side}Errors / {side}Invocations",
            using_metrics={
                f"{side}Errors": self.metric_model_errors(variant, period=period),
                f"{side}Invocations": self.metric_invocations(variant, period=period),
            },
            label=f"{variant} error rate",
            period=period or DEFAULT_PERIOD,
        )

    def _metric(self, name: str, variant: str, statistic: str, period: Duration | None) -> cloudwatch.Metric:
        names = [self._production.name, self._shadow.name]
        if variant not in names:
            raise ValueError(
                f"variant {variant!r} is not one of shadow test {self.node.path}'s variants: "
                f"{', '.join(map(str, names))}"
            )
        return cloudwatch.Metric(
            namespace=rules.NAMESPACE,
            metric_name=name,
            dimensions_map={"EndpointName": self._endpoint_name, "VariantName": variant},
            statistic=statistic,
            period=period or DEFAULT_PERIOD,
        )

    def _schedule(self, end_time: object) -> sagemaker.CfnInferenceExperiment.InferenceExperimentScheduleProperty:
        if not isinstance(end_time, dt.datetime) or end_time.utcoffset() is None:
            raise ValueError(
                "end_time must be a timezone-aware datetime, e.g. datetime(2026, 12, 1, tzinfo=timezone.utc); "
                f"got {end_time!r}"
            )
        now = dt.datetime.now(dt.UTC)
        ahead = end_time - now
        if ahead <= dt.timedelta(0) or ahead > LONGEST_TEST:
            when = "has passed" if ahead <= dt.timedelta(0) else "is more than 30 days ahead"
            Annotations.of(self).add_warning_v2(
                WARNING_ID,
                f"end_time {end_time.isoformat()} {when}: SageMaker runs a shadow test for at most 30 days and "
                "cannot create one that ends in the past. Only a warning, so that later deploys and `cdk destroy` "
                "of a test that was created still synthesize",
            )
        stamp = end_time.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")
        return sagemaker.CfnInferenceExperiment.InferenceExperimentScheduleProperty(end_time=f"{stamp}Z")

    def _allow(
        self,
        role: iam.Role,
        endpoint_arn: str | None,
        data_capture: ShadowTestDataCapture | None,
        capture_prefix: str | None,
    ) -> iam.ManagedPolicy:
        """What SageMaker needs to run the test, in a customer-managed policy (no inline policy), and why."""
        stack = Stack.of(self)
        variants = [self._production, self._shadow]
        any_config = stack.format_arn(service="sagemaker", resource="endpoint-config", resource_name="*")
        any_endpoint = stack.format_arn(service="sagemaker", resource="endpoint", resource_name="*")
        statements = [
            # "Manage SageMaker Inference endpoints for model deployment" (CreateInferenceExperiment's RoleArn): an
            # endpoint changes only to a new endpoint configuration (CreateEndpoint's API reference).
            iam.PolicyStatement(
                actions=["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
                resources=[endpoint_arn or any_endpoint],
            ),
            # UpdateEndpoint is authorized on the endpoint configuration it moves the endpoint to as well.
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:UpdateEndpoint",
                ],
                resources=[any_config],
            ),
            iam.PolicyStatement(
                actions=["sagemaker:DescribeModel"],
                resources=list(dict.fromkeys(variant.model_arn(stack) for variant in variants)),
            ),
        ]
        # "Access model artifacts and container images": those of the models this app defines.
        artifacts = sorted({arn for variant in variants for arn in variant.artifact_arns()})
        repositories = sorted({arn for variant in variants for arn in variant.repository_arns()})
        if artifacts:
            statements.append(iam.PolicyStatement(actions=["s3:GetObject"], resources=artifacts))
        if repositories:
            statements.append(
                iam.PolicyStatement(
                    actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    resources=repositories,
                )
            )
            statements.append(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        if data_capture is not None:
            statements.append(
                iam.PolicyStatement(
                    actions=["s3:PutObject"], resources=[data_capture.bucket.arn_for_objects(f"{capture_prefix}/*")]
                )
            )
            key = data_capture.kms_key or data_capture.bucket.encryption_key
            if key is not None:
                statements.append(
                    iam.PolicyStatement(actions=["kms:Encrypt", "kms:GenerateDataKey"], resources=[key.key_arn])
                )
        policy = iam.ManagedPolicy(
            self,
            "RolePolicy",
            description=f"What SageMaker may do to run the shadow test on {self.node.path}",
            statements=statements,
            roles=[role],
        )
        # As cdk-nag names the resource: pseudo parameters where the stack has no env, its account and region where
        # it has one.
        reasons = [(f"Resource::{as_cdk_nag_shows(stack.resolve(any_config))}", "endpoint-config")]
        if endpoint_arn is None:
            reasons.append((f"Resource::{as_cdk_nag_shows(stack.resolve(any_endpoint))}", "endpoint"))
        if repositories:
            reasons.append(("Resource::*", "ecr-token"))
        if data_capture is not None:
            objects = data_capture.bucket.arn_for_objects(f"{capture_prefix}/*")
            reasons.append((f"Resource::{as_cdk_nag_shows(stack.resolve(objects))}", "data-capture"))
        for finding, why in reasons:
            Validations.of(policy).acknowledge(
                Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=ACKNOWLEDGED[why])
            )
        return policy

    def _end_with(self, end: object, prop: str) -> InferenceExperimentStopper:
        if not isinstance(end, ShadowTestEnd):
            raise ValueError(
                f"{prop} takes a ShadowTestEnd, e.g. ShadowTestEnd.promote() or ShadowTestEnd.retain(); got {end!r}"
            )
        if self._end is not None:
            raise ValueError(
                f"shadow test {self.node.path} already ends with ShadowTestEnd.{self._end.kind}(): a test ends "
                "one way, so give on_end or call end_with, once"
            )
        actions, desired = self._declaration(end)
        try:
            self._stopper = InferenceExperimentStopper(
                self,
                "Stopper",
                experiment=self.experiment,
                model_variant_actions=actions,
                desired_model_variants=desired,
                desired_state=end.desired_state,
                reason=end.reason,
                promotion_guard=end.guard,
                stop_on_update=self._stop_on_update,
                stop_on_delete=self._stop_on_delete,
                completion_timeout=self._completion_timeout,
                function=self._function,
            )
        except ValueError:
            self.node.try_remove_child("Stopper")  # a refused end leaves nothing behind: a corrected one may follow
            raise
        self._end = end
        return self._stopper

    def _declaration(self, end: ShadowTestEnd) -> tuple[dict[str, ModelVariantAction], list[ModelVariantConfig]]:
        """The stop's variant actions and, for a promotion, the shadow's infrastructure after it."""
        shadow, production = self._shadow.name, self._production.name
        if end.kind == "promote":
            instance_type = self._shadow.instance_type if end.instance_type is None else end.instance_type
            count = self._shadow.instance_count if end.instance_count is None else end.instance_count
            _check_instance_type(instance_type, "on_end.instance_type")
            problem = None if check.unresolved(count) else rules.serving_instance_count_problem(count)
            if problem:
                raise ValueError(
                    f"on_end.instance_count {problem} (the promoted variant replaces production); got {count!r}"
                )
            promoted = ModelVariantConfig(self._shadow.model_name, shadow, instance_type, count)
            return {shadow: ModelVariantAction.PROMOTE, production: ModelVariantAction.REMOVE}, [promoted]
        if end.kind == "remove_shadow":
            return {shadow: ModelVariantAction.REMOVE, production: ModelVariantAction.RETAIN}, []
        if end.kind == "retain":
            return {shadow: ModelVariantAction.RETAIN, production: ModelVariantAction.RETAIN}, []
        raise ValueError(f"a ShadowTestEnd comes from promote(), remove_shadow() or retain(); got kind {end.kind!r}")

    def _make_dashboard(self) -> cloudwatch.Dashboard:
        board = cloudwatch.Dashboard(self, "Dashboard", start="-P7D")
        board.add_widgets(
            *(
                self._side_by_side(
                    f"ModelLatency {statistic} (microseconds)",
                    functools.partial(self.metric_model_latency, statistic=statistic),
                )
                for statistic in ("p50", "p99")
            )
        )
        board.add_widgets(
            self._side_by_side("Invocations", self.metric_invocations),
            self._side_by_side("InvocationModelErrors", self.metric_model_errors),
        )
        # The last row depends on the end (the guard's max_error_rate, the stopper's function), which end_with may
        # declare after this: it is added at synth, by an aspect, when the end is final.
        Aspects.of(self).add(_LastRow(self))
        return board

    def _side_by_side(self, title: str, metric_of: _MetricOf) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title=title,
            left=[metric_of(variant.name).with_(label=variant.name) for variant in (self._production, self._shadow)],
            width=12,
        )

    def _add_last_row(self) -> None:
        if self._dashboard is None:
            return
        guard = None if self._end is None else self._end.guard
        limit = None if guard is None else guard.max_error_rate
        annotations = (
            []
            if limit is None
            else [cloudwatch.HorizontalAnnotation(value=limit, label="promotion guard max_error_rate")]
        )
        row: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Error rate (InvocationModelErrors / Invocations)",
                left=[self.metric_error_rate(variant.name) for variant in (self._production, self._shadow)],
                left_annotations=annotations,
                width=12,
            )
        ]
        if self._stopper is not None:
            row.append(
                cloudwatch.GraphWidget(
                    title="Stopper function errors",
                    left=[self._stopper.function.metric_errors(statistic="Sum", period=DEFAULT_PERIOD)],
                    width=12,
                )
            )
        self._dashboard.add_widgets(*row)


if TYPE_CHECKING:
    from collections.abc import Callable

    _MetricOf = Callable[[str], cloudwatch.Metric | cloudwatch.MathExpression]


@jsii.implements(IAspect)
class _LastRow:
    """Adds the dashboard's end-dependent row once, at synth, when no end can be declared any more."""

    def __init__(self, test: ShadowTest) -> None:
        self._test: ShadowTest | None = test

    def visit(self, node: IConstruct) -> None:
        if self._test is not None:
            test, self._test = self._test, None
            test._add_last_row()


@dataclass(frozen=True)
class _Variant:
    """A ShadowTestVariant, checked, with its name and model resolved."""

    name: str
    model: sagemaker.CfnModel | str
    model_name: str
    instance_type: str
    instance_count: int

    def to_experiment(self) -> sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty:
        return sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty(
            model_name=self.model_name,
            variant_name=self.name,
            infrastructure_config=sagemaker.CfnInferenceExperiment.ModelInfrastructureConfigProperty(
                infrastructure_type="RealTimeInference",
                real_time_inference_config=sagemaker.CfnInferenceExperiment.RealTimeInferenceConfigProperty(
                    instance_type=self.instance_type, instance_count=self.instance_count
                ),
            ),
        )

    def model_arn(self, stack: Stack) -> str:
        if isinstance(self.model, sagemaker.CfnModel):
            return self.model.ref  # a model's Ref is its ARN, as SageMaker spells it
        # SageMaker writes model ARNs in lower case.
        name = self.model if check.unresolved(self.model) else self.model.lower()
        return stack.format_arn(service="sagemaker", resource="model", resource_name=name)

    def _containers(self) -> list[object]:
        if not isinstance(self.model, sagemaker.CfnModel):
            return []
        containers = [self.model.primary_container]
        if isinstance(self.model.containers, Sequence):
            containers += list(self.model.containers)
        return [container for container in containers if container is not None and not check.unresolved(container)]

    def artifact_arns(self) -> list[str]:
        """The S3 objects of the model's artifacts, where the app gives them as s3:// URLs."""
        urls = [getattr(container, "model_data_url", None) for container in self._containers()]
        return [
            f"arn:{Aws.PARTITION}:s3:::{url.removeprefix('s3://')}"
            for url in urls
            if isinstance(url, str) and not check.unresolved(url) and url.startswith("s3://")
        ]

    def repository_arns(self) -> list[str]:
        """The ECR repositories of the model's images, where the app gives them as ECR image URIs."""
        arns = []
        for container in self._containers():
            image = getattr(container, "image", None)
            match = None if not isinstance(image, str) or check.unresolved(image) else _ECR_IMAGE.fullmatch(image)
            if match:
                account, region, repository = match["account"], match["region"], match["repository"]
                arns.append(f"arn:{Aws.PARTITION}:ecr:{region}:{account}:repository/{repository}")
        return arns


_ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+?)(:[\w.-]+)?(@sha256:[0-9a-f]+)?"
)


def _variant(variant: object, side: str) -> _Variant:
    if not isinstance(variant, ShadowTestVariant):
        raise ValueError(
            f"{side} must be a ShadowTestVariant, e.g. ShadowTestVariant(model=..., instance_type='ml.m5.xlarge'); "
            f"got {variant!r}"
        )
    name = side if variant.variant_name is None else variant.variant_name
    check.check_name("variant name", name, f"{side}.variant_name")
    model = variant.model
    if isinstance(model, sagemaker.CfnModel):
        model_name = model.attr_model_name
    elif isinstance(model, str):
        check.check_name("model name", model, f"{side}.model")
        model_name = model
    else:
        raise ValueError(f"{side}.model must be an aws_sagemaker.CfnModel or a model name; got {model!r}")
    _check_instance_type(variant.instance_type, f"{side}.instance_type")
    count = variant.instance_count
    problem = None if check.unresolved(count) else rules.serving_instance_count_problem(count)
    if problem:
        raise ValueError(f"{side}.instance_count {problem}; got {count!r}")
    return _Variant(name, model, model_name, variant.instance_type, count)


def _check_instance_type(value: object, prop: str) -> None:
    problem = None if check.unresolved(value) else rules.instance_type_problem(value, check.instance_types())
    if problem:
        raise ValueError(f"{prop} {problem}; got {value!r}")


def _endpoint(scope: Construct, endpoint: object) -> tuple[str, str | None]:
    """The endpoint's name, and its own ARN as SageMaker writes it (None for a name IAM cannot match at synth)."""
    if isinstance(endpoint, sagemaker.CfnEndpoint):
        return endpoint.attr_endpoint_name, endpoint.ref  # an endpoint's Ref is its ARN
    if not isinstance(endpoint, str):
        raise ValueError(f"endpoint must be an aws_sagemaker.CfnEndpoint or an endpoint name; got {endpoint!r}")
    if not check.unresolved(endpoint) and not rules.ENDPOINT_NAME.fullmatch(endpoint):
        raise ValueError(
            f"endpoint {endpoint!r} may hold only letters, digits and hyphens, 1-63 characters, starting and ending "
            "with a letter or digit"
        )
    return endpoint, _arns.endpoint_arn(scope, endpoint)


def _check_sampling(value: object) -> None:
    if check.unresolved(value):
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise ValueError(f"sampling_percentage must be a whole number from 1 to 100; got {value!r}")


# DataStorageConfig.Destination is at most 512 characters: "s3://" + bucket (at most 63) + "/" + the prefix.
MAX_CAPTURE_PREFIX = 512 - len("s3://") - 63 - 1


def _capture_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix.strip("/"):
        raise ValueError(
            f"data_capture.prefix must name a folder in the bucket, e.g. 'shadow-tests/my-test'; got {prefix!r}"
        )
    if len(prefix) > MAX_CAPTURE_PREFIX or any(character in prefix for character in "*?") or not prefix.isprintable():
        raise ValueError(
            f"data_capture.prefix must be at most {MAX_CAPTURE_PREFIX} printable characters without * or ? (it "
            f"becomes the one place in the bucket the role may write); got {prefix[:60]!r}"
        )
    return prefix.strip("/")


def _check_capture(capture: ShadowTestDataCapture) -> None:
    if not hasattr(capture.bucket, "arn_for_objects"):
        raise ValueError(
            "data_capture.bucket must be an aws_s3.IBucket (e.g. s3.Bucket.from_bucket_name(...)); "
            f"got {capture.bucket!r}"
        )
    if capture.kms_key is not None and not hasattr(capture.kms_key, "key_arn"):
        raise ValueError(f"data_capture.kms_key must be an aws_kms.IKey; got {capture.kms_key!r}")
