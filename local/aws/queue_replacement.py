"""Whether a stack update would replace the source queue: the check `make deploy` makes against
AWS (tools.deploy) and the local system makes against its emulator (local.aws.deploy.update).

The template names the source queue sqs-backoff-<the stack id's uuid>-source, with .fifo for
QueueType=fifo. An update replaces it when that name changes: a QueueType switch (FifoQueue and
QueueName are create-only), or the first update of a stack whose queue an earlier template
named after the stack's name. CloudFormation then keeps the old queue (UpdateReplacePolicy:
Retain) and points the mapping at the new one: nothing consumes the old queue's messages
(docs/deploy-safety.md, "Replacing the queues").
"""

from __future__ import annotations

from collections.abc import Mapping

QUEUE_NAME_PREFIX = "sqs-backoff-"
GUIDE = 'docs/deploy-safety.md, "Replacing the queues"'


def expected_source_queue_name(stack_id: str, queue_type: str) -> str:
    """The source queue's name the template gives the stack `stack_id`."""
    stack_uuid = stack_id.rsplit("/", 1)[-1]
    return f"{QUEUE_NAME_PREFIX}{stack_uuid}-source{'.fifo' if queue_type == 'fifo' else ''}"


def queue_replacement(
    stack_id: str,
    previous_parameters: Mapping[str, str],
    source_queue_name: str,
    values: Mapping[str, str],
) -> str | None:
    """Why deploying `values` would replace the source queue, or None. A parameter missing from
    `values` keeps its previous value, as the SAM CLI's UsePreviousValue keeps it."""
    previous_type = previous_parameters.get("QueueType", "standard")
    queue_type = values.get("QueueType", previous_type)
    expected = expected_source_queue_name(stack_id, queue_type)
    if source_queue_name == expected:
        return None
    if previous_type != queue_type:
        return (
            f"QueueType {previous_type} -> {queue_type} replaces the source and dead-letter "
            f"queues ({source_queue_name} -> {expected})"
        )
    return (
        f"the source queue {source_queue_name} was named by an earlier template; this one "
        f"names it {expected}, so the update replaces it"
    )


def refusal(reason: str, how_to_allow: str) -> str:
    """What to tell someone whose update was refused; `how_to_allow` names the switch."""
    return (
        f"{reason}. CloudFormation keeps the old queues (UpdateReplacePolicy: Retain) "
        "but nothing consumes them after the update: their messages would wait there until "
        f"their retention ends. Drain the source queue first, or deploy with {how_to_allow} "
        f"and move the old queues' messages afterwards ({GUIDE})"
    )
