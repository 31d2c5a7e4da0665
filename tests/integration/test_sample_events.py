"""Every events/*.json (the files `sam local invoke -e` takes) through the handler."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from local.shared.paths import ROOT
from tests.integration.conftest import Harness

EVENTS = ROOT / "events"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def simulated_failures(event: dict[str, Any]) -> list[str]:
    return [
        record["messageId"]
        for record in event["Records"]
        if "simulate" in json.loads(record["body"])
    ]


def test_every_event_file_is_covered_here() -> None:
    # Given the event files this module tests
    covered = {
        "sqs-single-success.json",
        "sqs-batch-with-failures.json",
        "sqs-high-receive-count.json",
        "sqs-poison-body.json",
        "direct-job.json",
    }

    # When events/ is listed, Then it holds exactly those, so a new file cannot go untested
    assert {path.name for path in EVENTS.glob("*.json")} == covered


def test_events_point_at_the_default_stack_source_queue(consumer: Harness) -> None:
    # Given every SQS sample event, When its records are read,
    # Then each names the default stack's source queue
    for path in EVENTS.glob("sqs-*.json"):
        for record in json.loads(path.read_text())["Records"]:
            assert record["eventSourceARN"] == consumer.source_arn, path.name


def test_single_success(consumer: Harness) -> None:
    # Given the one-message sample and a healthy downstream,
    # When it is invoked, Then no record fails and the downstream got the body
    event = load("sqs-single-success.json")
    assert consumer.invoke(event) == {"batchItemFailures": []}
    [request] = consumer.downstream.requests
    assert request["body"] == event["Records"][0]["body"]


def test_batch_with_failures(consumer: Harness) -> None:
    # Given the four-message sample, two of whose bodies ask the downstream for a failure
    event = load("sqs-batch-with-failures.json")
    failing = simulated_failures(event)
    assert len(failing) == 2

    # When it is invoked
    response = consumer.invoke(event)

    # Then exactly those two are listed as failures, after all four were delivered
    assert response == {"batchItemFailures": [{"itemIdentifier": i} for i in failing]}
    assert len(consumer.downstream.requests) == 4
    # The sample receipt handles are not real: SQS refuses the change, the records still fail
    assert consumer.emitted().metric_total("VisibilityChangeFailed") == 2
    # Retry-After 120 from the downstream raised the first failure's delay above delay(2)
    [first, _] = consumer.visibility_changes
    assert first["VisibilityTimeout"] == 120


def test_high_receive_count_is_the_final_attempt(consumer: Harness) -> None:
    # Given the sample of a failing message on its tenth receive, the last allowed
    event = load("sqs-high-receive-count.json")

    # When it is invoked
    with pytest.raises(BatchProcessingError):
        consumer.invoke(event)

    # Then its visibility is set to 0, so SQS dead-letters it at the next receive
    assert [change["VisibilityTimeout"] for change in consumer.visibility_changes] == [0]
    # ...and the log says so, although the sample's receipt handle is refused
    [line] = consumer.emitted().logs_with("could not be set")
    assert line["final_attempt"] is True
    assert line["delay_seconds"] == 0


def test_poison_body(consumer: Harness) -> None:
    # Given the sample whose body is not JSON, When it is invoked,
    # Then it is not delivered nor retried but sent to the DLQ as it is
    event = load("sqs-poison-body.json")
    assert consumer.invoke(event) == {"batchItemFailures": []}
    assert consumer.downstream.requests == []
    [dead_letter] = consumer.dead_letters()
    assert dead_letter["Body"] == event["Records"][0]["body"]


def test_direct_job(consumer: Harness) -> None:
    # Given the direct-job sample, When it is invoked,
    # Then it is reported delivered and the downstream got its body
    event = load("direct-job.json")
    assert consumer.invoke(event)["status"] == "delivered"
    [request] = consumer.downstream.requests
    assert json.loads(request["body"]) == event["body"]
