"""What reviewers of CDK code check: cdk-nag AwsSolutions and cfn-lint on every template the project makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from app import ShadowTestStack
from cdk_nag import AwsSolutionsChecks
from cfn_lint_gate import cfn_lint
from inference_experiment_stopper import InferenceExperimentStopper

CONTEXT = json.loads((Path(__file__).parents[1] / "cdk.json").read_text())["context"]


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
}


@pytest.mark.parametrize("make_app", LINTED.values(), ids=LINTED.keys())
def test_cfn_lint_reports_no_errors_or_warnings(make_app: Any) -> None:
    app, stack = make_app()
    template = app.synth().get_stack_by_name(stack.stack_name).template

    problems, excepted = cfn_lint(template)

    assert problems == []
    assert len(excepted) <= 1
