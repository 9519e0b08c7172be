"""What reviewers of CDK code check: cdk-nag AwsSolutions and cfn-lint on every template the project makes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from app import ShadowTestStack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks
from cfn_lint_gate import cfn_lint
from inference_experiment_stopper import (
    InferenceExperimentStopper,
    PromotionGuard,
    ShadowTest,
    ShadowTestDataCapture,
    ShadowTestEnd,
    ShadowTestVariant,
    StopperFunction,
)
from inference_experiment_stopper._function import ACKNOWLEDGED

ROOT = Path(__file__).parents[1]
CONTEXT = json.loads((ROOT / "cdk.json").read_text())["context"]
PACKS = (AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks, PCIDSS321Checks)
# What a StopperFunction option fixes, rule by rule (the README's table says the same to users).
FIXED_BY_OPTION = {
    "log_group_encryption_key": [
        "HIPAA.Security::HIPAA.Security-CloudWatchLogGroupEncrypted",
        "NIST.800.53.R5::NIST.800.53.R5-CloudWatchLogGroupEncrypted",
        "PCI.DSS.321::PCI.DSS.321-CloudWatchLogGroupEncrypted",
    ],
    "reserved_concurrent_executions": [
        "HIPAA.Security::HIPAA.Security-LambdaConcurrency",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaConcurrency",
    ],
    "vpc": [
        "HIPAA.Security::HIPAA.Security-LambdaInsideVPC",
        "NIST.800.53.R5::NIST.800.53.R5-LambdaInsideVPC",
        "PCI.DSS.321::PCI.DSS.321-LambdaInsideVPC",
    ],
}


def example_app() -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(context={"aws:cdk:bundling-stacks": [], **CONTEXT})
    return app, ShadowTestStack(app, "ShadowTestStack")


def app_with_stoppers(count: int) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, f"Stoppers{count}")
    for index in range(count):
        InferenceExperimentStopper(
            stack,
            f"Stopper{index}",
            experiment_name=f"shadow-test-{index}",
            model_variant_actions={"shadow": "Promote", "production": "Remove"},
            reason=f"experiment {index} ends",
        )
    return app, stack


APPS = {"example-app": example_app, "3-stoppers": lambda: app_with_stoppers(3)}


@pytest.mark.parametrize("make_app", APPS.values(), ids=APPS.keys())
def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(make_app: Any) -> None:
    app, _ = make_app()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    app.synth()  # raises ValidationFailed, listing them, on any unacknowledged finding


def accept_what_the_options_fix(stack: cdk.Stack) -> None:
    """Acknowledge on the stack's default function what a StopperFunction option would fix, as its owner would."""
    function = stack.node.find_child(StopperFunction.DEFAULT_ID)
    for option, rules in FIXED_BY_OPTION.items():
        for rule in rules:
            reason = f"Accepted for this stack; StopperFunction({option}=...) would fix it"
            cdk.Validations.of(function).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def default_function_left_as_it_is() -> cdk.App:
    """Stoppers on the default function, whose owner acknowledges what the options would fix, as a user would."""
    app, stack = app_with_stoppers(2)
    accept_what_the_options_fix(stack)
    return app


def configured_function() -> cdk.App:
    """Stoppers on a StopperFunction in a VPC, with a KMS-encrypted log group and reserved concurrency."""
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Configured")
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Network",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["us-east-1a", "us-east-1b"],
        private_subnet_ids=["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
    )
    function = StopperFunction(
        stack,
        "Stopper",
        vpc=vpc,
        security_groups=[ec2.SecurityGroup.from_security_group_id(stack, "Egress", "sg-0123456789abcdef0")],
        log_group_encryption_key=kms.Key(stack, "LogKey", enable_key_rotation=True),
        reserved_concurrent_executions=2,
    )
    for index in range(2):
        InferenceExperimentStopper(
            stack,
            f"Stopper{index}",
            experiment_name=f"shadow-test-{index}",
            model_variant_actions={"shadow": "Promote", "production": "Remove"},
            function=function,
        )
    return app


def app_with_a_shadow_test() -> tuple[cdk.App, cdk.Stack]:
    """A ShadowTest with data capture encrypted by the app's key, ending in a guarded promotion."""
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "ShadowTestOnly")
    key = kms.Key(stack, "CaptureKey", enable_key_rotation=True)
    ShadowTest(
        stack,
        "ShadowTest",
        name="shadow-test",
        endpoint="shadow-test-endpoint",
        production=ShadowTestVariant(model="model-a", instance_type="ml.m5.xlarge"),
        shadow=ShadowTestVariant(model="model-b", instance_type="ml.m5.xlarge"),
        data_capture=ShadowTestDataCapture(
            bucket=s3.Bucket.from_bucket_name(stack, "Captures", "my-captures"), prefix="shadow-test", kms_key=key
        ),
        on_end=ShadowTestEnd.promote(guard=PromotionGuard(max_error_rate=0.001)),
    )
    return app, stack


def shadow_test_with_the_default_function_left_as_it_is() -> cdk.App:
    app, stack = app_with_a_shadow_test()
    accept_what_the_options_fix(stack)
    return app


def guarded_promotion_with_a_rollback() -> cdk.App:
    """A guard of the app's and an imported alarm, a bake and a rollback to a configuration whose name is a token."""
    app, stack = app_with_stoppers(0)
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="shadow-test-config")
    config = sagemaker.CfnEndpointConfig(stack, "Config", production_variants=[])
    experiment = sagemaker.CfnInferenceExperiment(
        stack,
        "Experiment",
        name="shadow-test",
        type="ShadowMode",
        role_arn="arn:aws:iam::123456789012:role/experiment",
        endpoint_name=endpoint.attr_endpoint_name,
        model_variants=[
            sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty(
                model_name=f"model-{variant}",
                variant_name=variant,
                infrastructure_config=sagemaker.CfnInferenceExperiment.ModelInfrastructureConfigProperty(
                    infrastructure_type="RealTimeInference",
                    real_time_inference_config=sagemaker.CfnInferenceExperiment.RealTimeInferenceConfigProperty(
                        instance_type="ml.m5.xlarge", instance_count=1
                    ),
                ),
            )
            for variant in ("production", "shadow")
        ],
    )
    metric = cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ModelLatency", statistic="p99")
    InferenceExperimentStopper(
        stack,
        "Stopper",
        experiment=experiment,
        model_variant_actions={"shadow": "Promote", "production": "Remove"},
        promotion_guard=PromotionGuard(
            alarms=[
                cloudwatch.Alarm(stack, "Latency", metric=metric, threshold=50_000, evaluation_periods=3),
                cloudwatch.Alarm.from_alarm_name(stack, "Business", "orders-per-minute"),
            ],
            bake=cdk.Duration.minutes(10),
            roll_back_to=config,
        ),
    )
    accept_what_the_options_fix(stack)
    # The user's own endpoint configuration and alarm, not the construct's: acknowledged as their owner would.
    for construct, rules in (
        (config, ["SageMakerEndpointConfigurationKMSKeyConfigured"]),
        (stack.node.find_child("Latency"), ["CloudWatchAlarmAction"]),
    ):
        for rule in rules:
            for pack in ("HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321"):
                reason = "The app's own resource, outside the construct, in a test stack"
                cdk.Validations.of(construct).acknowledge(
                    cdk.Acknowledgment(id=f"{pack}::{pack}-{rule}", reason=reason)
                )
    return app


COMPLIANCE = {
    "guarded-rollback": guarded_promotion_with_a_rollback,
    "default-function": default_function_left_as_it_is,
    "configured-function": configured_function,
    "shadow-test": shadow_test_with_the_default_function_left_as_it_is,
}


@pytest.mark.parametrize("make_app", COMPLIANCE.values(), ids=COMPLIANCE.keys())
def test_four_cdk_nag_packs_find_nothing_unacknowledged(make_app: Any) -> None:
    app = make_app()
    cdk.Validations.of(app).add_plugins(*(pack(app) for pack in PACKS))

    app.synth()  # raises ValidationFailed, listing them, on any unacknowledged finding of any pack


def test_the_default_function_left_as_it_is_fails_the_packs_on_exactly_what_the_options_fix() -> None:
    """The acknowledgements above are needed, and no more: without them the packs fail on those rules alone."""
    app, _ = app_with_stoppers(2)
    cdk.Validations.of(app).add_plugins(*(pack(app) for pack in PACKS))

    with pytest.raises(RuntimeError, match="ValidationFailed") as failure:
        app.synth()

    found = set(re.findall(r"Acknowledge with '([^']+)'", str(failure.value)))
    assert found == {rule for rules in FIXED_BY_OPTION.values() for rule in rules}


def test_the_readme_repeats_every_reason_the_construct_acknowledges_with() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    for reason in ACKNOWLEDGED.values():
        assert reason in readme


def test_cdk_nag_would_fail_a_wildcard_policy() -> None:
    """The gate above can fail: the same checks reject a stack with an unacknowledged '*' resource."""
    app, stack = app_with_stoppers(1)
    role = cdk.aws_iam.Role(stack, "Loose", assumed_by=cdk.aws_iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(cdk.aws_iam.PolicyStatement(actions=["sagemaker:StopInferenceExperiment"], resources=["*"]))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()


LINTED = {
    "example-app": example_app,
    "1-stopper": lambda: app_with_stoppers(1),
    "50-stoppers": lambda: app_with_stoppers(50),
    "shadow-test": app_with_a_shadow_test,
}


@pytest.mark.parametrize("make_app", LINTED.values(), ids=LINTED.keys())
def test_cfn_lint_reports_no_errors_or_warnings(make_app: Any) -> None:
    app, stack = make_app()
    template = app.synth().get_stack_by_name(stack.stack_name).template

    problems, excepted = cfn_lint(template)

    assert problems == []
    assert len(excepted) <= 1


def test_the_example_app_s_function_may_touch_its_own_endpoint_and_configuration_only() -> None:
    _, stack = example_app()
    template = cdk.assertions.Template.from_stack(stack)

    guard_policy_description = "What the stack's promotion guards may read and, to roll a promotion back, update"
    [guard_policy] = template.find_resources(
        "AWS::IAM::ManagedPolicy", {"Properties": {"Description": guard_policy_description}}
    ).values()
    found: dict[str, Any] = {}
    for statement in guard_policy["Properties"]["PolicyDocument"]["Statement"]:
        for action in [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]:
            found[action] = statement["Resource"]
    # The app names its endpoint (cdk.json), written in lower case as SageMaker writes endpoint ARNs; its
    # configuration is named by CloudFormation, and an AWS::SageMaker::EndpointConfig's Ref is its ARN.
    endpoint = stack.resolve(
        stack.format_arn(service="sagemaker", resource="endpoint", resource_name="shadow-test-endpoint")
    )
    assert CONTEXT["endpoint_name"] == "shadow-test-endpoint"
    assert found["sagemaker:DescribeEndpoint"] == endpoint
    assert found["sagemaker:UpdateEndpoint"] == [endpoint, {"Ref": "EndpointConfig"}]
    assert "*" not in json.dumps(guard_policy)
