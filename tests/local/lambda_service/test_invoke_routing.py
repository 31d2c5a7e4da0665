"""Lambda's Invoke through the emulator reaches the local execution environments: Event (202,
run in the background, one at a time under reserved concurrency 1, retried, then sent to the
OnFailure queue) and RequestResponse. A stand-in controller plays the breaker controller: it
reads the mapping through AWS_ENDPOINT_URL, and the control plane counts that read."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.aws.control_plane import LambdaControlPlane
from local.aws.emulator import Emulator, running_emulator
from local.lambda_service.execution_environment import EnvironmentPool, FunctionSpec, Setup
from local.lambda_service.function_code import CodePaths, link_distribution_closure
from local.lambda_service.invoke_router import AsyncSettings, InvokeRouter, LocalFunction
from tests.local.aws.test_control_plane import NO_RETRIES, create_mapping

STAND_IN_CONTROLLER = """
import json
import os
import time

import boto3


def _record(**fields):
    with open(os.environ["EVENTS_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(fields) + "\\n")


def handler(event, context):
    _record(phase="start", at=time.time(), request_id=context.aws_request_id)
    state = None
    if "breakerReport" in event:
        mapping = boto3.client("lambda").get_event_source_mapping(
            UUID=os.environ["EVENT_SOURCE_MAPPING_UUID"]
        )
        state = mapping["State"]
    time.sleep(float(event.get("sleep", 0)))
    _record(phase="end", at=time.time(), request_id=context.aws_request_id, state=state)
    if event.get("fail"):
        raise RuntimeError("stand-in controller failed")
    return {"seen": event}
"""

# Long enough for a cold start on a loaded machine; the waits end as soon as the work is done.
WAIT_SECONDS = 90.0


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> CodePaths:
    root = tmp_path_factory.mktemp("controller")
    paths = CodePaths(root / "task", root / "opt", root / "runtime-packages")
    (paths.task_root / "standin").mkdir(parents=True)
    (paths.task_root / "standin" / "__init__.py").write_text("")
    (paths.task_root / "standin" / "app.py").write_text(textwrap.dedent(STAND_IN_CONTROLLER))
    paths.opt.mkdir(parents=True)
    link_distribution_closure("boto3", paths.runtime_packages)
    return paths


@dataclass
class Controller:
    emulator: Emulator
    plane: LambdaControlPlane
    router: InvokeRouter
    events_file: Path
    on_failure_url: str

    def records(self, phase: str) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        lines = self.events_file.read_text(encoding="utf-8").splitlines()
        return [r for r in map(json.loads, lines) if r["phase"] == phase]

    def wait_for(self, phase: str, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(self.records(phase)) < count:
            assert time.monotonic() < deadline, f"{count} {phase} records never came"
            time.sleep(0.05)
        return self.records(phase)


@pytest.fixture
def controller(code: CodePaths, tmp_path: Path) -> Iterator[Controller]:
    plane = LambdaControlPlane()
    with running_emulator(layer=plane.wrap) as emulator:
        uuid = create_mapping(emulator, "consumer")
        sqs = emulator.client("sqs")
        on_failure_url = sqs.create_queue(QueueName="failed-jobs")["QueueUrl"]
        on_failure_arn = sqs.get_queue_attributes(
            QueueUrl=on_failure_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        events_file = tmp_path / "events.jsonl"
        spec = FunctionSpec(
            name="breaker-controller",
            arn="arn:aws:lambda:us-east-1:123456789012:function:breaker-controller",
            handler="standin.app.handler",
            runtime="python3.13",
            timeout_seconds=30.0,
            memory_mb=128,
            environment={"EVENTS_FILE": str(events_file), "EVENT_SOURCE_MAPPING_UUID": uuid},
            log_group="/aws/lambda/breaker-controller",
        )
        pool = EnvironmentPool(
            Setup(spec, code, emulator.endpoint_url, emulator.region), tmp_path / "logs", 1
        )

        def send_to_queue(queue_arn: str, body: str) -> None:
            assert queue_arn == on_failure_arn
            sqs.send_message(QueueUrl=on_failure_url, MessageBody=body)

        # Lambda waits 1 and 2 minutes between attempts; the test does not.
        router = InvokeRouter(send_to_queue=send_to_queue, retry_delays_seconds=(0.0, 0.0))
        router.register(
            LocalFunction(
                spec.name,
                spec.arn,
                pool,
                reserved_concurrency=1,
                async_settings=AsyncSettings(
                    maximum_retry_attempts=1, on_failure_queue_arn=on_failure_arn
                ),
            )
        )
        plane.router = router
        try:
            yield Controller(emulator, plane, router, events_file, on_failure_url)
        finally:
            router.stop()
            pool.shutdown()


def invoke(controller: Controller, event: Any, kind: str, config: Config | None = None) -> Any:
    client = controller.emulator.client("lambda", config)
    return client.invoke(
        FunctionName="breaker-controller", InvocationType=kind, Payload=json.dumps(event)
    )


def test_an_event_invoke_is_accepted_and_runs_in_the_controllers_environment(
    controller: Controller,
) -> None:
    # Given the stand-in controller, reserved concurrency 1
    # When the consumer reports to it asynchronously
    answer = invoke(controller, {"breakerReport": {"failures": 3}}, "Event")
    # Then Lambda's answer is 202 at once, and the controller runs in the background, reading
    # the mapping through the emulator
    assert answer["StatusCode"] == 202
    [ended] = controller.wait_for("end", 1)
    assert ended["state"] == "Enabled"
    # and its read is the account's one control-plane request; the Invoke is data plane
    assert [r.operation for r in controller.plane.requests()] == ["GetEventSourceMapping"]


def test_reserved_concurrency_one_runs_queued_events_one_at_a_time(
    controller: Controller,
) -> None:
    # Given three reports sent at once, each taking half a second
    for index in range(3):
        assert invoke(controller, {"report": index, "sleep": 0.5}, "Event")["StatusCode"] == 202
    # When they have all run
    starts = sorted(r["at"] for r in controller.wait_for("start", 3))
    ends = sorted(r["at"] for r in controller.wait_for("end", 3))
    # Then none started before the one before it ended: a single writer
    assert all(start >= end for start, end in zip(starts[1:], ends[:-1], strict=True))


def test_a_request_response_invoke_answers_with_the_handlers_result(
    controller: Controller,
) -> None:
    # When the controller is invoked synchronously
    answer = invoke(controller, {"breakerProbe": {}}, "RequestResponse")
    # Then the answer carries its result
    assert answer["StatusCode"] == 200
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"seen": {"breakerProbe": {}}}
    # and a failing run answers with its error, as Lambda's Unhandled function error
    failed = invoke(controller, {"fail": True}, "RequestResponse")
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorMessage"] == "stand-in controller failed"


def test_a_synchronous_invoke_beyond_the_reserved_concurrency_is_throttled(
    controller: Controller,
) -> None:
    # Given the controller's one unit of concurrency busy with a long event
    invoke(controller, {"sleep": 5}, "Event")
    controller.wait_for("start", 1)
    # When it is invoked synchronously meanwhile
    with pytest.raises(ClientError) as refused:
        invoke(controller, {"breakerProbe": {}}, "RequestResponse", NO_RETRIES)
    # Then Lambda throttles the call
    assert refused.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_a_failing_event_is_retried_then_sent_to_its_on_failure_queue(
    controller: Controller,
) -> None:
    # Given MaximumRetryAttempts 1 and an SQS OnFailure destination
    # When an event fails every time
    invoke(controller, {"fail": True}, "Event")
    # Then it ran twice, with the same request id
    ended = controller.wait_for("end", 2)
    assert len({r["request_id"] for r in ended}) == 1
    # and its invocation record reaches the OnFailure queue
    sqs = controller.emulator.client("sqs")
    deadline = time.monotonic() + WAIT_SECONDS
    messages: list[dict[str, Any]] = []
    while not messages:
        assert time.monotonic() < deadline, "no record reached the OnFailure queue"
        messages = sqs.receive_message(QueueUrl=controller.on_failure_url, WaitTimeSeconds=1).get(
            "Messages", []
        )
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["requestId"] == ended[0]["request_id"]
    assert record["requestPayload"] == {"fail": True}
    assert record["responsePayload"]["errorMessage"] == "stand-in controller failed"
