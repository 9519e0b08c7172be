"""The hardened crhelper: bounded, status-checked sending; one answer per event; no ResponseURL in logs."""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
import index
import lifecycle
import pytest
import responder
from conftest import ClockContext, FakeClock, LambdaContext, ResponseServer, load_event
from crhelper.resource_helper import CfnResource
from fake_aws import FakeAws, fake_aws

BODY = {"Status": "SUCCESS", "Reason": "", "PhysicalResourceId": "shadow-test", "Data": {}}


def test_put_response_sends_the_body_with_an_empty_content_type(response_server: ResponseServer) -> None:
    assert responder.put_response(response_server.url, BODY, sleep=lambda _: None)

    assert response_server.only_answer == BODY
    assert response_server.headers[0]["Content-Type"] == ""


def test_put_response_retries_server_errors_a_bounded_number_of_times(response_server: ResponseServer) -> None:
    response_server.statuses = [500, 503, 500, 500]
    slept: list[float] = []

    assert not responder.put_response(response_server.url, BODY, sleep=slept.append)

    assert len(response_server.bodies) == responder.SEND_ATTEMPTS == 3
    assert slept == [2, 4]


def test_put_response_succeeds_when_a_retry_is_accepted(response_server: ResponseServer) -> None:
    response_server.statuses = [503]

    assert responder.put_response(response_server.url, BODY, sleep=lambda _: None)
    assert len(response_server.bodies) == 2


def test_put_response_does_not_retry_a_refused_url(
    response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> None:
    response_server.statuses = [403]

    assert not responder.put_response(response_server.url, BODY, sleep=lambda _: None)

    assert len(response_server.bodies) == 1
    assert "HTTP 403" in caplog.text
    assert "Gave up sending the SUCCESS answer" in caplog.text


def test_put_response_gives_up_on_an_unreachable_url_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    assert not responder.put_response("http://127.0.0.1:9/x?X-Amz-Signature=s", BODY, sleep=lambda _: None)
    assert caplog.text.count("attempt") == 3
    assert "X-Amz-Signature" not in caplog.text


def test_put_response_refuses_urls_that_are_not_http() -> None:
    assert not responder.put_response("file:///etc/passwd", BODY)


def test_readable_reasons_keep_their_start_and_fit_cloudformation() -> None:
    reason = responder.readable("Inference experiment x failed:\n" + "y" * 400)
    assert reason.startswith("Inference experiment x failed: yyy")
    assert len(reason) == 255


def test_the_helper_sets_every_attribute_crhelper_would_but_its_unused_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    made: list[str] = []
    monkeypatch.setattr(boto3, "client", lambda name, **_: made.append(name))
    crhelpers = CfnResource(log_level="INFO")
    assert made == ["lambda", "events", "logs"]
    made.clear()

    ours = responder.CfnResponder()

    assert made == []
    assert set(vars(crhelpers)) - {"_lambda_client", "_events_client", "_logs_client"} <= set(vars(ours))


def test_a_missing_region_fails_the_event_readably(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer
) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    index.services.cache_clear()
    event = dict(load_event("Create"), ResponseURL=response_server.url)

    index.handler(event, LambdaContext())

    index.services.cache_clear()
    answer = response_server.only_answer
    assert answer["Status"] == "FAILED"
    assert "region" in answer["Reason"]


def test_exactly_one_answer_when_the_function_is_about_to_time_out(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> None:
    """crhelper's timer answers FAILED 0.5 s before the timeout; the handler finishing later must not answer again."""

    def slow(event: dict[str, Any], context: Any) -> str:
        assert response_server.received.wait(5), "crhelper's timer never answered"
        return "shadow-test"

    monkeypatch.setattr(index.helper, "_create_func", slow)
    event = dict(load_event("Create"), ResponseURL=response_server.url)

    index.handler(event, LambdaContext(remaining_millis=600))

    answer = response_server.only_answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "The function timed out before the experiment finished stopping; see its log"
    assert answer["PhysicalResourceId"].startswith("ShadowTestStack_StopShadowTest04108110_")
    assert "This event was answered already; not answering SUCCESS again" in caplog.text


def test_each_event_is_answered_once_even_when_crhelper_sends_twice(response_server: ResponseServer) -> None:
    helper = responder.CfnResponder()
    helper.create(lambda event, context: "shadow-test")
    event = dict(load_event("Create"), ResponseURL=response_server.url)

    helper(event, LambdaContext())
    helper._send("FAILED", "a second answer")  # what crhelper's timer or error path would do

    assert [body["Status"] for body in response_server.bodies] == ["SUCCESS"]
    helper(event, LambdaContext())  # the next event is answered again
    assert [body["Status"] for body in response_server.bodies] == ["SUCCESS", "SUCCESS"]


def test_the_response_url_is_redacted_from_crhelper_records_at_debug(
    response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> None:
    helper = responder.CfnResponder(log_level="DEBUG")
    helper.create(lambda event, context: "shadow-test")
    event = dict(load_event("Create"), ResponseURL=response_server.url)
    caplog.set_level(logging.DEBUG)
    root = logging.getLogger().level
    try:
        helper(event, LambdaContext())
    finally:
        logging.getLogger().setLevel(root)

    assert "'ResponseURL': '<ResponseURL>'" in caplog.text, "crhelper logs the event at DEBUG; it must be redacted"
    assert response_server.url not in caplog.text
    assert "deadbeefcafe0123456789" not in caplog.text


def test_answers_from_two_threads_at_once_send_once(response_server: ResponseServer) -> None:
    helper = responder.CfnResponder()
    helper.create(lambda event, context: "shadow-test")
    helper(dict(load_event("Create"), ResponseURL=response_server.url), LambdaContext())
    response_server.bodies.clear()
    helper._answered = False
    threads = [threading.Thread(target=helper._send, args=("FAILED", "timer")) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(response_server.bodies) == 1


def test_a_delete_about_to_time_out_answers_success_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Teardown must not stick on the function's own limits: the timer answers a Delete SUCCESS, and only once."""

    def slow(event: dict[str, Any], context: Any) -> str:
        assert response_server.received.wait(5), "crhelper's timer never answered"
        return "shadow-test"

    monkeypatch.setattr(index.helper, "_delete_func", slow)
    monkeypatch.setattr(index.helper, "_sleep_on_delete", 0)
    event = dict(load_event("Delete"), ResponseURL=response_server.url)

    index.handler(event, LambdaContext(remaining_millis=600))

    answer = response_server.only_answer
    assert answer["Status"] == "SUCCESS"
    assert answer["Reason"].startswith("The function ran out of time before the experiment's stop could be seen")
    assert answer["PhysicalResourceId"] == "shadow-test"
    assert "answering the Delete anyway" in caplog.text


def test_botocore_at_debug_never_logs_the_url_in_the_hand_on_payload(
    monkeypatch: pytest.MonkeyPatch, response_server: ResponseServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The hand-on Invoke carries the event, URL included; botocore at DEBUG logs that body: it is redacted."""
    monkeypatch.setattr(index.helper, "_boto_level", "DEBUG")
    monkeypatch.setattr(lifecycle, "_SEEN", type(lifecycle._SEEN)(maxlen=64))
    caplog.set_level(logging.DEBUG)
    root, botocore_level = logging.getLogger().level, logging.getLogger("botocore").level
    clock = FakeClock()
    with fake_aws(FakeAws(status={"shadow-test": "Running"}, describes_while_stopping=100)) as aws:

        def client(name: str) -> Any:
            config = index.HAND_ON if name == "lambda" else index.RETRIES
            return boto3.client(
                name,  # type: ignore[call-overload]
                region_name="us-east-1",
                endpoint_url=aws.url,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=config,
            )

        services = lifecycle.Services(
            client("sagemaker"), client("cloudformation"), clock, client("lambda"), jitter=lambda: 0.0
        )
        monkeypatch.setattr(index, "services", lambda: services)
        event = dict(load_event("Update"), ResponseURL=response_server.url)
        try:
            index.handler(event, ClockContext(clock, millis=40_000))
        finally:
            logging.getLogger().setLevel(root)
            logging.getLogger("botocore").setLevel(botocore_level)

    [(_, _, payload)] = aws.invocations
    assert payload["ResponseURL"] == response_server.url  # the secret was in the body botocore logged
    assert any(r.name.startswith("botocore") and "<ResponseURL>" in r.getMessage() for r in caplog.records)
    assert "deadbeefcafe0123456789" not in caplog.text
    assert not response_server.bodies  # handed on: the next link answers
