"""The functions' domain errors, most of them the consumer's: a short flat list. Only adapters
translate library errors."""

from __future__ import annotations


class ConfigurationError(ValueError):
    """The function's environment is missing a setting or holds an invalid one."""


class UnsupportedEventError(ValueError):
    """The invocation event is neither an SQS batch nor a direct job."""


class InvalidRecordError(ValueError):
    """An SQS record lacks a field the consumer needs (it cannot be delivered or rescheduled)."""


class DeliveryError(Exception):
    """A message could not be delivered, or its failure handled, this time: the expected
    failures, each retried by the queue's backoff (or Lambda's async retries), never a defect."""


class DownstreamFailure(DeliveryError):
    """The downstream did not answer 2xx: a status, a timeout or a connection error.

    `status_code` is None when no response arrived. `retry_after_seconds` is the downstream's
    Retry-After, already converted to seconds from now, when it sent a valid one.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome: str,
        status_code: int | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds


class DeadlineExceeded(DeliveryError):
    """Too little of the invocation's time is left to call the downstream safely."""


class DeadLetterError(DeliveryError):
    """Sending a message to the dead-letter queue failed."""


class DeadLetterTooLargeError(DeadLetterError):
    """The body with its dead-letter attributes exceeds SQS's message size."""


class QueueUrlError(DeliveryError):
    """The service would not tell a queue's URL."""


class SendAgainError(DeliveryError):
    """Sending a message again to its own queue, as a new message, failed."""


class RedrivePolicyUnavailable(Exception):
    """The SQS API would not tell a queue's redrive policy."""


class GroupStopped(DeliveryError):
    """An earlier record of the same FIFO message group failed in this batch: this one is not
    tried, so that the group stays in order, and waits at least `wait_seconds`, as that one."""

    def __init__(self, message: str, *, wait_seconds: int) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


class SecretUnavailable(DeliveryError):
    """The downstream's authentication secret could not be read."""


class DeliveryInProgress(DeliveryError):
    """Another invocation is delivering a message with the same idempotency key."""


class IdempotencyUnavailable(DeliveryError):
    """The idempotency table could not be read or written."""


class BreakerOpen(DeliveryError):
    """The circuit breaker is open: the record is failed without calling the downstream."""
