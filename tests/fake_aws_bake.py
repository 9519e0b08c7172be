"""tests/fake_aws.py grown for the bake after a promotion: alarms in CloudWatch and the endpoint in SageMaker.

Composed, not edited: `FakeAwsBake` is a FakeAws whose SageMaker also answers UpdateEndpoint and DescribeEndpoint
(Updating for `describes_while_updating` reads after an update, then InService on the new endpoint configuration,
its LastModifiedTime the wall-clock time of the first read that found it serving), and `fake_aws_bake` serves it as
fake_aws does, beside a second loopback server for CloudWatch's DescribeAlarms (JSON 1.0, `X-Amz-Target:
GraniteServiceVersion20100801.DescribeAlarms`, the protocol botocore picks), whose alarms take the states of
`alarm_states` read by read, the last one repeated. Point a process at them with AWS_ENDPOINT_URL_SAGEMAKER /
_CLOUDFORMATION / _LAMBDA / _EVENTBRIDGE = `url` and AWS_ENDPOINT_URL_CLOUDWATCH = `cloudwatch_url`. Every request
of both servers is kept, in order, in `requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fake_aws import CLOUDWATCH_TARGET, FakeAws, fake_aws

ENDPOINT = "shadow-test-endpoint"  # the endpoint of tests/described.py's experiment
PROMOTED_CONFIG = "shadow-test-endpoint-config-promoted"
ENDPOINT_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"


@dataclass
class FakeAwsBake(FakeAws):
    """FakeAws with alarms and an endpoint to roll back."""

    alarm_states: list[str] = field(default_factory=lambda: ["OK"])
    describes_while_updating: int = 1
    endpoint_config: str = PROMOTED_CONFIG
    cloudwatch_url: str = ""
    _alarm_reads: int = 0
    _updating_left: int = 0
    _serving_since: float | None = None

    def sagemaker(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if operation not in {"UpdateEndpoint", "DescribeEndpoint"}:
            return super().sagemaker(operation, request)
        if request.get("EndpointName") != ENDPOINT:
            return 400, {"__type": "ValidationException", "Message": f"Could not find endpoint {request}"}
        if operation == "UpdateEndpoint":
            self.endpoint_config, self._updating_left = request["EndpointConfigName"], self.describes_while_updating
            self._serving_since = None
            return 200, {"EndpointArn": ENDPOINT_ARN}
        status = "Updating" if self._updating_left > 0 else "InService"
        self._updating_left -= 1
        if status == "InService" and self._serving_since is None:
            self._serving_since = time.time()  # it began serving its configuration at the first look that finds it
        pending = (
            {"PendingDeploymentSummary": {"EndpointConfigName": self.endpoint_config}} if status != "InService" else {}
        )
        return 200, {
            **pending,
            "EndpointName": ENDPOINT,
            "EndpointArn": ENDPOINT_ARN,
            "EndpointConfigName": self.endpoint_config,
            "EndpointStatus": status,
            "CreationTime": 1_795_000_000,
            "LastModifiedTime": self._serving_since or time.time(),
        }

    def describe_alarms(self, request: dict[str, Any]) -> dict[str, Any]:
        """Every alarm named is a metric alarm, in the state of this read (metric alarms are asked for)."""
        state = self.alarm_states[min(self._alarm_reads, len(self.alarm_states) - 1)]
        self._alarm_reads += 1
        metric = "MetricAlarm" in request.get("AlarmTypes", ["MetricAlarm"])
        # No state change since well before the bake (so the verdict reads no history), as CloudWatch reports it.
        since = 1_795_000_000 if state != "ALARM" else time.time()
        alarms = [
            {
                "AlarmName": name,
                "StateValue": state,
                "StateUpdatedTimestamp": since,
                "StateTransitionedTimestamp": since,
            }
            for name in request.get("AlarmNames", [])
        ]
        return {"MetricAlarms": alarms if metric else [], "CompositeAlarms": []}


@contextmanager
def fake_aws_bake(state: FakeAwsBake) -> Iterator[FakeAwsBake]:
    """Serve `state` (fake_aws's server, and CloudWatch's beside it) on free loopback ports for the block."""

    class CloudWatch(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            operation = self.headers.get("X-Amz-Target", "").removeprefix(CLOUDWATCH_TARGET)
            state.requests.append((operation, request))
            if operation == "DescribeAlarms":
                status, answer = 200, state.describe_alarms(request)
            else:
                status, answer = 400, {"__type": "UnknownOperationException", "message": operation}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read `requests`."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CloudWatch)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.cloudwatch_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with fake_aws(state):
            yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
