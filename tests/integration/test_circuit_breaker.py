"""The circuit breaker against moto (the consumer's event source mapping, its source queue, the
Lambda Invoke of the channel) and a real downstream on 127.0.0.1: a consumer that sees the
downstream down reports to the controller by an asynchronous Invoke and makes no control-plane
call; the controller, through its handler, opens the mapping on a report, probes it open with
a health check (2xx only) or with one real message, and restores it when the breaker is off."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto.core import config as moto_config
from moto.sqs.models import sqs_backends

import breaker_controller.app as controller_app
from breaker_controller.mapping import EventSourceMapping
from consumer.delivery import get_runtime
from local.aws.moto_stack import ACCOUNT_ID, REGION
from local.lambda_service.lambda_context import FakeLambdaContext
from shared.breaker_policy.report import BreakerReport
from shared.breaker_policy.rules import Verdict, WindowCounts
from tests.integration.conftest import Harness
from tests.support.downstream import Answer

CONSUMER = "sqs-backoff-consumer-ConsumerFunction"


class LambdaSide:
    """The consumer function, its mapping and the controller function, in moto."""

    def __init__(self, consumer: Harness) -> None:
        self.client: Any = boto3.client("lambda", region_name=REGION)
        iam: Any = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="breaker-test",
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
            archive.writestr("placeholder.py", "")
        self.controller_name = consumer.stack.function_environment()["BREAKER_CONTROLLER_FUNCTION"]
        for name in (CONSUMER, self.controller_name):
            self.client.create_function(
                FunctionName=name,
                Runtime="python3.13",
                Role=role,
                Handler="placeholder.handler",
                Code={"ZipFile": code.getvalue()},
            )
        self.configured = 10
        self.uuid: str = self.client.create_event_source_mapping(
            EventSourceArn=consumer.source_arn,
            FunctionName=CONSUMER,
            BatchSize=10,
            ScalingConfig={"MaximumConcurrency": self.configured},
        )["UUID"]
        # moto would deliver to the function itself on each SendMessage: the tests are the
        # pollers here, as the local system is its own.
        for queue in sqs_backends[ACCOUNT_ID][REGION].queues.values():
            queue.lambda_event_source_mappings.clear()

    def state(self) -> tuple[str, int | None]:
        mapping = self.client.get_event_source_mapping(UUID=self.uuid)
        return mapping["State"], (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")

    def controller_environment(self, consumer: Harness, **overrides: str) -> dict[str, str]:
        """The controller's environment as template.yaml gives it (the consumer's delivery
        settings, and its own)."""
        return {
            **consumer.stack.function_environment(),
            "EVENT_SOURCE_MAPPING_UUID": self.uuid,
            "CONSUMER_FUNCTION_NAME": CONSUMER,
            "SOURCE_QUEUE_URL": consumer.source_url,
            "SOURCE_QUEUE_RETENTION_SECONDS": "345600",
            "MAXIMUM_CONCURRENCY": str(self.configured),
            "BREAKER_PROBE_URL": "",
            **overrides,
        }


@pytest.fixture
def lambda_side(consumer: Harness, monkeypatch: pytest.MonkeyPatch) -> LambdaSide:
    # moto answers Invoke without running anything (no Docker): the channel's request is what
    # the test observes.
    monkeypatch.setitem(moto_config.default_user_config["lambda"], "use_docker", False)
    return LambdaSide(consumer)


class LambdaCalls:
    """Every Lambda API operation the consumer's runtime makes, with its parameters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, params))


@pytest.fixture
def lambda_calls() -> LambdaCalls:
    calls = LambdaCalls()
    breaker = get_runtime().breaker
    assert breaker is not None
    channel: Any = breaker.channel
    channel.client.meta.events.register("provide-client-params.lambda.*", calls)
    return calls


def fail_batches(consumer: Harness, count: int, size: int = 5) -> None:
    for batch in range(count):
        for index in range(size):
            consumer.send(json.dumps({"batch": batch, "index": index}))
        event = consumer.receive_event()
        with pytest.raises(BatchProcessingError):
            consumer.invoke(event)


# The consumer's side: a report, and no control-plane call ----------------------------------


def test_an_outage_is_reported_by_one_event_invoke_and_no_control_plane_call(
    consumer: Harness, lambda_side: LambdaSide, lambda_calls: LambdaCalls
) -> None:
    # Given a downstream answering 500 to everything
    consumer.downstream.default = Answer(status=500)
    # When three batches of five fail as a whole
    fail_batches(consumer, 3)
    # Then the consumer's only Lambda request was one asynchronous Invoke of the controller
    assert [name for name, _ in lambda_calls.calls] == ["Invoke"]
    [(_, params)] = lambda_calls.calls
    assert params["FunctionName"] == lambda_side.controller_name
    assert params["InvocationType"] == "Event"
    # ...carrying a trip with the window's counts
    report = BreakerReport.from_event(json.loads(params["Payload"]))
    assert report.verdict is Verdict.TRIP
    assert (report.counts.calls, report.counts.whole_batch_failures) == (15, 3)
    # ...which moto accepted as an event (202)
    assert any(
        line.get("message") == "reported to the breaker controller" and line["status_code"] == 202
        for line in consumer.emitted().logs
    )


def test_a_healthy_consumer_never_makes_a_lambda_client(
    consumer: Harness, lambda_side: LambdaSide
) -> None:
    # Given a downstream that answers 200, When batches are delivered
    for index in range(3):
        consumer.send(json.dumps({"n": index}))
        consumer.invoke(consumer.receive_event())
    # Then the breaker's channel never made its Lambda client (nothing to report)
    breaker = get_runtime().breaker
    assert breaker is not None
    assert "client" not in vars(breaker.channel)


def test_credential_failures_are_reported_as_a_pause_and_nothing_is_dead_lettered(
    consumer: Harness, lambda_side: LambdaSide, lambda_calls: LambdaCalls
) -> None:
    # Given a downstream refusing every call's credentials (after a rotation)
    consumer.downstream.default = Answer(status=401)
    # When three batches fail as a whole
    fail_batches(consumer, 3)
    # Then the report is a pause, and every message waits out its backoff: none dead-lettered
    [(_, params)] = lambda_calls.calls
    assert BreakerReport.from_event(json.loads(params["Payload"])).verdict is Verdict.PAUSE
    assert consumer.dead_letters() == []
    assert len(consumer.visibility_changes) == 15


# The controller's side, through its handler ------------------------------------------------


@pytest.fixture
def controller_env(
    consumer: Harness, lambda_side: LambdaSide, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LambdaSide]:
    for name, value in lambda_side.controller_environment(consumer).items():
        monkeypatch.setenv(name, value)
    controller_app.get_wiring.cache_clear()
    yield lambda_side
    controller_app.get_wiring.cache_clear()


def set_controller_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    controller_app.get_wiring.cache_clear()


def report_event() -> dict[str, Any]:
    counts = WindowCounts(calls=15, down_failures=15, whole_batch_failures=3)
    return BreakerReport(Verdict.TRIP, counts, time.time(), "env-1").to_event()


def tick() -> dict[str, Any]:
    answer: dict[str, Any] = controller_app.lambda_handler(
        {"breakerProbe": {}}, FakeLambdaContext()
    )
    return answer


def test_a_report_disables_the_mapping(controller_env: LambdaSide) -> None:
    # Given a closed mapping, When a trip report arrives
    answer = controller_app.lambda_handler(report_event(), FakeLambdaContext())
    # Then the mapping is disabled in moto, and later reports change nothing
    assert answer["action"] == "opened"
    assert controller_env.state()[0] == "Disabled"
    again = controller_app.lambda_handler(report_event(), FakeLambdaContext())
    assert again["action"].startswith("none: mapping Disabled")


@pytest.mark.parametrize(("status", "up"), [(200, True), (204, True), (404, False), (401, False)])
def test_the_health_check_half_opens_it_on_a_2xx_only(
    consumer: Harness,
    controller_env: LambdaSide,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    up: bool,
) -> None:
    # Given an open mapping and a BreakerProbeUrl answering with the status
    set_controller_env(monkeypatch, BREAKER_PROBE_URL=consumer.downstream.url + "/health")
    controller_app.lambda_handler(report_event(), FakeLambdaContext())
    consumer.downstream.answer(Answer(status=status))
    # When the tick probes it
    answer = tick()
    # Then a GET was sent, and only a 2xx half-opens the mapping (3 pollers)
    [request] = consumer.downstream.requests
    assert (request["method"], request["path"]) == ("GET", "/messages/health")
    assert controller_env.state() == (("Enabled", 3) if up else ("Disabled", 10))
    assert answer["probe"] == ("up" if up else "down")


def test_the_message_probe_delivers_one_message_and_deletes_it(
    consumer: Harness, controller_env: LambdaSide
) -> None:
    # Given an open mapping, no probe URL, and two messages waiting
    controller_app.lambda_handler(report_event(), FakeLambdaContext())
    consumer.send('{"order": 1}')
    consumer.send('{"order": 2}')
    # When the tick probes with a real message and the downstream answers 200
    answer = tick()
    # Then one message was delivered, as the consumer would (its id as Idempotency-Key)...
    [request] = consumer.downstream.requests
    assert request["method"] == "POST"
    assert request["body"] in ('{"order": 1}', '{"order": 2}')
    assert request["headers"]["Idempotency-Key"]
    # ...deleted from the queue, and the mapping is half-open
    assert answer["probe"] == "up"
    assert controller_env.state() == ("Enabled", 3)
    assert [m["Body"] for m in consumer.receive(visibility_timeout=0)] == [
        body for body in ('{"order": 1}', '{"order": 2}') if body != request["body"]
    ]


def test_a_failed_message_probe_gives_the_message_its_backoff(
    consumer: Harness, controller_env: LambdaSide
) -> None:
    # Given an open mapping, no probe URL, one message, and a downstream still answering 503
    controller_app.lambda_handler(report_event(), FakeLambdaContext())
    consumer.send('{"order": 1}')
    consumer.downstream.default = Answer(status=503)
    # When the tick probes
    answer = tick()
    # Then the mapping stays open, and the message is back on the queue hidden for its
    # backoff (one receive spent, as any attempt), not dead-lettered
    assert answer["probe"] == "down"
    assert controller_env.state()[0] == "Disabled"
    assert consumer.receive() == []
    assert consumer.dead_letters() == []
    attributes = consumer.sqs.get_queue_attributes(
        QueueUrl=consumer.source_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"


def test_turning_the_breaker_off_restores_an_open_mapping(
    controller_env: LambdaSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the breaker held the mapping open
    controller_app.lambda_handler(report_event(), FakeLambdaContext())
    assert controller_env.state()[0] == "Disabled"
    # When the stack is updated with CircuitBreaker=Disabled and the next tick runs
    set_controller_env(monkeypatch, BREAKER_ENABLED="false")
    answer = tick()
    # Then the mapping is enabled at its configured concurrency again
    assert answer["action"].startswith("restored")
    assert controller_env.state() == ("Enabled", 10)


def test_the_adapter_reads_and_switches_moto_s_mapping(controller_env: LambdaSide) -> None:
    # Given the controller's adapter on the mapping's UUID
    mapping = EventSourceMapping(
        lambda: boto3.client("lambda", region_name=REGION), controller_env.uuid
    )
    # When it disables and re-enables it at 3 pollers
    assert mapping.read().state == "Enabled"
    mapping.disable()
    assert mapping.read().state == "Disabled"
    view = mapping.enable(3)
    # Then moto shows each change, and every request was counted
    assert (view.state, view.maximum_concurrency) == ("Enabled", 3)
    assert mapping.requests == 4


# Never expired: the would-expire rule counts the breaker's longest hold --------------------


@pytest.mark.parametrize(
    ("parameter_overrides", "dead_lettered"),
    [
        # 600 s: the longest hold is a quarter (150 s) plus the backstop's period (300 s, issue
        # 17). The next attempt comes within 32..91 s, plus up to a batching window (300 s):
        # 391 s at most, inside the retention (and so with a quarter alone: 541 s); with the
        # whole hold at least 782 s, past it.
        ({"SourceQueueRetentionSeconds": 600}, True),
        ({"SourceQueueRetentionSeconds": 600, "CircuitBreaker": "Disabled"}, False),
    ],
    indirect=["parameter_overrides"],
)
def test_a_message_the_breaker_could_hold_past_its_expiry_is_dead_lettered_now(
    consumer: Harness, dead_lettered: bool
) -> None:
    # Given a failing message sent just now
    consumer.send('{"n": 1}')
    consumer.downstream.default = Answer(503)
    # When its delivery fails
    event = consumer.receive_event()
    if dead_lettered:
        consumer.invoke(event)
    else:
        with pytest.raises(BatchProcessingError):
            consumer.invoke(event)
    # Then with the breaker on it goes to the dead-letter queue now, reason would-expire: the
    # mapping could stay disabled after its next attempt is due until it expired
    reasons = [
        m["MessageAttributes"]["DeadLetterReason"]["StringValue"] for m in consumer.dead_letters()
    ]
    assert reasons == (["would-expire"] if dead_lettered else [])


def test_the_health_check_carries_the_authentication_header(
    consumer: Harness, controller_env: LambdaSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an authenticated downstream (a Secrets Manager secret) and an open mapping
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(Name="probe-token", SecretString="Bearer probe-0123")["ARN"]
    set_controller_env(
        monkeypatch,
        DOWNSTREAM_AUTH_SECRET_ARN=arn,
        BREAKER_PROBE_URL=consumer.downstream.url + "/health",
    )
    controller_app.lambda_handler(report_event(), FakeLambdaContext())
    # When the tick probes (the credentials work again: 200)
    tick()
    # Then the GET carried the header, so up means the credentials are accepted again
    [request] = consumer.downstream.requests
    assert request["headers"]["Authorization"] == "Bearer probe-0123"
    assert controller_env.state() == ("Enabled", 3)
    parameters.clear_caches()  # type: ignore[no-untyped-call]
