"""ShadowTest against the declaration it replaces: lines of user code, and synth time against the stopper alone.

`by_hand` is the example app's shadow test as it was written before ShadowTest existed (cdk/app.py at commit
2fb675c: the CfnInferenceExperiment, its variants, and the stopper with the variants written again);
`with_shadow_test` is the same test as the example app declares it now. Both run on the same models and
endpoint (`Setting`, not counted), so the lines counted are only what a user writes for the test and its end.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from inference_experiment_stopper import (
    DesiredState,
    GuardFailure,
    InferenceExperimentStopper,
    ModelVariantAction,
    ModelVariantConfig,
    PromotionGuard,
    ShadowTest,
    ShadowTestEnd,
    ShadowTestVariant,
)

ROOT = Path(__file__).resolve().parents[1]
SYNTH_RUNS = 10
INSTANCE_TYPE = "ml.m5.xlarge"
REASON = "Shadow model promoted by the stack"


@dataclass
class Setting:
    """The models, their role and the endpoint that both declarations run on (the rest of the example app)."""

    role: iam.Role
    models: dict[str, sagemaker.CfnModel]
    endpoint: sagemaker.CfnEndpoint


def setting(stack: cdk.Stack) -> Setting:
    role = iam.Role(stack, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    models = {
        variant: sagemaker.CfnModel(
            stack,
            f"{variant.capitalize()}Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image="763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312",
                model_data_url=f"s3://my-model-bucket/models/{variant}/model.tar.gz",
            ),
        )
        for variant in ("production", "shadow")
    }
    config = sagemaker.CfnEndpointConfig(
        stack,
        "EndpointConfig",
        production_variants=[
            sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name="production",
                model_name=models["production"].attr_model_name,
                initial_instance_count=1,
                instance_type=INSTANCE_TYPE,
                initial_variant_weight=1,
            )
        ],
    )
    endpoint = sagemaker.CfnEndpoint(stack, "Endpoint", endpoint_config_name=config.attr_endpoint_config_name)
    return Setting(role, models, endpoint)


def by_hand(self: cdk.Stack, given: Setting) -> None:
    role, models, endpoint = given.role, given.models, given.endpoint
    experiment_name, instance_type, reason, stop_on_update = "shadow-test", INSTANCE_TYPE, REASON, True

    def infrastructure(variant: str) -> sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty:
        return sagemaker.CfnInferenceExperiment.ModelVariantConfigProperty(
            model_name=models[variant].attr_model_name,
            variant_name=variant,
            infrastructure_config=sagemaker.CfnInferenceExperiment.ModelInfrastructureConfigProperty(
                infrastructure_type="RealTimeInference",
                real_time_inference_config=sagemaker.CfnInferenceExperiment.RealTimeInferenceConfigProperty(
                    instance_type=instance_type, instance_count=1
                ),
            ),
        )

    experiment = sagemaker.CfnInferenceExperiment(
        self,
        "ShadowTest",
        name=experiment_name,
        type="ShadowMode",
        role_arn=role.role_arn,
        endpoint_name=endpoint.attr_endpoint_name,
        model_variants=[infrastructure("production"), infrastructure("shadow")],
        shadow_mode_config=sagemaker.CfnInferenceExperiment.ShadowModeConfigProperty(
            source_model_variant_name="production",
            shadow_model_variants=[
                sagemaker.CfnInferenceExperiment.ShadowModelVariantConfigProperty(
                    shadow_model_variant_name="shadow", sampling_percentage=50
                )
            ],
        ),
    )

    InferenceExperimentStopper(
        self,
        "StopShadowTest",
        experiment=experiment,
        model_variant_actions={"shadow": ModelVariantAction.PROMOTE, "production": ModelVariantAction.REMOVE},
        desired_model_variants=[
            ModelVariantConfig(
                model_name=models["shadow"].attr_model_name,
                variant_name="shadow",
                instance_type=instance_type,
                instance_count=1,
            )
        ],
        desired_state=DesiredState.COMPLETED,
        reason=reason,
        stop_on_update=stop_on_update,
        completion_timeout=cdk.Duration.minutes(30),
        # Promote only a shadow at least as fast (p99) and as reliable as production, measured over the test.
        promotion_guard=PromotionGuard(
            max_latency_ratio=1.0,
            latency_statistic="p99",
            max_error_rate=0.001,
            min_invocations=1000,
            on_failure=GuardFailure.FAIL,
        ),
    )


def with_shadow_test(self: cdk.Stack, given: Setting) -> None:
    models, endpoint = given.models, given.endpoint
    experiment_name, instance_type, reason, stop_on_update = "shadow-test", INSTANCE_TYPE, REASON, True

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
    # The shadow replaces production, on its own instance type and count (ShadowTestEnd.promote can change them).
    test.end_with(
        ShadowTestEnd.promote(
            # Promote only a shadow at least as fast (p99) and as reliable as production, measured over the test.
            guard=PromotionGuard(
                max_latency_ratio=1.0,
                latency_statistic="p99",
                max_error_rate=0.001,
                min_invocations=1000,
                on_failure=GuardFailure.FAIL,
            ),
            desired_state=DesiredState.COMPLETED,
            reason=reason,
        )
    )


def code_lines(function: Callable[..., object]) -> int:
    """Lines of a function's body that hold code: not blank, not only a comment, not its `def` or its inputs."""
    body = inspect.getsource(function).splitlines()[1:]
    code = [line for line in body if line.strip() and not line.strip().startswith("#")]
    # The first line of each binds the inputs the example app has as locals already.
    return len(code) - 2


def stopper_alone(stack: cdk.Stack) -> None:
    InferenceExperimentStopper(
        stack,
        "StopShadowTest",
        experiment_name="shadow-test",
        model_variant_actions={"shadow": ModelVariantAction.PROMOTE, "production": ModelVariantAction.REMOVE},
    )


def _without_dashboard(stack: cdk.Stack) -> None:
    given = setting(stack)
    ShadowTest(
        stack,
        "ShadowTest",
        name="shadow-test",
        endpoint=given.endpoint,
        production=ShadowTestVariant(model=given.models["production"], instance_type=INSTANCE_TYPE),
        shadow=ShadowTestVariant(model=given.models["shadow"], instance_type=INSTANCE_TYPE),
        on_end=ShadowTestEnd.promote(guard=PromotionGuard(max_latency_ratio=1.0)),
        dashboard=False,
    )


DECLARATIONS: dict[str, Callable[[cdk.Stack], None]] = {
    "stopper alone (by name)": stopper_alone,
    "experiment + stopper by hand": lambda stack: by_hand(stack, setting(stack)),
    "ShadowTest": lambda stack: with_shadow_test(stack, setting(stack)),
    "ShadowTest, dashboard=False": _without_dashboard,
}


def synth_seconds(declare: Callable[[cdk.Stack], None]) -> tuple[float, int]:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Bench")
    started = time.perf_counter()
    declare(stack)
    template = app.synth().get_stack_by_name("Bench").template
    return time.perf_counter() - started, len(template["Resources"])


def shadow_test_section() -> Iterator[str]:
    synth_seconds(stopper_alone)  # the first synth in a process pays for jsii's start-up
    seconds: dict[str, list[float]] = {name: [] for name in DECLARATIONS}
    resources: dict[str, int] = {}
    for _ in range(SYNTH_RUNS):
        for name, declare in DECLARATIONS.items():  # alternating, so drift hits all alike
            elapsed, resources[name] = synth_seconds(declare)
            seconds[name].append(elapsed)
    before, after = code_lines(by_hand), code_lines(with_shadow_test)
    yield "## 7. ShadowTest: user code and synth time\n"
    yield (
        "Lines of code a user writes for the example app's shadow test and its end (models and endpoint not "
        "counted; blank and comment-only lines not counted): by hand, the `CfnInferenceExperiment` with its "
        "variants and an `InferenceExperimentStopper` with the variants written again, as `cdk/app.py` had it "
        f"before `ShadowTest`: **{before}**; with `ShadowTest` and `end_with`, as it has it now: **{after}** "
        f"({after / before:.0%}). `ShadowTest` adds what the hand-written version left out: a role of the "
        "experiment's own, allowed only the test's endpoint, models, artifacts and images, and a dashboard.\n"
    )
    yield (
        f"Synth of one stack, in process after jsii's start-up, {SYNTH_RUNS} runs alternating the declarations: "
        "median (min-max) seconds, and the resources in the template (the models, their role, the endpoint "
        "and its configuration included where they are used).\n"
    )
    yield "| declaration | synth s | / stopper alone | resources |"
    yield "|---|---:|---:|---:|"
    alone = statistics.median(seconds["stopper alone (by name)"])
    for name, values in seconds.items():
        median = statistics.median(values)
        yield (
            f"| {name} | {median:.2f} ({min(values):.2f}-{max(values):.2f}) | {median / alone:.2f} | "
            f"{resources[name]} |"
        )
    yield ""
