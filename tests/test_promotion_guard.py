"""The construct side of a guarded promotion: alarms, a bake, a rollback, a significance test, the decision announced.

What the synthesized custom resource carries (PromotionGuard, as the handler parses it), what the function's role
may do for it (nothing a guard does not need), and each synth-time error, named after the prop.
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
import properties
import pytest
import rules
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks
from conftest import load_event
from inference_experiment_stopper import GuardFailure, InferenceExperimentStopper, ModelVariantAction, PromotionGuard
from test_shadow_test import sagemaker_arn

PROMOTE = {"shadow": ModelVariantAction.PROMOTE, "production": ModelVariantAction.REMOVE}


def new_stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(context={"aws:cdk:bundling-stacks": []}), "Stack")


def experiment_in(stack: cdk.Stack, endpoint_name: str = "shadow-test-endpoint") -> sagemaker.CfnInferenceExperiment:
    variant = sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty
    infrastructure = sagemaker.CfnInferenceExperiment.ModelInfrastructureConfigProperty(
        infrastructure_type="RealTimeInference",
        real_time_inference_config=sagemaker.CfnInferenceExperiment.RealTimeInferenceConfigProperty(
            instance_type="ml.m5.xlarge", instance_count=1
        ),
    )
    return sagemaker.CfnInferenceExperiment(
        stack,
        "Experiment",
        name="shadow-test",
        type="ShadowMode",
        role_arn="arn:aws:iam::123456789012:role/experiment",
        endpoint_name=endpoint_name,
        model_variants=[
            variant(model_name="model-a", variant_name="production", infrastructure_config=infrastructure),
            variant(model_name="model-b", variant_name="shadow", infrastructure_config=infrastructure),
        ],
        shadow_mode_config=sagemaker.CfnInferenceExperiment.ShadowModeConfigProperty(
            source_model_variant_name="production",
            shadow_model_variants=[
                sagemaker.CfnInferenceExperiment.ShadowModelVariantConfigProperty(
                    shadow_model_variant_name="shadow", sampling_percentage=100
                )
            ],
        ),
    )


def alarm_in(stack: cdk.Stack, name: str) -> cloudwatch.Alarm:
    metric = cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ModelLatency", statistic="p99")
    return cloudwatch.Alarm(stack, name, alarm_name=name, metric=metric, threshold=50_000, evaluation_periods=3)


def guarded(stack: cdk.Stack, guard: PromotionGuard, **props: Any) -> Template:
    if "experiment" not in props:
        props["experiment"] = experiment_in(stack)
    props.setdefault("completion_timeout", cdk.Duration.minutes(30))
    InferenceExperimentStopper(stack, "Stopper", model_variant_actions=PROMOTE, promotion_guard=guard, **props)
    return Template.from_stack(stack)


def statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::ManagedPolicy").values():
        found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(template: Template) -> set[str]:
    found: set[str] = set()
    for statement in statements(template):
        action = statement["Action"]
        found |= {action} if isinstance(action, str) else set(action)
    return found


def shown(value: Any) -> str:
    """A resolved value as a string, references as <Id> and attributes as <Id.Attribute>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(shown(part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    return f"<{'.'.join(value['Fn::GetAtt'])}>"


def grants(template: Template) -> dict[str, list[str]]:
    """Each action the function's policies allow, with the resources it is allowed on, as shown()."""
    found: dict[str, list[str]] = {}
    for statement in statements(template):
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            found.setdefault(action, []).extend(shown(resource) for resource in resources)
    return found


def arn(resource: str) -> str:
    """A SageMaker ARN of the stack's account and region, as shown()."""
    return f"arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:{resource}"


GUARD_POLICY = "What the stack's promotion guards may read and, to roll a promotion back, update"


def test_a_guard_of_alarms_alone_bakes_and_rolls_back_and_reaches_the_function_as_it_parses_it() -> None:
    stack = new_stack()
    config = sagemaker.CfnEndpointConfig(
        stack, "Config", endpoint_config_name="shadow-test-config", production_variants=[]
    )
    guard = PromotionGuard(
        alarms=[alarm_in(stack, "shadow-latency"), alarm_in(stack, "shadow-errors")],
        bake=cdk.Duration.minutes(10),
        roll_back_to=config,
        on_failure=GuardFailure.FAIL,
        on_inconclusive=GuardFailure.FALL_BACK,
    )
    template = guarded(stack, guard)

    [resource] = template.find_resources("Custom::InferenceExperimentStop").values()
    written = stack.resolve(resource["Properties"]["PromotionGuard"])
    refs = [alarm.get("Ref", "") for alarm in written.pop("Alarms")]
    assert [ref[: -len("9790B57A")] for ref in refs] == ["shadowlatency", "shadowerrors"]  # the alarms' names (Ref)
    assert written.pop("RollBackTo") == "shadow-test-config"  # named in the app: the name itself
    assert written == {
        "LatencyStatistic": "Average",
        "MinInvocations": 1000,
        "OnFailure": "Fail",
        "OnInconclusive": "FallBack",
        "BakeSeconds": 600,
    }
    written.update(Alarms=["shadow-latency", "shadow-errors"], RollBackTo="shadow-test-config")  # as deployed
    assert not any(statement.get("Resource") == "*" for statement in statements(template))
    # The function reads the same property (as CloudFormation sends it: strings) into the same guard.
    event_properties = load_event("Update")["ResourceProperties"]
    event_properties.update({"PromotionGuard": written, "CompletionTimeoutSeconds": "1800"})
    parsed = properties.parse(event_properties, frozenset({"ml.m5.xlarge"})).guard
    assert parsed is not None
    assert (parsed.alarms, parsed.bake_seconds, parsed.roll_back_to, parsed.on_inconclusive) == (
        ("shadow-latency", "shadow-errors"),
        600,
        "shadow-test-config",
        "FallBack",
    )
    assert not parsed.thresholds
    assert "cloudwatch:GetMetricData" not in actions_of(template)  # alarms alone read no metrics


def test_the_role_reads_exactly_the_app_s_alarms_and_updates_exactly_the_experiment_s_endpoint() -> None:
    stack = new_stack()
    latency = alarm_in(stack, "shadow-latency")
    guard = PromotionGuard(alarms=[latency], bake=cdk.Duration.minutes(10), roll_back_to="Shadow-Test-Config")
    template = guarded(stack, guard, experiment=experiment_in(stack, endpoint_name="Shadow-Test-Endpoint"))

    allowed = grants(template)
    alarm_arn = shown(stack.resolve(latency.alarm_arn))
    assert alarm_arn.startswith("<shadowlatency")  # the app's alarm, by its own ARN
    assert alarm_arn.endswith(".Arn>")
    assert allowed["cloudwatch:DescribeAlarms"] == [alarm_arn]
    assert allowed["cloudwatch:DescribeAlarmHistory"] == [alarm_arn]  # the bake reads what CloudWatch recorded
    # SageMaker writes endpoint and endpoint configuration ARNs in lower case.
    assert allowed["sagemaker:DescribeEndpoint"] == [arn("endpoint/shadow-test-endpoint")]
    assert allowed["sagemaker:UpdateEndpoint"] == [
        arn("endpoint/shadow-test-endpoint"),
        arn("endpoint-config/shadow-test-config"),
    ]
    assert [action for action, resources in allowed.items() if any("*" in r for r in resources)] == []


def test_a_bake_describes_the_experiment_s_endpoint_by_its_own_arn_and_may_update_nothing() -> None:
    # GIVEN a guard that bakes and declares no rollback
    stack = new_stack()
    guard = PromotionGuard(alarms=[alarm_in(stack, "shadow-latency")], bake=cdk.Duration.minutes(10))

    # WHEN its stopper is given the experiment
    template = guarded(stack, guard, experiment=experiment_in(stack, endpoint_name="Shadow-Test-Endpoint"))

    # THEN the function may describe that endpoint (the bake judges it), by its ARN in lower case, and update nothing
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "Description": GUARD_POLICY,
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "sagemaker:DescribeEndpoint",
                            "Effect": "Allow",
                            "Resource": sagemaker_arn("endpoint/shadow-test-endpoint"),
                        }
                    ]
                )
            },
        },
    )
    assert "sagemaker:UpdateEndpoint" not in actions_of(template)


def test_a_guard_that_does_not_bake_reads_its_alarms_states_but_not_their_history() -> None:
    stack = new_stack()
    template = guarded(stack, PromotionGuard(alarms=[alarm_in(stack, "shadow-latency")]))

    assert "cloudwatch:DescribeAlarms" in actions_of(template)
    assert actions_of(template) & {"cloudwatch:DescribeAlarmHistory", "sagemaker:DescribeEndpoint"} == set()


def test_only_the_alarms_of_a_guard_that_bakes_have_their_history_read() -> None:
    # GIVEN two stoppers on one function: one bakes, the other only judges before the stop
    stack = new_stack()
    baked, judged = alarm_in(stack, "baked"), alarm_in(stack, "judged")
    InferenceExperimentStopper(
        stack,
        "Other",
        experiment_name="other-test",
        model_variant_actions=PROMOTE,
        promotion_guard=PromotionGuard(alarms=[judged]),
    )
    guarded(stack, PromotionGuard(alarms=[baked], bake=cdk.Duration.minutes(10)))

    # THEN both alarms' states are read, and only the baked alarm's history
    allowed = grants(Template.from_stack(stack))
    assert allowed["cloudwatch:DescribeAlarms"] == [shown(stack.resolve(a.alarm_arn)) for a in (judged, baked)]
    assert allowed["cloudwatch:DescribeAlarmHistory"] == [shown(stack.resolve(baked.alarm_arn))]


def test_an_imported_alarm_s_history_is_read_on_star_acknowledged_only_where_a_guard_bakes() -> None:
    # GIVEN an app checked by cdk-nag (an unacknowledged finding makes its synth, Template's too, raise
    # ValidationFailed), and a baking guard whose alarm is imported by name (it may be a composite alarm)
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Stack")
    imported = cloudwatch.Alarm.from_alarm_name(stack, "Imported", "team-latency")
    template = guarded(stack, PromotionGuard(alarms=[imported], bake=cdk.Duration.minutes(10)))

    # THEN its state and its history are read on *, in one statement of their own
    [star] = [s for s in statements(template) if s["Resource"] == "*" and s["Action"] != "cloudwatch:GetMetricData"]
    assert star["Action"] == ["cloudwatch:DescribeAlarms", "cloudwatch:DescribeAlarmHistory"]
    # AND cdk-nag's AwsSolutions-IAM5 finding on it was acknowledged: the synth above did not raise


def test_an_imported_or_composite_alarm_is_read_on_star_in_a_statement_of_its_own() -> None:
    stack = new_stack()
    imported = cloudwatch.Alarm.from_alarm_name(stack, "Imported", "team-latency")
    template = guarded(stack, PromotionGuard(alarms=[imported]))

    [star] = [s for s in statements(template) if s["Action"] == "cloudwatch:DescribeAlarms"]
    assert star["Resource"] == "*"


def test_a_stopper_without_these_options_gets_none_of_their_permissions() -> None:
    stack = new_stack()
    template = guarded(stack, PromotionGuard(max_error_rate=0.01))

    assert (
        actions_of(template)
        & {
            "cloudwatch:DescribeAlarms",
            "cloudwatch:DescribeAlarmHistory",
            "sagemaker:UpdateEndpoint",
            "sagemaker:DescribeEndpoint",
        }
        == set()
    )
    assert "events:PutEvents" in actions_of(template)  # every stopper's decision is announced


def test_a_significance_test_is_written_without_a_period_where_none_is_given() -> None:
    stack = new_stack()
    template = guarded(stack, PromotionGuard(max_latency_ratio=1.1, latency_statistic="p99", confidence=0.95))

    [resource] = template.find_resources("Custom::InferenceExperimentStop").values()
    assert resource["Properties"]["PromotionGuard"]["Confidence"] == 0.95
    assert "PeriodSeconds" not in resource["Properties"]["PromotionGuard"]  # the function's default: 5 minutes


def bad(stack: cdk.Stack, **changes: Any) -> PromotionGuard:
    base: dict[str, Any] = {"alarms": [alarm_in(stack, "shadow-latency")]}
    return PromotionGuard(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "props", "message"),
    [
        (
            {"bake": cdk.Duration.minutes(20)},
            {},
            "promotion_guard.bake (1200 s) must be at most half of the completion timeout (1800 s), so that the "
            "promotion, the bake and a rollback fit in it (completion_timeout)",
        ),
        (
            {"alarms": None, "max_error_rate": 0.01, "bake": cdk.Duration.minutes(5)},
            {},
            "promotion_guard.bake needs alarms: the bake watches them",
        ),
        (
            {"roll_back_to": "shadow-test-config"},
            {},
            "promotion_guard.roll_back_to needs bake: a rollback follows a bake an alarm failed",
        ),
        (
            {"bake": cdk.Duration.minutes(5), "roll_back_to": "shadow-test-config"},
            {"experiment": None, "experiment_name": "shadow-test"},
            "promotion_guard.roll_back_to needs the stopper's experiment= (not experiment_name=), so that the "
            "function's role can be allowed to update that experiment's endpoint only",
        ),
        (
            {"bake": cdk.Duration.minutes(5)},
            {"experiment": None, "experiment_name": "shadow-test"},
            "promotion_guard.bake needs the stopper's experiment= (not experiment_name=): the bake judges the "
            "experiment's endpoint, which the function's role may describe by its name only; got "
            "experiment_name='shadow-test'",
        ),
        (
            {"bake": cdk.Duration.minutes(5), "roll_back_to": "bad config"},
            {},
            "promotion_guard.roll_back_to must be a CfnEndpointConfig or an endpoint configuration name, which may "
            "hold only letters, digits and hyphens, 1-63 characters, starting and ending with a letter or digit; "
            "got 'bad config'",
        ),
        (
            {"confidence": 0.95},
            {},
            "promotion_guard.confidence needs max_latency_ratio: it tests the latency comparison",
        ),
        (
            {"max_latency_ratio": 1.1, "confidence": 1.5},
            {},
            "promotion_guard.confidence must be a number from 0.5 to below 1, such as 0.95; got 1.5",
        ),
        (
            {"max_latency_ratio": 1.1, "period": cdk.Duration.minutes(5)},
            {},
            "promotion_guard.period needs confidence: it is the period of the values the test compares",
        ),
        (
            {"max_latency_ratio": 1.1, "confidence": 0.95, "period": cdk.Duration.seconds(90)},
            {},
            "promotion_guard.period must be whole minutes, at least one; got 90 seconds",
        ),
        ({"on_inconclusive": "Ignore"}, {}, "promotion_guard.on_inconclusive must be Fail or FallBack; got 'Ignore'"),
        ({"alarms": []}, {}, "promotion_guard.alarms must be a list of CloudWatch alarms (IAlarm); got []"),
        (
            {"alarms": ["shadow-latency"]},
            {},
            "promotion_guard.alarms[0] must be a CloudWatch alarm (IAlarm); got 'shadow-latency'",
        ),
    ],
    ids=[
        "bake-over-half-the-timeout",
        "bake-without-alarms",
        "rollback-without-bake",
        "rollback-without-experiment",
        "bake-without-experiment",
        "rollback-bad-name",
        "confidence-without-latency",
        "confidence-out-of-range",
        "period-without-confidence",
        "period-not-whole-minutes",
        "unknown-on-inconclusive",
        "no-alarms",
        "alarm-not-an-alarm",
    ],
)
def test_fails_when_a_guard_option_does_not_fit(changes: dict[str, Any], props: dict[str, Any], message: str) -> None:
    stack = new_stack()
    guard = bad(stack, **changes)
    if props.get("experiment", ...) is None:
        props = {**props}
        props.pop("experiment")
        call: dict[str, Any] = {"completion_timeout": cdk.Duration.minutes(30), **props}
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            InferenceExperimentStopper(stack, "Stopper", model_variant_actions=PROMOTE, promotion_guard=guard, **call)
        return
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        guarded(stack, guard, **props)


def test_the_function_refuses_a_bake_that_does_not_fit_exactly_as_synth_does() -> None:
    event_properties = load_event("Update")["ResourceProperties"]
    event_properties["PromotionGuard"] = {"Alarms": ["a"], "BakeSeconds": "400", "OnFailure": "Fail"}  # 600 s timeout
    with pytest.raises(properties.InvalidProperties, match=r"BakeSeconds \(400 s\) must be at most half of the"):
        properties.parse(event_properties, frozenset({"ml.m5.xlarge"}))
    assert rules.bake_problem(300, 600) is None


def test_a_configuration_cloudformation_names_is_rolled_back_to_through_its_ref_not_endpoint_config_star() -> None:
    stack = new_stack()
    config = sagemaker.CfnEndpointConfig(stack, "Config", production_variants=[])
    guard = PromotionGuard(alarms=[alarm_in(stack, "a")], bake=cdk.Duration.minutes(10), roll_back_to=config)
    template = guarded(stack, guard)

    [resource] = template.find_resources("Custom::InferenceExperimentStop").values()
    assert resource["Properties"]["PromotionGuard"]["RollBackTo"] == {"Fn::GetAtt": ["Config", "EndpointConfigName"]}
    # An AWS::SageMaker::EndpointConfig's Ref is its ARN, as SageMaker writes it.
    assert grants(template)["sagemaker:UpdateEndpoint"] == [arn("endpoint/shadow-test-endpoint"), "<Config>"]
    assert not any(resource.endswith("/*") for resources in grants(template).values() for resource in resources)


def named_endpoint(stack: cdk.Stack) -> str:
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="c", endpoint_name="Shadow-Test-Endpoint")
    return endpoint.attr_endpoint_name


def endpoint_cloudformation_names(stack: cdk.Stack) -> str:
    return sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name="c").attr_endpoint_name


@pytest.mark.parametrize(
    ("endpoint_of", "expected"),
    [(named_endpoint, arn("endpoint/shadow-test-endpoint")), (endpoint_cloudformation_names, "<Endpoint>")],
    ids=["named-in-the-app", "named-by-cloudformation"],
)
def test_an_experiment_on_a_cfn_endpoint_of_the_app_is_allowed_that_endpoint_only(
    endpoint_of: Any, expected: str
) -> None:
    # GIVEN an experiment whose endpoint name is a CfnEndpoint's EndpointName attribute (a token)
    stack = new_stack()
    experiment = experiment_in(stack, endpoint_name=endpoint_of(stack))
    guard = PromotionGuard(alarms=[alarm_in(stack, "a")], bake=cdk.Duration.minutes(10), roll_back_to="config")

    # WHEN its stopper bakes and rolls back
    allowed = grants(guarded(stack, guard, experiment=experiment))

    # THEN the function may describe and update that endpoint: by the literal name in lower case, else by its Ref
    assert allowed["sagemaker:DescribeEndpoint"] == [expected]
    assert allowed["sagemaker:UpdateEndpoint"] == [expected, arn("endpoint-config/config")]


def test_names_known_only_at_deploy_are_allowed_on_star_acknowledged() -> None:
    # GIVEN an app checked by cdk-nag (an unacknowledged finding makes its synth, Template's too, raise
    # ValidationFailed), and an endpoint and a configuration to roll back to named by parameters (tokens no
    # CfnEndpoint or CfnEndpointConfig stands behind)
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Stack")
    endpoint = cdk.CfnParameter(stack, "EndpointName").value_as_string
    config = cdk.CfnParameter(stack, "ConfigName").value_as_string
    guard = PromotionGuard(alarms=[alarm_in(stack, "a")], bake=cdk.Duration.minutes(10), roll_back_to=config)

    # WHEN the stopper bakes and rolls back
    allowed = grants(guarded(stack, guard, experiment=experiment_in(stack, endpoint_name=endpoint)))

    # THEN SageMaker's lower-case ARNs cannot be written at synth: the account's and region's, acknowledged
    assert allowed["sagemaker:DescribeEndpoint"] == [arn("endpoint/*")]
    assert allowed["sagemaker:UpdateEndpoint"] == [arn("endpoint/*"), arn("endpoint-config/*")]
    # AND cdk-nag's AwsSolutions-IAM5 findings on both were acknowledged: the synth above did not raise


def test_fails_when_an_alarm_name_is_one_cloudwatch_refuses() -> None:
    stack = new_stack()
    guard = PromotionGuard(alarms=[cloudwatch.Alarm.from_alarm_name(stack, "A", "x" * 300)])
    with pytest.raises(ValueError, match=r"^promotion_guard.alarms\[0\] must be named with 1-255 printable characters"):
        guarded(stack, guard)
