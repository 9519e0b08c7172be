"""Integration test for a real AWS account (aws-cdk.integ-tests-alpha).

Deploys the example app's shadow test, then updates the stopper so that the update promotes the shadow,
and asserts with DescribeInferenceExperiment that the experiment is Completed. Two deploys, one app:

    cdk deploy --all --app "python tests/integ/integ_stopper.py" -c image_uri=... \\
        -c production_model_data=s3://... -c shadow_model_data=s3://...      # the shadow test runs
    cdk deploy --all --app "python tests/integ/integ_stopper.py" -c phase=promote ...  # promote + assert
    cdk destroy --all --app "python tests/integ/integ_stopper.py" -c phase=promote ...

`make test` synthesizes both phases offline, assertions included, so the app cannot rot.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aws_cdk as cdk
from aws_cdk.integ_tests_alpha import ExpectedResult, IntegTest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "cdk"))

from app import ShadowTestStack  # noqa: E402 (the example app lives beside the library, not in it)

PLACEHOLDERS = json.loads((ROOT / "cdk.json").read_text())["context"]


def build(app: cdk.App) -> IntegTest:
    """The integration test in `app`; context `phase` is "start" (default) or "promote"."""
    for key, value in PLACEHOLDERS.items():
        if app.node.try_get_context(key) is None:
            app.node.set_context(key, value)
    promote = app.node.try_get_context("phase") == "promote"
    stack = ShadowTestStack(
        app,
        "InferenceExperimentStopperInteg",
        # Off in the first deploy; turning it on (and the new reason) is the update that promotes.
        stop_on_update=promote,
        reason="integ: promote the shadow" if promote else "integ: shadow test running",
    )
    integ = IntegTest(app, "StopperInteg", test_cases=[stack])
    describe = integ.assertions.aws_api_call(
        "SageMaker", "describeInferenceExperiment", {"Name": stack.experiment_name}
    )
    # No waiter on purpose: the stopper answers the update only once the experiment has stopped, so the
    # assertion stack, deployed after the test stack, must find it Completed at once.
    expected = {"Status": "Completed"} if promote else {"Name": stack.experiment_name}
    describe.expect(ExpectedResult.object_like(expected))
    cdk.Stack.of(describe).add_dependency(stack)  # `cdk deploy --all` asserts only after the test stack
    return integ


if __name__ == "__main__":
    integ_app = cdk.App()
    build(integ_app)
    integ_app.synth()
