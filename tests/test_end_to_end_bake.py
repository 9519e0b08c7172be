"""The bundled asset runs a bake whose alarm fires, as Lambda would: each link of the wait its own process.

The app is a user's: a ShadowTest that ends in a guarded promotion, baked a minute, rolled back to the production
endpoint configuration when its alarm fires. It is synthesized here, in process, by the repository's construct
(test_end_to_end.py does the same from an installed wheel, outside the repository; that path is not repeated).
The asset that synth bundled runs in a fresh virtual environment holding only boto3, each link in a process of
its own, against local SageMaker, CloudFormation, Lambda and EventBridge endpoints (tests/fake_aws.py) and a
local CloudWatch (tests/fake_aws_bake.py), every call on the wire as botocore speaks it.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudwatch as cloudwatch
from conftest import ResponseServer, load_event
from fake_aws_bake import ENDPOINT, FakeAwsBake, fake_aws_bake
from inference_experiment_stopper import PromotionGuard, ShadowTest, ShadowTestEnd, ShadowTestVariant
from lifecycle import CONTINUATION
from test_end_to_end import FUNCTION_ARN, LAMBDA_DRIVER, SHORT_RUN_MILLIS, as_cloudformation_sends, new_venv, run

ALARM = "shadow-latency"
PRODUCTION_CONFIG = "shadow-test-endpoint-config-production"
LONG_RUN_MILLIS = 660_000


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The user app's asset folder, and its stopper's properties as CloudFormation hands them to the function."""
    out = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(out), context={"aws:cdk:enable-asset-metadata": True})
    stack = cdk.Stack(app, "UserStack")
    latency = cloudwatch.Alarm(
        stack,
        "ShadowLatency",
        alarm_name=ALARM,
        metric=cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions_map={"EndpointName": ENDPOINT, "VariantName": "shadow"},
        ),
        threshold=50_000,
        evaluation_periods=3,
    )
    ShadowTest(
        stack,
        "ShadowTest",
        name="shadow-test",
        endpoint=ENDPOINT,
        production=ShadowTestVariant(model="model-a", instance_type="ml.m5.xlarge"),
        shadow=ShadowTestVariant(model="model-b", instance_type="ml.m5.xlarge"),
        on_end=ShadowTestEnd.promote(
            guard=PromotionGuard(alarms=[latency], bake=cdk.Duration.minutes(1), roll_back_to=PRODUCTION_CONFIG),
            desired_state="Completed",
            reason="shadow beat production on p99",
        ),
        completion_timeout=cdk.Duration.minutes(10),
    )
    template = app.synth().get_stack_by_name("UserStack").template
    [function] = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    [stop] = [r for r in template["Resources"].values() if r["Type"] == "Custom::InferenceExperimentStop"]
    # CloudFormation resolves a Ref to an alarm to the alarm's name before it sends the properties.
    names = {
        logical_id: resource["Properties"]["AlarmName"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    properties = {**stop["Properties"], "ServiceToken": load_event("Update")["ServiceToken"]}
    return out / function["Metadata"]["aws:asset:path"], as_cloudformation_sends(resolved(properties, names))


def resolved(value: Any, names: dict[str, str]) -> Any:
    """`value` with each {"Ref": <alarm>} replaced by the alarm's name, as CloudFormation resolves it."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in names:
            return names[value["Ref"]]
        return {key: resolved(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [resolved(item, names) for item in value]
    return value


@pytest.fixture(scope="module")
def lambda_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Lambda runtime provides: a Python with boto3 and nothing else."""
    return new_venv(tmp_path_factory.mktemp("lambda") / "venv", "boto3")


def test_a_bake_whose_alarm_fires_rolls_back_across_three_processes(
    synthesized: tuple[Path, dict[str, Any]], lambda_python: Path, tmp_path: Path, response_server: ResponseServer
) -> None:
    # GIVEN the user's stopper, as synthesized: a promotion guarded by one alarm, baked a minute, rolled back
    asset, declared = synthesized
    guard = declared["PromotionGuard"]
    assert (guard["Alarms"], guard["BakeSeconds"], guard["RollBackTo"]) == ([ALARM], "60", PRODUCTION_CONFIG)
    event = load_event("Update")
    event.update(ResourceProperties=declared, OldResourceProperties={**declared, "Reason": "shadow test running"})
    event["ResponseURL"] = response_server.url
    driver = tmp_path / "bootstrap.py"
    driver.write_text(textwrap.dedent(LAMBDA_DRIVER))
    # The alarm is OK for the guard before the stop and for the bake's first look, then in ALARM.
    state = FakeAwsBake(status={"shadow-test": "Running"}, alarm_states=["OK", "OK", "ALARM"])

    with fake_aws_bake(state) as aws:
        env = {
            "PATH": os.environ["PATH"],
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_ENDPOINT_URL_SAGEMAKER": aws.url,
            "AWS_ENDPOINT_URL_CLOUDFORMATION": aws.url,
            "AWS_ENDPOINT_URL_LAMBDA": aws.url,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": aws.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH": aws.cloudwatch_url,
        }

        def cold_start(event: dict[str, Any], millis: int) -> subprocess.CompletedProcess[str]:
            """A fresh function process that carries this event out."""
            line = json.dumps({"event": event, "remaining_millis": millis})
            return run([lambda_python, "-I", driver, asset], input=line + "\n", env=env)

        def handed_on() -> dict[str, Any]:
            function, invocation_type, payload = aws.invocations[-1]
            assert (function, invocation_type) == (FUNCTION_ARN, "Event")
            return payload

        # WHEN link one (a short run) judges the guard, stops, and hands the wait on; link two (short too) sees the
        # endpoint serve the promotion, takes the bake's first look and hands the bake on; link three (a whole run)
        # sees the alarm fire, rolls the endpoint back and waits for it
        outputs = [cold_start(event, SHORT_RUN_MILLIS)]
        link_two = handed_on()
        outputs.append(cold_start(link_two, SHORT_RUN_MILLIS))
        link_three = handed_on()
        outputs.append(cold_start(link_three, LONG_RUN_MILLIS))

    # THEN one answer, from link three: FAILED, naming the alarm and saying the endpoint was rolled back
    answer = response_server.only_answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "RolledBack: the endpoint shadow-test-endpoint of shadow-test was rolled back to "
        "shadow-test-endpoint-config-production and serves it: alarm shadow-latency was in ALARM during the bake"
    )
    continuations = [payload[CONTINUATION] for payload in (link_two, link_three)]
    assert [c["Link"] for c in continuations] == [2, 3]
    assert [c["Phase"] for c in continuations] == ["Stopping", "Baking"]  # handed on while Stopping, then baking
    assert continuations[1]["BakeEnd"] - continuations[1]["BakeStart"] == 60
    assert continuations[1]["BakeStart"] >= continuations[1]["Sent"]
    operations = [operation for operation, _ in aws.requests]
    assert operations == [
        "DescribeStacks",  # link one
        "DescribeInferenceExperiment",
        "DescribeStacks",  # before the guard
        "DescribeAlarms",  # the guard: the alarm is OK
        "DescribeStacks",  # right before the stop
        "StopInferenceExperiment",
        "PutEvents",  # Promoted
        "DescribeInferenceExperiment",  # Stopping
        "Invoke",  # handed on
        "DescribeInferenceExperiment",  # link two: Completed, the endpoint serves the promotion
        "DescribeEndpoint",  # InService on the promoted configuration: the bake's window starts
        "DescribeAlarms",  # the bake's first look: OK
        "Invoke",  # handed on
        "DescribeInferenceExperiment",  # link three
        "DescribeAlarms",  # ALARM
        "DescribeStacks",  # the gate: no later operation, and this one not completed
        "DescribeEndpoint",  # the gate: still on the promoted configuration
        "UpdateEndpoint",  # the rollback
        "DescribeEndpoint",  # Updating
        "DescribeEndpoint",  # InService, on the production configuration
        "PutEvents",  # RolledBack: alarm shadow-latency was in ALARM during the bake
    ]
    sent = {operation: request for operation, request in aws.requests}
    assert sent["UpdateEndpoint"] == {"EndpointName": "shadow-test-endpoint", "EndpointConfigName": PRODUCTION_CONFIG}
    assert sent["DescribeAlarms"] == {
        "AlarmNames": [ALARM],
        "AlarmTypes": ["CompositeAlarm", "MetricAlarm"],
        "MaxRecords": 100,
    }
    puts = [request for operation, request in aws.requests if operation == "PutEvents"]
    announced = [json.loads(entry["Detail"])["decision"] for request in puts for entry in request["Entries"]]
    assert announced == ["Promoted", "RolledBack: alarm shadow-latency was in ALARM during the bake"]
    for result in outputs:
        assert response_server.url not in result.stdout + result.stderr
