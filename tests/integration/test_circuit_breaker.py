"""The circuit breaker through the handler, against moto's Lambda API (the function's own event
source mapping, created with the template's MaximumConcurrency) and a real downstream on
127.0.0.1: tripping and not tripping, open without calls, the probe (half-opening an open
mapping, closing a quiet half-open one), failing open, and off."""

from __future__ import annotations

import gc
import io
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError
from moto.awslambda.models import lambda_backends
from moto.sqs.models import sqs_backends

import consumer.runtime as runtime_module
from consumer.app import init_phase
from consumer.breaker import BreakerPolicy
from consumer.runtime import get_runtime
from local.moto_stack import ACCOUNT_ID, REGION
from tests.integration.conftest import Harness
from tests.support.downstream import Answer
from tests.support.expected_delays import TEMPLATE_DEFAULTS

FUNCTION_NAME = "sqs-backoff-consumer-ConsumerFunction"
PROBE: dict[str, Any] = {"breakerProbe": {}}


class Mapping:
    """The function's event source mapping in moto, as the template makes it."""

    def __init__(self, consumer: Harness) -> None:
        self.client: Any = boto3.client("lambda", region_name=REGION)
        iam: Any = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="consumer",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("consumer/__init__.py", "")
        self.client.create_function(
            FunctionName=FUNCTION_NAME,
            Runtime="python3.13",
            Role=role,
            Handler="consumer.app.lambda_handler",
            Code={"ZipFile": code.getvalue()},
        )
        self.configured = int(consumer.stack.function_environment()["MAXIMUM_CONCURRENCY"])
        self.uuid: str = self.client.create_event_source_mapping(
            EventSourceArn=consumer.source_arn,
            FunctionName=FUNCTION_NAME,
            BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": self.configured},
        )["UUID"]
        # moto would invoke the function itself (in Docker) on each SendMessage: the test is
        # the poller here, as the local system is its own (local.emulator does the same).
        for queue in sqs_backends[ACCOUNT_ID][REGION].queues.values():
            queue.lambda_event_source_mappings.clear()

    def read(self) -> tuple[str, int | None]:
        mapping = self.client.get_event_source_mapping(UUID=self.uuid)
        return mapping["State"], (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")

    def disable(self) -> None:
        self.client.update_event_source_mapping(UUID=self.uuid, Enabled=False)

    def half_open(self, changed_seconds_ago: float) -> None:
        """Enabled at 3 pollers, as the probe leaves it, that long ago (LastModified)."""
        self.client.update_event_source_mapping(
            UUID=self.uuid, Enabled=True, ScalingConfig={"MaximumConcurrency": 3}
        )
        self.backend_mapping().last_modified = time.time() - changed_seconds_ago

    def backend_mapping(self) -> Any:
        """moto's own record of the mapping: the test moves its LastModified back in time."""
        return lambda_backends[ACCOUNT_ID][REGION]._event_source_mappings[self.uuid]


@pytest.fixture
def mapping(consumer: Harness, monkeypatch: pytest.MonkeyPatch) -> Mapping:
    """The mapping exists and the function runs as that Lambda function: the breaker is on."""
    created = Mapping(consumer)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
    restart(consumer)
    return created


def restart(consumer: Harness) -> None:
    """A new execution environment, with the environment variables set now."""
    get_runtime.cache_clear()
    consumer.watch_runtime()


def send_batch(consumer: Harness, bodies: list[str]) -> dict[str, Any]:
    for body in bodies:
        consumer.send(body)
    event = consumer.receive_event()
    assert len(event["Records"]) == len(bodies)
    return event


def fail_whole_batch(consumer: Harness) -> None:
    event = send_batch(consumer, [json.dumps({"n": n}) for n in range(10)])
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)


def transitions(consumer: Harness) -> list[tuple[str, str]]:
    return [
        (line["breaker_from"], line["breaker_to"])
        for line in consumer.emitted().logs
        if line.get("message") == "circuit breaker transition"
    ]


def test_a_full_outage_disables_the_mapping_and_stops_the_calls(
    consumer: Harness, mapping: Mapping
) -> None:
    # Given a downstream that answers every call 503, without Retry-After
    consumer.downstream.default = Answer(status=503)
    # When three batches of 10, delivered concurrently, fail as a whole
    for _ in range(3):
        fail_whole_batch(consumer)
    # Then the function disabled its own mapping, saying why
    assert mapping.read()[0] == "Disabled"
    assert transitions(consumer) == [("closed", "open")]
    assert consumer.emitted().metric_values("BreakerOpened") == [1]
    calls_before = len(consumer.downstream.requests)
    assert calls_before == 30
    # When records the pollers had already received arrive
    consumer.visibility_changes.clear()
    fail_whole_batch(consumer)
    # Then they are failed without a call, each rescheduled with the usual backoff
    assert len(consumer.downstream.requests) == calls_before
    assert len(consumer.visibility_changes) == 10
    low, high = TEMPLATE_DEFAULTS[1]
    assert all(low <= change["VisibilityTimeout"] <= high for change in consumer.visibility_changes)
    assert sum(consumer.emitted().metric_values("BreakerShortCircuited")) == 10


@pytest.mark.parametrize("failing_per_batch", [1, 5])
def test_partial_failures_leave_the_mapping_enabled(
    consumer: Harness, mapping: Mapping, failing_per_batch: int
) -> None:
    # Given a downstream that fails 10 % or 50 % of the messages (503, no Retry-After)
    failing = json.dumps({"simulate": {"status": 503}})
    # When six batches of 10 are delivered
    for batch in range(6):
        bodies = [failing] * failing_per_batch + [
            json.dumps({"batch": batch, "n": n}) for n in range(10 - failing_per_batch)
        ]
        consumer.invoke(send_batch(consumer, bodies))
    # Then the mapping is still enabled at its configured concurrency: healthy traffic flows
    assert mapping.read() == ("Enabled", mapping.configured)
    assert transitions(consumer) == []
    assert len(consumer.downstream.requests) == 60


def test_retry_after_answers_leave_the_mapping_enabled(consumer: Harness, mapping: Mapping) -> None:
    # Given a downstream that answers every call 503 with Retry-After (overloaded, not down)
    consumer.downstream.default = Answer(status=503, headers={"Retry-After": "1"})
    # When four batches fail as a whole
    for _ in range(4):
        fail_whole_batch(consumer)
    # Then the breaker never opened
    assert mapping.read() == ("Enabled", mapping.configured)
    assert transitions(consumer) == []


def test_the_probe_half_opens_the_mapping_at_three_when_the_downstream_is_up(
    consumer: Harness, mapping: Mapping
) -> None:
    # Given an open breaker (the mapping disabled), as this environment last read it
    mapping.disable()
    with pytest.raises(BatchProcessingError):
        consumer.invoke(send_batch(consumer, [json.dumps({"before": "probe"})]))
    # ...and a downstream that is back, When the scheduled probe runs
    report = consumer.invoke(PROBE)
    # Then it asked the downstream once, with HEAD on the downstream's own URL
    [request] = consumer.downstream.requests
    assert (request["method"], request["path"]) == ("HEAD", "/messages")
    # ...and enabled the mapping at 3 pollers: half-open
    assert mapping.read() == ("Enabled", 3)
    assert report == {
        "breaker": "half-open",
        "probe": "up",
        "detail": f"HEAD {consumer.downstream.url} answered 200",
        "maximumConcurrency": 3,
    }
    assert transitions(consumer) == [("open", "half-open")]
    assert consumer.emitted().metric_values("BreakerState") == [1]
    # ...and the same environment's next batch goes half-open at once (paced, not refused)
    breaker = get_runtime().breaker
    assert breaker is not None
    breaker.sleep = lambda _: None
    consumer.invoke(send_batch(consumer, [json.dumps({"after": "probe"})]))
    assert [r["method"] for r in consumer.downstream.requests] == ["HEAD", "POST"]


@pytest.mark.parametrize("status", [500, 503, 429])
def test_the_probe_leaves_it_open_while_the_downstream_is_down(
    consumer: Harness, mapping: Mapping, status: int
) -> None:
    # Given an open breaker and a downstream still failing
    mapping.disable()
    consumer.downstream.default = Answer(status=status)
    # When the probe runs, Then the mapping stays disabled and the state reported is open
    report = consumer.invoke(PROBE)
    assert mapping.read()[0] == "Disabled"
    assert (report["breaker"], report["probe"]) == ("open", "down")
    assert consumer.emitted().metric_values("BreakerState") == [2]
    assert transitions(consumer) == []


def test_a_probe_url_is_fetched_with_get_and_needs_a_2xx(
    consumer: Harness, mapping: Mapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a health URL to probe, and an open breaker
    monkeypatch.setenv("BREAKER_PROBE_URL", consumer.downstream.url.replace("/messages", "/health"))
    restart(consumer)
    mapping.disable()
    # When the health URL answers 404, Then the downstream is not judged up
    consumer.downstream.answer(Answer(status=404))
    assert consumer.invoke(PROBE)["probe"] == "down"
    # When it answers 200, Then it is
    assert consumer.invoke(PROBE)["probe"] == "up"
    assert [(r["method"], r["path"]) for r in consumer.downstream.requests] == [
        ("GET", "/health"),
        ("GET", "/health"),
    ]


def test_the_probe_of_a_closed_breaker_only_reports(consumer: Harness, mapping: Mapping) -> None:
    # Given a closed breaker, When the probe runs
    report = consumer.invoke(PROBE)
    # Then nothing is called or changed; the state is reported
    assert report == {"breaker": "closed"}
    assert consumer.downstream.requests == []
    assert mapping.read() == ("Enabled", mapping.configured)
    assert consumer.emitted().metric_values("BreakerState") == [0]


CLOSE_AFTER_S = BreakerPolicy().close_after_s


def test_the_probe_closes_a_quiet_half_open_mapping(consumer: Harness, mapping: Mapping) -> None:
    # Given a mapping half-open for a little longer than close_after_s, and an empty queue
    mapping.half_open(changed_seconds_ago=CLOSE_AFTER_S + 5)
    # When the probe runs
    report = consumer.invoke(PROBE)
    # Then the mapping is back at its configured concurrency, without a call downstream
    assert mapping.read() == ("Enabled", mapping.configured)
    assert report == {"breaker": "closed", "maximumConcurrency": mapping.configured}
    assert consumer.downstream.requests == []
    # ...and the transition is logged and counted as any other
    assert transitions(consumer) == [("half-open", "closed")]
    assert consumer.emitted().metric_values("BreakerClosed") == [1]
    assert consumer.emitted().metric_values("BreakerState") == [0]


def test_the_probe_reads_moto_s_last_modified(consumer: Harness, mapping: Mapping) -> None:
    # moto answers LastModified in whole seconds since the epoch, as time.mktime of UTC's
    # clock reads: the function must see the same instant moto recorded.
    mapping.half_open(changed_seconds_ago=0)
    breaker = get_runtime().breaker
    assert breaker is not None
    view = breaker.mapping.read()
    assert view is not None
    assert view.last_modified == pytest.approx(mapping.backend_mapping().last_modified, abs=1e-3)


def hold_one_visible(consumer: Harness) -> None:
    consumer.send(json.dumps({"waiting": "visible"}))


def hold_one_in_flight(consumer: Harness) -> None:
    # Received and not deleted: a message waiting out its backoff looks the same.
    consumer.send(json.dumps({"waiting": "in flight"}))
    assert len(consumer.receive(visibility_timeout=600)) == 1


def hold_one_delayed(consumer: Harness) -> None:
    consumer.sqs.send_message(
        QueueUrl=consumer.source_url,
        MessageBody=json.dumps({"waiting": "delayed"}),
        DelaySeconds=600,
    )


@pytest.mark.parametrize(
    ("hold", "shown"),
    [
        (hold_one_visible, "1 visible, 0 in flight, 0 delayed"),
        (hold_one_in_flight, "0 visible, 1 in flight, 0 delayed"),
        (hold_one_delayed, "0 visible, 0 in flight, 1 delayed"),
    ],
)
def test_the_probe_keeps_it_half_open_while_the_queue_holds_messages(
    consumer: Harness, mapping: Mapping, hold: Callable[[Harness], None], shown: str
) -> None:
    # Given a mapping half-open long enough, and one message visible, in flight or delayed
    mapping.half_open(changed_seconds_ago=CLOSE_AFTER_S + 5)
    hold(consumer)
    # When the probe runs, Then the mapping stays half-open, and the report says why
    report = consumer.invoke(PROBE)
    assert mapping.read() == ("Enabled", 3)
    assert report == {"breaker": "half-open", "quiet": f"source queue: {shown}"}
    assert transitions(consumer) == []
    assert consumer.emitted().metric_values("BreakerState") == [1]


def test_the_probe_does_not_close_it_before_close_after_s(
    consumer: Harness, mapping: Mapping
) -> None:
    # Given an empty queue and a mapping half-open for half of close_after_s
    mapping.half_open(changed_seconds_ago=CLOSE_AFTER_S / 2)
    # When the probe runs, Then it stays half-open
    report = consumer.invoke(PROBE)
    assert mapping.read() == ("Enabled", 3)
    assert report["breaker"] == "half-open"
    assert report["quiet"].startswith("half-open for ")
    assert transitions(consumer) == []
    # When close_after_s has passed since the change, Then the next probe closes it
    mapping.backend_mapping().last_modified = time.time() - CLOSE_AFTER_S
    assert consumer.invoke(PROBE)["breaker"] == "closed"
    assert mapping.read() == ("Enabled", mapping.configured)


def test_a_queue_the_probe_cannot_read_leaves_it_half_open(
    consumer: Harness, mapping: Mapping
) -> None:
    # Given a quiet half-open mapping, and SQS refusing GetQueueAttributes
    mapping.half_open(changed_seconds_ago=CLOSE_AFTER_S + 5)
    get_runtime().sqs.client.get_queue_attributes = refuse("GetQueueAttributes")  # type: ignore[method-assign]
    # When the probe runs, Then it reports the error and leaves the mapping as it was
    report = consumer.invoke(PROBE)
    assert mapping.read() == ("Enabled", 3)
    assert report["breaker"] == "half-open"
    assert "TooManyRequestsException" in report["error"]
    errors = [
        line for line in consumer.emitted().logs if "source queue's counts" in line["message"]
    ]
    assert "GetQueueAttributes" in errors[0]["error"]


def refuse(operation: str) -> Callable[..., Any]:
    def refused(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}},
            operation,
        )

    return refused


def test_aws_errors_reading_the_mapping_let_deliveries_go_on(
    consumer: Harness, mapping: Mapping
) -> None:
    # Given an open breaker whose mapping the function cannot read (throttled)
    mapping.disable()
    breaker = get_runtime().breaker
    assert breaker is not None
    lambda_client: Any = breaker.mapping.client  # type: ignore[attr-defined]
    lambda_client.list_event_source_mappings = refuse("ListEventSourceMappings")
    # When a batch arrives
    bodies = [json.dumps({"n": n}) for n in range(3)]
    response = consumer.invoke(send_batch(consumer, bodies))
    # Then it is delivered as if the breaker were closed, and the failure is logged
    assert response == {"batchItemFailures": []}
    assert len(consumer.downstream.requests) == 3
    warnings = [line for line in consumer.emitted().logs if "could not read" in line["message"]]
    assert "TooManyRequestsException" in warnings[0]["error"]


def test_the_probe_never_raises(consumer: Harness, mapping: Mapping) -> None:
    # Given a mapping the Lambda API will not let the probe read
    breaker = get_runtime().breaker
    assert breaker is not None
    lambda_client: Any = breaker.mapping.client  # type: ignore[attr-defined]
    lambda_client.list_event_source_mappings = refuse("ListEventSourceMappings")
    # When the probe runs, Then it reports the error instead of raising (an asynchronous
    # invocation that raised would be retried and land on the failed-jobs queue)
    report = consumer.invoke(PROBE)
    assert report["breaker"] == "unknown"
    assert "TooManyRequestsException" in report["error"]


def test_half_open_paces_the_batch_and_counts_every_call(
    consumer: Harness, mapping: Mapping
) -> None:
    # Given a half-open mapping (3 pollers) and a recorder in place of the pace's waits
    mapping.client.update_event_source_mapping(
        UUID=mapping.uuid, ScalingConfig={"MaximumConcurrency": 3}
    )
    breaker = get_runtime().breaker
    assert breaker is not None
    waits: list[float] = []
    breaker.sleep = waits.append
    # When a batch of 10 is delivered by the pool's threads
    consumer.invoke(send_batch(consumer, [json.dumps({"n": n}) for n in range(10)]))
    # Then every record was delivered, 9 of them held back for the pace (a slot each)
    assert len(consumer.downstream.requests) == 10
    assert len(waits) == 9
    assert len({round(wait, 3) for wait in waits}) == 9


def test_the_breaker_is_off_without_its_switch_or_its_function(
    consumer: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the template's environment outside Lambda (no AWS_LAMBDA_FUNCTION_NAME)
    # Then there is no breaker: no Lambda API call, today's behaviour
    assert get_runtime().breaker is None
    # Given a function whose breaker is switched off, Then there is none either
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
    monkeypatch.setenv("BREAKER_ENABLED", "false")
    restart(consumer)
    assert get_runtime().breaker is None
    # ...and its probe reports it off
    assert consumer.invoke(PROBE) == {"breaker": "off"}
    # Given it switched on, Then there is one
    monkeypatch.setenv("BREAKER_ENABLED", "true")
    restart(consumer)
    assert get_runtime().breaker is not None


class LambdaRequests:
    """The Lambda API operations the breaker's client makes, in order."""

    def __init__(self) -> None:
        self.operations: list[str] = []

    def record(self, model: Any, **_: Any) -> None:
        self.operations.append(model.name)


@pytest.fixture
def lambda_requests(monkeypatch: pytest.MonkeyPatch) -> LambdaRequests:
    """Records the breaker client's requests from the moment it is made: init's included."""
    requests = LambdaRequests()
    made = runtime_module._lambda_client

    def watched() -> Any:
        client: Any = made()
        client.meta.events.register("before-call.lambda", requests.record)
        return client

    monkeypatch.setattr(runtime_module, "_lambda_client", watched)
    return requests


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The init phase freezes the garbage collector's objects: later tests start unfrozen."""
    yield
    gc.unfreeze()


def test_an_on_demand_init_reads_the_mapping_and_its_first_batch_reads_nothing(
    consumer: Harness,
    mapping: Mapping,
    lambda_requests: LambdaRequests,
    monkeypatch: pytest.MonkeyPatch,
    unfrozen: None,
) -> None:
    # Given a new on-demand execution environment of the function
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    restart(consumer)
    # When its init phase runs
    init_phase(os.environ)
    # Then it found and read the mapping with one request, and froze what it made
    assert lambda_requests.operations == ["ListEventSourceMappings"]
    assert gc.get_freeze_count() > 0
    # When the first batch follows, Then it is delivered without another request
    response = consumer.invoke(send_batch(consumer, [json.dumps({"n": n}) for n in range(3)]))
    assert response == {"batchItemFailures": []}
    assert len(consumer.downstream.requests) == 3
    assert lambda_requests.operations == ["ListEventSourceMappings"]


def test_an_environment_started_while_open_fails_its_first_batch_without_a_call(
    consumer: Harness,
    mapping: Mapping,
    lambda_requests: LambdaRequests,
    monkeypatch: pytest.MonkeyPatch,
    unfrozen: None,
) -> None:
    # Given an open breaker (the mapping disabled) and a new on-demand environment
    mapping.disable()
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    restart(consumer)
    # When its init phase runs and the records the pollers had received arrive
    init_phase(os.environ)
    with pytest.raises(BatchProcessingError):
        consumer.invoke(send_batch(consumer, [json.dumps({"n": n}) for n in range(3)]))
    # Then they are failed without a call, from what the init read
    assert consumer.downstream.requests == []
    assert sum(consumer.emitted().metric_values("BreakerShortCircuited")) == 3
    assert lambda_requests.operations == ["ListEventSourceMappings"]


def test_an_environment_started_while_half_open_paces_its_first_batch(
    consumer: Harness,
    mapping: Mapping,
    monkeypatch: pytest.MonkeyPatch,
    unfrozen: None,
) -> None:
    # Given a half-open mapping (3 pollers) and a new on-demand environment
    mapping.client.update_event_source_mapping(
        UUID=mapping.uuid, ScalingConfig={"MaximumConcurrency": 3}
    )
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    restart(consumer)
    init_phase(os.environ)
    breaker = get_runtime().breaker
    assert breaker is not None
    waits: list[float] = []
    breaker.sleep = waits.append
    # When its first batch of 5 is delivered
    consumer.invoke(send_batch(consumer, [json.dumps({"n": n}) for n in range(5)]))
    # Then 4 calls were held back for the pace
    assert len(consumer.downstream.requests) == 5
    assert len(waits) == 4


def test_a_provisioned_init_makes_the_client_and_leaves_the_read_to_the_first_batch(
    consumer: Harness,
    mapping: Mapping,
    lambda_requests: LambdaRequests,
    monkeypatch: pytest.MonkeyPatch,
    unfrozen: None,
) -> None:
    # Given a provisioned environment, whose first batch may come long after its init
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    made: list[Any] = []
    monkeypatch.setattr(
        runtime_module, "_lambda_client", recording(runtime_module._lambda_client, made)
    )
    restart(consumer)
    # When its init phase runs, Then the client is made without a request
    init_phase(os.environ)
    assert len(made) == 1
    assert lambda_requests.operations == []
    # When the first batch comes, Then it reads the mapping itself
    consumer.invoke(send_batch(consumer, [json.dumps({"n": 1})]))
    assert lambda_requests.operations == ["ListEventSourceMappings"]
    assert len(made) == 1


def test_outside_lambda_the_init_phase_builds_nothing(consumer: Harness) -> None:
    # Given no AWS_LAMBDA_FUNCTION_NAME (a test, a tool)
    environ = {key: value for key, value in os.environ.items() if key != "AWS_LAMBDA_FUNCTION_NAME"}
    get_runtime.cache_clear()
    # When the init phase runs, Then it builds no runtime and freezes nothing
    init_phase(environ)
    assert get_runtime.cache_info().currsize == 0
    assert gc.get_freeze_count() == 0


def recording(make: Callable[[], Any], made: list[Any]) -> Callable[[], Any]:
    def made_and_recorded() -> Any:
        client = make()
        made.append(client)
        return client

    return made_and_recorded
