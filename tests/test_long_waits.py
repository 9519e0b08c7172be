"""Waits longer than one run of the function: handed on link by link, answered once, by the last link.

SageMaker is an experiment on the fake clock (a real botocore client; every request is validated against
the service model). Each hand-on is a Lambda Invoke checked by botocore's Stubber against the real Lambda
model; the test then delivers its payload as Lambda would, to a fresh run of index.handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import index
import lifecycle
import pytest
from botocore.stub import ANY, Stubber
from conftest import FUNCTION_ARN, ClockContext, FakeClock, ResponseServer, load_event
from experiment_on_a_clock import ExperimentOnAClock

STACK_ID = load_event("Update")["StackId"]
FUNCTION_TIMEOUT_MILLIS = 900_000  # Lambda's maximum, which the construct gives a stopper waiting this long
DELIVERY_SECONDS = 1.0  # Lambda's async queue, between one link's Invoke and the next link's start


@dataclass
class Chain:
    """What a chain of runs did."""

    links: int
    payloads: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    experiment: ExperimentOnAClock
    clock: FakeClock


@pytest.fixture
def run_chain(monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer) -> Callable[..., Chain]:
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)
    # Every fixture event has the same RequestId; real events each have their own.
    monkeypatch.setattr(lifecycle, "_SEEN", type(lifecycle._SEEN)(maxlen=64))

    def run(request_type: str, stop_takes: float, endpoint_takes: float = 0.0, timeout: int = 3300) -> Chain:
        clock = FakeClock()
        experiment = ExperimentOnAClock(clock, stop_takes, endpoint_takes)
        cloudformation = boto3.client(
            "cloudformation", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        lambda_client = boto3.client(
            "lambda", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        stacks = Stubber(cloudformation)
        stack_status = f"{request_type.upper()}_IN_PROGRESS"
        for _ in range(2):  # read as the event arrives, and again right before the stop
            stacks.add_response(
                "describe_stacks",
                {"Stacks": [{"StackName": "S", "StackStatus": stack_status, "CreationTime": "2026-11-01T00:00:00Z"}]},
                {"StackName": STACK_ID},
            )
        invokes = Stubber(lambda_client)
        for _ in range(12):
            invokes.add_response(
                "invoke",
                {"StatusCode": 202},
                {"FunctionName": FUNCTION_ARN, "InvocationType": "Event", "Payload": ANY},
            )
        payloads: list[dict[str, Any]] = []
        lambda_client.meta.events.register(
            "before-parameter-build.lambda.Invoke", lambda params, **_: payloads.append(json.loads(params["Payload"]))
        )
        services = lifecycle.Services(experiment.client, cloudformation, clock, lambda_client, jitter=lambda: 0.5)
        monkeypatch.setattr(index, "services", lambda: services)

        event = load_event(request_type)
        event["ResourceProperties"]["CompletionTimeoutSeconds"] = str(timeout)
        # As the construct writes it: CloudFormation waits the completion timeout plus two minutes.
        event["ResourceProperties"]["ServiceTimeout"] = str(min(timeout + 120, 3600))
        event["ResponseURL"] = response_server.url
        links = 0
        with stacks, invokes:
            while not response_server.bodies:
                links += 1
                assert len(payloads) == links - 1, "a run neither answered nor handed the wait on"
                index.handler(event, ClockContext(clock, FUNCTION_TIMEOUT_MILLIS))
                if payloads and len(payloads) == links:
                    event = payloads[-1]
                    clock.sleep(DELIVERY_SECONDS)
            stacks.assert_no_pending_responses()
        return Chain(links, payloads, list(response_server.bodies), experiment, clock)

    return run


def test_a_fifty_minute_stop_is_answered_once_after_four_links(run_chain: Callable[..., Chain]) -> None:
    chain = run_chain("Update", stop_takes=50 * 60)

    assert chain.links >= 4
    [answer] = chain.answers
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"] == {
        "InferenceExperimentArn": "arn:aws:sagemaker:us-east-1:123456789012:inference-experiment/shadow-test",
        "Status": "Completed",
        "EndpointStatus": "InService",
        "Decision": "NoGuard",  # decided in link one, carried to the last
    }
    assert len(chain.experiment.stops) == 1
    assert 0 <= chain.clock.time() - chain.experiment.completed_at <= 20  # polls at most 15 s apart once a stop lasts


def test_the_continuation_is_the_only_extra_payload_and_keeps_the_deadline(run_chain: Callable[..., Chain]) -> None:
    chain = run_chain("Delete", stop_takes=40 * 60)
    original = load_event("Delete")
    original["ResourceProperties"]["CompletionTimeoutSeconds"] = "3300"
    original["ResourceProperties"]["ServiceTimeout"] = "3420"

    deadlines = set()
    for link, payload in enumerate(chain.payloads, start=2):
        continuation = payload.pop(lifecycle.CONTINUATION)
        payload.pop("ResponseURL")
        assert payload == {key: value for key, value in original.items() if key != "ResponseURL"}
        assert continuation["Link"] == link
        assert continuation["StopSent"] is True
        deadlines.add(continuation["Deadline"])
    [deadline] = deadlines
    assert chain.experiment.stopped_at is not None
    assert deadline == pytest.approx(chain.experiment.stopped_at + 3300, abs=1)
    assert chain.answers[0]["Status"] == "SUCCESS"


def test_the_deadline_holds_across_links(run_chain: Callable[..., Chain]) -> None:
    chain = run_chain("Update", stop_takes=60 * 60, timeout=40 * 60)

    [answer] = chain.answers
    assert answer["Status"] == "FAILED"
    assert (
        answer["Reason"]
        == "Inference experiment shadow-test is still Stopping after 2400 s (CompletionTimeoutSeconds 2400)"
    )
    assert chain.links == 3
    assert chain.experiment.stopped_at is not None
    assert chain.clock.time() - chain.experiment.stopped_at == pytest.approx(2400 + DELIVERY_SECONDS * 2, abs=7)


def test_a_promotion_is_answered_once_the_endpoint_serves_it(run_chain: Callable[..., Chain]) -> None:
    chain = run_chain("Update", stop_takes=5 * 60, endpoint_takes=20 * 60)

    [answer] = chain.answers
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["EndpointStatus"] == "InService"
    assert chain.links == 2
    assert 0 <= chain.clock.time() - chain.experiment.serving_at <= 20  # polls at most 15 s apart once a stop lasts


def test_a_continuation_delivered_twice_to_a_warm_function_is_carried_out_once(
    run_chain: Callable[..., Chain], response_server: ResponseServer
) -> None:
    chain = run_chain("Update", stop_takes=20 * 60)
    calls = len(chain.experiment.calls)

    index.handler(chain.payloads[-1], ClockContext(chain.clock, FUNCTION_TIMEOUT_MILLIS))  # Lambda delivers it again

    assert len(response_server.bodies) == 1
    assert len(chain.experiment.calls) == calls  # the copy did nothing at all
    assert len(chain.experiment.stops) == 1
