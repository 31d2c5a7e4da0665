"""Lambda's Invoke API, answered by the local execution environments.

The emulator's control-plane layer (local.aws.control_plane) hands every Invoke request here; a
function the router knows runs in its own environments, as Lambda would run it:

- RequestResponse: run now, on the request's thread; 200 with the handler's result, or with its
  error document and X-Amz-Function-Error: Unhandled. With reserved concurrency in use to the
  last environment, 429 TooManyRequestsException (Reason
  ReservedFunctionConcurrentInvocationLimitExceeded), as Lambda throttles a synchronous call.
- Event: 202 at once; the event waits on the function's queue and runs in the background, one
  at a time per unit of reserved concurrency (a throttled asynchronous event waits, it is not
  refused: Lambda keeps it for up to MaximumEventAgeInSeconds). A failed run is retried
  MaximumRetryAttempts times from the function's EventInvokeConfig, after 1 and then 2 minutes
  ("Error handling and automatic retries in Lambda": "waits one minute before the second
  attempt, two minutes before the third"; scaled by `retry_delays_seconds` here), with the same
  request id; an event older than MaximumEventAgeInSeconds is dropped. Either way it then goes
  to the OnFailure destination when that is an SQS queue, as an invocation record.
- DryRun: 204.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from local.aws.control_plane import Answer, lambda_error
from local.lambda_service.execution_environment import Invocation, PoolClosedError

logger = logging.getLogger(__name__)

# Lambda's defaults without an EventInvokeConfig.
DEFAULT_MAXIMUM_RETRY_ATTEMPTS = 2
DEFAULT_MAXIMUM_EVENT_AGE_SECONDS = 21_600
# Lambda's waits before the second and the third attempt.
RETRY_DELAYS_SECONDS = (60.0, 120.0)


class Invokable(Protocol):
    def invoke(self, event: Any, request_id: str | None = None) -> Invocation: ...


class Environments(Protocol):
    def environment(self) -> AbstractContextManager[Invokable]: ...


@dataclass(frozen=True)
class AsyncSettings:
    """A function's EventInvokeConfig, as the router honours it."""

    maximum_retry_attempts: int = DEFAULT_MAXIMUM_RETRY_ATTEMPTS
    maximum_event_age_seconds: float = DEFAULT_MAXIMUM_EVENT_AGE_SECONDS
    # An SQS queue's ARN, or None.
    on_failure_queue_arn: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> AsyncSettings:
        if not config:
            return cls()
        destination = (config.get("DestinationConfig") or {}).get("OnFailure") or {}
        arn = str(destination.get("Destination") or "")
        return cls(
            maximum_retry_attempts=int(
                config.get("MaximumRetryAttempts", DEFAULT_MAXIMUM_RETRY_ATTEMPTS)
            ),
            maximum_event_age_seconds=float(
                config.get("MaximumEventAgeInSeconds", DEFAULT_MAXIMUM_EVENT_AGE_SECONDS)
            ),
            on_failure_queue_arn=arn if ":sqs:" in arn else None,
        )


@dataclass(frozen=True)
class LocalFunction:
    """One deployed function the router runs."""

    name: str
    arn: str
    environments: Environments
    # ReservedConcurrentExecutions, or None: bounded by its environments only.
    reserved_concurrency: int | None = None
    async_settings: AsyncSettings = field(default_factory=AsyncSettings)


@dataclass(frozen=True)
class AsyncInvocation:
    """One run of an asynchronous event: which attempt, and how it ended."""

    function: str
    request_id: str
    attempt: int
    invocation: Invocation


@dataclass(order=True)
class _Event:
    due_at: float
    order: int
    request_id: str = field(compare=False)
    payload: Any = field(compare=False)
    received_at: float = field(compare=False)
    attempt: int = field(compare=False, default=1)
    # Told how the first attempt ended (the scheduler records its invocations so).
    on_first_attempt: Callable[[Invocation], None] | None = field(compare=False, default=None)


class _AsyncQueue:
    """One function's asynchronous events: a queue ordered by when each is due, and as many
    workers as its concurrency allows."""

    def __init__(
        self,
        function: LocalFunction,
        workers: int,
        router: InvokeRouter,
    ) -> None:
        self.function = function
        self.router = router
        self._events: list[_Event] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._stopping = False
        self._running = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"async-{function.name}-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def put(self, event: _Event) -> None:
        with self._changed:
            heapq.heappush(self._events, event)
            self._changed.notify()

    @property
    def pending(self) -> int:
        with self._changed:
            return len(self._events) + self._running

    def stop(self, wait_seconds: float = 1.0) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join(timeout=wait_seconds)

    def _next(self) -> _Event | None:
        with self._changed:
            while not self._stopping:
                now = self.router.clock()
                if self._events and self._events[0].due_at <= now:
                    self._running += 1
                    return heapq.heappop(self._events)
                timeout = self._events[0].due_at - now if self._events else None
                self._changed.wait(timeout)
            return None

    def _work(self) -> None:
        while (event := self._next()) is not None:
            try:
                self.router._run_async(self.function, event, self)
            finally:
                with self._changed:
                    self._running -= 1


class InvokeRouter:
    """Answers Invoke for the functions registered; see the module's docstring."""

    def __init__(
        self,
        *,
        send_to_queue: Callable[[str, str], None] | None = None,
        retry_delays_seconds: tuple[float, ...] = RETRY_DELAYS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_async: Callable[[AsyncInvocation], None] = lambda done: None,
    ) -> None:
        # (queue ARN, message body): where failed asynchronous events go.
        self.send_to_queue = send_to_queue
        self.retry_delays_seconds = retry_delays_seconds
        self.clock = clock
        self.on_async = on_async
        self._functions: dict[str, LocalFunction] = {}
        self._queues: dict[str, _AsyncQueue] = {}
        self._busy: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.async_invocations: list[AsyncInvocation] = []

    def register(self, function: LocalFunction, async_workers: int = 10) -> None:
        """Run `function` here; its asynchronous events get as many workers as its reserved
        concurrency, else `async_workers`."""
        with self._lock:
            self._functions[function.name] = function
            self._functions[function.arn] = function
            if function.reserved_concurrency is not None:
                self._busy[function.name] = threading.BoundedSemaphore(
                    function.reserved_concurrency
                )
            self._queues[function.name] = _AsyncQueue(
                function, function.reserved_concurrency or async_workers, self
            )

    def unregister(self, function: str) -> bool:
        """`function` was deleted (a stack update removed it): Invoke no longer reaches it here
        (the emulator answers ResourceNotFoundException, as Lambda does), and its queued
        asynchronous events are dropped with it; one running ends as it would. False if it
        did not run here."""
        with self._lock:
            target = self._functions.get(function) or self._functions.get(
                function.rsplit(":", 1)[-1]
            )
            if target is None:
                return False
            self._functions.pop(target.name, None)
            self._functions.pop(target.arn, None)
            self._busy.pop(target.name, None)
            queue = self._queues.pop(target.name)
        queue.stop(wait_seconds=0.0)
        return True

    def stop(self) -> None:
        for queue in list(self._queues.values()):
            queue.stop()

    def pending(self, function: str) -> int:
        """Asynchronous events of `function` queued or running."""
        return self._queues[self._function(function).name].pending  # type: ignore[union-attr]

    def submit(
        self,
        function: str,
        event: Any,
        on_first_attempt: Callable[[Invocation], None] | None = None,
    ) -> bool:
        """An asynchronous Invoke from inside the local system (EventBridge Scheduler's);
        False if `function` does not run here."""
        target = self._function(function)
        if target is None:
            return False
        now = self.clock()
        self._queues[target.name].put(
            _Event(now, 0, str(uuid.uuid4()), event, now, on_first_attempt=on_first_attempt)
        )
        return True

    def _function(self, name: str) -> LocalFunction | None:
        with self._lock:
            return self._functions.get(name) or self._functions.get(name.rsplit(":", 1)[-1])

    def invoke(
        self, function: str, payload: bytes, invocation_type: str, qualifier: str | None
    ) -> Answer | None:
        target = self._function(function)
        if target is None:
            return None
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            return lambda_error(
                400, "InvalidRequestContentException", "Could not parse request body into json"
            )
        if invocation_type == "DryRun":
            return Answer(204)
        request_id = str(uuid.uuid4())
        if invocation_type == "Event":
            now = self.clock()
            self._queues[target.name].put(_Event(now, 0, request_id, event, now))
            return Answer(202, b"", {"x-amzn-RequestId": request_id})
        if invocation_type != "RequestResponse":
            return lambda_error(
                400, "InvalidParameterValueException", f"InvocationType {invocation_type!r}"
            )
        return self._invoke_now(target, event, request_id)

    def _invoke_now(self, target: LocalFunction, event: Any, request_id: str) -> Answer:
        """RequestResponse: run on this thread, or 429 with the reserved concurrency in use."""
        with self._slot(target, blocking=False) as free:
            if not free:
                return lambda_error(
                    429,
                    "TooManyRequestsException",
                    "Rate Exceeded. (Reason: ReservedFunctionConcurrentInvocationLimitExceeded)",
                )
            try:
                with target.environments.environment() as environment:
                    invocation = environment.invoke(event, request_id)
            except PoolClosedError:
                return lambda_error(500, "ServiceException", "the local system is shutting down")
        headers = {"x-amzn-RequestId": request_id, "Content-Type": "application/json"}
        if invocation.succeeded:
            return Answer(200, json.dumps(invocation.response).encode(), headers)
        return Answer(
            200,
            json.dumps(invocation.error).encode(),
            {**headers, "X-Amz-Function-Error": "Unhandled"},
        )

    @contextmanager
    def _slot(self, function: LocalFunction, *, blocking: bool) -> Iterator[bool]:
        """One unit of the function's reserved concurrency (always free without one)."""
        semaphore = self._busy.get(function.name)
        if semaphore is None:
            yield True
            return
        acquired = semaphore.acquire(blocking=blocking)
        try:
            yield acquired
        finally:
            if acquired:
                semaphore.release()

    def _run_async(self, function: LocalFunction, event: _Event, queue: _AsyncQueue) -> None:
        settings = function.async_settings
        age = self.clock() - event.received_at
        if age > settings.maximum_event_age_seconds:
            self._give_up(function, event, "EventAgeExceeded", None)
            return
        try:
            with self._slot(function, blocking=True), function.environments.environment() as env:
                invocation = env.invoke(event.payload, event.request_id)
        except PoolClosedError:
            return
        done = AsyncInvocation(function.name, event.request_id, event.attempt, invocation)
        with self._lock:
            self.async_invocations.append(done)
        self.on_async(done)
        if event.attempt == 1 and event.on_first_attempt is not None:
            event.on_first_attempt(invocation)
        if invocation.succeeded:
            return
        logger.error(
            "asynchronous invocation failed",
            extra={
                "fields": {
                    "function": function.name,
                    "request_id": event.request_id,
                    "attempt": event.attempt,
                    "outcome": invocation.outcome,
                }
            },
        )
        if event.attempt > settings.maximum_retry_attempts:
            self._give_up(function, event, "RetriesExhausted", invocation)
            return
        delays = self.retry_delays_seconds
        delay = delays[min(event.attempt - 1, len(delays) - 1)] if delays else 0.0
        queue.put(
            _Event(
                self.clock() + delay,
                event.attempt,
                event.request_id,
                event.payload,
                event.received_at,
                event.attempt + 1,
            )
        )

    def _give_up(
        self, function: LocalFunction, event: _Event, condition: str, last: Invocation | None
    ) -> None:
        arn = function.async_settings.on_failure_queue_arn
        logger.error(
            "asynchronous event dropped",
            extra={
                "fields": {
                    "function": function.name,
                    "request_id": event.request_id,
                    "condition": condition,
                    "on_failure": arn or "none",
                }
            },
        )
        if arn is None or self.send_to_queue is None:
            return
        record = {
            "version": "1.0",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": f"{function.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": event.attempt - (last is None),
            },
            "requestPayload": event.payload,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": last.error if last is not None else None,
        }
        self.send_to_queue(arn, json.dumps(record))
