"""The real-account integration test app synthesizes offline, in both phases, assertions included."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from integ.integ_stopper import build

ROOT = Path(__file__).parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
STOPPER = "Custom::InferenceExperimentStop"


def stop_on(template: Mapping[str, Any]) -> list[str]:
    [stopper] = [r for r in template["Resources"].values() if r["Type"] == STOPPER]
    result: list[str] = stopper["Properties"]["StopOn"]
    return result


def assertions_of(app: cdk.App) -> Mapping[str, Any]:
    [stack] = [c for c in app.node.find_all() if isinstance(c, cdk.Stack) and "DeployAssert" in c.node.path]
    return Template.from_stack(stack).to_json()


def test_the_first_phase_starts_the_shadow_test_without_stopping_on_update() -> None:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    build(app)

    stack = app.node.find_child("InferenceExperimentStopperInteg")
    assert isinstance(stack, cdk.Stack)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SageMaker::InferenceExperiment", 1)
    assert stop_on(template.to_json()) == ["Delete"]
    [call] = [r for r in assertions_of(app)["Resources"].values() if r["Type"].startswith("Custom::DeployAssert@")]
    assert json.loads(call["Properties"]["expected"]) == {"$ObjectLike": {"Name": "shadow-test"}}


def test_the_promote_phase_synthesizes_with_the_pinned_cli_and_asserts_completed(tmp_path: Path) -> None:
    env = dict(os.environ)
    app = f"{ROOT / '.venv' / 'bin' / 'python'} {ROOT / 'tests' / 'integ' / 'integ_stopper.py'}"
    command: list[str | Path] = [
        CDK,
        "synth",
        "--no-notices",
        "--quiet",
        "--app",
        app,
        "-c",
        "phase=promote",
        "-o",
        tmp_path,
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 0, result.stderr

    manifest = json.loads((tmp_path / "manifest.json").read_text())["artifacts"]
    test_stack = json.loads((tmp_path / "InferenceExperimentStopperInteg.template.json").read_text())
    assert stop_on(test_stack) == ["Update", "Delete"]
    [assert_name] = [
        name
        for name, artifact in manifest.items()
        if name.startswith("StopperIntegDefaultTestDeployAssert") and artifact["type"] == "aws:cloudformation:stack"
    ]
    assert "InferenceExperimentStopperInteg" in manifest[assert_name]["dependencies"]
    assertions = json.loads((tmp_path / f"{assert_name}.template.json").read_text())
    [call] = [r for r in assertions["Resources"].values() if r["Type"].startswith("Custom::DeployAssert@SdkCall")]
    assert call["Properties"]["service"] == "SageMaker"
    assert call["Properties"]["api"] == "describeInferenceExperiment"
    assert call["Properties"]["parameters"] == {"Name": '"shadow-test"'}
    assert json.loads(call["Properties"]["expected"]) == {"$ObjectLike": {"Status": "Completed"}}
