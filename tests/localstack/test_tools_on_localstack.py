"""`make dlq-peek` and `make redrive` against LocalStack's SQS, which has no CloudFormation: the
flags name the queues. A message moved back by StartMessageMoveTask keeps its receive count
there; the function sends it again as a new message, which then gets its whole schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from local.shared.paths import ROOT
from tests.localstack.conftest import (
    ACCESS_KEY_ID,
    FAST_BACKOFF,
    REGION,
    SECRET_ACCESS_KEY,
    Deploy,
    Deployment,
)
from tests.support.downstream import Answer

pytestmark = pytest.mark.localstack

FINAL_ATTEMPT = (
    "final attempt failed; SQS moves the message to the dead-letter queue at its next receive"
)
RETRY_SCHEDULED = "delivery failed; retry scheduled"
SENT_AGAIN = (
    "delivery failed; a redriven message kept its receive count, so it was sent again "
    "as a new message whose schedule starts over"
)


def make(target: str, arguments: str, endpoint_url: str) -> subprocess.CompletedProcess[str]:
    """What `make <target> DLQ_ARGS|REDRIVE_ARGS="<arguments>"` runs (its recipe's command, without
    make's check of the virtual environment), with AWS_ENDPOINT_URL on LocalStack."""
    module = {"dlq-peek": "tools.dlq_peek", "redrive": "tools.redrive"}[target]
    return subprocess.run(
        [sys.executable, "-m", module, "--config-env", "default", *arguments.split()],
        cwd=ROOT,
        env={
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def dead_letter_after_three_failures(deployment: Deployment) -> str:
    """Send a message, fail it MaxReceiveCount (3) times, let LocalStack move it to the DLQ;
    its id."""
    message_id: str = deployment.sqs.send_message(
        QueueUrl=deployment.source_url, MessageBody='{"n": 1}'
    )["MessageId"]
    for _ in range(3):
        deployment.poll()
    assert deployment.receive(deployment.source_url) == []
    return message_id


def endpoint_of(deployment: Deployment) -> str:
    return str(deployment.sqs.meta.endpoint_url)


def test_dlq_peek_lists_reasons_and_sources_and_a_copy_redrive_restarts_the_schedule(
    deploy: Deploy,
) -> None:
    # Given a message dead-lettered after its final attempt, and a poison one copied by the
    # function
    deployment = deploy(**FAST_BACKOFF)
    deployment.downstream.default = Answer(503)
    poison = deployment.sqs.send_message(QueueUrl=deployment.source_url, MessageBody="not json")
    failed = dead_letter_after_three_failures(deployment)
    endpoint = endpoint_of(deployment)

    # When make dlq-peek lists the DLQ
    peeked = make("dlq-peek", f"--queue-url {deployment.dead_letter_url} --json", endpoint)

    # Then both are listed with their reason, source and real sent time, and left in place
    assert peeked.returncode == 0, peeked.stderr
    letters = {item["shape"]: item for item in map(json.loads, peeked.stdout.splitlines())}
    assert set(letters) == {"redrive-policy", "consumer-copy"}
    assert letters["redrive-policy"]["messageId"] == failed
    assert letters["redrive-policy"]["reason"] == "max-receive-count"
    assert letters["redrive-policy"]["sourceId"] == deployment.source_arn
    assert not letters["redrive-policy"]["sentAt"].startswith("1970")
    assert letters["consumer-copy"]["reason"] == "invalid-json"
    assert letters["consumer-copy"]["sourceId"] == poison["MessageId"]
    assert deployment.counts(deployment.dead_letter_url) == (2, 0)

    # When make redrive copies them back, its flags naming both queues (no CloudFormation here)
    redriven = make(
        "redrive",
        f"--only messages --method copy --rate 100 --dlq-url {deployment.dead_letter_url} "
        f"--source-queue-url {deployment.source_url}",
        endpoint,
    )

    # Then both are moved, and the function's next delivery of the failing one is its first:
    # rescheduled by delay(1) = 2 s, while the poison one is dead-lettered again
    assert redriven.returncode == 0, redriven.stderr
    assert "messages: moved=2 replayed=0 failed=0 method=copy" in redriven.stdout
    messages, _ = deployment.poll()
    assert sorted(m["Attributes"]["ApproximateReceiveCount"] for m in messages) == ["1", "1"]
    assert [(r["receive_count"], r["delay_seconds"]) for r in deployment.logged(RETRY_SCHEDULED)][
        -1
    ] == (1, 2)


def test_a_move_task_redrive_that_keeps_the_count_still_gives_the_whole_schedule(
    deploy: Deploy,
) -> None:
    # Given a message dead-lettered after its three attempts
    deployment = deploy(**FAST_BACKOFF)
    deployment.downstream.default = Answer(503)
    dead_letter_after_three_failures(deployment)
    scheduled_before = len(deployment.logged(RETRY_SCHEDULED))

    # When make redrive moves it back with StartMessageMoveTask
    redriven = make(
        "redrive",
        f"--only messages --method move-task --rate 100 --dlq-url {deployment.dead_letter_url} "
        f"--source-queue-url {deployment.source_url}",
        endpoint_of(deployment),
    )
    assert redriven.returncode == 0, redriven.stderr
    assert "method=move-task" in redriven.stdout
    # ...and the function fails its next delivery
    [moved], _ = deployment.poll()

    # Then LocalStack kept its receive count (above MaxReceiveCount), and the function sent it
    # again as a new message instead of taking this for its final attempt
    assert int(moved["Attributes"]["ApproximateReceiveCount"]) > 3
    [sent_again] = deployment.logged(SENT_AGAIN)
    assert sent_again["message_id"] == moved["MessageId"]
    assert sent_again["delay_seconds"] == 2
    new_message_id = sent_again["new_message_id"]

    # When the new message fails every delivery
    seen: list[dict[str, Any]] = []
    for _ in range(3):
        [message], _ = deployment.poll()
        seen.append(message)
    assert deployment.receive(deployment.source_url) == []

    # Then it had the whole schedule: receives 1, 2, 3, delays 2 s and 4 s, then its final
    # attempt, and it is back on the DLQ
    assert [m["MessageId"] for m in seen] == [new_message_id] * 3
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in seen] == ["1", "2", "3"]
    scheduled = deployment.logged(RETRY_SCHEDULED)[scheduled_before:]
    assert [(r["receive_count"], r["delay_seconds"]) for r in scheduled] == [(1, 2), (2, 4)]
    assert [r["message_id"] for r in deployment.logged(FINAL_ATTEMPT)][-1] == new_message_id
    [letter] = deployment.receive(deployment.dead_letter_url)
    assert letter["MessageId"] == new_message_id
