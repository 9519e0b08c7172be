"""Throttling and 5xx are retried by botocore's standard mode with the handler's own client config.

Stubber answers before botocore's retry logic runs, so these go over real HTTP to a local fake SageMaker.
"""

from __future__ import annotations

from collections.abc import Iterator

import index
import pytest
from conftest import LambdaContext, ResponseServer, load_event
from fake_aws import FakeAws, fake_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAws]:
    with fake_aws(FakeAws(status={"shadow-test": "Running"})) as state:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", state.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", state.url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        index.services.cache_clear()
        yield state
        index.services.cache_clear()


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    # botocore's endpoint sleeps between attempts; recording instead keeps the test fast and shows the backoff.
    monkeypatch.setattr("botocore.endpoint.time.sleep", slept.append)
    return slept


def test_a_burst_of_throttling_and_5xx_is_ridden_out(
    aws: FakeAws, backoffs: list[float], response_server: ResponseServer
) -> None:
    aws.errors = [(400, "ThrottlingException", "Rate exceeded"), (503, "ServiceUnavailable", "busy")] * 3

    index.handler(dict(load_event("Create"), ResponseURL=response_server.url), LambdaContext())

    assert response_server.only_answer["Status"] == "SUCCESS"
    assert [operation for operation, _ in aws.requests] == ["DescribeInferenceExperiment"] * 7
    assert len(backoffs) == 6


def test_throttling_that_outlasts_the_retries_fails_readably(
    aws: FakeAws, backoffs: list[float], response_server: ResponseServer
) -> None:
    aws.errors = [(400, "ThrottlingException", "Rate exceeded")] * 20

    index.handler(dict(load_event("Create"), ResponseURL=response_server.url), LambdaContext())

    answer = response_server.only_answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == (
        "sagemaker:DescribeInferenceExperiment on shadow-test failed after 7 retries: "
        "ThrottlingException: Rate exceeded"
    )
    assert len(aws.requests) == 8
    assert len(backoffs) == 7


def test_get_metric_data_throttled_then_answering_is_ridden_out_and_the_guard_decides(
    aws: FakeAws, backoffs: list[float], response_server: ResponseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudWatch over real HTTP, in the protocol botocore speaks to it: two throttles, then the metrics."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", aws.url)
    aws.cloudwatch_errors = [(400, "ThrottlingException", "Rate exceeded")] * 2
    event = load_event("Update")
    event["ResourceProperties"]["PromotionGuard"] = {
        "MaxLatencyRatio": "1.1",
        "LatencyStatistic": "p99",
        "MinInvocations": "1000",
        "OnFailure": "Fail",
        "WindowSeconds": "3600",
    }

    index.handler(dict(event, ResponseURL=response_server.url), LambdaContext())

    answer = response_server.only_answer
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["Data"]["Decision"] == "Promoted"
    reads = [request for operation, request in aws.requests if operation == "GetMetricData"]
    assert len(reads) == 3
    assert {query["MetricStat"]["Period"] for query in reads[-1]["MetricDataQueries"]} == {3600}
    assert reads[-1]["EndTime"] - reads[-1]["StartTime"] == 3600  # epoch seconds on the wire
