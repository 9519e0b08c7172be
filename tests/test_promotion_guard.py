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
from aws_cdk.assertions import Template
from conftest import load_event
from inference_experiment_stopper import GuardFailure, InferenceExperimentStopper, ModelVariantAction, PromotionGuard

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
    props.setdefault("experiment", experiment_in(stack))
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
    guard = PromotionGuard(
        alarms=[alarm_in(stack, "shadow-latency")], bake=cdk.Duration.minutes(10), roll_back_to="shadow-test-config"
    )
    template = guarded(stack, guard)

    found = {
        statement["Action"] if isinstance(statement["Action"], str) else tuple(statement["Action"]): statement
        for statement in statements(template)
    }
    alarms = found["cloudwatch:DescribeAlarms"]
    assert alarms["Resource"] == {"Fn::GetAtt": [alarms["Resource"]["Fn::GetAtt"][0], "Arn"]}
    assert alarms["Resource"]["Fn::GetAtt"][0].startswith("shadowlatency")  # the app's alarm, by its own ARN
    rollback = stack.resolve(found[("sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint")]["Resource"])
    rendered = [
        "".join(part if isinstance(part, str) else "<" + next(iter(part.values())) + ">" for part in arn["Fn::Join"][1])
        for arn in rollback
    ]
    assert rendered == [
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint/shadow-test-endpoint",
        "arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:endpoint-config/shadow-test-config",
    ]
    assert not any(statement.get("Resource") == "*" for statement in statements(template))


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


def test_a_configuration_cloudformation_names_is_rolled_back_to_by_its_token_on_endpoint_config_star() -> None:
    stack = new_stack()
    config = sagemaker.CfnEndpointConfig(stack, "Config", production_variants=[])
    guard = PromotionGuard(alarms=[alarm_in(stack, "a")], bake=cdk.Duration.minutes(10), roll_back_to=config)
    template = guarded(stack, guard)

    [resource] = template.find_resources("Custom::InferenceExperimentStop").values()
    assert resource["Properties"]["PromotionGuard"]["RollBackTo"] == {"Fn::GetAtt": ["Config", "EndpointConfigName"]}
    [rollback] = [
        s for s in statements(template) if s["Action"] == ["sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"]
    ]
    assert str(stack.resolve(rollback["Resource"])).count("endpoint-config/*") == 1


def test_fails_when_an_alarm_name_is_one_cloudwatch_refuses() -> None:
    stack = new_stack()
    guard = PromotionGuard(alarms=[cloudwatch.Alarm.from_alarm_name(stack, "A", "x" * 300)])
    with pytest.raises(ValueError, match=r"^promotion_guard.alarms\[0\] must be named with 1-255 printable characters"):
        guarded(stack, guard)
