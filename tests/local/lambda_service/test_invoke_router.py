"""The Invoke router's asynchronous queue, with stand-in environments and a clock of its own:
EventInvokeConfig's settings, the age limit, and what reaches the OnFailure queue."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from local.lambda_service.execution_environment import Invocation
from local.lambda_service.invoke_router import AsyncSettings, InvokeRouter, LocalFunction

DEADLINE = 30.0


class Environments:
    """Runs every event at once; an event {"block": true} waits until `release` is set."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.running = threading.Event()
        self.release = threading.Event()

    @contextmanager
    def environment(self) -> Iterator[Environments]:
        yield self

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        self.events.append(event)
        if event.get("block"):
            self.running.set()
            assert self.release.wait(DEADLINE)
        return Invocation(str(request_id), "response", 0.0, False, response={})


def test_the_settings_come_from_the_event_invoke_config() -> None:
    # Given the template's EventInvokeConfig for the consumer, with its SQS OnFailure
    config = {
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 120,
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:1:failed"}},
    }
    # Then the router honours each; without one, Lambda's defaults (2 retries, 6 hours)
    assert AsyncSettings.from_config(config) == AsyncSettings(
        1, 120, "arn:aws:sqs:us-east-1:1:failed"
    )
    assert AsyncSettings.from_config(None) == AsyncSettings(2, 21_600, None)
    # ...and an OnFailure that is not a queue is not one the router can send to
    topic = {"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:1:t"}}}
    assert AsyncSettings.from_config(topic).on_failure_queue_arn is None


def test_an_event_older_than_its_maximum_age_is_dropped_to_the_on_failure_queue() -> None:
    # Given a controller with reserved concurrency 1 whose events may be 60 s old, and a clock
    # the test moves
    now = [1000.0]
    sent: list[tuple[str, str]] = []
    dropped = threading.Event()

    def send_to_queue(arn: str, body: str) -> None:
        sent.append((arn, body))
        dropped.set()

    router = InvokeRouter(send_to_queue=send_to_queue, clock=lambda: now[0])
    environments = Environments()
    router.register(
        LocalFunction(
            "controller",
            "arn:aws:lambda:us-east-1:1:function:controller",
            environments,
            reserved_concurrency=1,
            async_settings=AsyncSettings(0, 60, "arn:aws:sqs:us-east-1:1:failed"),
        )
    )
    try:
        # When one event holds the controller, a second waits behind it, and 100 s pass
        router.invoke("controller", json.dumps({"block": True}).encode(), "Event", None)
        assert environments.running.wait(DEADLINE)
        queued = router.invoke("controller", json.dumps({"late": True}).encode(), "Event", None)
        assert queued is not None
        assert queued.status == 202
        now[0] += 100
        environments.release.set()
        assert dropped.wait(DEADLINE)
    finally:
        router.stop()
    # Then the late event never ran; it went to the OnFailure queue saying why
    assert environments.events == [{"block": True}]
    [(arn, body)] = sent
    record = json.loads(body)
    assert arn == "arn:aws:sqs:us-east-1:1:failed"
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"late": True}


def test_a_function_a_stack_update_deleted_is_invoked_no_more() -> None:
    # Given the controller registered with the router, one of its events running
    environments = Environments()
    router = InvokeRouter(clock=lambda: 0.0)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:controller"
    router.register(LocalFunction("controller", arn, environments, reserved_concurrency=1))
    try:
        assert router.submit(arn, {"block": True})
        assert environments.running.wait(DEADLINE)

        # When a stack update deleted it
        assert router.unregister(arn) is True

        # Then neither a scheduled nor an API Invoke reaches it here (the emulator then answers
        # for the deleted function), and a second unregister finds nothing
        assert router.submit(arn, {"late": 1}) is False
        assert router.invoke("controller", b"{}", "Event", None) is None
        assert router.unregister("controller") is False
        # ...while the invocation that was running ends as it would
        environments.release.set()
    finally:
        router.stop()
    assert environments.events == [{"block": True}]
