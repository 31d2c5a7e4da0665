"""SQS batches: each record parsed once, delivered (or dead-lettered when it can never succeed),
and each failure rescheduled through its visibility timeout by one retry plan.

Records are delivered DELIVERY_CONCURRENCY at a time, or one after another on the calling
thread while the downstream answers within milliseconds (in_lanes). The records of one FIFO
message group go one after another, and a failure stops the rest of its group in the batch.

The record's path runs one way: event -> QueuedMessage -> outcome or failure -> retry plan
and step (RecordHandler._decide, once) -> SQS calls. A failed record is sent again or
dead-lettered by the record handler; one that stays on its queue is raised as RecordFailed to
failure_handler (the extension point Powertools gives for it), and the processor sets the
batch's visibility timeouts together (ChangeMessageVisibilityBatch), then each failure's log
line and metrics.
"""

from __future__ import annotations

import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum, auto
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumer.breaker import BatchCalls
from consumer.delivery import (
    DeadLetterReason,
    DownstreamPace,
    Message,
    Runtime,
    dead_letter,
    deliver_or_dead_letter,
)
from consumer.sqs_actions import MAX_BATCHING_WINDOW_SECONDS, VisibilityChange
from shared.backoff import (
    MAX_VISIBILITY_TIMEOUT_SECONDS,
    BackoffPolicy,
    RetryPlan,
    plan_retry,
)
from shared.breaker_policy.timing import longest_hold_seconds
from shared.deadline import (
    REPORT_SECONDS_PER_RECORD,
    RESPONSE_SECONDS,
    VISIBILITY_ROUND_SECONDS,
    Deadline,
    WrapUp,
)
from shared.errors import (
    BreakerOpen,
    DeadLetterError,
    DeadLetterTooLargeError,
    DeadlineExceeded,
    DeliveryError,
    DownstreamFailure,
    GroupStopped,
    InvalidRecordError,
    QueueUrlError,
    RedrivePolicyUnavailable,
    SendAgainError,
    UnsupportedEventError,
)
from shared.observability import Metric, add_metric, count, logger, record_context

# ApproximateReceiveCount and SentTimestamp are decimal integers far below 10^15; a longer digit
# string is not one SQS wrote (and int() of thousands of digits is refused or slow).
_MAX_DIGITS = 15


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    # When SQS first enqueued the message (ms since the epoch); retention counts from it.
    sent_timestamp_ms: int | None
    queue_arn: str
    message_attributes: Mapping[str, Any]
    # The message group, or None (a standard queue's record may carry one too: fair queues).
    message_group_id: str | None = None
    # The group whose order the batch keeps: only a FIFO queue's (see fifo_group).
    fifo_group: str | None = None


def queued_message(record: SQSRecord) -> QueuedMessage:
    raw = record.raw_event
    if raw.get("eventSource") != "aws:sqs":
        raise InvalidRecordError(f"not an SQS record (eventSource={raw.get('eventSource')!r})")
    message_id = _text(raw, "messageId")
    receipt_handle = _text(raw, "receiptHandle")
    body = raw.get("body")
    if not isinstance(body, str):
        raise InvalidRecordError("record has no body string")
    attributes = raw.get("attributes")
    if not isinstance(attributes, dict):
        attributes = {}
    receive_count = _integer(attributes.get("ApproximateReceiveCount"))
    if receive_count is None or receive_count < 1:
        raise InvalidRecordError("invalid attributes.ApproximateReceiveCount")
    queue_arn = _text(raw, "eventSourceARN")
    arn_parts = queue_arn.split(":")
    if len(arn_parts) != 6 or arn_parts[:3] != ["arn", arn_parts[1], "sqs"] or not all(arn_parts):
        raise InvalidRecordError("invalid eventSourceARN")
    message_attributes = raw.get("messageAttributes")
    return QueuedMessage(
        message_id=message_id,
        receipt_handle=receipt_handle,
        body=body,
        receive_count=receive_count,
        sent_timestamp_ms=_integer(attributes.get("SentTimestamp")),
        queue_arn=queue_arn,
        message_attributes=message_attributes if isinstance(message_attributes, dict) else {},
        message_group_id=_optional_text(attributes.get("MessageGroupId")),
        fifo_group=fifo_group(raw),
    )


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRecordError(f"record has no {key}")
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def fifo_group(raw: Any) -> str | None:
    """The record's message group, if it comes from a FIFO queue.

    Standard queues accept a MessageGroupId too (fair queues), without any order to keep, so
    the queue's .fifo name decides.
    """
    if not (isinstance(raw, dict) and str(raw.get("eventSourceARN", "")).endswith(".fifo")):
        return None
    attributes = raw.get("attributes")
    group = attributes.get("MessageGroupId") if isinstance(attributes, dict) else None
    return _optional_text(group)


def _integer(value: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    return None


def process_sqs_batch(
    event: dict[str, Any], context: LambdaContext, runtime: Runtime, deadline: Deadline
) -> PartialItemFailureResponse:
    records = event["Records"]
    if not records:
        return {"batchItemFailures": []}
    for index, record in enumerate(records):
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if not (isinstance(message_id, str) and message_id):
            # Lambda fails the whole batch on a response that names an unknown record anyway;
            # say why instead of failing on a malformed response.
            raise UnsupportedEventError(
                f"Records[{index}] has no messageId, so a partial batch response cannot name it"
            )
    batch = Batch(records, seed=runtime.rng.getrandbits(64))
    # Every record not yet settled may need rescheduling before the response: the deadline
    # keeps that much time back, less as records are settled.
    wrap_up = WrapUp(parallel_calls=_parallel_calls(runtime))
    deadline.keep_back_for(lambda: wrap_up.seconds(batch.unsettled))
    breaker = runtime.breaker
    calls = None if breaker is None else breaker.start_batch()
    try:
        return process_partial_response(
            event=event,
            record_handler=RecordHandler(runtime, deadline, batch, calls),
            processor=BackoffBatchProcessor(runtime, batch, deadline),
            context=context,
        )
    finally:
        # Also when every record failed and the batch raises: that is what trips it.
        if breaker is not None and calls is not None:
            breaker.finish_batch(calls)


def _parallel_calls(runtime: Runtime) -> int:
    """How many SQS calls the batch's wrap-up makes at a time: the delivery threads', idle by
    then."""
    return 1 if runtime.delivery_pool is None else runtime.config.delivery_concurrency


class Batch:
    """What the records of one batch share, whichever thread delivers them: their positions,
    the FIFO message groups a failure has stopped, and the seed of their jitter.

    A stopped group's later records wait at least as long as its failed record, so the group
    stays in order. Each record draws its jitter from its own source, seeded by the batch's seed
    and its position, so that the draws do not depend on the order threads finish in.
    """

    def __init__(self, records: list[dict[str, Any]], seed: int) -> None:
        self._positions = {id(record): index for index, record in enumerate(records)}
        self._seed = seed
        self._stopped: dict[str, int] = {}
        self._lock = threading.Lock()
        self._unsettled = len(records)

    @property
    def unsettled(self) -> int:
        """Records neither delivered nor dead-lettered yet: each may still need rescheduling."""
        with self._lock:
            return self._unsettled

    def settled(self) -> None:
        with self._lock:
            self._unsettled -= 1

    def position(self, record: Any) -> int:
        return self._positions[id(record)]

    def random_source(self, record: Any) -> random.Random:
        return random.Random(f"{self._seed}|{self.position(record)}")

    def stop(self, group: str, visibility_seconds: int) -> None:
        with self._lock:
            self._stopped.setdefault(group, visibility_seconds)

    def stopped(self, group: str) -> int | None:
        with self._lock:
            return self._stopped.get(group)


# An exception as any other: compared by identity, its args its cause's text.
@dataclass(eq=False, repr=False)
class RecordFailed(Exception):
    """A parsed record stays on its queue: carries the record and its retry plan, decided once,
    to failure_handler, with the failure as its cause."""

    # The record's place in the batch: the failures are rescheduled and reported in order.
    position: int
    message: QueuedMessage
    cause: BaseException
    plan: RetryPlan

    def __post_init__(self) -> None:
        super().__init__(str(self.cause))


class Step(Enum):
    """What is done with a failed record, by its plan: RESCHEDULE leaves it on its queue for the
    batch's visibility changes; SEND_AGAIN sends it to its queue again as a new message (its
    receive count was carried in); DEAD_LETTER dead-letters it now (its next attempt would come
    after it expires on the queue)."""

    RESCHEDULE = auto()
    SEND_AGAIN = auto()
    DEAD_LETTER = auto()


class RecordHandler:
    """Deliver one record. Returns what became of it; raises RecordFailed when it stays on its
    queue for another attempt."""

    def __init__(
        self, runtime: Runtime, deadline: Deadline, batch: Batch, calls: BatchCalls | None = None
    ) -> None:
        self.runtime = runtime
        self.deadline = deadline
        self.batch = batch
        # The circuit breaker's gate for this batch's calls; None when it is off.
        self.calls = calls

    def __call__(self, record: SQSRecord) -> str:
        # InvalidRecordError escapes as it is: a record that cannot be parsed cannot be
        # rescheduled either.
        message = queued_message(record)
        group = message.fifo_group
        group_wait_seconds = None if group is None else self.batch.stopped(group)
        delivery = Message(
            message.body,
            idempotency_key=message.message_id,
            source={"SourceMessageId": message.message_id},
            attributes=message.message_attributes,
            group_id=message.message_group_id,
        )
        with record_context(message_id=message.message_id, receive_count=message.receive_count):
            try:
                if group_wait_seconds is not None:
                    raise GroupStopped(
                        f"an earlier record of message group {group} failed in this batch",
                        wait_seconds=group_wait_seconds,
                    )
                # Also before a dead-letter copy, which calls SQS: a batch of 10,000 records
                # that all go to the DLQ must stop in time too.
                self.deadline.check_time_for_a_call()
                outcome = deliver_or_dead_letter(self.runtime, self.deadline, delivery, self.calls)
            except Exception as error:
                step, plan = self._decide(record, message, error)
                if step is Step.DEAD_LETTER and self._dead_lettered(delivery, plan, error):
                    return "dead-lettered"
                if step is Step.SEND_AGAIN and self._sent_again(message, plan, error):
                    return "sent again"
                # Stays on its queue, rescheduled by its plan with the batch's others: also
                # when the dead-letter queue or its own queue refused it.
                position = self.batch.position(record.raw_event)
                raise RecordFailed(position, message, error, plan) from error
        return "dead-lettered" if outcome.dead_lettered else "delivered"

    def _decide(
        self, record: SQSRecord, message: QueuedMessage, error: Exception
    ) -> tuple[Step, RetryPlan]:
        """What becomes of a failed record, decided once: its retry plan, and what is done.

        A record held back behind its FIFO group's failed one is rescheduled, never sent again
        or dead-lettered (either would break its group's order). Otherwise a carried-in count
        is sent again, and a message whose next attempt would come after it expires is
        dead-lettered now.
        """
        # Asked once: it may cost a GetQueueAttributes call, and its warning.
        carried_in = self._carried_in(message)
        plan = plan_retry(
            # A carried-in count's attempts are unknown: this one counts as the first (see
            # _sent_again), never as the final one.
            1 if carried_in else message.receive_count,
            self.runtime.config.backoff_policy,
            self.batch.random_source(record.raw_event),
            message_id=message.message_id,
            retry_after_seconds=_soonest_retry_seconds(error),
            ceiling_seconds=self._visibility_left_seconds(),
        )
        if isinstance(error, GroupStopped):
            return Step.RESCHEDULE, plan
        if carried_in:
            return Step.SEND_AGAIN, plan
        if self._would_expire(message, plan):
            return Step.DEAD_LETTER, plan
        return Step.RESCHEDULE, plan

    def _carried_in(self, message: QueuedMessage) -> bool:
        """True when the record's receive count was carried in by a redrive that kept it.

        Above MAX_RECEIVE_COUNT, the queue's own redrive policy decides: a count above its
        maxReceiveCount cannot be the queue's own. A queue whose maxReceiveCount is higher than
        MAX_RECEIVE_COUNT, or that has none, keeps the final-attempt rule: sending such messages
        again would start them over for ever. A policy that cannot be read counts as the
        template's (equal to MAX_RECEIVE_COUNT).
        """
        if not receive_count_carried_in(message.receive_count, self.runtime.config.backoff_policy):
            return False
        try:
            queue_max = self.runtime.sqs.max_receive_count(message.queue_arn)
        except RedrivePolicyUnavailable as exc:
            logger.warning(
                "the source queue's redrive policy could not be read; taken as the template's",
                error=str(exc),
            )
            return True
        return queue_max is not None and message.receive_count > queue_max

    def _visibility_left_seconds(self) -> int:
        # SQS counts its 12-hour visibility limit from the ReceiveMessage call, which Lambda
        # makes before the invocation starts: up to a batching window earlier. The change is
        # made before the invocation ends. Asking for more than is left is refused outright, so
        # the delay is trimmed to what is certainly left then.
        spent = (
            MAX_BATCHING_WINDOW_SECONDS
            + self.deadline.elapsed_seconds()
            + self.deadline.remaining_seconds()
        )
        return max(0, int(MAX_VISIBILITY_TIMEOUT_SECONDS - spent))

    def _would_expire(self, message: QueuedMessage, plan: RetryPlan) -> bool:
        """True when the next attempt would come after the message expires on the queue.

        Retention counts from the first enqueue, and an expired message is gone: neither
        delivered nor dead-lettered. The next attempt comes after the visibility timeout and
        at most a batching window more, and with the circuit breaker on, at most the longest
        time the controller keeps the mapping disabled (shared.breaker_policy.timing) more:
        a message the breaker could keep from its next receive until it expires goes now.
        """
        retention_seconds = self.runtime.config.source_queue_retention_seconds
        if retention_seconds is None or message.sent_timestamp_ms is None:
            return False
        expires_at = message.sent_timestamp_ms / 1000 + retention_seconds
        hold_seconds = (
            0 if self.runtime.breaker is None else longest_hold_seconds(retention_seconds)
        )
        now = time.time()
        # A message past its expiry cannot have been received: its timestamp is not SQS's
        # (a hand-written event) or the clocks disagree, and the check does not apply.
        return (
            now
            < expires_at
            <= now + plan.visibility_seconds + MAX_BATCHING_WINDOW_SECONDS + hold_seconds
        )

    def _dead_lettered(self, delivery: Message, plan: RetryPlan, error: BaseException) -> bool:
        """Dead-letter a message that would expire before its next attempt; False when the
        dead-letter queue refused it."""
        detail = (
            f"the next attempt, in {plan.visibility_seconds}s, would come after the message "
            f"expires ({self.runtime.config.source_queue_retention_seconds}s after its first "
            f"enqueue); last failure: {error}"
        )
        try:
            dead_letter(self.runtime, delivery, DeadLetterReason.WOULD_EXPIRE, detail)
        except DeadLetterError as dead_letter_error:
            # The best left: reschedule it, and let the log say it may expire.
            logger.error(
                "the message may expire before its next attempt, and the dead-letter queue "
                "refused it",
                error=str(dead_letter_error),
            )
            return False
        return True

    def _sent_again(self, message: QueuedMessage, plan: RetryPlan, error: BaseException) -> bool:
        """Start the schedule of a redriven message whose receive count was kept over: send it
        to its queue again as a new message, after the first backoff delay, and let this one be
        deleted. The new message counts its receives from 1, so it gets every attempt and every
        delay of the schedule, on any endpoint; its id is new, as AWS's own redrive gives it.

        False when it could not be sent: this record is then rescheduled by the first delay
        instead (never as a final attempt); the queue's own redrive policy still bounds its
        deliveries.
        """
        try:
            queue_url = self.runtime.sqs.queue_url(message.queue_arn)
            new_message_id = self.runtime.sqs.send_again(
                queue_url,
                message.body,
                message.message_attributes,
                delay_seconds=plan.visibility_seconds,
                group_id=message.message_group_id,
                # Deterministic: a retried invocation sends no second copy into a FIFO queue.
                deduplication_id=f"{message.message_id}-{message.receive_count}",
            )
        except (QueueUrlError, SendAgainError) as send_error:
            logger.error(
                "a redriven message kept its receive count and could not be sent again; "
                "rescheduled by the first delay",
                send_error=str(send_error),
            )
            return False
        count(Metric.SCHEDULES_RESTARTED)
        logger.warning(
            "delivery failed; a redriven message kept its receive count, so it was sent again "
            "as a new message whose schedule starts over",
            new_message_id=new_message_id,
            delay_seconds=plan.visibility_seconds,
            **_describe_failure(error),
        )
        return True


def receive_count_carried_in(receive_count: int, policy: BackoffPolicy) -> bool:
    """True when the count cannot be this queue's own count of deliveries.

    The source queue's redrive policy (maxReceiveCount = MAX_RECEIVE_COUNT in the template)
    moves a message to the DLQ at the receive that would exceed it, so a higher count was
    carried in: a DLQ redrive that kept the message's count (LocalStack's StartMessageMoveTask
    does; AWS documents redriven messages as new messages). It says nothing of the attempts left.
    """
    return receive_count > policy.max_receive_count


def _soonest_retry_seconds(error: BaseException) -> int | None:
    """The least a failed record waits: the downstream's Retry-After, or its stopped group's
    wait."""
    if isinstance(error, DownstreamFailure):
        return error.retry_after_seconds
    if isinstance(error, GroupStopped):
        return error.wait_seconds
    return None


class BackoffBatchProcessor(BatchProcessor):
    """Partial batch responses, with each failed record's next delivery set by its retry plan.

    failure_handler collects the failed records; once every record has been tried, the
    visibility changes are applied together, in ChangeMessageVisibilityBatch calls.
    """

    def __init__(self, runtime: Runtime, batch: Batch, deadline: Deadline) -> None:
        super().__init__(event_type=EventType.SQS)
        self.runtime = runtime
        self.batch = batch
        self.deadline = deadline
        self._failures: list[RecordFailed] = []

    def process(self) -> list[Any]:
        units = _delivery_units(self.records)
        pool = self.runtime.delivery_pool
        if pool is None or len(units) == 1:
            done = [self._process_unit(unit) for unit in units]
        else:
            threads = self.runtime.config.delivery_concurrency
            done = in_lanes(units, self._process_unit, pool, threads, self.runtime.pace)
        results = {id(record): result for unit in done for record, result in unit}
        self._keep_record_order()
        self._log_delivered([record for record in self.records if _delivered(results[id(record)])])
        self._reschedule()
        return [results[id(record)] for record in self.records]

    @staticmethod
    def _log_delivered(records: list[dict[str, Any]]) -> None:
        """One INFO line naming the batch's delivered messages, in the records' order (each
        record's own line, with its status and latency, is at DEBUG); failures keep a line
        each."""
        if records:
            logger.info(
                "delivered",
                delivered=len(records),
                message_ids=[record["messageId"] for record in records],
            )

    def _process_unit(self, unit: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
        # The records of a unit (one FIFO group, or one record) go in order, on one thread.
        return [(record, self._process_record(record)) for record in unit]

    def _keep_record_order(self) -> None:
        """Put what the threads appended back in the records' order: the response and the
        visibility changes are then exactly those of a sequential run."""
        self.success_messages.sort(key=self.batch.position)
        self.fail_messages.sort(key=lambda record: self.batch.position(_raw(record)))
        self._failures.sort(key=lambda failure: failure.position)

    def success_handler(self, record: Any, result: Any) -> Any:
        self.batch.settled()
        return super().success_handler(record, result)

    def _clean(self) -> None:
        """Powertools' end of the batch, with a short error when every record failed.

        Powertools raises BatchProcessingError with every record's exception, and its message
        formats each one's traceback: for 10,000 records, tens of seconds and hundreds of
        megabytes after the last record, past the timeout. Each failure already has its log
        line; the error keeps the first exception only, and says so.
        """
        if self.fail_messages and len(self.exceptions) == len(self.records) > 1:
            raise BatchProcessingError(
                msg=(
                    f"All records failed processing ({len(self.records)}); each was rescheduled "
                    "and has its own log line. The first record's error follows."
                ),
                child_exceptions=self.exceptions[:1],
            )
        super()._clean()  # type: ignore[no-untyped-call]

    def failure_handler(self, record: SQSRecord, exception: Any) -> Any:
        error = exception[1]
        group = fifo_group(record.raw_event)
        if isinstance(error, RecordFailed):
            self._failures.append(error)
            if group is not None:
                self.batch.stop(group, error.plan.visibility_seconds)
            _release_locals(error)
        else:
            if group is not None:
                self.batch.stop(group, 0)
            count(Metric.INVALID_RECORDS)
            logger.error(
                "invalid record; the queue's visibility timeout applies",
                message_id=record.raw_event.get("messageId"),
                error=str(error),
            )
        return super().failure_handler(record, exception)

    def _reschedule(self) -> None:
        failures, self._failures = self._failures, []
        by_queue: dict[str, list[RecordFailed]] = {}
        for failure in failures:
            by_queue.setdefault(failure.message.queue_arn, []).append(failure)
        for queue_arn, queued in by_queue.items():
            try:
                queue_url = self.runtime.sqs.queue_url(queue_arn)
            except QueueUrlError as exc:
                refusals: list[str | None] = [str(exc)] * len(queued)
            else:
                pool = self.runtime.delivery_pool
                refusals = self.runtime.sqs.change_visibility_batch(
                    queue_url,
                    [
                        VisibilityChange(
                            failure.message.receipt_handle, failure.plan.visibility_seconds
                        )
                        for failure in queued
                    ],
                    map_calls=map if pool is None else pool.map,
                    keep_going=self._time_for_a_visibility_call(len(failures)),
                )
            for failure, refusal in zip(queued, refusals, strict=True):
                _report(failure, refusal)

    def _time_for_a_visibility_call(self, failures: int) -> Callable[[], bool]:
        """Whether a visibility call may still start: a round of calls, the failures' log lines
        and the response must fit in what is left. The last resort, not the plan: the reserve
        kept back before the deliveries stopped is larger (its 3 s floor allows for a slow
        call), so that this rarely refuses."""
        needed = RESPONSE_SECONDS + VISIBILITY_ROUND_SECONDS + failures * REPORT_SECONDS_PER_RECORD
        return lambda: self.deadline.remaining_seconds() >= needed


def _delivered(result: Any) -> bool:
    # Powertools' (status, result, record) of a record; RecordHandler's result names its outcome.
    return bool(result[0] == "success" and result[1] == "delivered")


def _release_locals(error: BaseException) -> None:
    """Let go of what the failure's frames held (the HTTP response, the request's buffers):
    a batch keeps every failure until its end, and 10,000 of them held their frames' locals.
    The tracebacks still format (file, line, code); only the local variables go."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__traceback__ is not None:
            # Frames still running (the record's own caller) are skipped by clear_frames.
            traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__


def _raw(record: Any) -> Any:
    return getattr(record, "raw_event", record)


def in_lanes[U: Sized, R](
    units: list[U],
    work: Callable[[U], R],
    pool: ThreadPoolExecutor,
    threads: int,
    pace: DownstreamPace,
) -> list[R]:
    """work(unit) for every unit (a list of records), the results in the units' order: on the
    pool's `threads` threads, or one after another on the calling thread while the downstream
    makes its records wait on next to nothing.

    On the calling thread, each unit's wait is its time less its own CPU. Once the records'
    waits pass the pace's allowance (a wait a record, plus one pause of a loaded machine), the
    rest of the batch goes to the pool, and the batches stay there for a while. On the pool a
    record's wait cannot be told from the other threads' turns at the interpreter lock; a batch
    there that spent under the pace's round wait on anything but CPU may have waited on
    nothing, and the next one tries the calling thread once the while is over.
    """
    if pace.one_thread:
        results: list[R] = []
        waited = 0.0
        records = 0
        for index, unit in enumerate(units):
            started, cpu_started = time.monotonic(), time.thread_time()
            results.append(work(unit))
            waited += (time.monotonic() - started) - (time.thread_time() - cpu_started)
            records += len(unit)
            if waited > pace.wait_allowance_seconds + records * pace.wait_per_record_seconds:
                pace.one_thread = False
                pace.threads_until = time.monotonic() + pace.retry_one_thread_seconds
                return results + list(pool.map(work, units[index + 1 :]))
        return results
    started, cpu_started = time.monotonic(), time.process_time()
    results = list(pool.map(work, units))
    finished = time.monotonic()
    waited = (finished - started) - (time.process_time() - cpu_started)
    pace.one_thread = (
        finished >= pace.threads_until
        and waited / math.ceil(len(units) / threads) < pace.round_wait_seconds
    )
    return results


def _delivery_units(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The batch as units of work in the records' order: each FIFO message group is one unit,
    any other record a unit of its own."""
    units: list[list[dict[str, Any]]] = []
    by_group: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        group = fifo_group(record)
        if group is None:
            units.append([record])
        elif group in by_group:
            by_group[group].append(record)
        else:
            by_group[group] = [record]
            units.append(by_group[group])
    return units


def _report(failure: RecordFailed, refusal: str | None) -> None:
    """The failed record's log line and metrics, from its retry plan and the SQS call's result."""
    message, plan = failure.message, failure.plan
    fields = _describe_failure(failure.cause)
    with record_context(message_id=message.message_id, receive_count=message.receive_count):
        if isinstance(failure.cause, DeadLetterTooLargeError):
            count(Metric.DEAD_LETTER_TOO_LARGE)
        elif isinstance(failure.cause, DeadLetterError):
            count(Metric.DEAD_LETTER_SEND_FAILED)
        elif isinstance(failure.cause, DeadlineExceeded):
            count(Metric.DEADLINE_SKIPPED)
        elif isinstance(failure.cause, BreakerOpen):
            count(Metric.BREAKER_SHORT_CIRCUITED)
        if refusal is not None:
            count(Metric.VISIBILITY_CHANGE_FAILED)
            logger.error(
                "delivery failed and the backoff could not be set; "
                "the queue's visibility timeout applies",
                visibility_error=refusal,
                delay_seconds=plan.visibility_seconds,
                final_attempt=plan.final_attempt,
                **fields,
            )
        elif plan.final_attempt:
            count(Metric.FINAL_ATTEMPTS)
            logger.error(
                "final attempt failed; SQS moves the message to the dead-letter queue "
                "at its next receive",
                delay_seconds=plan.visibility_seconds,
                **fields,
            )
        else:
            count(Metric.RETRIES_SCHEDULED)
            add_metric(Metric.BACKOFF_SECONDS, MetricUnit.Seconds, plan.visibility_seconds)
            logger.warning(
                "delivery failed; retry scheduled",
                delay_seconds=plan.visibility_seconds,
                **fields,
            )


def _describe_failure(error: BaseException) -> dict[str, Any]:
    fields: dict[str, Any] = {"error": str(error), "error_type": type(error).__name__}
    if isinstance(error, DownstreamFailure):
        fields.update(
            outcome=error.outcome,
            status_code=error.status_code,
            retry_after_seconds=error.retry_after_seconds,
        )
    elif not isinstance(error, DeliveryError):
        # A defect, not a delivery failure: keep the traceback. The record is still rescheduled.
        fields["exc_info"] = error
    return fields
