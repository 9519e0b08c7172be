"""The InferenceExperimentStopper construct: what it synthesizes and what it refuses, with aws_cdk.assertions."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Match, Template
from conftest import load_event
from iam_quota import role_policies
from inference_experiment_stopper import (
    DesiredState,
    InferenceExperimentStopper,
    ModelVariantAction,
    ModelVariantConfig,
    PromotionGuard,
    StopperFunction,
)
from inference_experiment_stopper._asset import HANDLER_DIR

TYPE = "Custom::InferenceExperimentStop"
EXPERIMENTS = ["sagemaker:DescribeInferenceExperiment", "sagemaker:StopInferenceExperiment"]
VARIANT = ModelVariantConfig(
    model_name="model-b", variant_name="shadow", instance_type="ml.m5.xlarge", instance_count=2
)
FULL: dict[str, Any] = {
    "experiment_name": "shadow-test",
    "model_variant_actions": {"shadow": ModelVariantAction.PROMOTE, "production": ModelVariantAction.REMOVE},
    "desired_model_variants": [VARIANT],
    "desired_state": DesiredState.COMPLETED,
    "reason": "shadow beat production on p99",
    "completion_timeout": cdk.Duration.minutes(10),
}


def new_stack(bundle: bool = False) -> cdk.Stack:
    context: dict[str, Any] = {} if bundle else {"aws:cdk:bundling-stacks": []}
    return cdk.Stack(cdk.App(context=context), "Stack")


def template_of(**props: Any) -> Template:
    stack = new_stack()
    InferenceExperimentStopper(stack, "Stopper", **props)
    return Template.from_stack(stack)


def stopper_properties(template: Template) -> dict[str, Any]:
    [resource] = template.find_resources(TYPE).values()
    properties: dict[str, Any] = resource["Properties"]
    return properties


def assert_service_token_is_the_stop_function(properties: dict[str, Any]) -> None:
    logical_id = properties["ServiceToken"]["Fn::GetAtt"][0]
    assert re.fullmatch(r"InferenceExperimentStopperFunction[0-9A-F]{8}", logical_id)
    assert properties["ServiceToken"] == {"Fn::GetAtt": [logical_id, "Arn"]}


def test_writes_the_wire_format_the_handler_is_tested_with() -> None:
    """One contract for both sides: the construct writes the handler's event fixture, as CloudFormation sends it."""
    properties = stopper_properties(template_of(**FULL))
    sent = load_event("Create")["ResourceProperties"]

    assert_service_token_is_the_stop_function(properties)
    del properties["ServiceToken"], sent["ServiceToken"]
    assert as_cloudformation_sends(properties) == sent


def as_cloudformation_sends(value: Any) -> Any:
    """CloudFormation hands a custom resource every scalar property as a string."""
    if isinstance(value, dict):
        return {key: as_cloudformation_sends(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(item) for item in value]
    return value if isinstance(value, str) else str(value)


def test_plain_strings_with_the_aws_spellings_equal_the_enums() -> None:
    strings = dict(FULL, model_variant_actions={"shadow": "Promote", "production": "Remove"}, desired_state="Completed")
    assert stopper_properties(template_of(**strings)) == stopper_properties(template_of(**FULL))


def test_leaves_out_what_is_not_given_and_defaults_the_rest() -> None:
    properties = stopper_properties(
        template_of(experiment_name="my-shadow-test", model_variant_actions={"shadow": ModelVariantAction.RETAIN})
    )

    assert set(properties) == {
        "ServiceToken",
        "ServiceTimeout",
        "Name",
        "ModelVariantActions",
        "StopOn",
        "CompletionTimeoutSeconds",
    }
    assert properties["StopOn"] == ["Update", "Delete"]
    assert properties["CompletionTimeoutSeconds"] == 1800  # 30 minutes
    assert properties["ServiceTimeout"] == "1920"


@pytest.mark.parametrize(("update", "delete", "stop_on"), [(True, False, ["Update"]), (False, True, ["Delete"])])
def test_stop_on_lists_the_chosen_events(update: bool, delete: bool, stop_on: list[str]) -> None:
    properties = stopper_properties(template_of(**FULL, stop_on_update=update, stop_on_delete=delete))
    assert properties["StopOn"] == stop_on


def test_resource_type_construct_id_and_attributes() -> None:
    stack = new_stack()
    stopper = InferenceExperimentStopper(stack, "Stopper", **FULL)
    template = Template.from_stack(stack)

    child = stopper.node.find_child("Resource")
    assert isinstance(child, cdk.CustomResource)
    logical_id = stack.get_logical_id(child.node.default_child)  # type: ignore[arg-type]
    assert stack.resolve(stopper.experiment_arn) == {"Fn::GetAtt": [logical_id, "InferenceExperimentArn"]}
    assert stack.resolve(stopper.status) == {"Fn::GetAtt": [logical_id, "Status"]}
    assert stack.resolve(stopper.endpoint_status) == {"Fn::GetAtt": [logical_id, "EndpointStatus"]}
    template.resource_count_is(TYPE, 1)


def shadow_experiment(stack: cdk.Stack, construct_id: str = "ShadowTest", **overrides: Any) -> Any:
    """A CfnInferenceExperiment with variants production and shadow (the shadow one)."""

    def variant(name: str) -> sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty:
        return sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty(
            model_name=f"model-{name}",
            variant_name=name,
            infrastructure_config=sagemaker.CfnInferenceExperiment.ModelInfrastructureConfigProperty(
                infrastructure_type="RealTimeInference",
                real_time_inference_config=sagemaker.CfnInferenceExperiment.RealTimeInferenceConfigProperty(
                    instance_type="ml.m5.xlarge", instance_count=1
                ),
            ),
        )

    props: dict[str, Any] = {
        "name": "from-the-experiment",
        "type": "ShadowMode",
        "role_arn": "arn:aws:iam::123456789012:role/sagemaker",
        "endpoint_name": "endpoint",
        "model_variants": [variant("production"), variant("shadow")],
        "shadow_mode_config": sagemaker.CfnInferenceExperiment.ShadowModeConfigProperty(
            source_model_variant_name="production",
            shadow_model_variants=[
                sagemaker.CfnInferenceExperiment.ShadowModelVariantConfigProperty(
                    shadow_model_variant_name="shadow", sampling_percentage=50
                )
            ],
        ),
        **overrides,
    }
    return sagemaker.CfnInferenceExperiment(stack, construct_id, **props)


def test_with_a_cfn_inference_experiment_takes_its_name_and_depends_on_it() -> None:
    stack = new_stack()
    experiment = shadow_experiment(stack)
    InferenceExperimentStopper(
        stack,
        "Stopper",
        experiment=experiment,
        model_variant_actions={"shadow": ModelVariantAction.PROMOTE, "production": ModelVariantAction.REMOVE},
        desired_model_variants=[VARIANT],
    )
    template = Template.from_stack(stack)

    [resource] = template.find_resources(TYPE).values()
    assert resource["Properties"]["Name"] == "from-the-experiment"
    assert stack.get_logical_id(experiment) in resource["DependsOn"]


EXPERIMENT_MISMATCHES = [
    pytest.param(
        {"model_variant_actions": {"shadw": "Promote"}, "desired_model_variants": None},
        "model_variant_actions names variant 'shadw', which is not one of experiment Stack/ShadowTest's variants: "
        "production, shadow",
        id="unknown-action-variant",
    ),
    pytest.param(
        {"desired_model_variants": [ModelVariantConfig("model-b", "canary", "ml.m5.xlarge", 1)]},
        "desired_model_variants[0].variant_name names variant 'canary', which is not one of experiment "
        "Stack/ShadowTest's variants: production, shadow",
        id="unknown-desired-variant",
    ),
    pytest.param(
        {"model_variant_actions": {"production": "Promote", "shadow": "Remove"}, "desired_model_variants": None},
        "model_variant_actions promotes 'production', which is not the shadow variant of experiment Stack/ShadowTest "
        "(its shadow is shadow); only a shadow can replace production",
        id="promotes-production",
    ),
]


@pytest.mark.parametrize(("changes", "message"), EXPERIMENT_MISMATCHES)
def test_fails_when_the_stop_does_not_fit_the_experiment_in_the_app(changes: dict[str, Any], message: str) -> None:
    stack = new_stack()
    props = dict(FULL, experiment=shadow_experiment(stack), **changes)
    del props["experiment_name"]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        InferenceExperimentStopper(stack, "Stopper", **props)


def test_variants_and_shadow_that_are_tokens_are_not_checked_against_the_experiment() -> None:
    stack = new_stack()
    variants = cdk.Lazy.any(_Produce([]))  # a token: known only when the template is resolved
    shadow = sagemaker.CfnInferenceExperiment.ShadowModeConfigProperty(
        source_model_variant_name="production",
        shadow_model_variants=[
            sagemaker.CfnInferenceExperiment.ShadowModelVariantConfigProperty(
                shadow_model_variant_name=cdk.Lazy.string(_Produce("shadow")), sampling_percentage=50
            )
        ],
    )
    experiment = shadow_experiment(stack, model_variants=variants, shadow_mode_config=shadow)

    InferenceExperimentStopper(
        stack, "Stopper", experiment=experiment, model_variant_actions={"anything": ModelVariantAction.PROMOTE}
    )

    assert stopper_properties(Template.from_stack(stack))["ModelVariantActions"] == {"anything": "Promote"}


@jsii.implements(cdk.IStableAnyProducer, cdk.IStableStringProducer)
class _Produce:
    def __init__(self, value: Any) -> None:
        self.value = value

    def produce(self) -> Any:
        return self.value


def test_fails_when_two_stoppers_declare_the_same_stop_for_the_same_event() -> None:
    stack = new_stack()
    InferenceExperimentStopper(stack, "Promote", experiment_name="shadow-test", model_variant_actions={"s": "Promote"})
    message = (
        "Stack/Promote and Stack/Remove both stop inference experiment shadow-test on Update: two declarations of one "
        "stop contradict each other and both would be sent; give one of them stop_on_update=False"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        InferenceExperimentStopper(
            stack, "Remove", experiment_name="shadow-test", model_variant_actions={"s": "Remove"}, stop_on_delete=False
        )


def test_one_stopper_may_promote_on_update_and_another_remove_on_delete() -> None:
    stack = new_stack()
    for construct_id, action, on_update in (("OnUpdate", "Promote", True), ("OnDelete", "Remove", False)):
        InferenceExperimentStopper(
            stack,
            construct_id,
            experiment_name="shadow-test",
            model_variant_actions={"shadow": action},
            stop_on_update=on_update,
            stop_on_delete=not on_update,
        )
    # The same experiment in another stack is another declaration altogether.
    app = stack.node.root
    assert isinstance(app, cdk.App)
    other = cdk.Stack(app, "Other")
    InferenceExperimentStopper(other, "OnUpdate", experiment_name="shadow-test", model_variant_actions={"s": "Remove"})

    assert [
        p["StopOn"] for p in Template.from_stack(stack).find_resources(TYPE, {}).values() for p in [p["Properties"]]
    ] == [
        ["Update"],
        ["Delete"],
    ]


def test_the_stop_depends_on_everything_the_function_needs_so_it_runs_before_their_deletion() -> None:
    template = template_of(**FULL)
    [resource] = template.find_resources(TYPE).values()

    needs = {
        logical_id
        for kind in (
            "AWS::IAM::Role",
            "AWS::IAM::ManagedPolicy",
            "AWS::Logs::LogGroup",
            "AWS::Lambda::EventInvokeConfig",
        )
        for logical_id in template.find_resources(kind)
    }
    assert len(needs) == 4
    assert set(resource["DependsOn"]) == needs
    # The function itself is reached through the service token (a DependsOn on it would be redundant).
    [function_id] = template.find_resources("AWS::Lambda::Function")
    assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": [function_id, "Arn"]}


def test_one_function_serves_every_stopper_in_a_stack() -> None:
    stack = new_stack()
    for index, minutes in enumerate((3, 12, 7)):
        InferenceExperimentStopper(
            stack,
            f"Stopper{index}",
            experiment_name=f"experiment-{index}",
            model_variant_actions={"shadow": "Promote"},
            completion_timeout=cdk.Duration.minutes(minutes),
        )
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::Lambda::Function", 1)
    template.resource_count_is("AWS::IAM::Role", 1)
    template.resource_count_is(TYPE, 3)
    template.has_resource_properties("AWS::Lambda::Function", {"Timeout": 13 * 60})
    assert experiments_allowed(template) == [["experiment-0", "experiment-1", "experiment-2"]]


def experiments_allowed(template: Template) -> list[list[str]]:
    """The experiment names each managed policy allows, policy by policy."""
    allowed = []
    for policy in template.find_resources("AWS::IAM::ManagedPolicy").values():
        [statement] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == EXPERIMENTS]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        allowed.append([arn_name(resource) for resource in resources])
    return allowed


def arn_name(resource: dict[str, Any]) -> str:
    """The experiment name in an ARN that CDK wrote as an Fn::Join of this stack's partition, region and account."""
    separator, parts = resource["Fn::Join"]
    assert separator == ""
    assert parts[:-1] == [
        "arn:",
        {"Ref": "AWS::Partition"},
        ":sagemaker:",
        {"Ref": "AWS::Region"},
        ":",
        {"Ref": "AWS::AccountId"},
    ]
    tail: str = parts[-1]
    assert tail.startswith(":inference-experiment/")
    return tail.removeprefix(":inference-experiment/")


def test_the_role_may_do_exactly_what_the_stop_needs_on_exactly_these_resources() -> None:
    template = template_of(**FULL)
    [role_id] = template.find_resources("AWS::IAM::Role")

    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        # The stack's status tells a rollback apart; its resources tell a moved construct's clean-up.
                        "Action": ["cloudformation:DescribeStacks", "cloudformation:ListStackResources"],
                        "Effect": "Allow",
                        "Resource": {"Ref": "AWS::StackId"},
                    },
                    {
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Effect": "Allow",
                        "Resource": {"Fn::GetAtt": [Match.string_like_regexp("LogGroup"), "Arn"]},
                    },
                    {
                        # Every decision is announced on the account's default event bus, and no other.
                        "Action": "events:PutEvents",
                        "Effect": "Allow",
                        "Resource": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":events:",
                                    {"Ref": "AWS::Region"},
                                    ":",
                                    {"Ref": "AWS::AccountId"},
                                    ":event-bus/default",
                                ],
                            ]
                        },
                    },
                    {
                        "Action": "lambda:InvokeFunction",
                        "Effect": "Allow",
                        "Resource": {"Fn::GetAtt": [Match.string_like_regexp("Function"), "Arn"]},
                    },
                    {
                        "Action": EXPERIMENTS,
                        "Effect": "Allow",
                        "Resource": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":sagemaker:",
                                    {"Ref": "AWS::Region"},
                                    ":",
                                    {"Ref": "AWS::AccountId"},
                                    ":inference-experiment/shadow-test",
                                ],
                            ]
                        },
                    },
                ],
                "Version": "2012-10-17",
            },
            "Roles": [{"Ref": role_id}],
        },
    )
    template.resource_count_is("AWS::IAM::Policy", 0)  # no inline policy at all
    template.resource_count_is("AWS::IAM::ManagedPolicy", 1)
    [role] = template.find_resources("AWS::IAM::Role").values()
    assert "ManagedPolicyArns" not in role["Properties"]  # no AWS-managed policy
    assert "Policies" not in role["Properties"]
    assert '"*"' not in json.dumps(template.find_resources("AWS::IAM::ManagedPolicy"))


def test_a_name_with_capitals_is_allowed_in_both_spellings() -> None:
    template = template_of(**dict(FULL, experiment_name="My-Shadow"))
    assert experiments_allowed(template) == [["My-Shadow", "my-shadow"]]


@pytest.mark.parametrize(
    ("minutes", "function_timeout", "service_timeout"), [(3, 240, 300), (13, 840, 900), (55, 900, 3420)]
)
def test_waits_up_to_55_minutes_with_one_function_of_at_most_15(
    minutes: int, function_timeout: int, service_timeout: int
) -> None:
    template = template_of(**dict(FULL, completion_timeout=cdk.Duration.minutes(minutes)))
    properties = stopper_properties(template)

    assert properties["ServiceTimeout"] == str(service_timeout)  # CloudFormation's own limit is 3600
    template.has_resource_properties("AWS::Lambda::Function", {"Timeout": function_timeout})


def test_the_self_invoke_permission_does_not_make_the_function_depend_on_its_policy() -> None:
    template = template_of(**FULL)
    [(function_id, function)] = template.find_resources("AWS::Lambda::Function").items()
    [policy_id] = template.find_resources("AWS::IAM::ManagedPolicy")
    [stop] = template.find_resources(TYPE).values()

    assert policy_id not in function.get("DependsOn", [])
    assert policy_id in stop["DependsOn"]
    assert function_id in json.dumps(template.find_resources("AWS::IAM::ManagedPolicy"))


def test_the_function_runs_the_newest_python_with_its_own_log_group_and_no_async_retries() -> None:
    template = template_of(**FULL)

    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Handler": "index.handler",
            "Architectures": ["arm64"],
            "Timeout": 11 * 60,
            "LoggingConfig": {"LogGroup": {"Ref": Match.string_like_regexp("LogGroup")}},
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 0})


def event_age(template: Template) -> int:
    """How long the function's async queue keeps an event (the one EventInvokeConfig's MaximumEventAgeInSeconds)."""
    [config] = template.find_resources("AWS::Lambda::EventInvokeConfig").values()
    age: int = config["Properties"]["MaximumEventAgeInSeconds"]
    return age


@pytest.mark.parametrize(
    ("completion_timeout", "seconds"),
    [
        pytest.param(None, 1920, id="default-30-minutes"),
        pytest.param(cdk.Duration.seconds(0), 120, id="answer-at-once"),
        pytest.param(cdk.Duration.minutes(55), 3420, id="longest-55-minutes"),
    ],
)
def test_a_throttled_event_is_kept_no_longer_than_cloudformation_waits_for_it(
    completion_timeout: cdk.Duration | None, seconds: int
) -> None:
    props = {} if completion_timeout is None else {"completion_timeout": completion_timeout}
    template = template_of(experiment_name="shadow-test", model_variant_actions={"shadow": "Promote"}, **props)

    assert event_age(template) == seconds
    assert stopper_properties(template)["ServiceTimeout"] == str(seconds)
    assert 60 <= event_age(template) <= 3600  # Lambda's lower bound; CloudFormation's longest ServiceTimeout


def test_the_event_age_follows_the_longest_service_timeout_of_the_stoppers_served() -> None:
    # GIVEN a default function serving three stoppers, the longest served second (the age grows, then stays)
    stack = new_stack()
    for index, minutes in enumerate((3, 40, 7)):
        InferenceExperimentStopper(
            stack,
            f"Stopper{index}",
            experiment_name=f"experiment-{index}",
            model_variant_actions={"shadow": "Promote"},
            completion_timeout=cdk.Duration.minutes(minutes),
        )
    # WHEN it is synthesized
    template = Template.from_stack(stack)

    # THEN its one async configuration keeps events as long as the longest stopper's ServiceTimeout, no longer
    template.resource_count_is("AWS::Lambda::EventInvokeConfig", 1)
    service_timeouts = [int(r["Properties"]["ServiceTimeout"]) for r in template.find_resources(TYPE).values()]
    assert sorted(service_timeouts) == [5 * 60, 9 * 60, 42 * 60]
    assert event_age(template) == 42 * 60


def test_a_function_that_serves_no_stopper_keeps_events_as_long_as_an_immediate_answer_waits() -> None:
    stack = new_stack()
    StopperFunction(stack, "Idle")
    assert event_age(Template.from_stack(stack)) == 120


def test_tokens_are_not_validated() -> None:
    stack = new_stack()
    name = cdk.CfnParameter(stack, "Name").value_as_string
    count = cdk.CfnParameter(stack, "Count", type="Number").value_as_number
    variant = ModelVariantConfig(model_name=name, variant_name="shadow", instance_type=name, instance_count=count)  # type: ignore[arg-type]
    InferenceExperimentStopper(
        stack,
        "Stopper",
        experiment_name=name,
        model_variant_actions={"shadow": "Promote"},
        desired_model_variants=[variant],
    )

    properties = stopper_properties(Template.from_stack(stack))
    assert properties["Name"] == {"Ref": "Name"}
    realtime = properties["DesiredModelVariants"][0]["InfrastructureConfig"]["RealTimeInferenceConfig"]
    assert realtime == {"InstanceType": {"Ref": "Name"}, "InstanceCount": {"Ref": "Count"}}


def test_bundles_the_handler_and_crhelper_without_docker() -> None:
    stack = new_stack(bundle=True)
    InferenceExperimentStopper(stack, "Stopper", **FULL)
    assembly = cdk.App.of(stack).synth()  # type: ignore[union-attr]

    [asset] = Path(assembly.directory).glob("asset.*")
    files = {str(path.relative_to(asset)) for path in asset.rglob("*") if path.is_file()}
    # Every module of the handler (whichever they are), crhelper with its licence, and nothing else.
    handler_modules = {path.name for path in HANDLER_DIR.glob("*.py")}
    assert {"index.py", "rules.py"} <= handler_modules
    assert files == handler_modules | {
        "crhelper/__init__.py",
        "crhelper/log_helper.py",
        "crhelper/resource_helper.py",
        "crhelper/utils.py",
        "crhelper/LICENSE",
        "crhelper/NOTICE",
    }
    assert (asset / "index.py").read_text() == (HANDLER_DIR / "index.py").read_text()


NAME_RULE = "may hold only letters, digits and hyphens, 1-{} characters, starting and ending with a letter or digit"
BAD_PROPS = [
    pytest.param(
        {"experiment_name": None},
        "Give exactly one of experiment_name and experiment; got experiment_name=None and experiment=None",
        id="neither-name",
    ),
    pytest.param(
        {"experiment_name": "bad_name"},
        f"experiment_name 'bad_name' {NAME_RULE.format(120)}",
        id="name-pattern",
    ),
    pytest.param(
        {"experiment_name": "a" * 121},
        f"experiment_name '{'a' * 121}' {NAME_RULE.format(120)}",
        id="name-too-long",
    ),
    pytest.param(
        {"model_variant_actions": {}},
        "model_variant_actions must map 1 or 2 variant names to actions; got {}",
        id="no-actions",
    ),
    pytest.param(
        {"model_variant_actions": {"a": "Retain", "b": "Retain", "c": "Retain"}},
        "model_variant_actions must map 1 or 2 variant names to actions; "
        "got {'a': 'Retain', 'b': 'Retain', 'c': 'Retain'}",
        id="three-actions",
    ),
    pytest.param(
        {"model_variant_actions": {"shadow_1": "Promote"}},
        f"variant name 'shadow_1' in model_variant_actions {NAME_RULE.format(63)}",
        id="variant-pattern",
    ),
    pytest.param(
        {"model_variant_actions": {"v" * 64: "Promote"}},
        f"variant name '{'v' * 64}' in model_variant_actions {NAME_RULE.format(63)}",
        id="variant-too-long",
    ),
    pytest.param(
        {"model_variant_actions": {"shadow": "Promot"}},
        "model_variant_actions['shadow'] must be Promote, Remove or Retain (a ModelVariantAction); got 'Promot'",
        id="unknown-action",
    ),
    pytest.param(
        {"model_variant_actions": {"a": "Promote", "b": "Promote"}, "desired_model_variants": None},
        "model_variant_actions may promote one variant only (an experiment has one shadow variant), not a, b",
        id="two-promotes",
    ),
    pytest.param(
        {"model_variant_actions": {"shadow": "Remove"}},
        "desired_model_variants[0].variant_name 'shadow' is declared Remove in model_variant_actions, "
        "so it cannot have desired infrastructure",
        id="infrastructure-for-removed",
    ),
    pytest.param(
        {"desired_model_variants": [VARIANT, VARIANT, VARIANT]},
        "desired_model_variants may list at most 2 variants; got 3",
        id="three-variants",
    ),
    pytest.param(
        {"desired_model_variants": [ModelVariantConfig("model_b", "shadow", "ml.m5.xlarge", 1)]},
        f"model name 'model_b' in desired_model_variants[0].model_name {NAME_RULE.format(63)}",
        id="model-name",
    ),
    pytest.param(
        {"desired_model_variants": [ModelVariantConfig("model-b", "shadow", "m5.xlarge", 1)]},
        "desired_model_variants[0].instance_type must be a SageMaker real-time inference instance type such as "
        "ml.m5.xlarge; got 'm5.xlarge'",
        id="instance-type",
    ),
    pytest.param(
        {"desired_model_variants": [ModelVariantConfig("model-b", "shadow", "ml.m5.xlarge", -1)]},
        "desired_model_variants[0].instance_count must be a whole number from 0 to 999,999,999; got -1",
        id="negative-count",
    ),
    pytest.param(
        {"desired_model_variants": [ModelVariantConfig("model-b", "shadow", "ml.m5.xlarge", 1.5)]},  # type: ignore[arg-type]
        "desired_model_variants[0].instance_count must be a whole number; got 1.5",
        id="float-count",
    ),
    pytest.param(
        {"desired_model_variants": [ModelVariantConfig("model-b", "shadow", "ml.m5.xlarge", True)]},
        "desired_model_variants[0].instance_count must be a whole number; got True",
        id="bool-count",
    ),
    pytest.param(
        {"desired_state": "Stopped"},
        "desired_state must be Completed or Cancelled (a DesiredState); got 'Stopped'",
        id="desired-state",
    ),
    pytest.param(
        {"reason": "r" * 1025},
        f"reason must be at most 1024 characters, not 1025; got {'r' * 40!r}...",
        id="reason-too-long",
    ),
    pytest.param(
        {"completion_timeout": cdk.Duration.minutes(56)},
        "completion_timeout must be between 0 seconds and 55 minutes (CloudFormation waits an hour at most for a "
        "custom resource); got 3360 seconds",
        id="timeout-too-long",
    ),
    pytest.param(
        {"model_variant_actions": [("shadow", "Promote")]},
        "model_variant_actions must be a mapping of variant name to ModelVariantAction, "
        "e.g. {'shadow': ModelVariantAction.PROMOTE}; got [('shadow', 'Promote')]",
        id="actions-as-pairs",
    ),
    pytest.param(
        {"model_variant_actions": "shadow=Promote"},
        "model_variant_actions must be a mapping of variant name to ModelVariantAction, "
        "e.g. {'shadow': ModelVariantAction.PROMOTE}; got 'shadow=Promote'",
        id="actions-as-string",
    ),
    pytest.param(
        {"model_variant_actions": {5: "Promote"}},
        "variant name 5 in model_variant_actions must be a string",
        id="variant-not-a-string",
    ),
    pytest.param(
        {"desired_model_variants": VARIANT},
        f"desired_model_variants must be a list of ModelVariantConfig; got {VARIANT!r}",
        id="one-variant-not-in-a-list",
    ),
    pytest.param(
        {"desired_model_variants": [VARIANT.to_api()]},
        f"desired_model_variants[0] must be a ModelVariantConfig; got {VARIANT.to_api()!r}",
        id="variant-as-a-dict",
    ),
    pytest.param(
        {"completion_timeout": cdk.Duration.millis(1500)},
        "completion_timeout must be a whole number of seconds; got 1.5 seconds",
        id="timeout-fractional",
    ),
    pytest.param(
        {"completion_timeout": 600},
        "completion_timeout must be a Duration, e.g. Duration.minutes(10); got 600",
        id="timeout-not-a-duration",
    ),
    pytest.param(
        {"stop_on_update": False, "stop_on_delete": False},
        "stop_on_update and stop_on_delete are both False: the stopper would never stop anything",
        id="never-stops",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_PROPS)
def test_fails_when_a_prop_is_bad(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        template_of(**dict(FULL, **changes))


def test_fails_when_both_experiment_name_and_experiment_are_given() -> None:
    stack = new_stack()
    experiment = sagemaker.CfnInferenceExperiment(
        stack, "E", name="e", type="ShadowMode", role_arn="arn", endpoint_name="ep", model_variants=[]
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Give exactly one of experiment_name and experiment; "
            "got experiment_name='e' and experiment=a CfnInferenceExperiment"
        ),
    ):
        InferenceExperimentStopper(
            stack, "Stopper", experiment_name="e", experiment=experiment, model_variant_actions={"s": "Retain"}
        )


def test_fails_when_the_experiment_name_is_off_the_pattern() -> None:
    stack = new_stack()
    experiment = sagemaker.CfnInferenceExperiment(
        stack, "E", name="bad name", type="ShadowMode", role_arn="arn", endpoint_name="ep", model_variants=[]
    )
    message = "experiment.name 'bad name' " + NAME_RULE.format(120)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        InferenceExperimentStopper(stack, "Stopper", experiment=experiment, model_variant_actions={"s": "Retain"})


# The first policy also holds the function's own two statements, so it has room for fewer experiments.
@pytest.mark.parametrize(("name_length", "per_policy"), [(15, [53, 47]), (120, [25, 30, 30, 15])])
def test_a_hundred_stoppers_stay_within_iam_quotas(name_length: int, per_policy: list[int]) -> None:
    stack = new_stack()
    for index in range(100):
        name = f"{index:03d}-".ljust(name_length, "x")
        InferenceExperimentStopper(stack, f"S{index}", experiment_name=name, model_variant_actions={"s": "Retain"})
    template = Template.from_stack(stack)

    policies = role_policies(template.to_json())
    assert policies.fits, str(policies)
    assert [len(names) for names in experiments_allowed(template)] == per_policy


def test_three_hundred_stoppers_with_forty_character_names_fit_one_role() -> None:
    stack = new_stack()
    for index in range(300):
        name = f"team-{index:03d}-shadow-test-".ljust(40, "x")
        InferenceExperimentStopper(stack, f"S{index}", experiment_name=name, model_variant_actions={"s": "Retain"})
    template = Template.from_stack(stack)

    policies = role_policies(template.to_json())
    assert policies.fits, str(policies)
    assert sum(len(names) for names in experiments_allowed(template)) == 300


@pytest.mark.parametrize("name_length", [15, 40, 120])
@pytest.mark.parametrize(
    "function_id",
    [
        pytest.param(None, id="default-function"),
        pytest.param("ShadowTestStopperFunctionOfTheRecommendationsTeamInItsOwnStack", id="own-function-long-id"),
    ],
)
def test_a_full_first_policy_with_a_guard_stays_within_its_quota(name_length: int, function_id: str | None) -> None:
    # GIVEN the first policy at its fullest: the function's own statements with the guard's, then experiments
    stack = new_stack()
    function = StopperFunction(stack, function_id) if function_id else None
    guard = PromotionGuard(max_error_rate=0.01)
    for index in range(70):
        name = f"{index:03d}-".ljust(name_length, "x")
        InferenceExperimentStopper(
            stack,
            f"S{index}",
            experiment_name=name,
            model_variant_actions={"s": "Promote"},
            promotion_guard=guard if index == 0 else None,
            function=function,
        )
    # WHEN it is synthesized
    template = Template.from_stack(stack)

    # THEN the experiments overflowed into a second policy before the first went past IAM's 6,144 characters
    policies = role_policies(template.to_json())
    assert len(policies.managed) >= 2, str(policies)
    assert policies.fits, str(policies)


def test_fails_when_a_stack_names_more_experiments_than_one_role_may_be_allowed() -> None:
    stack = new_stack()
    for index in range(295):  # 30 of the longest names fill a managed policy (25 the first); a role may have 10
        name = f"{index:03d}-".ljust(120, "x")
        InferenceExperimentStopper(stack, f"S{index}", experiment_name=name, model_variant_actions={"s": "Retain"})

    message = (
        "The stoppers of Stack/InferenceExperimentStopperFunction name more inference experiments than IAM lets one "
        "role be allowed (295 ARNs fill its 10 managed policies); give some of them another StopperFunction, or put "
        "them in another stack"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        InferenceExperimentStopper(
            stack, "OneTooMany", experiment_name="one-more", model_variant_actions={"s": "Retain"}
        )


def stoppers_with_short_names(count: int) -> cdk.App:
    """An app whose one stack holds `count` stoppers with 15-character names, with CDK's metadata as the CLI adds it."""
    app = cdk.App(analytics_reporting=True, context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Stack")
    for index in range(count):
        name = f"{index:03d}-".ljust(15, "x")
        InferenceExperimentStopper(stack, f"S{index}", experiment_name=name, model_variant_actions={"s": "Retain"})
    return app


def test_a_stack_holds_487_stoppers_before_cloudformations_500_resources() -> None:
    # GIVEN 487 stoppers with short names: IAM would allow their role more (64 ARNs to a managed policy)
    app = stoppers_with_short_names(487)

    # WHEN it is synthesized THEN the stack has CloudFormation's maximum of resources
    template = app.synth().get_stack_by_name("Stack").template
    assert len(template["Resources"]) == 500

    # AND one stopper more is refused at synth, by aws-cdk, before IAM's quota is near
    message = (
        "Number of resources in stack 'Stack': 501 is greater than allowed maximum of 500: "
        "Custom::InferenceExperimentStop (488), AWS::Logs::LogGroup (1), AWS::IAM::Role (1), "
        "AWS::IAM::ManagedPolicy (8), AWS::Lambda::Function (1), AWS::Lambda::EventInvokeConfig (1), "
        "AWS::CDK::Metadata (1)"
    )
    with pytest.raises(RuntimeError, match=re.escape(message)):
        stoppers_with_short_names(488).synth()


def vpc_in(stack: cdk.Stack) -> ec2.IVpc:
    """A VPC from another team's network stack, as enterprise stacks usually get it."""
    return ec2.Vpc.from_vpc_attributes(
        stack,
        "Network",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["us-east-1a", "us-east-1b"],
        private_subnet_ids=["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
    )


def test_a_stopper_function_of_your_own_is_configured_as_given() -> None:
    stack = new_stack()
    key = kms.Key(stack, "LogKey", enable_key_rotation=True)
    group = ec2.SecurityGroup.from_security_group_id(stack, "Egress", "sg-0123456789abcdef0")
    function = StopperFunction(
        stack,
        "Stopper",
        log_retention=logs.RetentionDays.ONE_YEAR,
        log_group_encryption_key=key,
        vpc=vpc_in(stack),
        security_groups=[group],
        architecture=lambda_.Architecture.X86_64,
        reserved_concurrent_executions=2,
    )
    stopper = InferenceExperimentStopper(stack, "Stop", **FULL, function=function)
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::Lambda::Function", 1)  # no default function besides it
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Architectures": ["x86_64"],
            "ReservedConcurrentExecutions": 2,
            "VpcConfig": {
                "SubnetIds": ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"],
                "SecurityGroupIds": ["sg-0123456789abcdef0"],
            },
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {"RetentionInDays": 365, "KmsKeyId": {"Fn::GetAtt": [stack.get_logical_id(key.node.default_child), "Arn"]}},  # type: ignore[arg-type]
    )
    key_policy = json.dumps(template.find_resources("AWS::KMS::Key"))
    assert '"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}' in key_policy
    [role] = template.find_resources("AWS::IAM::Role").values()
    [managed] = role["Properties"]["ManagedPolicyArns"]
    assert managed["Fn::Join"][1][-1] == ":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    assert stopper.function is function.function
    assert stopper.function.role is function.role
    assert stopper.log_group is function.log_group


def test_each_function_is_allowed_only_the_experiments_of_its_own_stoppers() -> None:
    stack = new_stack()
    own = StopperFunction(stack, "Own")
    InferenceExperimentStopper(stack, "A", experiment_name="experiment-a", model_variant_actions={"s": "Retain"})
    InferenceExperimentStopper(
        stack, "B", experiment_name="experiment-b", model_variant_actions={"s": "Retain"}, function=own
    )
    template = Template.from_stack(stack)

    template.resource_count_is("AWS::Lambda::Function", 2)
    allowed = {}
    for policy in template.find_resources("AWS::IAM::ManagedPolicy").values():
        [role] = policy["Properties"]["Roles"]
        [statement] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == EXPERIMENTS]
        allowed[role["Ref"]] = arn_name(statement["Resource"])
    own_role = stack.get_logical_id(own.role.node.default_child)  # type: ignore[arg-type]
    assert allowed.pop(own_role) == "experiment-b"
    assert list(allowed.values()) == ["experiment-a"]


def test_fails_when_the_function_is_in_another_stack() -> None:
    stack = new_stack()
    app = stack.node.root
    assert isinstance(app, cdk.App)
    elsewhere = StopperFunction(cdk.Stack(app, "Shared"), "Stopper")
    message = (
        "function Shared/Stopper must be in the stopper's own stack Stack, so that its role and the stop are "
        "deployed and deleted together"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        InferenceExperimentStopper(stack, "Stop", **FULL, function=elsewhere)


@pytest.mark.parametrize(
    ("props", "message"),
    [
        pytest.param(
            {"reserved_concurrent_executions": 0},
            "reserved_concurrent_executions must be at least 1 (with 0 the function never runs and CloudFormation "
            "waits for an answer that never comes); got 0",
            id="no-concurrency",
        ),
        pytest.param(
            {"security_groups": []},
            "vpc_subnets and security_groups need a vpc; got them without one",
            id="security-groups-without-vpc",
        ),
        pytest.param(
            {"log_retention": 30},
            "log_retention must be an aws_logs.RetentionDays, such as logs.RetentionDays.ONE_MONTH; got 30",
            id="log-retention-in-days",
        ),
    ],
)
def test_fails_when_a_stopper_function_prop_is_bad(props: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        StopperFunction(new_stack(), "Stopper", **props)


GUARD = PromotionGuard(
    max_latency_ratio=1.1, latency_statistic="p99", max_error_rate=0.001, window=cdk.Duration.days(1)
)


def test_a_promotion_guard_is_written_as_one_property_and_read_with_its_own_permission() -> None:
    stack = new_stack()
    stopper = InferenceExperimentStopper(stack, "Stopper", **FULL, promotion_guard=GUARD)
    template = Template.from_stack(stack)

    assert stopper_properties(template)["PromotionGuard"] == {
        "MaxLatencyRatio": 1.1,
        "LatencyStatistic": "p99",
        "MaxErrorRate": 0.001,
        "MinInvocations": 1000,
        "WindowSeconds": 86400,
        "OnFailure": "Fail",
    }
    [policy] = template.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {"Action": "cloudwatch:GetMetricData", "Effect": "Allow", "Resource": "*"} in statements
    logical_id = stack.get_logical_id(stopper.node.find_child("Resource").node.default_child)  # type: ignore[arg-type]
    assert stack.resolve(stopper.decision) == {"Fn::GetAtt": [logical_id, "Decision"]}


def test_without_a_guard_the_function_gets_no_cloudwatch_permission() -> None:
    template = template_of(**FULL)
    assert "cloudwatch" not in json.dumps(template.find_resources("AWS::IAM::ManagedPolicy"))
    assert "PromotionGuard" not in stopper_properties(template)


def test_only_the_function_with_a_guarded_stopper_may_read_metrics() -> None:
    stack = new_stack()
    guarded = StopperFunction(stack, "Guarded")
    InferenceExperimentStopper(stack, "Plain", experiment_name="plain", model_variant_actions={"s": "Promote"})
    InferenceExperimentStopper(
        stack,
        "WithGuard",
        experiment_name="guarded",
        model_variant_actions={"s": "Promote"},
        promotion_guard=PromotionGuard(max_error_rate=0.01),
        function=guarded,
    )
    template = Template.from_stack(stack)

    readers = [
        policy["Properties"]["Roles"][0]["Ref"]
        for policy in template.find_resources("AWS::IAM::ManagedPolicy").values()
        if "cloudwatch:GetMetricData" in json.dumps(policy)
    ]
    assert readers == [stack.get_logical_id(guarded.role.node.default_child)]  # type: ignore[arg-type]


BAD_GUARDS = [
    pytest.param(
        PromotionGuard(),
        "promotion_guard needs alarms or at least one of max_latency_ratio, max_error_rate, max_error_rate_ratio",
        id="no-threshold",
    ),
    pytest.param(
        PromotionGuard(max_latency_ratio=0),
        "promotion_guard.max_latency_ratio must be a number above 0; got 0",
        id="zero-ratio",
    ),
    pytest.param(
        PromotionGuard(max_error_rate_ratio=-1.5),
        "promotion_guard.max_error_rate_ratio must be a number above 0; got -1.5",
        id="negative-ratio",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=1.5),
        "promotion_guard.max_error_rate must be a number from 0 to 1; got 1.5",
        id="error-rate-over-1",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=0.1, latency_statistic="p100"),
        "promotion_guard.latency_statistic must "
        "be Average, Minimum, Maximum or a percentile such as p99 or p99.9; got 'p100'",
        id="p100",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=0.1, latency_statistic="Median"),
        "promotion_guard.latency_statistic "
        "must be Average, Minimum, Maximum or a percentile such as p99 or p99.9; got 'Median'",
        id="median",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=0.1, min_invocations=0),
        "promotion_guard.min_invocations must be a whole number of at least 1; got 0",
        id="no-invocations",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=0.1, window=cdk.Duration.minutes(4)),
        "promotion_guard.window must be whole seconds from 5 minutes to 15 days; got 240 seconds",
        id="short-window",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=0.1, window=cdk.Duration.days(16)),
        "promotion_guard.window must be whole seconds from 5 minutes to 15 days; got 1.3824e+06 seconds",
        id="long-window",
    ),
    pytest.param(
        PromotionGuard(max_error_rate=0.1, on_failure="Ignore"),
        "promotion_guard.on_failure must be Fail or FallBack; got 'Ignore'",
        id="on-failure",
    ),
    pytest.param(
        {"max_error_rate": 0.1}, "promotion_guard must be a PromotionGuard; got {'max_error_rate': 0.1}", id="a-dict"
    ),
]


@pytest.mark.parametrize(("guard", "message"), BAD_GUARDS)
def test_fails_when_a_promotion_guard_is_bad(guard: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        template_of(**FULL, promotion_guard=guard)


def test_fails_when_a_guard_is_declared_without_a_promote() -> None:
    message = (
        "promotion_guard needs a Promote in model_variant_actions, as it decides a promotion; got {'shadow': 'Remove'}"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        template_of(
            experiment_name="e",
            model_variant_actions={"shadow": "Remove"},
            promotion_guard=PromotionGuard(max_error_rate=0.1),
        )
