"""make bench's cost table: its arithmetic against values worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.cost import (
    PRICE_DATE,
    Setting,
    billed_seconds,
    cost_per_million,
    document,
    probe_usd_per_day,
    table,
)


def figures(batch_10_s: float, batch_100_s: float, cpu_ms: float) -> dict[str, Any]:
    def spread(value: float) -> dict[str, float]:
        return {"median": value, "min": value, "max": value}

    return {
        "batch_10_s": {"project": spread(batch_10_s), "powertools_sequential": spread(1.05)},
        "batch_100_s": {"project": spread(batch_100_s), "powertools_sequential": spread(10.5)},
        "cpu_ms_per_record": {"project": spread(cpu_ms), "powertools_sequential": spread(0.5)},
        "large_batch": {"batch_size": 100, "delivery_concurrency": 50, "project_s": spread(0.25)},
    }


def test_a_batch_of_ten_at_the_defaults() -> None:
    # Given a batch of 10 measured at 0.12 s and 1 ms of CPU per record, at 256 MB
    setting = Setting("project", batch_size=10, memory_mb=256, batch_seconds=0.12,
                      cpu_ms_per_record=1.0)  # fmt: skip

    # When its cost per million is worked out
    cost = cost_per_million(setting)

    # Then (by hand) the batch bills 0.12 s + 10 ms of CPU x (1769/256 - 1) = 0.1791015625 s;
    # 100,000 invocations cost $0.02; 100,000 x 0.1791015625 s x 0.25 GB = 4,477.54 GB-s
    # cost $0.0597008; 100,000 receives and 100,000 deletes cost $0.04 each
    assert cost.billed_seconds_per_batch == pytest.approx(0.1791015625)
    assert cost.invocations == 100_000
    assert cost.gb_seconds == pytest.approx(4477.5390625)
    assert cost.lambda_requests_usd == pytest.approx(0.02)
    assert cost.lambda_duration_usd == pytest.approx(0.0597008193)
    assert cost.sqs_receive_usd == pytest.approx(0.04)
    assert cost.sqs_delete_usd == pytest.approx(0.04)
    assert cost.per_message_usd == pytest.approx(0.1597008193)
    # ...and the probe, 1,440 a day: 1,440 x ($0.20 + $1.00 + $0.40) per million requests
    # = $0.002304, and 1,440 x 1 s x 0.25 GB = 360 GB-s = $0.004800024
    assert probe_usd_per_day(256) == pytest.approx(0.007104024)
    assert cost.total_at_1m_a_day_usd == pytest.approx(0.1597008193 + 0.007104024)
    assert cost.total_at_10m_a_day_usd == pytest.approx(0.1597008193 + 0.0007104024)


def test_receives_of_large_messages_count_each_64_kb() -> None:
    # Given 10 KB messages: a receive of 10 carries 100 KB, two 64 KB chunks
    setting = Setting("big", batch_size=10, memory_mb=256, batch_seconds=0.1,
                      cpu_ms_per_record=0.0, message_bytes=10 * 1024)  # fmt: skip

    # When its cost is worked out, Then each receive counts twice; a delete still once
    cost = cost_per_million(setting)
    assert cost.receive_requests == 200_000
    assert cost.delete_requests == 100_000
    assert cost.sqs_receive_usd == pytest.approx(0.08)


def test_a_full_vcpu_adds_nothing_for_cpu() -> None:
    # Given 1,769 MB (a full vCPU, as the measurement had), When the billed time is worked
    # out, Then it is the measured wall time
    setting = Setting("vcpu", batch_size=100, memory_mb=1769, batch_seconds=1.5,
                      cpu_ms_per_record=2.0)  # fmt: skip
    assert billed_seconds(setting) == pytest.approx(1.5)


def test_the_document_and_its_table_hold_every_setting_with_its_prices_and_date() -> None:
    # Given make bench's medians
    cost = document(figures(0.12, 1.1, 1.0), memory_mb=256)

    # When the table is rendered
    text = table(cost, latency_ms=100)

    # Then five settings are costed, the project's BatchSize 10 as worked out by hand above,
    # and the table names the prices' source and date and shows each total
    labels = [line["label"] for line in cost["settings"]]
    assert labels == [
        "project, BatchSize 10",
        "project, BatchSize 100",
        "project, BatchSize 100, DeliveryConcurrency 50",
        "Powertools, sequential, BatchSize 10",
        "Powertools, sequential, BatchSize 100",
    ]
    assert cost["settings"][0]["per_message_usd"] == pytest.approx(0.1597008193)
    # ...and the large batch by hand: 0.25 s + 100 ms of CPU x 5.91015625 = 0.841015625 s a
    # batch; 10,000 batches x 0.841015625 s x 0.25 GB = 2,102.54 GB-s = $0.0280340; requests
    # $0.002; SQS $0.08
    large = cost["settings"][2]
    assert large["billed_seconds_per_batch"] == pytest.approx(0.841015625)
    assert large["lambda_duration_usd"] == pytest.approx(0.0280339943)
    assert large["per_message_usd"] == pytest.approx(0.1100339943)
    assert cost["price_date"] == PRICE_DATE
    assert "aws.amazon.com/lambda/pricing" in text
    assert PRICE_DATE in text
    assert "| project, BatchSize 10 | 256 | 0.179 | 0.0200 | 0.0597 | 0.0400 | 0.0400 " in text
