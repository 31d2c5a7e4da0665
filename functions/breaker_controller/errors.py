"""The controller's domain errors. Only adapters translate library errors."""

from __future__ import annotations


class MappingUnavailable(Exception):
    """The Lambda API would not read or change the event source mapping (after retries)."""


class QueueUnavailable(Exception):
    """The SQS API would not answer for the source queue."""
