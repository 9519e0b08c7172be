"""Example app: a complete SageMaker shadow test (models, endpoint, the ShadowTest and how it ends).

Every name and location is read from CDK context (cdk.json holds placeholders), so `cdk synth` needs
no arguments and no AWS account: `cdk deploy -c image_uri=... -c production_model_data=s3://...`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct
from inference_experiment_stopper import (
    DesiredState,
    GuardFailure,
    PromotionGuard,
    ShadowTest,
    ShadowTestEnd,
    ShadowTestVariant,
)


class ShadowTestStack(cdk.Stack):
    """An endpoint serving a production model, a shadow test of a second model, and how the test ends."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stop_on_update: bool = True,
        reason: str = "Shadow model promoted by the stack",
        **kwargs: Any,
    ) -> None:
        """Define the shadow test.

        Args:
            scope: the app.
            construct_id: the stack's id.
            stop_on_update: passed to the stopper (the integration test deploys first with False).
            reason: passed to the stopper.
            **kwargs: Stack props.
        """
        super().__init__(scope, construct_id, **kwargs)
        context = self.node.try_get_context
        experiment_name: str = context("experiment_name")
        endpoint_name: str = context("endpoint_name")
        image_uri: str = context("image_uri")
        instance_type: str = context("instance_type")
        model_data = {"production": context("production_model_data"), "shadow": context("shadow_model_data")}

        role = iam.Role(
            self,
            "SageMakerRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Lets SageMaker pull the models' image and artifacts",
        )
        _allow_model_artifacts(role, model_data.values())
        _allow_image(role, image_uri)

        models = {}
        for variant, data_url in model_data.items():
            models[variant] = sagemaker.CfnModel(
                self,
                f"{variant.capitalize()}Model",
                execution_role_arn=role.role_arn,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=image_uri, model_data_url=data_url
                ),
            )
            # The model is checked against the role's permissions when created: wait for its policy too.
            models[variant].node.add_dependency(role.node.find_child("DefaultPolicy"))

        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "EndpointConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name="production",
                    model_name=models["production"].attr_model_name,
                    initial_instance_count=1,
                    instance_type=instance_type,
                    initial_variant_weight=1,
                )
            ],
        )
        # Named in the app (cdk.json): the stopper's role may then describe and update this endpoint alone, by the
        # ARN SageMaker gives it, and its metrics and dashboard name it as the operators know it.
        endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )

        self.experiment_name = experiment_name
        test = ShadowTest(
            self,
            "ShadowTest",
            name=experiment_name,
            endpoint=endpoint,
            production=ShadowTestVariant(model=models["production"], instance_type=instance_type),
            shadow=ShadowTestVariant(model=models["shadow"], instance_type=instance_type),
            sampling_percentage=50,
            stop_on_update=stop_on_update,
            completion_timeout=cdk.Duration.minutes(30),
        )
        # An alarm on the shadow's own error rate: it must be quiet before the promotion and for 10 minutes after.
        errors = test.metric_error_rate("shadow").create_alarm(
            self, "ShadowErrors", threshold=0.01, evaluation_periods=3, alarm_description="The shadow's error rate"
        )
        # The shadow replaces production, on its own instance type and count (ShadowTestEnd.promote can change them).
        stopper = test.end_with(
            ShadowTestEnd.promote(
                # Promote only a shadow at least as fast (p99) and as reliable as production, measured over the test;
                # then bake it 10 minutes, rolling the endpoint back to today's configuration if the alarm fires.
                guard=PromotionGuard(
                    max_latency_ratio=1.0,
                    latency_statistic="p99",
                    max_error_rate=0.001,
                    min_invocations=1000,
                    on_failure=GuardFailure.FAIL,
                    alarms=[errors],
                    bake=cdk.Duration.minutes(10),
                    roll_back_to=endpoint_config,
                ),
                desired_state=DesiredState.COMPLETED,
                reason=reason,
            )
        )
        cdk.CfnOutput(self, "ExperimentArn", value=stopper.experiment_arn)
        cdk.CfnOutput(self, "ExperimentStatus", value=stopper.status)
        cdk.CfnOutput(self, "PromotionDecision", value=stopper.decision)
        # Where every stop is logged: `aws logs tail <this> --follow` during a deploy that stops the test.
        cdk.CfnOutput(self, "StopperLogGroup", value=stopper.log_group.log_group_name)


def _allow_model_artifacts(role: iam.Role, data_urls: Iterable[str]) -> None:
    objects = [f"arn:{cdk.Aws.PARTITION}:s3:::{url.removeprefix('s3://')}" for url in data_urls]
    role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=objects))


def _allow_image(role: iam.Role, image_uri: str) -> None:
    registry, _, repository = image_uri.partition("/")
    account, region = registry.split(".")[0], registry.split(".")[3]
    repository_name = repository.split(":")[0].split("@")[0]
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[f"arn:{cdk.Aws.PARTITION}:ecr:{region}:{account}:repository/{repository_name}"],
        )
    )
    # GetAuthorizationToken has no resource-level permissions: IAM only accepts "*" for it.
    role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
    cdk.Validations.of(role).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            reason="ecr:GetAuthorizationToken supports no resource-level permissions; IAM accepts only '*' for it",
        )
    )


def main() -> None:
    app = cdk.App()
    ShadowTestStack(app, "ShadowTestStack")
    app.synth()


if __name__ == "__main__":
    main()
