"""CloudWatch alarms and a SageMaker endpoint on a fake clock, for the bake that follows a guarded promotion.

Real botocore clients, as in experiment_on_a_clock.py: botocore validates every request against the service
model, then a `before-call` hook answers instead of the network, and every answer is checked against the
operation's output shape. Each double records the requests it was sent as the caller wrote them (the API
parameters, with the fake clock's time), so that a test can write a request out literally.

- `AlarmsOnAClock`: DescribeAlarms, honouring AlarmNames, AlarmTypes (CloudWatch returns only metric alarms
  where AlarmTypes is not given), MaxRecords and NextToken; each alarm is OK (or INSUFFICIENT_DATA) until its
  time comes, then ALARM (until it clears, if it does). DescribeAlarmHistory answers every StateUpdate recorded
  by then, with StartDate, EndDate, ScanBy, MaxRecords and NextToken honoured, as CloudWatch's history is.
- `EndpointOnAClock`: ExperimentOnAClock whose endpoint also answers UpdateEndpoint (or refuses it) and
  DescribeEndpoint: Updating for `update_takes` seconds after an update (PendingDeploymentSummary naming the
  configuration it moves to), then InService on the new endpoint configuration (LastModifiedTime: when it began
  serving it), or, where the update fails, `failed_status` with SageMaker's FailureReason. The experiment's
  EndpointMetadata shows the endpoint as it is at each read, as the handler takes it to (it waits there for the
  promoted variant to serve).
- `StackInProgress`, `EventBus` and `SelfInvoker`: DescribeStacks, PutEvents and the hand-on's Invoke, answered.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.validate import ParamValidator
from experiment_on_a_clock import Clock, ExperimentOnAClock

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = "shadow-test-endpoint"  # the endpoint of tests/described.py's experiment
# The endpoint configuration the stack declares (what production serves before the promotion), and the one the
# promotion leaves the endpoint on (SageMaker makes its own for the promoted variant).
PRODUCTION_CONFIG = "shadow-test-endpoint-config-production"
PROMOTED_CONFIG = "shadow-test-endpoint-config-promoted"
NEVER = math.inf


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")  # type: ignore[call-overload]


def _answered(model: Any, response: dict[str, Any], url: str) -> tuple[AWSResponse, dict[str, Any]]:
    """A 200 answer, checked against the operation's output shape first."""
    report = ParamValidator().validate(response, model.output_shape)
    assert not report.has_errors(), report.generate_report()
    headers: Any = {}
    return AWSResponse(url, 200, headers, None), response


def _refused(code: str, message: str, url: str, status: int = 400) -> tuple[AWSResponse, dict[str, Any]]:
    """An error answer: botocore raises it as the ClientError of `code`, as it would the service's."""
    headers: Any = {}
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse(url, status, headers, None), parsed


@dataclass(frozen=True)
class Request:
    """One request as the caller wrote it, and when (on the fake clock)."""

    at: float
    operation: str
    params: dict[str, Any]


class _Recorder:
    """Keeps the API parameters of each call (read before botocore serializes them, after it validated them)."""

    def __init__(self, client: Any, clock: Clock) -> None:
        self.clock = clock
        self.requests: list[Request] = []
        self._building: dict[str, Any] = {}
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parameter-build.{service}.*", self._keep)

    def _keep(self, params: dict[str, Any], **_: Any) -> None:
        self._building = copy.deepcopy(params)

    def record(self, operation: str) -> dict[str, Any]:
        """Called from the before-call hook: botocore has validated the parameters by then."""
        params, self._building = self._building, {}
        self.requests.append(Request(self.clock.time(), operation, params))
        return params

    def of(self, operation: str) -> list[Request]:
        return [request for request in self.requests if request.operation == operation]


class _Answering:
    """A real botocore client of `service` (`.client`) whose calls `respond` answers."""

    def __init__(self, service: str, clock: Clock) -> None:
        self.clock = clock
        self.client = _client(service)
        self.recorder = _Recorder(self.client, clock)
        self._url = f"https://{service}.{REGION}.amazonaws.com"
        answer: Any = self._answer  # a before-call handler that answers short-circuits the HTTP request
        service_id = self.client.meta.service_model.service_id.hyphenize()
        self.client.meta.events.register_first(f"before-call.{service_id}.*", answer)

    @property
    def requests(self) -> list[Request]:
        return self.recorder.requests

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return _answered(model, self.respond(model.name, self.recorder.record(model.name)), self._url)

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"{type(self).__name__} does not answer {operation}")


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch alarm that is `quiet` (OK, or INSUFFICIENT_DATA) until `fires_at()`, then ALARM until `clears_at()`;
    INSUFFICIENT_DATA from `lacks_data_from()` where it is not in ALARM (each read at every call: it may name a time
    not yet known)."""

    name: str
    fires_at: Callable[[], float] = lambda: NEVER
    composite: bool = False
    clears_at: Callable[[], float] = lambda: NEVER
    quiet: str = "OK"

    lacks_data_from: Callable[[], float] = lambda: NEVER

    def state(self, now: float) -> str:
        if self.fires_at() <= now < self.clears_at():
            return "ALARM"
        return "INSUFFICIENT_DATA" if now >= self.lacks_data_from() else self.quiet

    def transitions(self, now: float) -> list[tuple[float, str, str]]:
        """(when, old state, new state) of every change recorded by `now`, oldest first."""
        points = sorted({p for p in (self.fires_at(), self.clears_at(), self.lacks_data_from()) if math.isfinite(p)})
        changes = [(p, self.state(p - 0.001), self.state(p)) for p in points if p <= now]
        return [change for change in changes if change[1] != change[2]]


class AlarmsOnAClock(_Answering):
    """CloudWatch's alarms (`.client`): each OK until its time comes, then ALARM; an alarm not listed is unknown."""

    def __init__(self, clock: Clock, alarms: Sequence[Alarm]) -> None:
        super().__init__("cloudwatch", clock)
        self.alarms = {alarm.name: alarm for alarm in alarms}
        self.origin = clock.time() - 3600  # every alarm was in its quiet state since then

    def state(self, name: str) -> str:
        return self.alarms[name].state(self.clock.time())

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "DescribeAlarmHistory":
            return self._history(params)
        if operation != "DescribeAlarms":
            return super().respond(operation, params)
        types = params.get("AlarmTypes", ["MetricAlarm"])  # CloudWatch's default: metric alarms only
        names = params.get("AlarmNames", list(self.alarms))
        found = [
            self.alarms[name]
            for name in names
            if name in self.alarms and ("CompositeAlarm" if self.alarms[name].composite else "MetricAlarm") in types
        ]
        start = int(params.get("NextToken", 0))
        end = start + int(params.get("MaxRecords", 50))
        page = found[start:end]
        response: dict[str, Any] = {
            "MetricAlarms": [self._metric_alarm(alarm.name) for alarm in page if not alarm.composite],
            "CompositeAlarms": [self._composite_alarm(alarm.name) for alarm in page if alarm.composite],
        }
        if end < len(found):
            response["NextToken"] = str(end)
        return response

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        alarm = self.alarms.get(params.get("AlarmName", ""))
        types = params.get("AlarmTypes", ["MetricAlarm"])
        if alarm is None or ("CompositeAlarm" if alarm.composite else "MetricAlarm") not in types:
            return {"AlarmHistoryItems": []}
        assert params.get("HistoryItemType") == "StateUpdate"
        start = params["StartDate"].timestamp() if "StartDate" in params else -NEVER
        end = params["EndDate"].timestamp() if "EndDate" in params else NEVER
        items = [
            {
                "AlarmName": alarm.name,
                "AlarmType": "CompositeAlarm" if alarm.composite else "MetricAlarm",
                "Timestamp": datetime.datetime.fromtimestamp(when, datetime.UTC),
                "HistoryItemType": "StateUpdate",
                "HistorySummary": f"Alarm updated from {old} to {new}",
                "HistoryData": json.dumps(
                    {"version": "1.0", "oldState": {"stateValue": old}, "newState": {"stateValue": new}}
                ),
            }
            for when, old, new in alarm.transitions(self.clock.time())
            if start <= when <= end
        ]
        if params.get("ScanBy", "TimestampDescending") == "TimestampDescending":
            items.reverse()
        first = int(params.get("NextToken", 0))
        last = first + int(params.get("MaxRecords", 50))
        response: dict[str, Any] = {"AlarmHistoryItems": items[first:last]}
        if last < len(items):
            response["NextToken"] = str(last)
        return response

    def _described(self, name: str) -> dict[str, Any]:
        state = self.state(name)
        changes = self.alarms[name].transitions(self.clock.time())
        since = changes[-1][0] if changes else self.origin
        return {
            "AlarmName": name,
            "AlarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "StateValue": state,
            "StateReason": "Threshold Crossed" if state == "ALARM" else "Within the threshold",
            "StateUpdatedTimestamp": datetime.datetime.fromtimestamp(since, datetime.UTC),
            "StateTransitionedTimestamp": datetime.datetime.fromtimestamp(since, datetime.UTC),
        }

    def _metric_alarm(self, name: str) -> dict[str, Any]:
        return {
            **self._described(name),
            "MetricName": "ModelLatency",
            "Namespace": "AWS/SageMaker",
            "Statistic": "Average",
            "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "shadow"}],
            "Period": 60,
            "EvaluationPeriods": 3,
            "Threshold": 50_000.0,
            "ComparisonOperator": "GreaterThanThreshold",
        }

    def _composite_alarm(self, name: str) -> dict[str, Any]:
        return {**self._described(name), "AlarmRule": f'ALARM("{name}-latency") OR ALARM("{name}-errors")'}


class EndpointOnAClock(ExperimentOnAClock):
    """The experiment on a clock, and its endpoint: UpdateEndpoint recorded (`.updates`), DescribeEndpoint answered.

    Args:
        update_takes: seconds the endpoint is Updating after an UpdateEndpoint.
        update_fails: SageMaker's FailureReason where the update fails (None: it succeeds).
        failed_status: the status a failed update leaves: Failed, or InService on the configuration it had (SageMaker
            rolled its own update back) with the FailureReason set.
        refuse_update: (code, message) of an error UpdateEndpoint answers instead (None: it is accepted).
    """

    def __init__(  # noqa: PLR0917 (the experiment's and the endpoint's timings)
        self,
        clock: Clock,
        stop_takes: float,
        endpoint_takes: float = 0.0,
        update_takes: float = 240.0,
        update_fails: str | None = None,
        failed_status: str = "Failed",
        refuse_update: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(clock, stop_takes, endpoint_takes)
        self.recorder = _Recorder(self.client, clock)
        self.update_takes = update_takes
        self.update_fails = update_fails
        self.failed_status = failed_status
        self.refuse_update = refuse_update
        self.updated: tuple[float, str] | None = None  # when, and to which configuration
        self.origin = clock.time() - 86_400  # when the endpoint was created (and last modified, until the stop)

    @property
    def updates(self) -> list[dict[str, Any]]:
        """The UpdateEndpoint requests, as the caller wrote them."""
        return [request.params for request in self.recorder.of("UpdateEndpoint")]

    @property
    def updated_at(self) -> float:
        """When the update ends (InService on the new configuration, or failed); infinity before one."""
        return NEVER if self.updated is None else self.updated[0] + self.update_takes

    def _answer(self, model: Any, params: dict[str, Any], **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if model.name not in {"UpdateEndpoint", "DescribeEndpoint"}:
            self.recorder.record(model.name)
            return super()._answer(model, params, **kwargs)
        self.calls.append(model.name)
        request = self.recorder.record(model.name)
        url = f"https://api.sagemaker.{REGION}.amazonaws.com"
        assert request["EndpointName"] == ENDPOINT, f"no endpoint {request['EndpointName']}"
        if model.name == "DescribeEndpoint":
            return _answered(model, self._endpoint(), url)
        if self.refuse_update is not None:
            return _refused(*self.refuse_update, url)
        if self.updated is not None and self.clock.time() < self.updated_at:
            return _refused("ValidationException", f"Cannot update in-progress endpoint {self._endpoint_arn()}.", url)
        self.updated = (self.clock.time(), request["EndpointConfigName"])
        return _answered(model, {"EndpointArn": self._endpoint_arn()}, url)

    def _describe(self) -> dict[str, Any]:
        """The experiment, its EndpointMetadata the endpoint as it is now (as DescribeEndpoint shows it)."""
        described = super()._describe()
        endpoint = self._endpoint()
        metadata = {key: endpoint[key] for key in ("EndpointName", "EndpointConfigName", "EndpointStatus")}
        if "FailureReason" in endpoint:
            metadata["FailureReason"] = endpoint["FailureReason"]
        return {**described, "EndpointMetadata": metadata}

    def _endpoint_arn(self) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"

    def _endpoint(self) -> dict[str, Any]:
        now = self.clock.time()
        status, config, failure, pending = "InService", PRODUCTION_CONFIG, None, None
        modified = self.origin
        if self.completed_at <= now < self.serving_at:
            status, pending, modified = "Updating", PROMOTED_CONFIG, self.completed_at  # the promotion's own update
        elif now >= self.serving_at:
            config, modified = PROMOTED_CONFIG, self.serving_at
        if self.updated is not None:
            if now < self.updated_at:
                status, pending, modified = "Updating", self.updated[1], self.updated[0]
            elif self.update_fails is None:
                config, modified = self.updated[1], self.updated_at
            else:
                status, failure, modified = self.failed_status, self.update_fails, self.updated_at
        since = datetime.datetime.fromtimestamp(modified, datetime.UTC)
        endpoint: dict[str, Any] = {
            "EndpointName": ENDPOINT,
            "EndpointArn": self._endpoint_arn(),
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "CreationTime": datetime.datetime.fromtimestamp(self.origin, datetime.UTC),
            "LastModifiedTime": since,
        }
        if failure is not None:
            endpoint["FailureReason"] = failure
        if pending is not None:
            endpoint["PendingDeploymentSummary"] = {"EndpointConfigName": pending}
        return endpoint


class StackInProgress(_Answering):
    """CloudFormation's DescribeStacks: the stack is in `status` (UPDATE_IN_PROGRESS, DELETE_IN_PROGRESS...)."""

    def __init__(self, clock: Clock, status: str) -> None:
        super().__init__("cloudformation", clock)
        self.status = status
        self.last_updated: float | None = None  # when the stack's latest update began (None: never updated since)

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation != "DescribeStacks":
            return super().respond(operation, params)
        created = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
        stack = {"StackId": params["StackName"], "StackName": "ShadowTestStack", "CreationTime": created}
        if self.last_updated is not None:
            stack["LastUpdatedTime"] = datetime.datetime.fromtimestamp(self.last_updated, datetime.UTC)
        return {"Stacks": [{**stack, "StackStatus": self.status}]}


class EventBus(_Answering):
    """EventBridge's PutEvents on the default bus: every entry accepted, and kept (`.details`)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("events", clock)

    @property
    def details(self) -> list[dict[str, Any]]:
        """The `detail` of every event put, parsed."""
        return [json.loads(entry["Detail"]) for r in self.recorder.of("PutEvents") for entry in r.params["Entries"]]

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation != "PutEvents":
            return super().respond(operation, params)
        entries = [{"EventId": f"event-{len(self.requests)}-{index}"} for index, _ in enumerate(params["Entries"])]
        return {"FailedEntryCount": 0, "Entries": entries}


class SelfInvoker(_Answering):
    """Lambda's Invoke, accepted as an async invocation is (202); the payloads handed on are kept (`.payloads`)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("lambda", clock)
        self.refuse: tuple[str, str] | None = None  # (code, message) Invoke answers instead, once set

    def _answer(self, model: Any, **kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if self.refuse is not None and model.name == "Invoke":
            self.recorder.record(model.name)
            return _refused(*self.refuse, f"https://lambda.{REGION}.amazonaws.com", status=403)
        return super()._answer(model, **kwargs)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(request.params["Payload"]) for request in self.recorder.of("Invoke")]

    def respond(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation != "Invoke":
            return super().respond(operation, params)
        assert params["InvocationType"] == "Event", "a hand-on is asynchronous"
        return {"StatusCode": 202}
