"""The ShadowTest construct: the experiment and the stop it writes agree, its role, its dashboard, its refusals."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from inference_experiment_stopper import (
    DesiredState,
    PromotionGuard,
    ShadowTest,
    ShadowTestDataCapture,
    ShadowTestEnd,
    ShadowTestVariant,
    StopperFunction,
)
from inference_experiment_stopper.shadow_test import ACKNOWLEDGED, WARNING_ID

STOP = "Custom::InferenceExperimentStop"
EXPERIMENT = "AWS::SageMaker::InferenceExperiment"
ROLE_POLICY = {"Description": Match.string_like_regexp("^What SageMaker may do to run the shadow test")}
README = Path(__file__).parents[1] / "README.md"


def new_stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(context={"aws:cdk:bundling-stacks": []}), "Stack")


def props(**changes: Any) -> dict[str, Any]:
    """A shadow test of model-b against model-a on an existing endpoint, by names."""
    return {
        "name": "my-shadow-test",
        "endpoint": "my-endpoint",
        "production": ShadowTestVariant(model="model-a", instance_type="ml.m5.xlarge"),
        "shadow": ShadowTestVariant(model="model-b", instance_type="ml.g5.xlarge", instance_count=2),
        **changes,
    }


def synthesized(**changes: Any) -> tuple[ShadowTest, Template]:
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props(**changes))
    return test, Template.from_stack(stack)


def only(template: Template, resource_type: str) -> dict[str, Any]:
    [resource] = template.find_resources(resource_type).values()
    return dict(resource)


def sagemaker_arn(resource: str) -> dict[str, Any]:
    """An ARN in this stack's account and region, as the template writes it."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":sagemaker:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


def policy_statements(template: Template) -> list[dict[str, Any]]:
    [policy] = template.find_resources("AWS::IAM::ManagedPolicy", {"Properties": ROLE_POLICY}).values()
    return policy["Properties"]["PolicyDocument"]["Statement"]  # type: ignore[no-any-return]


def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The dashboard's widgets, with every token in the body written as <token>."""
    parts = only(template, "AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = json.loads("".join(part if isinstance(part, str) else "<token>" for part in parts))
    return body["widgets"]  # type: ignore[no-any-return]


def test_the_experiment_and_its_stop_agree_on_the_variants_the_shadow_and_the_promoted_infrastructure() -> None:
    # GIVEN a shadow test that promotes
    test, template = synthesized(on_end=ShadowTestEnd.promote(reason="shadow wins", desired_state="Completed"))

    # THEN the experiment runs the two variants, the second as the shadow
    experiment = only(template, EXPERIMENT)["Properties"]
    assert experiment["Name"] == "my-shadow-test"
    assert experiment["Type"] == "ShadowMode"
    assert experiment["EndpointName"] == "my-endpoint"
    assert [(v["VariantName"], v["ModelName"], v["InfrastructureConfig"]) for v in experiment["ModelVariants"]] == [
        ("production", "model-a", infrastructure("ml.m5.xlarge", 1)),
        ("shadow", "model-b", infrastructure("ml.g5.xlarge", 2)),
    ]
    assert experiment["ShadowModeConfig"] == {
        "SourceModelVariantName": "production",
        "ShadowModelVariants": [{"ShadowModelVariantName": "shadow", "SamplingPercentage": 100}],
    }
    assert "Schedule" not in experiment
    assert "DataStorageConfig" not in experiment
    # AND the stop promotes that shadow, on the shadow's own model and infrastructure, after the experiment exists
    stop = only(template, STOP)
    assert stop["Properties"]["Name"] == "my-shadow-test"
    assert stop["Properties"]["ModelVariantActions"] == {"shadow": "Promote", "production": "Remove"}
    assert stop["Properties"]["DesiredModelVariants"] == [
        {"ModelName": "model-b", "VariantName": "shadow", "InfrastructureConfig": infrastructure("ml.g5.xlarge", 2)}
    ]
    assert (stop["Properties"]["DesiredState"], stop["Properties"]["Reason"]) == ("Completed", "shadow wins")
    [experiment_id] = template.find_resources(EXPERIMENT)
    assert experiment_id in stop["DependsOn"]
    assert test.stopper is not None
    assert test.stopper.node.path == "Stack/Test/Stopper"


def infrastructure(instance_type: str, count: int) -> dict[str, Any]:
    return {
        "InfrastructureType": "RealTimeInference",
        "RealTimeInferenceConfig": {"InstanceType": instance_type, "InstanceCount": count},
    }


def test_a_promotion_may_change_the_promoted_infrastructure() -> None:
    _, template = synthesized(on_end=ShadowTestEnd.promote(instance_type="ml.g5.2xlarge", instance_count=4))

    [promoted] = only(template, STOP)["Properties"]["DesiredModelVariants"]
    assert promoted["InfrastructureConfig"] == infrastructure("ml.g5.2xlarge", 4)


@pytest.mark.parametrize(
    ("end", "actions"),
    [
        (ShadowTestEnd.remove_shadow(), {"shadow": "Remove", "production": "Retain"}),
        (ShadowTestEnd.retain(), {"shadow": "Retain", "production": "Retain"}),
    ],
    ids=["remove_shadow", "retain"],
)
def test_ends_that_keep_production_declare_no_infrastructure(end: ShadowTestEnd, actions: dict[str, str]) -> None:
    _, template = synthesized(on_end=end)

    stop = only(template, STOP)["Properties"]
    assert stop["ModelVariantActions"] == actions
    assert "DesiredModelVariants" not in stop


def test_every_end_takes_a_desired_state_and_a_reason() -> None:
    for end in (ShadowTestEnd.promote, ShadowTestEnd.remove_shadow, ShadowTestEnd.retain):
        _, template = synthesized(on_end=end(desired_state=DesiredState.CANCELLED, reason="stopped early"))

        stop = only(template, STOP)["Properties"]
        assert (stop["DesiredState"], stop["Reason"]) == ("Cancelled", "stopped early")


def test_variant_names_sampling_and_the_schedule_are_written_to_the_experiment() -> None:
    end_time = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=3)

    _, template = synthesized(
        production=ShadowTestVariant(model="model-a", variant_name="blue", instance_type="ml.m5.xlarge"),
        shadow=ShadowTestVariant(model="model-b", variant_name="green", instance_type="ml.m5.xlarge"),
        sampling_percentage=25,
        end_time=end_time,
        on_end=ShadowTestEnd.promote(),
    )

    experiment = only(template, EXPERIMENT)["Properties"]
    assert experiment["ShadowModeConfig"] == {
        "SourceModelVariantName": "blue",
        "ShadowModelVariants": [{"ShadowModelVariantName": "green", "SamplingPercentage": 25}],
    }
    assert experiment["Schedule"] == {"EndTime": end_time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert only(template, STOP)["Properties"]["ModelVariantActions"] == {"green": "Promote", "blue": "Remove"}


def test_with_no_end_nothing_is_stopped_and_no_function_is_made() -> None:
    test, template = synthesized()

    template.resource_count_is(STOP, 0)
    template.resource_count_is("AWS::Lambda::Function", 0)
    template.resource_count_is(EXPERIMENT, 1)
    assert test.stopper is None
    assert test.end is None


def test_an_end_declared_later_with_end_with_is_the_same_as_on_end() -> None:
    # GIVEN the same end, given at construction and later
    end = ShadowTestEnd.promote(guard=PromotionGuard(max_error_rate=0.01), reason="shadow wins")
    _, at_once = synthesized(on_end=end)
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props())

    # WHEN it is declared later
    stopper = test.end_with(end)

    # THEN the stack is the same, and end_with returned the stopper
    assert Template.from_stack(stack).to_json() == at_once.to_json()
    assert stopper is test.stopper
    assert test.end == end


def test_fails_when_a_second_end_is_declared() -> None:
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props(on_end=ShadowTestEnd.retain()))
    message = (
        "shadow test Stack/Test already ends with ShadowTestEnd.retain(): a test ends one way, so give on_end or "
        "call end_with, once"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        test.end_with(ShadowTestEnd.promote())


def test_the_pass_through_props_reach_the_stopper() -> None:
    stack = new_stack()
    function = StopperFunction(stack, "MyFunction")
    ShadowTest(
        stack,
        "Test",
        **props(
            on_end=ShadowTestEnd.promote(),
            stop_on_update=False,
            completion_timeout=cdk.Duration.minutes(45),
            function=function,
        ),
    )

    stop = only(Template.from_stack(stack), STOP)["Properties"]
    assert stop["StopOn"] == ["Delete"]
    assert stop["CompletionTimeoutSeconds"] == 2700
    assert stop["ServiceToken"]["Fn::GetAtt"][0].startswith("MyFunction")


def test_models_and_endpoint_of_the_app_are_referenced_and_their_artifacts_and_images_allowed() -> None:
    # GIVEN models and an endpoint defined in the app
    stack = new_stack()
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    models = {
        side: sagemaker.CfnModel(
            stack,
            f"{side}Model",
            execution_role_arn="arn:aws:iam::123456789012:role/models",
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image, model_data_url=f"s3://my-models/{side}/model.tar.gz"
            ),
        )
        for side in ("production", "shadow")
    }
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="config")

    # WHEN the test names them
    ShadowTest(
        stack,
        "Test",
        **props(
            endpoint=endpoint,
            production=ShadowTestVariant(model=models["production"], instance_type="ml.m5.xlarge"),
            shadow=ShadowTestVariant(model=models["shadow"], instance_type="ml.m5.xlarge"),
            on_end=ShadowTestEnd.promote(),
        ),
    )
    template = Template.from_stack(stack)

    # THEN the experiment and the stop use their names, and the role their ARNs, artifacts and image
    name = {side: {"Fn::GetAtt": [stack.get_logical_id(model), "ModelName"]} for side, model in models.items()}
    experiment = only(template, EXPERIMENT)["Properties"]
    assert experiment["EndpointName"] == {"Fn::GetAtt": [stack.get_logical_id(endpoint), "EndpointName"]}
    assert [variant["ModelName"] for variant in experiment["ModelVariants"]] == [name["production"], name["shadow"]]
    assert only(template, STOP)["Properties"]["DesiredModelVariants"][0]["ModelName"] == name["shadow"]
    statements = policy_statements(template)
    assert statements[0]["Resource"] == {"Ref": stack.get_logical_id(endpoint)}  # an endpoint's Ref is its ARN
    assert statements[2]["Resource"] == [{"Ref": stack.get_logical_id(model)} for model in models.values()]
    assert statements[3:] == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": [
                {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::my-models/{side}/model.tar.gz"]]}
                for side in ("production", "shadow")
            ],
        },
        {
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":ecr:us-east-1:763104351884:repository/pytorch-inference"],
                ]
            },
        },
        {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"},
    ]


def test_the_role_may_run_the_test_on_this_endpoint_and_these_models_only() -> None:
    test, template = synthesized(endpoint="My-Endpoint")

    role = only(template, "AWS::IAM::Role")["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]
    assert "Policies" not in role  # no inline policy
    assert policy_statements(template) == [
        {
            "Action": ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
            "Effect": "Allow",
            "Resource": sagemaker_arn("endpoint/my-endpoint"),  # SageMaker writes endpoint ARNs in lower case
        },
        {
            # UpdateEndpoint is authorized on the configuration the endpoint moves to as well.
            "Action": [
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:UpdateEndpoint",
            ],
            "Effect": "Allow",
            "Resource": sagemaker_arn("endpoint-config/*"),
        },
        {
            "Action": "sagemaker:DescribeModel",
            "Effect": "Allow",
            "Resource": [sagemaker_arn("model/model-a"), sagemaker_arn("model/model-b")],
        },
    ]
    experiment = only(template, EXPERIMENT)
    [role_id] = template.find_resources("AWS::IAM::Role")
    [policy_id] = template.find_resources("AWS::IAM::ManagedPolicy", {"Properties": ROLE_POLICY})
    assert experiment["Properties"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert experiment["DependsOn"] == [policy_id]
    assert test.role.node.path == "Stack/Test/Role"


def test_with_data_capture_the_role_may_write_under_the_prefix_with_the_key() -> None:
    # GIVEN a capture bucket and a KMS key
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Captures", "my-captures")
    key = kms.Key(stack, "CaptureKey", enable_key_rotation=True)

    # WHEN the test captures its data there
    ShadowTest(
        stack,
        "Test",
        **props(data_capture=ShadowTestDataCapture(bucket=bucket, prefix="/shadow-tests/mine/", kms_key=key)),
    )
    template = Template.from_stack(stack)

    # THEN the experiment says so, and the role may write there, encrypted with that key
    key_arn = {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}  # type: ignore[arg-type]
    assert only(template, EXPERIMENT)["Properties"]["DataStorageConfig"] == {
        "Destination": "s3://my-captures/shadow-tests/mine",
        "KmsKey": key_arn,
    }
    assert policy_statements(template)[3:] == [
        {
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::my-captures/shadow-tests/mine/*"]]
            },
        },
        {"Action": ["kms:Encrypt", "kms:GenerateDataKey"], "Effect": "Allow", "Resource": key_arn},
    ]


def test_with_data_capture_in_a_bucket_with_its_own_key_that_key_is_allowed() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Captures", encryption=s3.BucketEncryption.KMS, enforce_ssl=True)

    ShadowTest(stack, "Test", **props(data_capture=ShadowTestDataCapture(bucket=bucket, prefix="captures")))

    template = Template.from_stack(stack)
    [key_id] = template.find_resources("AWS::KMS::Key")
    assert policy_statements(template)[-1] == {
        "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
        "Effect": "Allow",
        "Resource": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert "KmsKey" not in only(template, EXPERIMENT)["Properties"]["DataStorageConfig"]


def test_a_given_role_is_used_as_it_is() -> None:
    stack = new_stack()
    role = iam.Role.from_role_arn(stack, "Given", "arn:aws:iam::123456789012:role/shadow-tests")

    test = ShadowTest(stack, "Test", **props(role=role))
    template = Template.from_stack(stack)

    assert only(template, EXPERIMENT)["Properties"]["RoleArn"] == "arn:aws:iam::123456789012:role/shadow-tests"
    template.resource_count_is("AWS::IAM::Role", 0)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 0)
    assert test.role is role


def comparison(widget: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(metric, variant, statistic) of each metric line of a graph widget."""
    return [
        (line[1], line[5], line[6].get("stat"))
        for line in widget["properties"]["metrics"]
        if line[0] == "AWS/SageMaker" and line[6].get("visible", True)
    ]


def test_the_dashboard_compares_the_variants_side_by_side() -> None:
    _, template = synthesized(on_end=ShadowTestEnd.promote(guard=PromotionGuard(max_error_rate=0.002)))

    widgets = dashboard_widgets(template)

    assert [widget["properties"]["title"] for widget in widgets] == [
        "ModelLatency p50 (microseconds)",
        "ModelLatency p99 (microseconds)",
        "Invocations",
        "InvocationModelErrors",
        "Error rate (InvocationModelErrors / Invocations)",
        "Stopper function errors",
    ]
    variants = ["production", "shadow"]
    assert comparison(widgets[0]) == [("ModelLatency", variant, "p50") for variant in variants]
    assert comparison(widgets[1]) == [("ModelLatency", variant, "p99") for variant in variants]
    assert comparison(widgets[2]) == [("Invocations", variant, "Sum") for variant in variants]
    assert comparison(widgets[3]) == [("InvocationModelErrors", variant, "Sum") for variant in variants]
    expressions = [line[0] for line in widgets[4]["properties"]["metrics"] if "expression" in line[0]]
    assert expressions == [
        {"label": "production error rate", "expression": "productionErrors / productionInvocations"},
        {"label": "shadow error rate", "expression": "shadowErrors / shadowInvocations"},
    ]
    assert widgets[4]["properties"]["annotations"] == {
        "horizontal": [{"value": 0.002, "label": "promotion guard max_error_rate", "yAxis": "left"}]
    }
    assert widgets[5]["properties"]["metrics"] == [["AWS/Lambda", "Errors", "FunctionName", "<token>", {"stat": "Sum"}]]
    assert {(widget["x"], widget["y"]) for widget in widgets} == {(x, y) for x in (0, 12) for y in (0, 6, 12)}


def test_the_guard_declared_later_still_draws_its_limit() -> None:
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props())

    test.end_with(ShadowTestEnd.promote(guard=PromotionGuard(max_error_rate=0.05)))

    [error_rate] = [
        w for w in dashboard_widgets(Template.from_stack(stack)) if w["properties"]["title"].startswith("Error")
    ]
    assert error_rate["properties"]["annotations"]["horizontal"][0]["value"] == 0.05


@pytest.mark.parametrize(
    "on_end",
    [None, ShadowTestEnd.retain(), ShadowTestEnd.promote(guard=PromotionGuard(max_latency_ratio=1.1))],
    ids=["no-end", "no-guard", "no-max-error-rate"],
)
def test_without_a_max_error_rate_no_limit_is_drawn(on_end: ShadowTestEnd | None) -> None:
    _, template = synthesized(on_end=on_end)

    widgets = dashboard_widgets(template)

    assert all("annotations" not in widget["properties"] for widget in widgets)
    titles = [widget["properties"]["title"] for widget in widgets]
    assert ("Stopper function errors" in titles) == (on_end is not None)
    assert "Error rate (InvocationModelErrors / Invocations)" in titles


def test_dashboard_false_leaves_it_out() -> None:
    test, template = synthesized(dashboard=False, on_end=ShadowTestEnd.retain())

    template.resource_count_is("AWS::CloudWatch::Dashboard", 0)
    assert test.dashboard is None


def test_metric_helpers_read_the_variant_on_this_endpoint() -> None:
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props())

    latency = test.metric_model_latency("shadow", statistic="p99", period=cdk.Duration.minutes(1))
    rate = test.metric_error_rate("production")

    assert (latency.namespace, latency.metric_name, latency.statistic) == ("AWS/SageMaker", "ModelLatency", "p99")
    assert latency.dimensions == {"EndpointName": "my-endpoint", "VariantName": "shadow"}
    assert latency.period.to_seconds() == 60
    assert (test.metric_invocations("shadow").metric_name, test.metric_invocations("shadow").statistic) == (
        "Invocations",
        "Sum",
    )
    assert test.metric_model_errors("shadow").metric_name == "InvocationModelErrors"
    assert rate.expression == "productionErrors / productionInvocations"
    using = {
        name: (metric.metric_name, metric.dimensions["VariantName"])
        for name, metric in rate.using_metrics.items()
        if isinstance(metric, cloudwatch.Metric) and metric.dimensions is not None
    }
    assert using == {
        "productionErrors": ("InvocationModelErrors", "production"),
        "productionInvocations": ("Invocations", "production"),
    }


def test_an_alarm_on_a_metric_helper_is_one_line() -> None:
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props())

    test.metric_error_rate("shadow").create_alarm(stack, "ShadowErrors", threshold=0.01, evaluation_periods=3)

    Template.from_stack(stack).has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"Metrics": Match.array_with([Match.object_like({"Expression": "shadowErrors / shadowInvocations"})])},
    )


def test_fails_when_a_metric_helper_names_another_variant() -> None:
    test, _ = synthesized()
    message = "variant 'canary' is not one of shadow test Stack/Test's variants: production, shadow"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        test.metric_model_latency("canary")


@pytest.mark.parametrize(
    ("days", "when"), [(-1, "has passed"), (31, "is more than 30 days ahead")], ids=["passed", "too-far"]
)
def test_an_end_time_that_has_passed_or_is_far_ahead_is_a_warning_not_an_error(days: int, when: str) -> None:
    end_time = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)
    stack = new_stack()

    ShadowTest(stack, "Test", **props(end_time=end_time))

    [warning] = Annotations.from_stack(stack).find_warning("/Stack/Test", Match.any_value())
    assert warning.entry.data == (
        f"end_time {end_time.isoformat()} {when}: SageMaker runs a shadow test for at most 30 days and cannot "
        "create one that ends in the past. Only a warning, so that later deploys and `cdk destroy` of a test that "
        f"was created still synthesize [ack: {WARNING_ID}]"
    )
    Template.from_stack(stack).resource_count_is(EXPERIMENT, 1)


def test_an_end_time_within_30_days_is_no_warning() -> None:
    stack = new_stack()
    ShadowTest(stack, "Test", **props(end_time=dt.datetime.now(dt.UTC) + dt.timedelta(days=29)))

    assert Annotations.from_stack(stack).find_warning("*", Match.any_value()) == []


def shadow(**changes: Any) -> ShadowTestVariant:
    return ShadowTestVariant(**{"model": "model-b", "instance_type": "ml.m5.xlarge", **changes})


ERRORS = [
    pytest.param(
        {"shadow": shadow(variant_name="production")},
        "shadow.variant_name 'production' is production's too: the two variants of a shadow test need different names",
        id="same-variant-names",
    ),
    pytest.param(
        {"production": shadow(variant_name="prod_1")},
        "variant name 'prod_1' in production.variant_name may hold only letters, digits and hyphens, 1-63 characters, "
        "starting and ending with a letter or digit",
        id="variant-name-pattern",
    ),
    pytest.param(
        {"shadow": shadow(model="model.b")},
        "model name 'model.b' in shadow.model may hold only letters, digits and hyphens, 1-63 characters, starting "
        "and ending with a letter or digit",
        id="model-name-pattern",
    ),
    pytest.param(
        {"shadow": shadow(model=42)},
        "shadow.model must be an aws_sagemaker.CfnModel or a model name; got 42",
        id="model-type",
    ),
    pytest.param(
        {"shadow": shadow(instance_type="m5.xlarge")},
        "shadow.instance_type must be a SageMaker real-time inference instance type such as ml.m5.xlarge; "
        "got 'm5.xlarge'",
        id="instance-type",
    ),
    pytest.param(
        {"production": shadow(instance_count=0)},
        "production.instance_count must be a whole number from 1 to 999,999,999; got 0",
        id="instance-count",
    ),
    pytest.param(
        {"shadow": "model-b"},
        "shadow must be a ShadowTestVariant, e.g. ShadowTestVariant(model=..., instance_type='ml.m5.xlarge'); "
        "got 'model-b'",
        id="variant-type",
    ),
    pytest.param(
        {"name": "my_test"},
        "name 'my_test' may hold only letters, digits and hyphens, 1-120 characters, starting and ending with a "
        "letter or digit",
        id="name-pattern",
    ),
    pytest.param(
        {"endpoint": "my endpoint"},
        "endpoint 'my endpoint' may hold only letters, digits and hyphens, 1-63 characters, starting and ending with "
        "a letter or digit",
        id="endpoint-pattern",
    ),
    pytest.param(
        {"endpoint": 7},
        "endpoint must be an aws_sagemaker.CfnEndpoint or an endpoint name; got 7",
        id="endpoint-type",
    ),
    pytest.param(
        {"sampling_percentage": 0}, "sampling_percentage must be a whole number from 1 to 100; got 0", id="sampling-0"
    ),
    pytest.param(
        {"sampling_percentage": 101},
        "sampling_percentage must be a whole number from 1 to 100; got 101",
        id="sampling-101",
    ),
    pytest.param(
        {"sampling_percentage": 50.0},
        "sampling_percentage must be a whole number from 1 to 100; got 50.0",
        id="sampling-float",
    ),
    pytest.param(
        {"end_time": "2026-12-01T00:00:00Z"},
        "end_time must be a timezone-aware datetime, e.g. datetime(2026, 12, 1, tzinfo=timezone.utc); "
        "got '2026-12-01T00:00:00Z'",
        id="end-time-type",
    ),
    pytest.param(
        {"end_time": dt.datetime(2026, 12, 1)},  # a naive datetime
        "end_time must be a timezone-aware datetime, e.g. datetime(2026, 12, 1, tzinfo=timezone.utc); "
        "got datetime.datetime(2026, 12, 1, 0, 0)",
        id="end-time-naive",
    ),
    pytest.param(
        {"data_capture": "s3://bucket/prefix"},
        "data_capture must be a ShadowTestDataCapture; got 's3://bucket/prefix'",
        id="data-capture-type",
    ),
    pytest.param(
        {"on_end": "promote"},
        "on_end takes a ShadowTestEnd, e.g. ShadowTestEnd.promote() or ShadowTestEnd.retain(); got 'promote'",
        id="on-end-type",
    ),
    pytest.param(
        {"on_end": ShadowTestEnd.promote(instance_type="ml.m5.huge")},
        "on_end.instance_type must be a SageMaker real-time inference instance type such as ml.m5.xlarge; "
        "got 'ml.m5.huge'",
        id="promoted-instance-type",
    ),
    pytest.param(
        {"on_end": ShadowTestEnd.promote(instance_count=0)},
        "on_end.instance_count must be a whole number from 1 to 999,999,999 (the promoted variant replaces "
        "production); got 0",
        id="promoted-instance-count",
    ),
    pytest.param(
        {"on_end": ShadowTestEnd.retain(desired_state="Done")},
        "desired_state must be Completed or Cancelled (a DesiredState); got 'Done'",
        id="desired-state",
    ),
    pytest.param(
        {"completion_timeout": cdk.Duration.hours(1)},
        "completion_timeout must be between 0 seconds and 55 minutes (CloudFormation waits an hour at most for a "
        "custom resource); got 3600 seconds",
        id="completion-timeout",
    ),
    pytest.param(
        {"stop_on_update": False, "stop_on_delete": False},
        "stop_on_update and stop_on_delete are both False: the stopper would never stop anything",
        id="never-stops",
    ),
    pytest.param({"function": "my-function"}, "function must be a StopperFunction; got 'my-function'", id="function"),
]


@pytest.mark.parametrize(("changes", "message"), ERRORS)
def test_fails_when_a_prop_is_bad(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ShadowTest(new_stack(), "Test", **props(**changes))


@pytest.mark.parametrize("prefix", ["", "/", 7])
def test_fails_when_the_data_capture_prefix_names_no_folder(prefix: Any) -> None:
    stack = new_stack()
    capture = ShadowTestDataCapture(bucket=s3.Bucket.from_bucket_name(stack, "B", "bucket"), prefix=prefix)
    message = f"data_capture.prefix must name a folder in the bucket, e.g. 'shadow-tests/my-test'; got {prefix!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ShadowTest(stack, "Test", **props(data_capture=capture))


def test_the_readme_repeats_every_reason_the_shadow_test_acknowledges_with() -> None:
    readme = " ".join(README.read_text().split())
    for reason in ACKNOWLEDGED.values():
        assert reason in readme


def test_a_refused_end_leaves_nothing_behind_and_a_corrected_one_may_follow() -> None:
    stack = new_stack()
    test = ShadowTest(stack, "Test", **props())

    with pytest.raises(ValueError, match="max_error_rate must be a number from 0 to 1"):
        test.end_with(ShadowTestEnd.promote(guard=PromotionGuard(max_error_rate=5)))
    stopper = test.end_with(ShadowTestEnd.promote())

    assert test.stopper is stopper


def test_an_env_stack_is_clean_under_aws_solutions_too() -> None:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "S", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    ShadowTest(stack, "Test", on_end=ShadowTestEnd.promote(), **props())
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    app.synth()  # the acknowledgements name the account and region as cdk-nag does


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"role": "arn:aws:iam::123456789012:role/x"}, "role must be an aws_iam.IRole"),
        (
            {"data_capture": ShadowTestDataCapture(bucket="my-bucket", prefix="p")},  # type: ignore[arg-type]
            "data_capture.bucket must be an aws_s3.IBucket",
        ),
        ({"data_capture": "capture-prefix-*"}, "data_capture must be a ShadowTestDataCapture"),
    ],
    ids=["role-a-string", "bucket-a-string", "capture-a-string"],
)
def test_fails_when_a_resource_prop_is_not_one(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        ShadowTest(new_stack(), "Test", **props(**change))


def test_fails_when_the_capture_prefix_would_widen_what_the_role_may_write() -> None:
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "B", "my-bucket")
    with pytest.raises(
        ValueError, match=r"^data_capture.prefix must be at most 443 printable characters without \* or \?"
    ):
        ShadowTest(stack, "Test", data_capture=ShadowTestDataCapture(bucket=bucket, prefix="a/*/b"), **props())


GUARD_POLICY = {"Description": "What the stack's promotion guards may read and, to roll a promotion back, update"}


def test_a_test_on_a_named_cfn_endpoint_lets_its_stopper_describe_and_update_that_endpoint_only() -> None:
    # GIVEN a CfnEndpoint named in the app, and a configuration to roll back to that CloudFormation names
    stack = new_stack()
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_name="My-Endpoint", endpoint_config_name="config")
    config = sagemaker.CfnEndpointConfig(stack, "Config", production_variants=[])
    alarm = cloudwatch.Alarm(
        stack, "Errors", metric=cloudwatch.Metric(namespace="N", metric_name="M"), threshold=1, evaluation_periods=1
    )
    guard = PromotionGuard(alarms=[alarm], bake=cdk.Duration.minutes(10), roll_back_to=config)

    # WHEN a test on it ends in a promotion that bakes and may roll back
    ShadowTest(stack, "Test", **props(endpoint=endpoint, on_end=ShadowTestEnd.promote(guard=guard)))
    template = Template.from_stack(stack)

    # THEN the stopper's function may describe and update that endpoint, by its ARN in lower case, and update it
    # only to that configuration, by its Ref (an AWS::SageMaker::EndpointConfig's Ref is its ARN)
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            **GUARD_POLICY,
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "sagemaker:DescribeEndpoint",
                            "Effect": "Allow",
                            "Resource": sagemaker_arn("endpoint/my-endpoint"),
                        },
                        {
                            "Action": "sagemaker:UpdateEndpoint",
                            "Effect": "Allow",
                            "Resource": [sagemaker_arn("endpoint/my-endpoint"), {"Ref": stack.get_logical_id(config)}],
                        },
                    ]
                )
            },
        },
    )
    [guard_policy] = template.find_resources("AWS::IAM::ManagedPolicy", {"Properties": GUARD_POLICY}).values()
    written = json.dumps(guard_policy)
    assert ":endpoint/*" not in written
    assert ":endpoint-config/*" not in written
    # AND the experiment's role may update that endpoint only (an endpoint's Ref is its ARN)
    assert policy_statements(template)[0]["Resource"] == {"Ref": stack.get_logical_id(endpoint)}


def test_a_test_on_an_endpoint_named_only_at_deploy_allows_the_account_s_endpoints_acknowledged() -> None:
    # GIVEN an app checked by cdk-nag (an unacknowledged finding makes its synth, Template's too, raise
    # ValidationFailed), and an endpoint name that is a parameter: its lower-case ARN cannot be written at synth
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Stack")
    name = cdk.CfnParameter(stack, "EndpointName").value_as_string

    # WHEN a test runs on it
    ShadowTest(stack, "Test", on_end=ShadowTestEnd.promote(), **props(endpoint=name))

    # THEN its role may describe and update the account's and region's endpoints, and cdk-nag's finding is acknowledged
    assert policy_statements(Template.from_stack(stack))[0] == {
        "Action": ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpoint"],
        "Effect": "Allow",
        "Resource": sagemaker_arn("endpoint/*"),
    }  # and cdk-nag's AwsSolutions-IAM5 finding on it was acknowledged: the synth did not raise
