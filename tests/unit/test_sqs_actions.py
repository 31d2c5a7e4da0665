"""The SQS adapter's memory of a queue's redrive policy: an answer is kept for the environment's
life, a failure for a short while (a fake client and a fake clock: no sockets, no sleeping)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from consumer.sqs_actions import REDRIVE_POLICY_RETRY_SECONDS, SqsActions
from shared.errors import RedrivePolicyUnavailable

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:source"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/source"


class FakeSqs:
    """Answers GetQueueUrl; GetQueueAttributes fails while `refusing`, and every call is counted."""

    def __init__(self) -> None:
        self.refusing = True
        self.attribute_calls = 0

    def get_queue_url(self, **_: Any) -> dict[str, str]:
        return {"QueueUrl": QUEUE_URL}

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        self.attribute_calls += 1
        if self.refusing:
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetQueueAttributes"
            )
        return {"Attributes": {"RedrivePolicy": json.dumps({"maxReceiveCount": 5})}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sqs() -> FakeSqs:
    return FakeSqs()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def actions(sqs: FakeSqs, clock: FakeClock) -> SqsActions:
    return SqsActions(lambda: sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/dlq", clock)  # type: ignore[arg-type, return-value]


def test_a_redrive_policy_that_could_not_be_read_is_not_asked_for_again_at_once(
    actions: SqsActions, sqs: FakeSqs, clock: FakeClock
) -> None:
    # Given a queue whose redrive policy SQS refused to tell
    with pytest.raises(RedrivePolicyUnavailable, match="AccessDenied"):
        actions.max_receive_count(QUEUE_ARN)

    # When other records ask for it within the retry interval
    clock.now += REDRIVE_POLICY_RETRY_SECONDS - 1
    for _ in range(3):
        with pytest.raises(RedrivePolicyUnavailable, match=r"AccessDenied.*not asked again"):
            actions.max_receive_count(QUEUE_ARN)

    # Then SQS was asked once
    assert sqs.attribute_calls == 1


def test_a_redrive_policy_is_asked_for_again_once_the_failure_has_aged(
    actions: SqsActions, sqs: FakeSqs, clock: FakeClock
) -> None:
    # Given a failed read, and SQS answering again after the retry interval
    with pytest.raises(RedrivePolicyUnavailable):
        actions.max_receive_count(QUEUE_ARN)
    sqs.refusing = False
    clock.now += REDRIVE_POLICY_RETRY_SECONDS

    # When a record asks for it, and another later
    first = actions.max_receive_count(QUEUE_ARN)
    clock.now += 10 * REDRIVE_POLICY_RETRY_SECONDS
    second = actions.max_receive_count(QUEUE_ARN)

    # Then the policy is read, and kept: two calls in all
    assert (first, second) == (5, 5)
    assert sqs.attribute_calls == 2
