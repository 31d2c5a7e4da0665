"""A batch's records delivered concurrently: the same outcomes as one after another, log lines
and metrics per record, FIFO groups in order."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.delivery import get_runtime
from local.lambda_service.lambda_sqs_event import lambda_sqs_event
from shared.observability import logger
from tests.integration.conftest import Harness
from tests.support.downstream import Answer

pytestmark = pytest.mark.parametrize(
    "parameter_overrides", [{"NonRetryableStatusCodes": "422"}], indirect=True
)

# Each record's body asks for its own status (unique per record), so that a log line can be
# checked against the record it names; latencies vary so that the threads interleave.
MIXED = [
    *[(f'{{"ok": {n}}}', 200 + n) for n in range(7)],
    *[(f'{{"retry": {n}}}', 500 + n) for n in range(5)],
    ('{"later": 1}', 429),
    ('{"rejected": 1}', 422),
    ("not json", None),
]


def mixed_event(consumer: Harness, seed: int) -> tuple[dict[str, Any], dict[str, int | None]]:
    """One event of every kind of record (two receives' worth), and each id's asked status."""
    rng = random.Random(seed)
    asked: dict[str, int | None] = {}
    for body, status in MIXED:
        asked[consumer.send(body)] = status
        if status is not None:
            headers = {"Retry-After": "600"} if status == 429 else {}
            consumer.downstream.by_body[body] = Answer(
                status, headers=headers, latency_seconds=rng.uniform(0, 0.03)
            )
    records = consumer.receive_event()["Records"] + consumer.receive_event()["Records"]
    assert len(records) == len(MIXED)
    # One record whose receive count SQS would never write: it fails alone
    [odd] = [record for record in records if record["body"] == '{"ok": 6}']
    odd["attributes"]["ApproximateReceiveCount"] = "many"
    return {"Records": records}, asked


def run(consumer: Harness, event: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """Invoke with the given concurrency and a fixed random source; what the invocation did."""
    consumer.forget_emitted()
    consumer.visibility_changes.clear()
    consumer.downstream.requests.clear()
    consumer.downstream.most_in_flight = 0
    get_runtime.cache_clear()
    consumer.monkeypatch.setenv("DELIVERY_CONCURRENCY", str(concurrency))
    consumer.watch_runtime()
    get_runtime().rng.seed(7)
    try:
        response: Any = consumer.invoke(event)
    except BatchProcessingError as error:
        response = type(error).__name__
    emitted = consumer.emitted()
    counts = Counter(
        {name: emitted.metric_total(name) for name in METRICS if emitted.metric_total(name)}
    )
    dead_letters = sorted(
        (
            message["Body"],
            message["MessageAttributes"]["DeadLetterReason"]["StringValue"],
        )
        for message in consumer.drain_dead_letters()
    )
    return {
        "response": response,
        "visibilities": [
            (change["ReceiptHandle"], change["VisibilityTimeout"])
            for change in consumer.visibility_changes
        ],
        "dead_letters": dead_letters,
        "metrics": counts,
        "backoff_seconds": sorted(emitted.metric_values("BackoffSeconds")),
        "most_in_flight": consumer.downstream.most_in_flight,
        "logs": emitted.logs,
    }


METRICS = (
    "Delivered",
    "RetriesScheduled",
    "DeadLettered",
    "InvalidRecords",
    "DownstreamFailed4xx",
    "DownstreamFailed5xx",
    "VisibilityChangeFailed",
)


def test_a_concurrent_batch_has_exactly_the_sequential_outcomes(consumer: Harness) -> None:
    # Given a batch of 15 records with every kind of outcome
    event, _ = mixed_event(consumer, seed=1)

    # When it is processed one record at a time, then ten at a time
    sequential = run(consumer, event, concurrency=1)
    concurrent = run(consumer, event, concurrency=10)

    # Then the response, the visibilities (in order), the DLQ and the metrics are the same...
    for key in ("response", "visibilities", "dead_letters", "metrics", "backoff_seconds"):
        assert concurrent[key] == sequential[key], key
    assert concurrent["metrics"]["Delivered"] == 6
    assert concurrent["metrics"]["InvalidRecords"] == 1
    assert len(concurrent["visibilities"]) == 6
    # ...and the calls really overlapped only when allowed to
    assert sequential["most_in_flight"] == 1
    assert concurrent["most_in_flight"] > 1


def test_log_lines_carry_only_their_own_records_keys(consumer: Harness) -> None:
    # Given a batch whose records each ask for their own status, answered at varied speeds
    event, asked = mixed_event(consumer, seed=2)

    # When it is processed ten records at a time, logged down to each record's DEBUG line
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        outcome = run(consumer, event, concurrency=10)
    finally:
        logger.setLevel(level)

    # Then each line naming a record names the status that record asked for
    lines_with_status = [line for line in outcome["logs"] if "status_code" in line]
    # (every record's but the poison one's, the dead-lettered 422's and the unreadable one's)
    assert len(lines_with_status) == len(MIXED) - 3
    for line in lines_with_status:
        assert "message_id" in line, line
        assert line["status_code"] == asked[line["message_id"]], line
    # ...and every failure line names a record of the event
    for line in outcome["logs"]:
        if line["message"].startswith(("delivery failed", "sent to the dead")):
            assert line["message_id"] in asked
    # ...and the batch's one delivered line names the delivered records, in the event's order
    [delivered] = [line for line in outcome["logs"] if "message_ids" in line]
    assert delivered["level"] == "INFO"
    # (the 2xx records', but the one with an unreadable receive count)
    accepted = [
        record["messageId"]
        for record in event["Records"]
        if 200 <= (asked[record["messageId"]] or 0) < 300 and record["body"] != '{"ok": 6}'
    ]
    assert delivered["message_ids"] == accepted
    assert delivered["delivered"] == len(accepted) == 6
    assert "message_id" not in delivered


def test_concurrency_one_is_sequential(consumer: Harness) -> None:
    # Given ten records answered slowly
    for n in range(10):
        body = json.dumps({"n": n})
        consumer.send(body)
        consumer.downstream.by_body[body] = Answer(200, latency_seconds=0.02)

    # When they are processed with DELIVERY_CONCURRENCY=1
    outcome = run(consumer, consumer.receive_event(), concurrency=1)

    # Then the downstream never had two calls at once, and saw them in the records' order
    assert outcome["response"] == {"batchItemFailures": []}
    assert outcome["most_in_flight"] == 1
    assert [json.loads(r["body"])["n"] for r in consumer.downstream.requests] == list(range(10))


def fifo_event(consumer: Harness) -> tuple[dict[str, Any], dict[str, str]]:
    """Records of two FIFO message groups, in the order SQS hands them out; body -> id."""
    url = consumer.sqs.create_queue(
        QueueName="sqs-backoff-consumer-orders.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    arn = consumer.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    ids = {}
    for group, body in [
        ("A", '{"A": 1}'),
        ("B", '{"B": 1}'),
        ("A", '{"A": 2, "simulate": {"status": 503}}'),
        ("B", '{"B": 2}'),
        ("A", '{"A": 3}'),
        ("B", '{"B": 3}'),
    ]:
        ids[body] = consumer.sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)[
            "MessageId"
        ]
    messages = consumer.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    return lambda_sqs_event(messages, arn), ids


def test_fifo_groups_keep_their_order_under_failures(consumer: Harness) -> None:
    # Given a FIFO batch of groups A and B, where A's second message fails
    event, ids = fifo_event(consumer)
    assert len(event["Records"]) == 6
    for body in ids:
        consumer.downstream.by_body.setdefault(body, Answer(200, latency_seconds=0.01))

    # When it is processed ten records at a time
    outcome = run(consumer, event, concurrency=10)

    # Then A's third message failed without a call, behind A's second, and B went through
    failed = {item["itemIdentifier"] for item in outcome["response"]["batchItemFailures"]}
    assert failed == {ids['{"A": 2, "simulate": {"status": 503}}'], ids['{"A": 3}']}
    bodies = [request["body"] for request in consumer.downstream.requests]
    assert '{"A": 3}' not in bodies
    a_calls = [b for b in bodies if b.startswith('{"A"')]
    b_calls = [b for b in bodies if b.startswith('{"B"')]
    assert a_calls == ['{"A": 1}', '{"A": 2, "simulate": {"status": 503}}']
    assert b_calls == ['{"B": 1}', '{"B": 2}', '{"B": 3}']
    # ...and A's skipped message waits at least as long as the failed one before it
    by_handle = dict(outcome["visibilities"])
    handles = {record["messageId"]: record["receiptHandle"] for record in event["Records"]}
    failed_wait = by_handle[handles[ids['{"A": 2, "simulate": {"status": 503}}']]]
    assert by_handle[handles[ids['{"A": 3}']]] >= failed_wait
    assert outcome["metrics"]["Delivered"] == 4


def test_a_fifo_dead_letter_copy_keeps_its_group_and_is_deduplicated(consumer: Harness) -> None:
    # Given FIFO source and dead-letter queues, and a poison message in group A
    dead_letter_url = consumer.sqs.create_queue(
        QueueName="sqs-backoff-consumer-dead.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    consumer.monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dead_letter_url)
    event, _ = fifo_event(consumer)
    poison = dict(event["Records"][0], body="not json")

    # When it is processed twice (SQS handing it back within five minutes)
    outcome = run(consumer, {"Records": [poison]}, concurrency=10)
    run(consumer, {"Records": [poison]}, concurrency=10)

    # Then one copy reached the FIFO DLQ, in the message's group
    assert outcome["response"] == {"batchItemFailures": []}
    copies = consumer.sqs.receive_message(
        QueueUrl=dead_letter_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert len(copies) == 1
    assert copies[0]["Attributes"]["MessageGroupId"] == poison["attributes"]["MessageGroupId"]
    assert copies[0]["Attributes"]["MessageDeduplicationId"] == poison["messageId"]
