"""`make dlq-peek` and `make redrive` against moto: the three record shapes, attributes kept,
OnFailure records replayed as jobs, interruption and rerun, StartMessageMoveTask (stubbed:
moto does not implement it) and the fallback where it is missing, and a redrive that ends
although a consumer sends everything it moves straight back (bounded by what the queue held
when it started, never the same message twice)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.server import ThreadedMotoServer

from tools import dlq_peek, redrive, stack_outputs
from tools.redrive import Pacer, copy_redrive, move_task_redrive

REGION = "us-east-1"
ON_FAILURE_RECORD = {
    "version": "1.0",
    "timestamp": "2026-11-24T03:00:00.000Z",
    "requestContext": {"requestId": "req-1", "condition": "RetriesExhausted"},
    "requestPayload": {"body": {"orderId": "job-1"}},
    "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
    "responsePayload": {"errorMessage": "503"},
}
STACK_TEMPLATE = {
    "Resources": {
        "SourceQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-source"}},
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-dlq"}},
        "FailedJobsQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "stack-jobs"}},
    },
    "Outputs": {
        "SourceQueueUrl": {"Value": {"Ref": "SourceQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
        "FailedJobsQueueUrl": {"Value": {"Ref": "FailedJobsQueue"}},
        "ConsumerFunctionName": {"Value": "consumer"},
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A deployed stack's queues and function in moto; Lambda without Docker (always succeeds)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        boto3.client("cloudformation").create_stack(
            StackName="stack", TemplateBody=json.dumps(STACK_TEMPLATE)
        )
        role = boto3.client("iam").create_role(
            RoleName="consumer-role", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return event\n")
        boto3.client("lambda").create_function(
            FunctionName="consumer",
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
        )
        sqs = boto3.client("sqs")
        yield {
            name: sqs.get_queue_url(QueueName=f"stack-{name}")["QueueUrl"]
            for name in ("source", "dlq", "jobs")
        }


def drain(queue_url: str) -> list[dict[str, Any]]:
    sqs: Any = boto3.client("sqs")
    received: list[dict[str, Any]] = []
    while messages := sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=300,
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        received.extend(messages)
    return received


def put_three_shapes(queue_url: str) -> None:
    sqs = boto3.client("sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(ON_FAILURE_RECORD))
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="not json",
        MessageAttributes={
            "DeadLetterReason": {"DataType": "String", "StringValue": "invalid-json"},
            "DeadLetterDetail": {"DataType": "String", "StringValue": "Expecting value"},
            "SourceMessageId": {"DataType": "String", "StringValue": "src-7"},
        },
    )
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody='{"orderId": "A-2"}',
        MessageAttributes={
            "tenant": {"DataType": "String", "StringValue": "t-1"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )


def recording_lambda() -> tuple[Any, list[Any]]:
    client = boto3.client("lambda")
    payloads: list[Any] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        assert params["InvocationType"] == "Event"
        payloads.append(json.loads(params["Payload"]))

    client.meta.events.register("provide-client-params.lambda.Invoke", record)
    return client, payloads


def test_peek_lists_each_shape_with_its_reason_and_source_and_consumes_nothing(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the three shapes on the stack's DLQ
    put_three_shapes(aws["dlq"])

    # When they are peeked at through the stack's outputs
    status = dlq_peek.main(["--stack-name", "stack", "--json"])

    # Then each is listed with its shape, reason and source id
    assert status == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_shape = {item["shape"]: item for item in listed}
    assert set(by_shape) == {"on-failure-record", "consumer-copy", "redrive-policy"}
    assert by_shape["on-failure-record"]["sourceId"] == "req-1"
    assert by_shape["consumer-copy"]["reason"] == "invalid-json"
    assert by_shape["consumer-copy"]["sourceId"] == "src-7"
    # ...and all three are still there, visible at once
    assert len(drain(aws["dlq"])) == 3


def test_redrive_sends_messages_back_with_their_attributes_and_replays_records_as_jobs(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the three shapes on the DLQ (an OnFailure record there: a stack from before the
    # failed-jobs queue)
    put_three_shapes(aws["dlq"])

    # When the DLQ is redriven (auto: the record rules out StartMessageMoveTask)
    status = redrive.main(["--stack-name", "stack", "--only", "messages", "--rate", "1000"])

    # Then the two messages are on the source queue, their own attributes kept and the
    # consumer's left off, the record was replayed as a job and never sent as a message
    assert status == 0
    moved = {m["Body"]: m.get("MessageAttributes", {}) for m in drain(aws["source"])}
    assert set(moved) == {"not json", '{"orderId": "A-2"}'}
    assert moved["not json"] == {}
    assert moved['{"orderId": "A-2"}'] == {
        "tenant": {"DataType": "String", "StringValue": "t-1"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    assert "messages: moved=2 replayed=1 failed=0 method=copy" in capsys.readouterr().out
    # ...and the DLQ is empty
    assert drain(aws["dlq"]) == []


def test_without_records_auto_tries_the_move_task_and_copies_where_it_is_missing(
    aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a plain message on the DLQ, no OnFailure record, and an endpoint (moto) without
    # StartMessageMoveTask
    boto3.client("sqs").send_message(QueueUrl=aws["dlq"], MessageBody='{"a": 1}')

    # When the messages are redriven with the default method, auto
    status = redrive.main(["--stack-name", "stack", "--only", "messages", "--rate", "1000"])

    # Then the move task was tried, and the tool fell back to copying the message to the source
    # queue
    assert status == 0
    captured = capsys.readouterr()
    assert "StartMessageMoveTask is not supported here: copying" in captured.err
    assert [m["Body"] for m in drain(aws["source"])] == ['{"a": 1}']
    # ...with a progress bar on stderr
    assert "dlq -> source [" in captured.err


def test_failed_jobs_are_replayed_with_their_request_payload_and_others_left_in_place(
    aws: dict[str, str],
) -> None:
    # Given two OnFailure records and one stray message on the failed-jobs queue
    sqs = boto3.client("sqs")
    for n in (1, 2):
        record = {**ON_FAILURE_RECORD, "requestPayload": {"body": {"orderId": f"job-{n}"}}}
        sqs.send_message(QueueUrl=aws["jobs"], MessageBody=json.dumps(record))
    sqs.send_message(QueueUrl=aws["jobs"], MessageBody='{"stray": true}')
    lambda_client, payloads = recording_lambda()

    # When the failed jobs are replayed
    report = copy_redrive(
        sqs,
        aws["jobs"],
        to_url=None,
        lambda_client=lambda_client,
        function_name="consumer",
        pacer=Pacer(1000),
        visibility_s=300,
    )

    # Then each job was invoked asynchronously with its original payload, and the stray
    # message stayed on the queue, reported
    assert sorted(p["body"]["orderId"] for p in payloads) == ["job-1", "job-2"]
    assert report.replayed == 2
    assert [why for _, why in report.failed] == ["not an OnFailure record: no queue to send to"]
    assert drain(aws["source"]) == []
    # ...hidden for the visibility window only
    assert approximate_not_visible(aws["jobs"]) == 1


def approximate_not_visible(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_an_interrupted_redrive_loses_nothing_and_a_rerun_finishes_it(aws: dict[str, str]) -> None:
    # Given 25 messages on the DLQ, and an interruption during the second batch's delete
    sqs = boto3.client("sqs")
    bodies = [json.dumps({"n": n}) for n in range(25)]
    for body in bodies:
        sqs.send_message(QueueUrl=aws["dlq"], MessageBody=body)
    deletes = 0

    def interrupt_second_delete(**_: Any) -> None:
        nonlocal deletes
        deletes += 1
        if deletes == 2:
            raise KeyboardInterrupt

    sqs.meta.events.register("before-call.sqs.DeleteMessageBatch", interrupt_second_delete)

    def run() -> None:
        copy_redrive(
            sqs,
            aws["dlq"],
            to_url=aws["source"],
            lambda_client=None,
            function_name=None,
            pacer=Pacer(1000),
            visibility_s=300,
        )

    # When it runs, is interrupted, and runs again
    with pytest.raises(KeyboardInterrupt):
        run()
    run()

    # Then every message reached the source queue, at most the interrupted batch twice, and the
    # DLQ is empty
    moved = [m["Body"] for m in drain(aws["source"])]
    assert set(moved) == set(bodies)
    assert len(moved) - len(bodies) <= 10
    assert drain(aws["dlq"]) == []


def test_where_supported_the_move_task_does_the_redrive() -> None:
    # Given an SQS endpoint with StartMessageMoveTask (stubbed), moving 42 messages
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_arn = "arn:aws:sqs:us-east-1:123456789012:stack-dlq"
    source_arn = "arn:aws:sqs:us-east-1:123456789012:stack-source"
    stubber = Stubber(sqs)
    for url, arn in (("https://q/dlq", dlq_arn), ("https://q/source", source_arn)):
        stubber.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": arn}},
            {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
        )
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "task-1"},
        {"SourceArn": dlq_arn, "DestinationArn": source_arn, "MaxNumberOfMessagesPerSecond": 50},
    )
    for status, moved in (("RUNNING", 20), ("COMPLETED", 42)):
        stubber.add_response(
            "list_message_move_tasks",
            {
                "Results": [
                    {
                        "Status": status,
                        "ApproximateNumberOfMessagesMoved": moved,
                        "ApproximateNumberOfMessagesToMove": 42,
                    }
                ]
            },
            {"SourceArn": dlq_arn, "MaxResults": 1},
        )
    sleeps: list[float] = []

    # When the DLQ is redriven at 50 messages a second
    with stubber:
        report = move_task_redrive(
            sqs,
            "https://q/dlq",
            "https://q/source",
            rate_per_s=50,
            at_start=40,
            sleep=sleeps.append,
        )

    # Then one task moved them, followed until it completed, against SQS's own count of what
    # it had to move (not the depth read before it started)
    stubber.assert_no_pending_responses()
    assert (report.method, report.moved, report.failed) == ("move-task", 42, [])
    assert report.at_start == 42
    assert redrive.ending("messages", report) == (
        "moved 42 of the 42 that were in the DLQ when the redrive started; messages that came "
        "back meanwhile wait for the next redrive"
    )
    assert sleeps == [2.0]


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on 127.0.0.1, reached only through AWS_ENDPOINT_URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        yield url
    finally:
        server.stop()


def test_both_tools_reach_the_endpoint_of_aws_endpoint_url(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given queues on a server that only AWS_ENDPOINT_URL names, one message on the DLQ
    sqs = boto3.client("sqs")
    assert sqs.meta.endpoint_url == endpoint
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    source = sqs.create_queue(QueueName="source")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody='{"over": "http"}')

    # When it is peeked at, then redriven (the server answers StartMessageMoveTask with 500)
    assert dlq_peek.main(["--queue-url", dlq]) == 0
    status = redrive.main(
        ["--only", "messages", "--dlq-url", dlq, "--source-queue-url", source,
         "--function-name", "unused", "--rate", "1000"]
    )  # fmt: skip

    # Then both worked against that server, the redrive by copying
    captured = capsys.readouterr()
    assert "1 message(s) on" in captured.out
    assert status == 0
    assert "StartMessageMoveTask is not supported here: copying" in captured.err
    assert [m["Body"] for m in drain(source)] == ['{"over": "http"}']


def test_a_fifo_dlq_goes_back_in_its_groups(aws: dict[str, str]) -> None:
    # Given FIFO queues (QueueType=fifo) and dead-lettered messages of two groups
    sqs: Any = boto3.client("sqs")
    fifo = {"FifoQueue": "true"}
    dlq = sqs.create_queue(QueueName="f-dlq.fifo", Attributes=fifo)["QueueUrl"]
    source = sqs.create_queue(QueueName="f-source.fifo", Attributes=fifo)["QueueUrl"]
    for n, group in enumerate(["a", "b", "a"]):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"n": n}),
            MessageGroupId=group,
            MessageDeduplicationId=f"original-{n}",
        )

    # When they are redriven by copying
    report = copy_redrive(
        sqs,
        dlq,
        to_url=source,
        lambda_client=None,
        function_name=None,
        pacer=Pacer(1000),
        visibility_s=300,
    )

    # Then each is back in its own group, in order
    assert report.moved == 3
    received: list[dict[str, Any]] = []
    while messages := sqs.receive_message(
        QueueUrl=source, MaxNumberOfMessages=10, MessageSystemAttributeNames=["MessageGroupId"]
    ).get("Messages", []):
        received.extend(messages)
        sqs.delete_message_batch(
            QueueUrl=source,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    by_group: dict[str, list[int]] = {}
    for message in received:
        by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(
            json.loads(message["Body"])["n"]
        )
    assert by_group == {"a": [0, 2], "b": [1]}


class ConsumerStandIn:
    """A consumer that fails every message the redrive sends to the source queue, at once, and
    sends it back to the DLQ by one of the two routes of the stack: the source queue's redrive
    policy (SQS moves the message itself: same id) or the consumer's own copy (a new message
    naming the original in SourceMessageId). It counts what it sent back, and refuses to go on
    past `most`: a redrive that moves messages round would otherwise never end."""

    def __init__(self, route: str, source_url: str, dlq_url: str, most: int) -> None:
        self.route = route
        self.source_url = source_url
        self.dlq_url = dlq_url
        self.most = most
        self.sent_back: list[str] = []
        self.sending_to = ""
        self.sqs: Any = boto3.client("sqs")
        if route == "redrive-policy":
            dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            self.sqs.set_queue_attributes(
                QueueUrl=source_url,
                Attributes={
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1}
                    )
                },
            )

    def register(self, events: Any) -> None:
        events.register("provide-client-params.sqs.SendMessageBatch", self.before_send)
        events.register("after-call.sqs.SendMessageBatch", self.after_send)

    def before_send(self, params: dict[str, Any], **_: Any) -> None:
        # after-call is not given the request's parameters: remember where it goes.
        self.sending_to = params["QueueUrl"]

    def after_send(self, parsed: dict[str, Any], **_: Any) -> None:
        if self.sending_to != self.source_url:
            return
        ids = {entry["MessageId"] for entry in parsed.get("Successful", [])}
        if len(self.sent_back) + len(ids) > self.most:
            raise RuntimeError(f"the redrive moved more than {self.most} messages")
        if self.route == "redrive-policy":
            self._fail_until_moved(ids)
        else:
            self._copy_and_delete(set(ids))
        self.sent_back.extend(ids)

    def _fail_until_moved(self, ids: set[str]) -> None:
        # Received once with no visibility left (maxReceiveCount 1): the next receive makes SQS
        # (moto) move each to the DLQ. Polled with a deadline, never slept on.
        deadline = time.monotonic() + 10
        while self.source_depth() and time.monotonic() < deadline:
            self.sqs.receive_message(
                QueueUrl=self.source_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            )
        assert self.source_depth() == 0, "the redrive policy did not move them"

    def _copy_and_delete(self, ids: set[str]) -> None:
        deadline = time.monotonic() + 10
        while ids and time.monotonic() < deadline:
            for message in self.sqs.receive_message(
                QueueUrl=self.source_url, MaxNumberOfMessages=10, VisibilityTimeout=300
            ).get("Messages", []):
                if message["MessageId"] not in ids:
                    continue
                self.sqs.send_message(
                    QueueUrl=self.dlq_url,
                    MessageBody=message["Body"],
                    MessageAttributes={
                        "DeadLetterReason": {"DataType": "String", "StringValue": "invalid-json"},
                        "SourceMessageId": {
                            "DataType": "String",
                            "StringValue": message["MessageId"],
                        },
                    },
                )
                self.sqs.delete_message(
                    QueueUrl=self.source_url, ReceiptHandle=message["ReceiptHandle"]
                )
                ids.discard(message["MessageId"])
        assert not ids, "the copies were not all received"

    def source_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.source_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


ROUTES = ["redrive-policy", "consumer-copy"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_redrive_moves_only_what_the_dlq_held_when_it_started_though_all_comes_back(
    aws: dict[str, str],
    route: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given 25 poison messages on the DLQ, and a consumer that sends every message redriven to
    # the source queue straight back to the DLQ
    sqs = boto3.client("sqs")
    for n in range(25):
        sqs.send_message(QueueUrl=aws["dlq"], MessageBody=f"not json {n}")
    consumer = ConsumerStandIn(route, aws["source"], aws["dlq"], most=50)
    session_for = stack_outputs.session_for

    def with_consumer(args: Any) -> Any:
        session = session_for(args)
        consumer.register(session.events)
        return session

    monkeypatch.setattr(redrive, "session_for", with_consumer)

    # When the DLQ is redriven by copying, without a --limit
    status = redrive.main(
        ["--stack-name", "stack", "--only", "messages", "--method", "copy", "--rate", "1000"]
    )

    # Then it ended after the 25 it found, each sent once, and says so
    assert status == 0
    out = capsys.readouterr().out
    assert "messages: moved=25 replayed=0 failed=0 method=copy" in out
    assert (
        "moved 25 of the 25 that were in the DLQ when the redrive started; 25 came back "
        "meanwhile (or were newly dead-lettered) and were left for the next redrive"
    ) in out
    assert len(consumer.sent_back) == len(set(consumer.sent_back)) == 25
    # ...and the 25 that came back are on the DLQ, visible, for the next redrive
    back = drain(aws["dlq"])
    assert len(back) == 25
    assert {m["Body"] for m in back} == {f"not json {n}" for n in range(25)}
    assert drain(aws["source"]) == []


@pytest.mark.parametrize("route", ROUTES)
def test_a_message_that_came_back_is_not_moved_again_in_the_same_run(
    aws: dict[str, str], route: str
) -> None:
    # Given 5 messages on the DLQ, 2 of them in flight (another reader holds them), so that the
    # bound (5) leaves room once the 3 visible ones are moved; and a consumer that sends every
    # redriven message straight back to the DLQ
    sqs = boto3.client("sqs")
    for n in range(5):
        sqs.send_message(QueueUrl=aws["dlq"], MessageBody=f"not json {n}")
    held = sqs.receive_message(QueueUrl=aws["dlq"], MaxNumberOfMessages=2, VisibilityTimeout=300)
    assert len(held["Messages"]) == 2
    consumer = ConsumerStandIn(route, aws["source"], aws["dlq"], most=10)
    consumer.register(sqs.meta.events)

    # When the DLQ is redriven by copying
    report = copy_redrive(
        sqs,
        aws["dlq"],
        to_url=aws["source"],
        lambda_client=None,
        function_name=None,
        pacer=Pacer(1000),
        visibility_s=300,
    )

    # Then the 3 were moved once each, and the 3 that came back, met within the bound, were left
    assert (report.at_start, report.moved, report.failed) == (5, 3, [])
    assert len(consumer.sent_back) == 3
    assert (report.met_again, report.came_back) == (3, 3)
    # ...visible at once for the next redrive, the other reader's 2 still in its hands
    assert len(drain(aws["dlq"])) == 3
    assert approximate_not_visible(aws["dlq"]) == 2 + 3  # the 2, and the 3 just drained


def test_limit_caps_the_redrive_below_what_the_dlq_held(aws: dict[str, str]) -> None:
    # Given 7 messages on the DLQ
    sqs = boto3.client("sqs")
    for n in range(7):
        sqs.send_message(QueueUrl=aws["dlq"], MessageBody=json.dumps({"n": n}))

    # When the DLQ is redriven with a limit of 3
    report = copy_redrive(
        sqs,
        aws["dlq"],
        to_url=aws["source"],
        lambda_client=None,
        function_name=None,
        pacer=Pacer(1000),
        limit=3,
    )

    # Then 3 were moved and 4 are left, and the ending line names the limit
    assert (report.moved, report.at_start, report.came_back) == (3, 7, 0)
    assert len(drain(aws["source"])) == 3
    assert len(drain(aws["dlq"])) == 4
    assert redrive.ending("messages", report) == (
        "moved 3 of the 7 that were in the DLQ when the redrive started (--limit 3); 0 came "
        "back meanwhile (or were newly dead-lettered) and were left for the next redrive"
    )


def test_a_replay_takes_only_the_failed_jobs_there_when_it_started(aws: dict[str, str]) -> None:
    # Given 3 OnFailure records on the failed-jobs queue, and a function whose every replayed
    # job fails again at once: a new OnFailure record (a new message) on the same queue
    sqs: Any = boto3.client("sqs")
    for n in range(3):
        record = {**ON_FAILURE_RECORD, "requestPayload": {"body": {"orderId": f"job-{n}"}}}
        sqs.send_message(QueueUrl=aws["jobs"], MessageBody=json.dumps(record))
    lambda_client = boto3.client("lambda")
    replays: list[Any] = []

    def fail_again(params: dict[str, Any], **_: Any) -> None:
        if len(replays) >= 10:
            raise RuntimeError("the replay went round")
        replays.append(json.loads(params["Payload"]))
        record = {**ON_FAILURE_RECORD, "requestPayload": replays[-1]}
        sqs.send_message(QueueUrl=aws["jobs"], MessageBody=json.dumps(record))

    lambda_client.meta.events.register("provide-client-params.lambda.Invoke", fail_again)

    # When the failed jobs are replayed
    report = copy_redrive(
        sqs,
        aws["jobs"],
        to_url=None,
        lambda_client=lambda_client,
        function_name="consumer",
        pacer=Pacer(1000),
        visibility_s=300,
    )

    # Then each of the 3 was replayed once, and the 3 new records wait for the next replay
    assert sorted(p["body"]["orderId"] for p in replays) == ["job-0", "job-1", "job-2"]
    assert (report.replayed, report.at_start, report.came_back) == (3, 3, 3)
    assert len(drain(aws["jobs"])) == 3
    assert redrive.ending("jobs", report).startswith(
        "replayed 3 of the 3 that were on the failed-jobs queue when the replay started; 3 came "
        "back meanwhile"
    )
