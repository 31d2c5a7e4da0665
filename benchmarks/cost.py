"""Cost per million messages, from make bench's own measurements and AWS's published prices.

Per million messages delivered at the first attempt, in full batches (a busy queue):
- Lambda requests: one invocation per batch;
- Lambda duration (GB-s at the template's MemorySize, arm64): each batch's billed time is the
  measured wall time plus its CPU time stretched to the function's CPU share (Lambda gives a
  function MemorySize / 1,769 of a vCPU: the measurements ran on a full core, so the CPU part
  of a batch takes 1,769 / MemorySize times longer in Lambda; waiting on the downstream does
  not). Adding the two, rather than overlapping them, errs on the high side;
- SQS requests: the event source mapping's ReceiveMessage (at most 10 messages each) and
  DeleteMessageBatch (10 entries each), each counted once per 64 KB of its payload (a receive
  carries the bodies; a delete only receipt handles); no visibility change, since nothing
  failed;
- and per day, whatever the volume: the circuit breaker controller's tick, one invocation a
  minute of its own function from EventBridge Scheduler (at the same MemorySize as the
  consumer's, 256 MB in the template), each counted with one SQS request (its duration taken as
  an upper bound, PROBE_SECONDS, not measured here). A healthy consumer sends the controller
  no report, so nothing else of the breaker is billed per message.
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
    "aws.amazon.com/eventbridge/pricing (Scheduler, after 14 million invocations a month); "
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
# The probe's duration, an upper bound: one GetQueueAttributes and a mapping read.
PROBE_SECONDS = 1.0
PROBES_PER_DAY = 24 * 60


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
    # The probe's share at 1M and at 10M messages a day.
    probe_usd_at_1m_a_day: float
    probe_usd_at_10m_a_day: float

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
        return self.per_message_usd + self.probe_usd_at_1m_a_day

    @property
    def total_at_10m_a_day_usd(self) -> float:
        return self.per_message_usd + self.probe_usd_at_10m_a_day

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


def probe_usd_per_day(memory_mb: int) -> float:
    """The breaker's probe: a scheduled invocation a minute and its GetQueueAttributes."""
    gb_seconds = PROBES_PER_DAY * PROBE_SECONDS * memory_mb / 1024
    return PROBES_PER_DAY * (
        LAMBDA_REQUEST_USD + SCHEDULER_INVOCATION_USD + SQS_STANDARD_REQUEST_USD
    ) + gb_seconds * (LAMBDA_ARM64_GB_SECOND_USD)


def cost_per_million(setting: Setting) -> CostPerMillion:
    invocations = MESSAGES / setting.batch_size
    seconds = billed_seconds(setting)
    gb_seconds = invocations * seconds * setting.memory_mb / 1024
    calls = MESSAGES / MESSAGES_PER_SQS_CALL
    receive_chunks = math.ceil(
        MESSAGES_PER_SQS_CALL * setting.message_bytes / SQS_BILLING_CHUNK_BYTES
    )
    receive_requests = calls * receive_chunks
    delete_requests = calls
    probe = probe_usd_per_day(setting.memory_mb)
    return CostPerMillion(
        label=setting.label,
        batch_size=setting.batch_size,
        memory_mb=setting.memory_mb,
        billed_seconds_per_batch=seconds,
        invocations=invocations,
        gb_seconds=gb_seconds,
        receive_requests=receive_requests,
        delete_requests=delete_requests,
        lambda_requests_usd=invocations * LAMBDA_REQUEST_USD,
        lambda_duration_usd=gb_seconds * LAMBDA_ARM64_GB_SECOND_USD,
        sqs_receive_usd=receive_requests * SQS_STANDARD_REQUEST_USD,
        sqs_delete_usd=delete_requests * SQS_STANDARD_REQUEST_USD,
        probe_usd_at_1m_a_day=probe,
        probe_usd_at_10m_a_day=probe / 10,
    )


def settings_from(figures: dict[str, Any], memory_mb: int) -> list[Setting]:
    """The project and Powertools' sequential BatchProcessor, at BatchSize 10 and 100 (the
    default DeliveryConcurrency), and the project's recommended large batch, from make bench's
    medians."""
    settings = []
    for contender, name in (
        ("project", "project"),
        ("powertools_sequential", "Powertools, sequential"),
    ):
        cpu = figures["cpu_ms_per_record"][contender]["median"]
        for batch_size, key in ((10, "batch_10_s"), (100, "batch_100_s")):
            settings.append(
                Setting(
                    label=f"{name}, BatchSize {batch_size}",
                    batch_size=batch_size,
                    memory_mb=memory_mb,
                    batch_seconds=figures[key][contender]["median"],
                    cpu_ms_per_record=cpu,
                )
            )
    large = figures.get("large_batch")
    if large is not None:
        # The recommended large batch, measured for the project only: inserted after its
        # BatchSize 100 at the default DeliveryConcurrency.
        settings.insert(
            2,
            Setting(
                label=(
                    f"project, BatchSize {large['batch_size']}, "
                    f"DeliveryConcurrency {large['delivery_concurrency']}"
                ),
                batch_size=large["batch_size"],
                memory_mb=memory_mb,
                batch_seconds=large["project_s"]["median"],
                cpu_ms_per_record=figures["cpu_ms_per_record"]["project"]["median"],
            ),
        )
    return settings


def document(figures: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    """The cost section of make bench's JSON: the prices, their source and date, and each
    setting's lines."""
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
        "settings": [
            cost_per_million(setting).as_dict() for setting in settings_from(figures, memory_mb)
        ],
    }


def table(cost: dict[str, Any], latency_ms: int) -> str:
    lines = [
        f"Cost per million messages at {latency_ms} ms downstream latency, USD; prices: "
        f"{cost['price_source']}, read {cost['price_date']}. 1 KB messages, full batches, "
        "no failures; the probe's share depends on the daily volume.",
        "",
        "| setting | MemorySize, MB | billed s per batch | Lambda requests | Lambda GB-s "
        "| SQS receive | SQS delete | per million | with the probe, 1M/day | 10M/day |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for line in cost["settings"]:
        lines.append(
            f"| {line['label']} | {line['memory_mb']} | {line['billed_seconds_per_batch']:.3f} "
            f"| {line['lambda_requests_usd']:.4f} | {line['lambda_duration_usd']:.4f} "
            f"| {line['sqs_receive_usd']:.4f} | {line['sqs_delete_usd']:.4f} "
            f"| {line['per_message_usd']:.4f} | {line['total_at_1m_a_day_usd']:.4f} "
            f"| {line['total_at_10m_a_day_usd']:.4f} |"
        )
    return "\n".join(lines)
