"""Cost per million messages, from make bench's own measurements and AWS's published prices.

Per million messages delivered at the first attempt, in full batches (a busy queue, or a
backlog: at a low rate the event source mapping invokes with what it has, for any BatchSize):
- Lambda requests: one invocation per batch;
- Lambda duration (GB-s at the function's MemorySize, arm64): each batch's billed time is the
  measured wall time plus its CPU time stretched to the function's CPU share (Lambda gives a
  function MemorySize / 1,769 of a vCPU: the measurements ran on a full core, so the CPU part
  of a batch takes 1,769 / MemorySize times longer in Lambda; waiting on the downstream does
  not). Adding the two, rather than overlapping them, errs on the high side. Rows at another
  MemorySize than the template's reuse the same measurement (modelled, not measured there);
- SQS requests: the event source mapping's ReceiveMessage (at most 10 messages each) and
  DeleteMessageBatch (10 entries each), each counted once per 64 KB of its payload (a receive
  carries the bodies; a delete only receipt handles). The batching window costs nothing here:
  the pollers receive 10 at a time whatever the window, and a full batch ends it early;
- failures, as a separate figure: each message failing once more costs another receive, its
  share of another invocation and of its duration, and the visibility change that sets its
  backoff (make bench's "SQS requests for a failed batch of 10", per 10 failures); it is not
  deleted at the failed attempt, so no delete more;
- and per day, whatever the volume: the circuit breaker controller's ticks, one a minute from
  EventBridge Scheduler and one every 5 minutes from the backstop's EventBridge rule, each an
  invocation of its own function (the template's MemorySize for it) with one SQS request (an
  upper bound: a tick with the breaker closed reads only the mapping), billed as make bench
  measured the warm tick (its wall time, plus its CPU time stretched as above, plus
  TICK_NETWORK_SECONDS for the mapping read's round trip in the Region, which the
  measurement makes over the loopback). A healthy consumer sends the controller no report, so
  nothing else of the breaker is billed per message.
Free tiers are left out: at millions of messages a day they are a small share.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

# AWS's price pages, US East (N. Virginia), as read on the date below.
PRICE_SOURCE = (
    "aws.amazon.com/lambda/pricing (arm64, first 7.5 billion GB-s a month), "
    "aws.amazon.com/sqs/pricing (standard queue, after the first million requests a month), "
    "aws.amazon.com/eventbridge/pricing (Scheduler, after 14 million invocations a month; "
    "the backstop rule's events charged at the same price, an upper bound); "
    "US East (N. Virginia)"
)
PRICE_DATE = "2026-12-07"
LAMBDA_ARM64_GB_SECOND_USD = 0.0000133334
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
SQS_STANDARD_REQUEST_USD = 0.40 / 1_000_000
SCHEDULER_INVOCATION_USD = 1.00 / 1_000_000

MESSAGES = 1_000_000
# SQS bills a request once per 64 KB of its payload.
SQS_BILLING_CHUNK_BYTES = 64 * 1024
# ReceiveMessage returns, and DeleteMessageBatch takes, at most 10 messages.
MESSAGES_PER_SQS_CALL = 10
# A vCPU's worth of memory: Lambda's CPU share is MemorySize / 1,769 MB.
FULL_VCPU_MEMORY_MB = 1769
# An allowance for a tick's mapping read (an HTTPS request to Lambda's API, perhaps on a new
# connection after a minute idle), which make bench makes over the loopback.
TICK_NETWORK_SECONDS = 0.1
# The schedule's rate(1 minute) and the backstop rule's rate(5 minutes) (template.yaml).
TICKS_PER_DAY = 24 * 60 + 24 * 12
# What the per-failure figure is given for: one percent of the messages failing once.
FAILING_SHARE = 0.01


@dataclass(frozen=True)
class Setting:
    """One way of running the consumer, with what make bench measured of it."""

    label: str
    batch_size: int
    memory_mb: int
    # The batch's wall time at the downstream's latency, and its CPU milliseconds per record
    # (both measured on a full core).
    batch_seconds: float
    cpu_ms_per_record: float
    # SQS requests to reschedule 10 failed records (make bench measures it).
    sqs_requests_per_10_failures: float = 1.0
    message_bytes: int = 1024


@dataclass(frozen=True)
class CostPerMillion:
    label: str
    batch_size: int
    memory_mb: int
    billed_seconds_per_batch: float
    invocations: float
    gb_seconds: float
    receive_requests: float
    delete_requests: float
    lambda_requests_usd: float
    lambda_duration_usd: float
    sqs_receive_usd: float
    sqs_delete_usd: float
    # What 1 % of the messages failing once adds.
    one_percent_failing_usd: float
    # The controller's share at 1M and at 10M messages a day.
    controller_usd_at_1m_a_day: float
    controller_usd_at_10m_a_day: float

    @property
    def per_message_usd(self) -> float:
        return (
            self.lambda_requests_usd
            + self.lambda_duration_usd
            + self.sqs_receive_usd
            + self.sqs_delete_usd
        )

    @property
    def total_at_1m_a_day_usd(self) -> float:
        return self.per_message_usd + self.controller_usd_at_1m_a_day

    @property
    def total_at_10m_a_day_usd(self) -> float:
        return self.per_message_usd + self.controller_usd_at_10m_a_day

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "per_message_usd": self.per_message_usd,
            "total_at_1m_a_day_usd": self.total_at_1m_a_day_usd,
            "total_at_10m_a_day_usd": self.total_at_10m_a_day_usd,
        }


def billed_seconds(setting: Setting) -> float:
    cpu_seconds = setting.cpu_ms_per_record * setting.batch_size / 1000
    stretch = FULL_VCPU_MEMORY_MB / setting.memory_mb
    return setting.batch_seconds + cpu_seconds * max(0.0, stretch - 1)


def tick_seconds(wall_ms: float, cpu_ms: float, memory_mb: int) -> float:
    """A warm tick's billed time: measured on a full core, its CPU stretched to the share."""
    stretch = FULL_VCPU_MEMORY_MB / memory_mb
    return (wall_ms + cpu_ms * max(0.0, stretch - 1)) / 1000 + TICK_NETWORK_SECONDS


def controller_usd_per_day(memory_mb: int, seconds_per_tick: float) -> float:
    """The breaker controller's ticks: an invocation each, its trigger and one SQS request."""
    gb_seconds = TICKS_PER_DAY * seconds_per_tick * memory_mb / 1024
    return TICKS_PER_DAY * (
        LAMBDA_REQUEST_USD + SCHEDULER_INVOCATION_USD + SQS_STANDARD_REQUEST_USD
    ) + gb_seconds * (LAMBDA_ARM64_GB_SECOND_USD)


def cost_per_million(setting: Setting, controller_usd_a_day: float) -> CostPerMillion:
    invocations = MESSAGES / setting.batch_size
    seconds = billed_seconds(setting)
    gb_seconds = invocations * seconds * setting.memory_mb / 1024
    calls = MESSAGES / MESSAGES_PER_SQS_CALL
    receive_chunks = math.ceil(
        MESSAGES_PER_SQS_CALL * setting.message_bytes / SQS_BILLING_CHUNK_BYTES
    )
    receive_requests = calls * receive_chunks
    delete_requests = calls
    lambda_requests_usd = invocations * LAMBDA_REQUEST_USD
    lambda_duration_usd = gb_seconds * LAMBDA_ARM64_GB_SECOND_USD
    sqs_receive_usd = receive_requests * SQS_STANDARD_REQUEST_USD
    # A failed attempt is delivered again: another receive, invocation and duration, and a
    # visibility change; no delete until it succeeds.
    visibility_usd = (
        MESSAGES * setting.sqs_requests_per_10_failures / 10 * (SQS_STANDARD_REQUEST_USD)
    )
    one_percent_failing_usd = FAILING_SHARE * (
        lambda_requests_usd + lambda_duration_usd + sqs_receive_usd + visibility_usd
    )
    controller = controller_usd_a_day
    return CostPerMillion(
        label=setting.label,
        batch_size=setting.batch_size,
        memory_mb=setting.memory_mb,
        billed_seconds_per_batch=seconds,
        invocations=invocations,
        gb_seconds=gb_seconds,
        receive_requests=receive_requests,
        delete_requests=delete_requests,
        lambda_requests_usd=lambda_requests_usd,
        lambda_duration_usd=lambda_duration_usd,
        sqs_receive_usd=sqs_receive_usd,
        sqs_delete_usd=delete_requests * SQS_STANDARD_REQUEST_USD,
        one_percent_failing_usd=one_percent_failing_usd,
        controller_usd_at_1m_a_day=controller,
        controller_usd_at_10m_a_day=controller / 10,
    )


# Other MemorySizes the defaults are costed at (modelled from the same measurement).
OTHER_MEMORY_MB = (128, 512)


def settings_from(figures: dict[str, Any], memory_mb: int) -> list[Setting]:
    """The project at the template's defaults (also modelled at other MemorySizes), the project
    and Powertools' sequential BatchProcessor at BatchSize 10 and 100 with 10 records at a
    time, from make bench's medians."""
    cpu = {
        contender: figures["cpu_ms_per_record"][contender]["median"]
        for contender in ("project", "powertools_sequential")
    }
    failures = {
        contender: figures["failed_batch_10_sqs_requests"][contender]["median"]
        for contender in ("project", "powertools_sequential")
    }
    defaults = figures["default_batch"]
    label = (
        f"project, defaults: BatchSize {defaults['batch_size']} "
        f"(window {defaults['batching_window_s']} s), "
        f"DeliveryConcurrency {defaults['delivery_concurrency']}"
    )
    settings = [
        Setting(
            label=label if memory == memory_mb else f"{label}, at {memory} MB (modelled)",
            batch_size=defaults["batch_size"],
            memory_mb=memory,
            batch_seconds=defaults["project_s"]["median"],
            cpu_ms_per_record=cpu["project"],
            sqs_requests_per_10_failures=failures["project"],
        )
        for memory in (memory_mb, *OTHER_MEMORY_MB)
    ]
    for contender, name, concurrency in (
        ("project", "project", ", DeliveryConcurrency 10"),
        ("powertools_sequential", "Powertools, sequential", ""),
    ):
        for batch_size, key in ((10, "batch_10_s"), (100, "batch_100_s")):
            settings.append(
                Setting(
                    label=f"{name}, BatchSize {batch_size}{concurrency}",
                    batch_size=batch_size,
                    memory_mb=memory_mb,
                    batch_seconds=figures[key][contender]["median"],
                    cpu_ms_per_record=cpu[contender],
                    sqs_requests_per_10_failures=failures[contender],
                )
            )
    return settings


def document(figures: dict[str, Any], memory_mb: int, controller_memory_mb: int) -> dict[str, Any]:
    """The cost section of make bench's JSON: the prices, their source and date, the
    controller's tick, and each setting's lines."""
    tick = figures["controller_tick"]
    seconds_per_tick = tick_seconds(
        tick["wall_ms"]["median"], tick["cpu_ms_per_tick"], controller_memory_mb
    )
    controller = controller_usd_per_day(controller_memory_mb, seconds_per_tick)
    return {
        "price_source": PRICE_SOURCE,
        "price_date": PRICE_DATE,
        "prices_usd": {
            "lambda_arm64_gb_second": LAMBDA_ARM64_GB_SECOND_USD,
            "lambda_request": LAMBDA_REQUEST_USD,
            "sqs_standard_request": SQS_STANDARD_REQUEST_USD,
            "scheduler_invocation": SCHEDULER_INVOCATION_USD,
        },
        "memory_mb": memory_mb,
        "controller_memory_mb": controller_memory_mb,
        "controller_seconds_per_tick": seconds_per_tick,
        "controller_usd_per_day": controller,
        "settings": [
            cost_per_million(setting, controller).as_dict()
            for setting in settings_from(figures, memory_mb)
        ],
    }


def table(cost: dict[str, Any], latency_ms: int) -> str:
    lines = [
        f"Cost per million messages at {latency_ms} ms downstream latency, USD; prices: "
        f"{cost['price_source']}, read {cost['price_date']}. 1 KB messages, full batches, "
        "no failures; the last column is what 1 % of the messages failing once adds. The "
        f"breaker controller: {TICKS_PER_DAY:,} ticks a day, each billed "
        f"{cost['controller_seconds_per_tick']:.3f} s at {cost['controller_memory_mb']} MB, "
        f"${cost['controller_usd_per_day']:.4f} a day whatever the volume.",
        "",
        "| setting | MemorySize, MB | billed s per batch | Lambda requests | Lambda GB-s "
        "| SQS receive | SQS delete | per million | with the controller, 1M/day | 10M/day "
        "| 1 % failing once |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in cost["settings"]:
        lines.append(
            f"| {line['label']} | {line['memory_mb']} | {line['billed_seconds_per_batch']:.3f} "
            f"| {line['lambda_requests_usd']:.4f} | {line['lambda_duration_usd']:.4f} "
            f"| {line['sqs_receive_usd']:.4f} | {line['sqs_delete_usd']:.4f} "
            f"| {line['per_message_usd']:.4f} | {line['total_at_1m_a_day_usd']:.4f} "
            f"| {line['total_at_10m_a_day_usd']:.4f} | +{line['one_percent_failing_usd']:.4f} |"
        )
    return "\n".join(lines)
