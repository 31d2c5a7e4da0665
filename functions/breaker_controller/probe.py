"""The controller's probe of the downstream, once a minute while the breaker is open.

With BreakerProbeUrl: a GET of it, with the authentication header when one is configured; up
is a 2xx and nothing else (shared.downstream.DownstreamClient.probe).

Without one: one real message, delivered by the controller itself. It receives one visible
message from the source queue and sends it exactly as the consumer would (same body, method,
Idempotency-Key = its message id, authentication header):

- 2xx: the message is delivered and deleted; the downstream is up.
- the message's own 4xx (any status that is not down, auth or Retry-After for the rules): the
  downstream is up; the message goes back with the consumer's backoff for its receive count.
- anything else: down; the message goes back with the consumer's backoff.

Its receive is a real attempt, accounted as the consumer accounts any: the receive count the
message shows is the attempts it had, the backoff is the one its count gives, and a final
attempt goes to the dead-letter queue as the consumer's would. The probe spends at most one
receive a minute in all, of one message, never a batch (a half-open "trickle" at
MaximumConcurrency 2 spends whole batches, and more while a disable takes to land). With no
visible message there is nothing to test with and nothing to lose by waiting: the breaker
stays open until the next minute (the expiry sweep still bounds the time open).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from breaker_controller.errors import QueueUnavailable
from breaker_controller.source_queue import ProbeMessage, SourceQueue
from shared.backoff import BackoffPolicy, plan_retry
from shared.breaker_policy.rules import CallOutcome, TripRules
from shared.deadline import Deadline
from shared.downstream import DownstreamClient, json_error
from shared.errors import DeliveryError, DownstreamFailure


@dataclass(frozen=True)
class ProbeOutcome:
    up: bool
    detail: str


class Probe:
    def __init__(
        self,
        downstream: DownstreamClient,
        probe_url: str | None,
        queue: SourceQueue,
        *,
        backoff: BackoffPolicy,
        rules: TripRules,
        rng: random.Random | None = None,
    ) -> None:
        self.downstream = downstream
        self.probe_url = probe_url
        self.queue = queue
        self.backoff = backoff
        self.rules = rules
        self._rng = rng or random.Random()

    def __call__(self, deadline: Deadline) -> ProbeOutcome:
        if self.probe_url is not None:
            try:
                result = self.downstream.probe(self.probe_url, deadline)
            except DeliveryError as exc:
                # Too little time left, or the authentication secret unreadable: not up.
                return ProbeOutcome(False, str(exc))
            return ProbeOutcome(result.up, result.detail)
        return self._with_a_message(deadline)

    def _with_a_message(self, deadline: Deadline) -> ProbeOutcome:
        # Hidden long enough for the call; released or deleted right after it.
        hidden_s = math.ceil(self.downstream.timeout_seconds) + 5
        try:
            message = self.queue.receive_one(hidden_s)
        except QueueUnavailable as exc:
            return ProbeOutcome(False, f"could not receive a message to probe with: {exc}")
        if message is None:
            return ProbeOutcome(False, "no visible message to probe with; open until the next")
        return self._deliver(message, deadline)

    def _deliver(self, message: ProbeMessage, deadline: Deadline) -> ProbeOutcome:
        problem = json_error(message.body)
        if problem is not None:
            # The consumer dead-letters it (invalid-json) at its next receive.
            self._release(message, 0)
            return ProbeOutcome(False, f"message {message.message_id} cannot probe: {problem}")
        try:
            status_code = self.downstream.deliver(message.body, message.message_id, deadline)
        except DownstreamFailure as failure:
            outcome = self.rules.classify(
                failure.status_code, has_retry_after=failure.retry_after_seconds is not None
            )
            self._release_with_backoff(message, failure)
            return ProbeOutcome(
                outcome is CallOutcome.NEUTRAL,
                f"message {message.message_id} (receive {message.receive_count}): {failure}",
            )
        except DeliveryError as exc:
            self._release(message, 0)
            return ProbeOutcome(False, f"message {message.message_id}: {exc}")
        try:
            self.queue.delete(message)
        except QueueUnavailable as exc:
            # Delivered; SQS hands it back later and it is delivered again with the same
            # Idempotency-Key, which the downstream can recognise.
            return ProbeOutcome(True, f"message {message.message_id} delivered; {exc}")
        return ProbeOutcome(
            True, f"message {message.message_id} delivered (answered {status_code})"
        )

    def _release_with_backoff(self, message: ProbeMessage, failure: DownstreamFailure) -> None:
        plan = plan_retry(
            message.receive_count,
            self.backoff,
            self._rng,
            retry_after_seconds=failure.retry_after_seconds,
        )
        self._release(message, plan.visibility_seconds)

    def _release(self, message: ProbeMessage, after_s: int) -> None:
        try:
            self.queue.release(message, after_s)
        except QueueUnavailable:
            # Its visibility timeout ends on its own (hidden_s): it comes back soon either way.
            return
