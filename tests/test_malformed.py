"""Whatever an event holds, the function answers it once, with a sentence, and sends SageMaker nothing bad.

Events go through index.handler and the hardened crhelper, and the answer is really PUT to a local server.
SageMaker and CloudFormation are recording fakes that answer every call (an experiment that is Running,
a stack that is updating), so an event that wrongly went on to stop would be seen doing so.
"""

from __future__ import annotations

import copy
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aws
import boto3
import index
import lifecycle
import properties
import pytest
from botocore.exceptions import EndpointConnectionError
from conftest import FakeClock, LambdaContext, ResponseServer, experiment, load_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROPERTIES = (
    "Name",
    "ModelVariantActions",
    "DesiredModelVariants",
    "DesiredState",
    "Reason",
    "StopOn",
    "PromotionGuard",
)
PYTHON_ERROR_TEXT = ("Traceback", "object has no attribute", "KeyError", "TypeError", "IndexError", "unexpectedly")
# Python's own names for types ("must be a string, not NoneType"): words only Python uses, anywhere, or a type word
# right after "not". Ordinary English ("a list of 1 or 2 variants", "must be an object") is not flagged.
PYTHON_TYPE_NAME = re.compile(
    r"NoneType|<class |\b(?:str|int|float|dict|bool|tuple|bytes)\b|\bnot (?:list|dict|str|int|float|bool|tuple)\b"
)
# Python's spelling of a JSON value (the user wrote null, true or false), where a value is described.
PYTHON_LITERAL = re.compile(r"\b(?:None|True|False)\b")


def python_type_names(text: str) -> list[str]:
    """The Python type names `text` shows (none, in a reason a user reads)."""
    return [match.group(0) for match in PYTHON_TYPE_NAME.finditer(text)]


@dataclass
class RecordingSageMaker:
    """Answers like SageMaker for one Running experiment, and records every call."""

    calls: list[str] = field(default_factory=list)
    meta: Any = field(default_factory=lambda: boto3.client("sagemaker", region_name="us-east-1").meta)

    def describe_inference_experiment(self, Name: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        self.calls.append("DescribeInferenceExperiment")
        return experiment("Running", Name, ShadowModeConfig=SHADOW)

    def stop_inference_experiment(self, **request: Any) -> dict[str, Any]:
        self.calls.append("StopInferenceExperiment")
        return {"InferenceExperimentArn": "arn"}


@dataclass
class RecordingCloudFormation:
    calls: list[str] = field(default_factory=list)

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 (boto3's spelling)
        self.calls.append("DescribeStacks")
        return {"Stacks": [{"StackName": "ShadowTestStack", "StackStatus": "UPDATE_IN_PROGRESS"}]}


SHADOW = {"SourceModelVariantName": "production", "ShadowModelVariants": [{"ShadowModelVariantName": "shadow"}]}


@pytest.fixture
def send(monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer) -> Callable[[Any], Answer]:
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)

    def send_event(event: Any) -> Answer:
        sagemaker, cloudformation = RecordingSageMaker(), RecordingCloudFormation()
        services = lifecycle.Services(sagemaker, cloudformation, FakeClock())  # type: ignore[arg-type]
        monkeypatch.setattr(index, "services", lambda: services)
        response_server.bodies.clear()
        index.handler(event, LambdaContext())
        return Answer(list(response_server.bodies), sagemaker.calls)

    return send_event


@dataclass
class Answer:
    bodies: list[dict[str, Any]]
    sagemaker_calls: list[str]

    @property
    def only(self) -> dict[str, Any]:
        assert len(self.bodies) == 1, f"expected exactly one answer, got {self.bodies}"
        return self.bodies[0]

    def assert_readable(self) -> None:
        reason = self.only["Reason"]
        assert reason, "a FAILED answer needs a reason"
        assert reason[0].isupper(), reason
        assert len(reason) <= 255
        assert not any(text in reason for text in PYTHON_ERROR_TEXT), reason
        assert not python_type_names(reason), reason


def event_with(request_type: str, url: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = load_event(request_type)
    event["ResponseURL"] = url
    edit(event)
    return event


def drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda event: event.pop(key)


def put(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda event: event.__setitem__(key, value)


def put_property(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda event: event["ResourceProperties"].__setitem__(key, value)


EVENTS: list[tuple[str, str, Callable[[dict[str, Any]], None], str, str]] = [
    # (id, request type, edit, expected status, words the reason must hold)
    ("unknown-request-type", "Update", put("RequestType", "Upsert"), "FAILED", "Unknown RequestType 'Upsert'"),
    ("request-type-not-a-string", "Update", put("RequestType", ["Update"]), "FAILED", "Unknown RequestType"),
    ("no-request-type", "Delete", drop("RequestType"), "FAILED", "Unknown RequestType None"),
    ("no-stack-id", "Update", drop("StackId"), "FAILED", "The event has no StackId"),
    ("no-logical-id", "Delete", put("LogicalResourceId", 7), "FAILED", "The event has no LogicalResourceId"),
    ("update-no-physical-id", "Update", drop("PhysicalResourceId"), "FAILED", "The Update has no PhysicalResourceId"),
    ("update-empty-physical-id", "Update", put("PhysicalResourceId", ""), "FAILED", "has no PhysicalResourceId"),
    ("delete-no-physical-id", "Delete", drop("PhysicalResourceId"), "SUCCESS", ""),
    ("create-properties-a-list", "Create", put("ResourceProperties", []), "FAILED", "ResourceProperties must be"),
    ("update-properties-a-string", "Update", put("ResourceProperties", "x"), "FAILED", "ResourceProperties must be"),
    ("update-no-properties", "Update", drop("ResourceProperties"), "FAILED", "ResourceProperties must be an object"),
    ("delete-properties-null", "Delete", put("ResourceProperties", None), "SUCCESS", ""),
    ("update-old-properties-a-list", "Update", put("OldResourceProperties", []), "FAILED", "OldResourceProperties"),
    ("update-no-old-properties", "Update", drop("OldResourceProperties"), "FAILED", "OldResourceProperties must be"),
    (
        "crhelper-poll-key",
        "Create",
        put("CrHelperPoll", True),
        "SUCCESS",
        "",
    ),
    (
        "update-unknown-instance-type",
        "Update",
        lambda event: event["ResourceProperties"]["DesiredModelVariants"][0]["InfrastructureConfig"][
            "RealTimeInferenceConfig"
        ].__setitem__("InstanceType", "ml.m5.huge"),
        "FAILED",
        "DesiredModelVariants[0] InstanceType 'ml.m5.huge' must be a SageMaker real-time inference instance type",
    ),
    (
        "update-promotes-production",
        "Update",
        put_property("ModelVariantActions", {"production": "Promote", "shadow": "Remove"}),
        "FAILED",
        "is declared Remove",
    ),
    (
        "create-promotes-production",
        "Create",
        lambda event: event["ResourceProperties"].update(
            ModelVariantActions={"production": "Promote", "shadow": "Retain"}, DesiredModelVariants=None
        ),
        "FAILED",
        "Variant 'production' is declared Promote but is not the shadow variant of inference experiment shadow-test",
    ),
    (
        "update-variant-name-pattern",
        "Update",
        put_property("ModelVariantActions", {"shadow_v2": "Retain"}),
        "FAILED",
        "Variant name 'shadow_v2' in ModelVariantActions may hold only letters, digits and hyphens",
    ),
    ("update-long-name", "Update", put_property("Name", "a-" * 61), "FAILED", "Name 'a-a-a-"),
]


@dataclass(frozen=True)
class Odd:
    """An odd event: what to do to a fixture event, and the answer it must get."""

    request_type: str
    edit: Callable[[dict[str, Any]], None]
    status: str
    words: str


@pytest.mark.parametrize(
    "odd", [pytest.param(Odd(kind, edit, status, words), id=case_id) for case_id, kind, edit, status, words in EVENTS]
)
def test_an_odd_event_is_answered_once_readably_and_stops_nothing(
    send: Callable[[Any], Answer], response_server: ResponseServer, odd: Odd
) -> None:
    answer = send(event_with(odd.request_type, response_server.url, odd.edit))

    assert answer.only["Status"] == odd.status, answer.only["Reason"]
    assert odd.words in answer.only["Reason"]
    if odd.status == "FAILED":
        answer.assert_readable()
    assert "StopInferenceExperiment" not in answer.sagemaker_calls


def test_an_event_without_an_answer_url_is_logged_and_not_answered(
    send: Callable[[Any], Answer], caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = [None, [], {"RequestType": "Create"}, dict(load_event("Create"), ResponseURL="file:///x")]
    for event in events:
        answer = send(event)
        assert answer.bodies == []
        assert answer.sagemaker_calls == []
    assert caplog.text.count("The event has no URL to answer to") == 4


def test_an_unexpected_error_is_answered_with_a_sentence(
    send: Callable[[Any], Answer], response_server: ResponseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> None:
        raise KeyError("Status")

    monkeypatch.setattr(lifecycle, "handle", broken)

    answer = send(event_with("Update", response_server.url, lambda event: None))

    assert answer.only["Status"] == "FAILED"
    assert answer.only["Reason"] == (
        "The stop function failed unexpectedly during the Update; its log group has the details"
    )  # the error's Python class is in the log's traceback, not in a reason the user reads


# --- Property-based: a few hundred malformed declarations, seeded, in the normal run --------------------------------

NOT_A_NAME = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "_ .-/", min_size=0, max_size=130).filter(
        lambda text: not text or text[0] in "_ .-/" or text[-1] in "_ .-/" or any(c in "_ ./" for c in text)
    ),
    st.text(alphabet="ab", min_size=121, max_size=140),
    st.integers(),
    st.none(),
    st.lists(st.just("shadow"), max_size=2),
)
NOT_A_VARIANT = st.one_of(NOT_A_NAME, st.text(alphabet="ab", min_size=64, max_size=80))
NOT_AN_ACTION = st.one_of(
    st.text(max_size=10).filter(lambda t: t not in ("Promote", "Remove", "Retain")), st.integers()
)
NOT_A_COUNT = st.one_of(
    st.sampled_from(["-1", "1.5", "two", "", " 1", "1e3", "0x10", "1234567890"]), st.booleans(), st.floats()
)


def variant_with(key_path: tuple[str, ...], value: Any) -> list[dict[str, Any]]:
    variant: dict[str, Any] = copy.deepcopy(load_event("Update")["ResourceProperties"]["DesiredModelVariants"][0])
    target = variant
    for key in key_path[:-1]:
        target = target[key]
    target[key_path[-1]] = value
    return [variant]


REALTIME = ("InfrastructureConfig", "RealTimeInferenceConfig")


def prop(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.tuples(st.just(key), values)


def desired(path: tuple[str, ...], values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    return prop("DesiredModelVariants", st.builds(lambda value: variant_with(path, value), values))


# One flat choice of what to break, so that each kind of damage is drawn about as often as any other.
MALFORMED = st.one_of(
    prop("Name", NOT_A_NAME),
    prop(
        "ModelVariantActions",
        st.dictionaries(NOT_A_VARIANT.filter(lambda v: isinstance(v, str)), st.just("Retain"), min_size=1, max_size=2),
    ),
    prop(
        "ModelVariantActions",
        st.dictionaries(st.sampled_from(["shadow", "production"]), NOT_AN_ACTION, min_size=1, max_size=2),
    ),
    prop(
        "ModelVariantActions",
        st.sampled_from(
            [{"shadow": "Promote", "production": "Promote"}, {"a": "Retain", "b": "Retain", "c": "Retain"}, {}]
        ),
    ),
    prop(
        "ModelVariantActions",
        st.one_of(st.lists(st.tuples(st.just("shadow"), st.just("Promote"))), st.text(max_size=20)),
    ),
    desired(("ModelName",), NOT_A_VARIANT),
    desired(("VariantName",), NOT_A_VARIANT),
    desired((*REALTIME, "InstanceCount"), NOT_A_COUNT),
    desired(
        (*REALTIME, "InstanceType"),
        st.sampled_from(["ml.m5.huge", "ml.", "ml.m5.xlarge ", "m5.xlarge", "ML.M5.XLARGE", "", 5]),
    ),
    desired((*REALTIME, "InstanceType"), st.text(max_size=20)),
    desired(("InfrastructureConfig", "InfrastructureType"), st.text(max_size=8)),
    desired(("InfrastructureConfig",), st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers()))),
    prop(
        "DesiredModelVariants",
        st.one_of(st.just([]), st.text(max_size=10), st.integers(), st.dictionaries(st.text(), st.text())),
    ),
    prop(
        "DesiredState",
        st.one_of(st.text(max_size=12), st.integers()).filter(lambda s: s not in ("Completed", "Cancelled")),
    ),
    prop("Reason", st.one_of(st.text(min_size=1025, max_size=1100), st.integers(), st.lists(st.text()))),
    prop("StopOn", st.one_of(st.just([]), st.text(max_size=8), st.lists(st.text(max_size=8), min_size=1))),
    prop(
        "PromotionGuard",
        st.one_of(
            st.fixed_dictionaries({"MaxLatencyRatio": st.sampled_from(["0", "-1", "nan", "inf", "fast", ""])}),
            st.fixed_dictionaries({"MaxErrorRate": st.sampled_from(["1.5", "-0.1", "nan", "none"])}),
            st.fixed_dictionaries(
                {"MaxErrorRate": st.just("0.01"), "LatencyStatistic": st.sampled_from(["p100", "Median", "p", ""])}
            ),
            st.fixed_dictionaries(
                {"MaxErrorRate": st.just("0.01"), "MinInvocations": st.sampled_from(["0", "-5", "x"])}
            ),
            st.fixed_dictionaries(
                {"MaxErrorRate": st.just("0.01"), "WindowSeconds": st.sampled_from(["60", "9999999"])}
            ),
            st.fixed_dictionaries(
                {
                    "MaxErrorRate": st.just("0.01"),
                    "OnFailure": st.text(max_size=8).filter(lambda t: t not in ("Fail", "FallBack")),
                }
            ),
            st.just({"LatencyStatistic": "p99"}),  # no threshold
            st.text(max_size=8),
        ),
    ),
)


@settings(
    max_examples=300, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request_type=st.sampled_from(["Create", "Update", "Delete"]), malformed=MALFORMED)
def test_malformed_properties_never_reach_sagemaker(
    send: Callable[[Any], Answer], response_server: ResponseServer, request_type: str, malformed: tuple[str, Any]
) -> None:
    key, value = malformed
    if key == "StopOn" and isinstance(value, list) and value and set(value) <= {"Update", "Delete"}:
        return  # a well-formed StopOn after all
    if key == "DesiredModelVariants" and request_type != "Create":
        value = _unless_only_the_count_changed(value)
    event = event_with(request_type, response_server.url, put_property(key, value))

    answer = send(event)

    assert "StopInferenceExperiment" not in answer.sagemaker_calls
    if request_type == "Delete":
        assert answer.only["Status"] == "SUCCESS"
        return
    assert answer.only["Status"] == "FAILED"
    answer.assert_readable()
    assert any(name in answer.only["Reason"] for name in PROPERTIES), answer.only["Reason"]


def _unless_only_the_count_changed(value: Any) -> Any:
    """An InstanceCount that CloudFormation would send as '2' is well formed: keep the case malformed."""
    try:
        count = value[0]["InfrastructureConfig"]["RealTimeInferenceConfig"]["InstanceCount"]
    except (KeyError, TypeError, IndexError):
        return value
    return value if not (isinstance(count, str) and count.isdigit() and len(count) <= 9) else [value[0]] * 3


GUARD = {"MaxLatencyRatio": "1.1", "LatencyStatistic": "p99", "MaxErrorRate": "0.001", "MinInvocations": "1000"}


def scalar_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the properties where a string or number belongs (ModelVariantActions' values included)."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in scalar_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in scalar_paths(item, (*path, index))]
    return [path]


def guarded_properties() -> dict[str, Any]:
    properties: dict[str, Any] = load_event("Update")["ResourceProperties"]
    properties["PromotionGuard"] = dict(GUARD)
    return properties


SCALARS = [path for path in scalar_paths(guarded_properties()) if path[0] not in ("ServiceToken", "StopOn")]


def replaced(properties: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    edited = copy.deepcopy(properties)
    target = edited
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return edited


@pytest.mark.parametrize("shape", ["list", "object"])
@pytest.mark.parametrize("path", SCALARS, ids=[".".join(map(str, path)) for path in SCALARS])
def test_a_list_or_object_where_a_scalar_belongs_is_named_and_never_stops(
    path: tuple[Any, ...], shape: str, send: Callable[[Any], Answer], response_server: ResponseServer
) -> None:
    properties = guarded_properties()
    leaf = replaced(properties, path, [properties_at(properties, path)] if shape == "list" else {"Value": "x"})

    def with_leaf(event: dict[str, Any]) -> None:
        event["ResourceProperties"] = leaf

    update = send(event_with("Update", response_server.url, with_leaf))
    delete = send(event_with("Delete", response_server.url, with_leaf))

    assert update.only["Status"] == "FAILED"
    update.assert_readable()
    named = str(path[-1]) if not isinstance(path[-1], int) else str(path[-2])
    assert named in update.only["Reason"] or path[0] in update.only["Reason"], update.only["Reason"]
    assert "StopInferenceExperiment" not in update.sagemaker_calls
    assert delete.only["Status"] == "SUCCESS"
    assert "StopInferenceExperiment" not in delete.sagemaker_calls


def properties_at(properties: dict[str, Any], path: tuple[Any, ...]) -> Any:
    value: Any = properties
    for key in path:
        value = value[key]
    return value


# --- What is wrong, in the user's words: never a Python type name -------------------------------------------------

# A value of each kind JSON has, and more, where a property holds something else.
WRONG_KINDS = [None, True, False, 3, 2.5, -1, ["ml.m5.xlarge"], {"Value": "x"}, [], {}]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("DesiredModelVariants[0] InstanceType None must be a string, not NoneType", ["NoneType"]),
        ("Name 5 must be a string, not int", ["not int"]),
        ("InstanceType ['a'] must be a string, not list", ["not list"]),
        ("got <class 'dict'>", ["<class ", "dict"]),
        ("DesiredModelVariants must be a list of 1 or 2 variants; got a list []", []),
        ("ResourceProperties must be an object; got nothing", []),
        ("PromotionGuard.MaxErrorRate must be a number from 0 to 1; got the string 'fast'", []),
    ],
    ids=["nonetype", "not-int", "not-list", "class", "a-list-of", "an-object", "a-number"],
)
def test_the_python_type_name_check_finds_them_and_not_english(text: str, found: list[str]) -> None:
    assert python_type_names(text) == found


@pytest.mark.parametrize("value", WRONG_KINDS, ids=[repr(value) for value in WRONG_KINDS])
def test_no_reason_for_a_malformed_property_shows_a_python_type_name(value: Any) -> None:
    refused = []
    for path in SCALARS:
        try:
            properties.parse(replaced(guarded_properties(), path, value), frozenset({"ml.m5.xlarge"}))
        except properties.InvalidProperties as error:
            refused.append((path, str(error)))

    assert len(refused) >= len(SCALARS) // 2, "most of these values are malformed wherever they are put"
    for path, reason in refused:
        assert not python_type_names(reason), (path, reason)
        assert not PYTHON_LITERAL.search(reason), (path, reason)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "DesiredModelVariants[0] InstanceType is missing"),
        (["ml.m5.xlarge"], 'DesiredModelVariants[0] InstanceType must be a string; got a list ["ml.m5.xlarge"]'),
        ({"Value": "x"}, 'DesiredModelVariants[0] InstanceType must be a string; got an object {"Value": "x"}'),
        (True, "DesiredModelVariants[0] InstanceType must be a string; got true"),
        (3, "DesiredModelVariants[0] InstanceType 3 must be a string"),
    ],
    ids=["null", "a-list", "an-object", "true", "a-number"],
)
def test_an_instance_type_of_the_wrong_kind_is_described_in_the_users_words(
    send: Callable[[Any], Answer], response_server: ResponseServer, value: Any, reason: str
) -> None:
    def edit(event: dict[str, Any]) -> None:
        variant = event["ResourceProperties"]["DesiredModelVariants"][0]
        variant["InfrastructureConfig"]["RealTimeInferenceConfig"]["InstanceType"] = value

    answer = send(event_with("Update", response_server.url, edit))

    assert (answer.only["Status"], answer.only["Reason"]) == ("FAILED", reason)
    assert "StopInferenceExperiment" not in answer.sagemaker_calls


def test_a_read_that_cannot_connect_says_so_in_botocores_words_not_its_class_name() -> None:
    clock = FakeClock()

    def unreachable() -> None:
        raise EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com/")

    with pytest.raises(aws.Unreadable) as raised:
        aws.read(
            unreachable, "sagemaker:DescribeInferenceExperiment", "shadow-test", clock, clock.time() + 5, lambda: 0
        )

    assert str(raised.value) == (
        "sagemaker:DescribeInferenceExperiment on shadow-test could not be read (Could not connect to the endpoint "
        'URL: "https://api.sagemaker.us-east-1.amazonaws.com/")'
    )
