"""One execution environment's part of the circuit breaker: it judges what it sees, fails fast
while it sees the downstream down, and reports to the controller. It never touches the event
source mapping: the controller (functions/breaker_controller) owns it, outside the data path.

Each call's outcome is classified by the shared rules (shared.breaker_policy.rules): down, auth,
paced (Retry-After) or neutral. After each batch the environment judges its window. On a trip
or pause verdict it

- reports the window to the controller, at most once per `report_every_s`: the controller
  disables the mapping;
- fails its own calls fast for `fail_fast_s` (records get the usual backoff, no call), but only
  when every failure of the window was a call without an answer (connection errors, timeouts):
  those cost the invocation its time. A downstream that answers 5xx fast costs little to call,
  and failing fast there would spend good messages' receives in a flood of poison messages
  (a receive is spent either way; a call may deliver).

Reports go to the controller by Lambda Invoke with InvocationType Event (data plane, not
Lambda's control plane), and are the only traffic of the channel, only while a verdict holds:
a healthy environment sends nothing, and never makes its Lambda client.

Nothing here may stop deliveries by failing itself: a report that cannot be sent is logged
and dropped (the next verdict reports again).
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws_dependencies import new_client
from shared.breaker_policy.report import BreakerReport
from shared.breaker_policy.rules import (
    CallOutcome,
    TripRules,
    Verdict,
    WindowCounts,
    batch_failed_whole,
)
from shared.deadline import Deadline
from shared.errors import BreakerOpen, DownstreamFailure
from shared.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_lambda.client import LambdaClient

_DOWN = frozenset({CallOutcome.DOWN, CallOutcome.NO_ANSWER})


@dataclass(frozen=True)
class LocalPolicy:
    # How long an environment fails fast after a no-answer verdict: about the time the
    # controller's disable takes to land (AWS does not document how soon a disabled mapping
    # stops polling), short enough not to refuse a half-open mapping's batches for long once
    # the probe found the downstream back.
    fail_fast_s: float = 30.0
    # At most one report per environment this often: with MaximumConcurrency 1000, at most
    # 1000 / 30 = 34 Invoke requests a second, only while environments see the downstream down
    # (docs/circuit-breaker.md, "The channel").
    report_every_s: float = 30.0


class ReportChannel(Protocol):
    def send(self, report: BreakerReport) -> None:
        """Sends the report; never raises (a lost report is logged)."""
        ...


class BatchCalls:
    """One batch's calls: asks the breaker before each call and tells it each outcome. Shared by
    the threads that deliver the batch's records."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker
        self._lock = threading.Lock()
        self.calls = 0
        self.down_failures = 0
        self.auth_failures = 0

    def before_call(self, deadline: Deadline) -> None:
        """Returns when the call may go; raises BreakerOpen (no call)."""
        self._breaker.admit()

    def after_call(self, failure: DownstreamFailure | None) -> None:
        outcome = (
            CallOutcome.NEUTRAL
            if failure is None
            else self._breaker.rules.classify(
                failure.status_code, has_retry_after=failure.retry_after_seconds is not None
            )
        )
        if outcome is CallOutcome.PACED:
            return
        with self._lock:
            self.calls += 1
            self.down_failures += outcome in _DOWN
            self.auth_failures += outcome is CallOutcome.AUTH
        self._breaker.record_call(outcome)


class CircuitBreaker:
    """Thread-safe: the records of a batch ask it and report to it from the delivery pool's
    threads; start_batch and finish_batch run on the invocation's own thread."""

    def __init__(
        self,
        rules: TripRules,
        channel: ReportChannel,
        *,
        policy: LocalPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        environment: str | None = None,
    ) -> None:
        self.rules = rules
        self.policy = policy or LocalPolicy()
        self.channel = channel
        self._clock = clock
        self._wall_clock = wall_clock
        self.environment = environment or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        # The window: (time, outcome) per call, and the times of whole-batch failures.
        self._calls: deque[tuple[float, CallOutcome]] = deque()
        # The window's calls by outcome, kept with it: a busy environment's window holds
        # thousands of calls, which counting afresh after every batch would walk each time.
        self._outcomes: Counter[CallOutcome] = Counter()
        self._whole_batch_failures: deque[float] = deque()
        self._fail_fast_until = -math.inf
        self._reported_at = -math.inf

    def start_batch(self) -> BatchCalls:
        return BatchCalls(self)

    @property
    def failing_fast(self) -> bool:
        with self._lock:
            return self._clock() < self._fail_fast_until

    def admit(self) -> None:
        with self._lock:
            if self._clock() < self._fail_fast_until:
                raise BreakerOpen(
                    "the circuit breaker is open here (this environment sees the downstream "
                    "down): not calling the downstream"
                )

    def record_call(self, outcome: CallOutcome) -> None:
        with self._lock:
            self._calls.append((self._clock(), outcome))
            self._outcomes[outcome] += 1

    def finish_batch(self, calls: BatchCalls) -> None:
        """After the batch: count a whole-batch failure, judge the window, and on a verdict fail
        fast and report (at most once per report_every_s)."""
        report: BreakerReport | None = None
        with self._lock:
            now = self._clock()
            if batch_failed_whole(calls.calls, calls.down_failures, calls.auth_failures):
                self._whole_batch_failures.append(now)
            counts = self._window(now)
            verdict = self.rules.verdict(counts)
            if verdict is not Verdict.NONE:
                if counts.no_answer_failures == counts.failures:
                    self._fail_fast_until = now + self.policy.fail_fast_s
                # A fresh window after the pause: old failures must not judge the calls that
                # follow it (the downstream may be back by then).
                self._calls.clear()
                self._outcomes.clear()
                self._whole_batch_failures.clear()
                if now - self._reported_at >= self.policy.report_every_s:
                    self._reported_at = now
                    report = BreakerReport(verdict, counts, self._wall_clock(), self.environment)
        if report is not None:
            logger.warning(
                "circuit breaker: the downstream looks down here; failing fast and reporting",
                verdict=str(report.verdict),
                calls=counts.calls,
                down_failures=counts.down_failures,
                auth_failures=counts.auth_failures,
                whole_batch_failures=counts.whole_batch_failures,
            )
            self.channel.send(report)

    def _window(self, now: float) -> WindowCounts:
        horizon = now - self.rules.window_s
        calls, batches, outcomes = self._calls, self._whole_batch_failures, self._outcomes
        while calls and calls[0][0] < horizon:
            outcomes[calls.popleft()[1]] -= 1
        while batches and batches[0] < horizon:
            batches.popleft()
        return WindowCounts(
            calls=len(calls),
            down_failures=sum(outcomes[outcome] for outcome in _DOWN),
            auth_failures=outcomes[CallOutcome.AUTH],
            whole_batch_failures=len(batches),
            no_answer_failures=outcomes[CallOutcome.NO_ANSWER],
        )


def lambda_client() -> LambdaClient:
    """The Lambda client, made at the first report (Invoke only: data plane). No retry (a
    retry would sleep inside the invocation): a lost report is logged, and the environment
    reports again at its next verdict."""
    client: LambdaClient = new_client("lambda", max_attempts=1)
    return client


class ControllerChannel:
    def __init__(
        self, function_name: str, make_client: Callable[[], LambdaClient] = lambda_client
    ) -> None:
        self._make_client = make_client
        self.function_name = function_name

    @functools.cached_property
    def client(self) -> LambdaClient:
        return self._make_client()

    def send(self, report: BreakerReport) -> None:
        payload = json.dumps(report.to_event(), separators=(",", ":")).encode()
        try:
            response = self.client.invoke(
                FunctionName=self.function_name, InvocationType="Event", Payload=payload
            )
        except (ClientError, BotoCoreError) as exc:
            # Fail open: deliveries go on; this environment reports again at its next verdict.
            logger.warning(
                "could not report to the breaker controller",
                controller=self.function_name,
                error=_describe_refusal(exc),
            )
            return
        logger.info(
            "reported to the breaker controller",
            controller=self.function_name,
            status_code=response.get("StatusCode"),
        )


def _describe_refusal(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__
