"""A local HTTP stand-in for the AWS APIs the handler calls, spoken on the wire as botocore speaks them.

SageMaker (JSON 1.1, `X-Amz-Target: SageMaker.<Operation>`): DescribeInferenceExperiment and
StopInferenceExperiment over a tiny state machine. CloudFormation (query protocol, XML): DescribeStacks.
Lambda (REST-JSON): Invoke, recorded and answered 202 as an async invocation is. CloudWatch (JSON 1.0,
`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`, the protocol botocore picks among those the
model offers): GetMetricData, answered with `metric_values`. Point a client at it with `endpoint_url`, or a
process with AWS_ENDPOINT_URL_SAGEMAKER / _CLOUDFORMATION / _LAMBDA / _CLOUDWATCH / _EVENTBRIDGE
(PutEvents, recorded). Loopback only; it stops
with its context manager.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

from described import experiment

CLOUDWATCH_TARGET = "GraniteServiceVersion20100801."
# A shadow that beats production: query id -> datapoints (ModelLatency in microseconds).
GOOD_METRICS = {
    "shadowLatency": [28_000.0],
    "shadowInvocations": [15_000.0],
    "shadowModelErrors": [0.0],
    "productionLatency": [30_100.0],
    "productionInvocations": [15_200.0],
    "productionModelErrors": [1.0],
}


@dataclass
class FakeAws:
    """The state behind the fake endpoint, readable and scriptable by tests."""

    url: str = ""
    status: dict[str, str] = field(default_factory=dict)
    stack_status: str = "UPDATE_IN_PROGRESS"
    describes_while_stopping: int = 1
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (HTTP status, code, message), used first
    cloudwatch_errors: list[tuple[int, str, str]] = field(default_factory=list)  # the same, for CloudWatch
    metric_values: dict[str, list[float]] = field(default_factory=lambda: dict(GOOD_METRICS))
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    invocations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (function, type, payload)
    _stopping_left: dict[str, int] = field(default_factory=dict)

    def experiment(self, name: str) -> dict[str, Any]:
        return experiment(self.status[name], name)

    def sagemaker(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = request.get("Name", "")
        if name not in self.status:
            return 400, {"__type": "ResourceNotFound", "Message": f"Inference experiment {name} not found"}
        if operation == "DescribeInferenceExperiment":
            if self.status[name] == "Stopping":
                self._stopping_left[name] -= 1
                if self._stopping_left[name] < 0:
                    self.status[name] = "Completed"
            return 200, self.experiment(name)
        if operation == "StopInferenceExperiment":
            if self.status[name] != "Running":
                return 400, {"__type": "ConflictException", "Message": f"Experiment is {self.status[name]}"}
            self.status[name] = "Stopping"
            self._stopping_left[name] = self.describes_while_stopping
            return 200, {"InferenceExperimentArn": self.experiment(name)["Arn"]}
        return 400, {"__type": "UnknownOperationException", "Message": operation}

    def describe_stacks(self, stack_name: str) -> str:
        return (
            '<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
            "<DescribeStacksResult><Stacks><member>"
            f"<StackName>ShadowTestStack</StackName><StackId>{stack_name}</StackId>"
            f"<CreationTime>2026-11-01T00:00:00Z</CreationTime><StackStatus>{self.stack_status}</StackStatus>"
            "</member></Stacks></DescribeStacksResult>"
            "<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></DescribeStacksResponse>"
        )


@contextmanager
def fake_aws(state: FakeAws | None = None) -> Iterator[FakeAws]:
    """Serve `state` on a free loopback port for the duration of the block."""
    aws = state or FakeAws()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/2015-03-31/functions/") and self.path.endswith("/invocations"):
                function = unquote(self.path.split("/")[3])
                invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
                aws.requests.append(("Invoke", {"FunctionName": function, "InvocationType": invocation_type}))
                aws.invocations.append((function, invocation_type, json.loads(body)))
                self._reply(202, "", "application/json")
                return
            target = self.headers.get("X-Amz-Target", "")
            if target == "AWSEvents.PutEvents":
                aws.requests.append(("PutEvents", json.loads(body or b"{}")))
                self._reply(
                    200,
                    json.dumps({"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}),
                    "application/x-amz-json-1.1",
                )
                return
            if target.startswith(CLOUDWATCH_TARGET):
                self._cloudwatch(target.removeprefix(CLOUDWATCH_TARGET), json.loads(body or b"{}"))
                return
            if target.startswith("SageMaker."):
                operation, request = target.removeprefix("SageMaker."), json.loads(body or b"{}")
                aws.requests.append((operation, request))
                if aws.errors:
                    status, code, message = aws.errors.pop(0)
                    self._reply(status, json.dumps({"__type": code, "Message": message}), "application/x-amz-json-1.1")
                    return
                status, answer = aws.sagemaker(operation, request)
                self._reply(status, json.dumps(answer, default=str), "application/x-amz-json-1.1")
                return
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            aws.requests.append((form.get("Action", ""), form))
            self._reply(200, aws.describe_stacks(form.get("StackName", "")), "text/xml")

        def _cloudwatch(self, operation: str, request: dict[str, Any]) -> None:
            aws.requests.append((operation, request))
            if aws.cloudwatch_errors:
                status, code, message = aws.cloudwatch_errors.pop(0)
                self._reply(status, json.dumps({"__type": code, "message": message}), "application/x-amz-json-1.0")
                return
            results = [
                {
                    "Id": query["Id"],
                    "Timestamps": [request["EndTime"]] * len(values),
                    "Values": values,
                    "StatusCode": "Complete",
                }
                for query in request["MetricDataQueries"]
                for values in [aws.metric_values.get(query["Id"], [])]
            ]
            self._reply(200, json.dumps({"MetricDataResults": results}), "application/x-amz-json-1.0")

        def _reply(self, status: int, text: str, content_type: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read `requests`."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    aws.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield aws
    finally:
        httpd.shutdown()
        httpd.server_close()
