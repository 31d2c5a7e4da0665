"""Records the integration tests set up on the template's queues: a FIFO message in its group,
and a record whose receive count was carried in (a DLQ redrive that kept it) or set by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from consumer.delivery import get_runtime
from tests.support.downstream import Answer

if TYPE_CHECKING:
    from tests.integration.conftest import Harness


def send_in_group(consumer: Harness, group: str, body: str) -> str:
    """Send `body` to the source FIFO queue in `group`; return its message id."""
    message_id: str = consumer.sqs.send_message(
        QueueUrl=consumer.source_url,
        MessageBody=body,
        MessageGroupId=group,
        MessageDeduplicationId=f"{group}-{body}",
    )["MessageId"]
    return message_id


def failing_with_receive_count(
    consumer: Harness, receive_count: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The next batch of the source queue, its one record showing `receive_count`, with a
    downstream that answers 503; and the SendMessage calls the function makes, as it makes them.
    """
    event = consumer.receive_event()
    [record] = event["Records"]
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    consumer.downstream.default = Answer(503)
    sent: list[dict[str, Any]] = []
    get_runtime().sqs.client.meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(dict(params))
    )
    return event, sent
