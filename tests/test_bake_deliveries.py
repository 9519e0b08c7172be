"""Copies, late links and edited records of a bake, through index.handler: what the adversarial review of issue 20
reproduced, each now a test. The world is tests/test_bake.py's (a fake clock; the experiment, its endpoint, the
alarms with their history, the stack; every request validated against botocore's model)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import lifecycle
from alarms_on_a_clock import PRODUCTION_CONFIG, Alarm, EndpointOnAClock, _refused
from botocore.exceptions import ReadTimeoutError
from conftest import response_server  # noqa: F401 (a fixture the world needs)
from test_bake import BAKE_SECONDS, FIRED, GUARD, SHORT_RUN_MILLIS, World, world  # noqa: F401 (world: a fixture)

NEWER = "shadow-test-endpoint-config-newer"  # someone else's configuration (a pipeline, the console)


def autoscale(endpoint: EndpointOnAClock, at: float) -> None:
    """UpdateEndpointWeightsAndCapacities (auto scaling) at `at`: the same configuration, a later LastModifiedTime."""
    original = endpoint._endpoint

    def described() -> dict[str, Any]:
        found = original()
        if endpoint.clock.time() >= at and found["EndpointStatus"] == "InService":
            found["LastModifiedTime"] = max(
                found["LastModifiedTime"], datetime.datetime.fromtimestamp(at, datetime.UTC)
            )
        return found

    endpoint._endpoint = described  # type: ignore[method-assign]


def _stops_time_out(w: World) -> None:
    """Every answer of StopInferenceExperiment lost (a read timeout), though SageMaker takes the stop."""
    endpoint = w.endpoint
    answered = endpoint._answer

    def answer(model: Any, params: Any, **given: Any) -> Any:
        result = answered(model, params, **given)
        if model.name == "StopInferenceExperiment":
            raise ReadTimeoutError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com/")
        return result

    taken: Any = answered
    endpoint.client.meta.events.unregister("before-call.sagemaker.*", taken)
    endpoint.client.meta.events.register_first("before-call.sagemaker.*", answer)


def _stale_after_completion(endpoint: EndpointOnAClock) -> None:
    """For 20 s after the experiment completed, the endpoint shows production's configuration, InService (how
    long SageMaker reports the configuration before the promotion is *unverified*)."""
    original = endpoint._endpoint

    def described() -> dict[str, Any]:
        found = original()
        completed = endpoint.completed_at
        if completed <= endpoint.clock.time() < completed + 20 and endpoint.updated is None:
            found.update(EndpointStatus="InService", EndpointConfigName=PRODUCTION_CONFIG)
            found.pop("PendingDeploymentSummary", None)
        return found

    endpoint._endpoint = described  # type: ignore[method-assign]


def test_a_copy_after_auto_scaling_moved_last_modified_time_answers_as_the_first_did(
    world: Any,  # noqa: F811 (the fixture)
) -> None:
    # GIVEN a bake that passed (SUCCESS Promoted), a stack that completed, and auto scaling at 1,200 s
    w: World = world(GUARD)
    first = w.chain()
    assert first.answer["Status"] == "SUCCESS", first.answer.get("Reason")
    w.stack.status = "UPDATE_COMPLETE"
    sent = w.endpoint.stopped_at or 0.0
    w.clock.now = sent + 1200
    autoscale(w.endpoint, w.clock.time())
    w.clock.sleep(50)

    # WHEN a copy of the Update is delivered, before the event's deadline
    w.deliver(w.event)

    # THEN it sends nothing and answers as the first did
    assert w.endpoint.updates == []
    assert [body["Status"] for body in w.server.bodies] == ["SUCCESS", "SUCCESS"]


def test_an_alarm_just_after_the_window_does_not_split_the_deliveries(world: Any) -> None:  # noqa: F811
    # GIVEN the first delivery's bake handed on; its alarm fires 5 s after the window's end
    w: World = world(GUARD, fires_after=BAKE_SECONDS + 5)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    end = w.endpoint.serving_at + BAKE_SECONDS
    # WHEN a copy arrives 6 s after the window's end, and the first delivery's link 31 s after it
    w.clock.now = end + 6
    w.deliver(w.event, 60_000)
    w.clock.now = max(w.clock.now, end + 31)
    w.deliver(link)
    w.stack.status = "UPDATE_COMPLETE"  # CloudFormation took the first delivery's SUCCESS
    for handed in w.invoker.payloads[1:]:
        w.deliver(handed)

    # THEN no rollback (the alarm was not in the window), and every answer the same
    assert w.endpoint.updates == []
    assert {body["Status"] for body in w.server.bodies} == {"SUCCESS"}
    assert len(w.server.bodies) == 2  # the copy's chain answers too: its link is not taken for the first's


def test_a_copy_after_sagemaker_undid_the_rollback_sends_no_second_update(world: Any) -> None:  # noqa: F811
    # GIVEN a rollback after an alarm at minute 2 of the bake, which SageMaker undoes (InService on the promotion)
    w: World = world(GUARD, fires_after=120, update_fails="", failed_status="InService")
    w.deliver(w.event, SHORT_RUN_MILLIS)
    assert len(w.endpoint.updates) == 1
    # WHEN a copy of the Update is delivered
    w.deliver(w.event)
    # THEN it sends no UpdateEndpoint of its own
    assert len(w.endpoint.updates) == 1


def test_a_copy_never_rolls_back_a_configuration_someone_else_deployed(world: Any) -> None:  # noqa: F811
    w: World = world(GUARD)
    assert w.chain().answer["Status"] == "SUCCESS"
    sent = w.endpoint.stopped_at or 0.0
    w.stack.status = "UPDATE_COMPLETE"
    w.clock.now = sent + 1000
    w.endpoint.updated = (w.clock.time(), NEWER)
    w.clock.now = sent + 1200

    w.deliver(w.event)

    assert w.endpoint.updates == []


def test_an_experiment_completed_a_moment_before_its_endpoint_updates_is_not_taken_for_a_rollback(
    world: Any,  # noqa: F811
) -> None:
    # GIVEN an experiment reported Completed while its endpoint shows production's configuration for 20 s more
    w: World = world(GUARD)
    _stale_after_completion(w.endpoint)

    # WHEN the Update is carried out, no alarm firing
    chain = w.chain()

    # THEN the bake of the promotion passes: nothing was rolled back, so nothing says so
    assert chain.answer["Status"] == "SUCCESS", chain.answer.get("Reason")
    assert chain.endpoint.updates == []


def test_an_endpoint_that_fails_during_the_bake_is_no_pass(world: Any) -> None:  # noqa: F811
    # GIVEN an endpoint that goes Failed 200 s into the bake, on the promoted configuration; no alarm fires
    w: World = world(GUARD)
    original = w.endpoint._endpoint
    why = "The primary container for production variant shadow did not pass the ping health check."

    def described() -> dict[str, Any]:
        found = original()
        if w.clock.time() >= w.endpoint.serving_at + 200 and w.endpoint.updated is None:
            found.update(EndpointStatus="Failed", FailureReason=why)
        return found

    w.endpoint._endpoint = described  # type: ignore[method-assign]

    chain = w.chain()

    # THEN FAILED, saying what the endpoint is (the gate does not update a Failed endpoint: fail safe)
    assert chain.answer["Status"] == "FAILED"
    said = f"the endpoint is Failed on shadow-test-endpoint-config-promoted ({why})"
    assert said in w.caplog.text
    assert "not on shadow-test-endpoint-config-promoted" not in w.caplog.text


def test_a_promote_whose_every_attempt_timed_out_but_was_taken_is_baked(world: Any) -> None:  # noqa: F811
    # GIVEN a stop SageMaker accepts, whose every answer is lost (a read timeout each time)
    w: World = world(GUARD, fires_after=60)
    endpoint = w.endpoint
    _stops_time_out(w)

    # WHEN the Update is carried out
    chain = w.chain()

    # THEN the stop is found under way, taken for this run's own, baked, and rolled back when the alarm fires
    assert len(endpoint.updates) == 1
    assert chain.answer["Status"] == "FAILED"
    assert chain.answer["Reason"].startswith("RolledBack: ")


def test_a_record_whose_bake_is_shorter_than_declared_is_refused(world: Any) -> None:  # noqa: F811
    w: World = world(GUARD, fires_after=7 * 60)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    forged = copy.deepcopy(link)
    record = forged[lifecycle.CONTINUATION]
    record["BakeEnd"] = record["BakeStart"] + 60
    w.clock.now = w.endpoint.serving_at + 8 * 60

    w.deliver(forged)

    answer = w.server.only_answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("The event's InferenceExperimentStopperContinuation holds a bake")


def test_a_stack_read_that_hangs_past_the_deadline_sends_no_rollback_after_it(world: Any) -> None:  # noqa: F811
    # GIVEN a bake ending 1,660 s after the event (deadline 1,800 s), its alarm firing at 1,630 s, and from 1,200 s a
    # DescribeStacks that hangs 200 s (botocore's attempts and read timeouts), then is throttled
    w: World = world(GUARD, stop_takes=1000, fires_after=570)
    stack, sent = w.stack, w.clock.time()
    answered = stack._answer

    def answer(model: Any, **given: Any) -> Any:
        if model.name == "DescribeStacks" and w.clock.time() >= sent + 1200:
            w.clock.sleep(200)
            return _refused("ThrottlingException", "Rate exceeded", "https://cloudformation.us-east-1.amazonaws.com")
        return answered(model, **given)

    taken: Any = answered
    stack.client.meta.events.unregister("before-call.cloudformation.*", taken)
    stack.client.meta.events.register_first("before-call.cloudformation.*", answer)

    # WHEN the Update is carried out
    chain = w.chain()

    # THEN no UpdateEndpoint leaves after the deadline: the gate reads the clock last
    assert all(update.at <= sent + 1800 for update in w.endpoint.recorder.of("UpdateEndpoint"))
    assert chain.answer["Status"] == "FAILED"


# From the second review: who is the delivery that stopped, and a copy whose first delivery is gone or late.


def test_the_later_links_of_a_delivery_whose_stop_answer_was_lost_are_still_its_own(world: Any) -> None:  # noqa: F811
    # GIVEN a stop taken but unanswered, an experiment that reports its StatusReason only once it has ended, runs
    # short enough that the wait is handed on while Stopping, and an alarm at minute 2 of the bake
    w: World = world(GUARD, fires_after=120, stop_takes=700)
    described = w.endpoint._describe

    def describe() -> dict[str, Any]:
        found = described()
        if found["Status"] == "Stopping":
            found.pop("StatusReason", None)
        return found

    w.endpoint._describe = describe  # type: ignore[method-assign]
    _stops_time_out(w)

    chain = w.chain(SHORT_RUN_MILLIS)

    # THEN the only delivery rolls back: its later links did not take themselves for a copy
    assert not any(p[lifecycle.CONTINUATION].get("Follower") for p in chain.payloads)
    assert len(w.endpoint.updates) == 1
    assert chain.answer["Reason"].startswith("RolledBack: ")


def test_a_copy_rolls_back_itself_where_the_delivery_that_stopped_is_gone(world: Any) -> None:  # noqa: F811
    # GIVEN the first delivery's hand-on lost mid-bake (a read timeout, and Lambda never runs it); an alarm at minute 7
    w: World = world(GUARD, fires_after=7 * 60)
    invoker = w.invoker
    taken: Any = invoker._answer
    lost = [False]

    def answer(model: Any, **given: Any) -> Any:
        if model.name == "Invoke" and not lost[0]:
            lost[0] = True
            raise ReadTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com/")
        return taken(model, **given)

    invoker.client.meta.events.unregister("before-call.lambda.*", taken)
    invoker.client.meta.events.register_first("before-call.lambda.*", answer)
    w.deliver(w.event, SHORT_RUN_MILLIS)
    assert lost[0]
    assert w.server.bodies == []

    # WHEN a copy of the Update is delivered, and its links run
    w.deliver(w.event)
    while not w.server.bodies:
        w.deliver(w.invoker.payloads[-1])

    # THEN the copy, seeing no rollback by the deadline less the reserve, rolls back itself before it answers
    # (here the update outlasts the deadline: FAILED, saying the rollback is under way)
    assert len(w.endpoint.updates) == 1
    assert w.server.only_answer["Reason"].startswith(
        f"The rollback of shadow-test's endpoint to {PRODUCTION_CONFIG} after {FIRED} was still under way"
    )


def test_a_copy_does_not_take_the_endpoint_before_the_promotion_for_a_rollback(world: Any) -> None:  # noqa: F811
    # GIVEN an experiment reported Completed while its endpoint shows production's configuration for 20 s more
    w: World = world(GUARD)
    _stale_after_completion(w.endpoint)
    w.deliver(w.event, 60_000)  # the first delivery stops and hands on while Stopping
    [first_link] = w.invoker.payloads

    # WHEN a copy is delivered now, then the first delivery's link, CloudFormation completes, then the copy's link
    w.deliver(w.event)
    copy_links = w.invoker.payloads[1:]
    w.deliver(first_link)
    w.stack.status = "UPDATE_COMPLETE"
    for handed in copy_links:
        w.deliver(handed)

    # THEN nothing was rolled back, and every answer is SUCCESS
    assert w.endpoint.updates == []
    assert {body["Status"] for body in w.server.bodies} == {"SUCCESS"}


def test_a_copy_that_saw_the_promotion_first_never_answers_success_before_the_first_delivery(
    world: Any,  # noqa: F811
) -> None:
    # GIVEN an alarm 10 s after the bake's window as the copy reads it, within the first delivery's later window
    w: World = world(GUARD, fires_after=610)
    w.deliver(w.event, 60_000)  # the first delivery: the stop, then a hand-on while Stopping
    [first_link] = w.invoker.payloads
    w.deliver(w.event, 225_000)  # a copy, the first to see the endpoint serve the promotion
    copy_link = w.invoker.payloads[-1]
    autoscale(w.endpoint, w.clock.time())  # auto scaling moves LastModifiedTime
    w.clock.sleep(1)
    w.deliver(first_link, 320_000)  # the first delivery's link, held in Lambda's queue until now
    first_link_2 = w.invoker.payloads[-1]

    w.deliver(copy_link)
    w.deliver(first_link_2)

    # THEN the first answer CloudFormation gets is not a SUCCESS the endpoint's rollback contradicts
    first = w.server.bodies[0]
    assert not (first["Status"] == "SUCCESS" and w.endpoint.updates)


def test_a_refused_rollback_is_said_first_in_the_reason_cloudformation_shows(world: Any) -> None:  # noqa: F811
    long_name = "shadow-" + "latency-" * 16  # 135 characters (CloudWatch allows 255)
    w: World = world({**GUARD, "Alarms": [long_name]}, alarms=lambda e: [Alarm(long_name, lambda: e.serving_at + 420)])
    w.deliver(w.event, SHORT_RUN_MILLIS)
    [link] = w.invoker.payloads
    w.endpoint.updated = (w.clock.time(), NEWER)

    w.deliver(link)

    answer = w.server.only_answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"endpoint shadow-test-endpoint was not rolled back to {PRODUCTION_CONFIG}")
