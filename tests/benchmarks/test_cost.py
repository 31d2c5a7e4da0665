"""make bench's cost table: its arithmetic against values worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.cost import (
    PRICE_DATE,
    Setting,
    billed_seconds,
    controller_usd_per_day,
    cost_per_million,
    document,
    table,
    tick_seconds,
)

# The controller's ticks at a full second each: 1,728 x ($0.20 + $1.00 + $0.40) per million
# = $0.0027648, and 1,728 x 1 s x 0.25 GB = 432 GB-s = $0.0057600288
CONTROLLER_AT_ONE_SECOND = 0.0085248288


def figures(batch_10_s: float, batch_100_s: float, cpu_ms: float) -> dict[str, Any]:
    def spread(value: float) -> dict[str, float]:
        return {"median": value, "min": value, "max": value}

    return {
        "batch_10_s": {"project": spread(batch_10_s), "powertools_sequential": spread(1.05)},
        "batch_100_s": {"project": spread(batch_100_s), "powertools_sequential": spread(10.5)},
        "cpu_ms_per_record": {"project": spread(cpu_ms), "powertools_sequential": spread(0.5)},
        "failed_batch_10_sqs_requests": {
            "project": spread(1.0),
            "powertools_sequential": spread(10.0),
        },
        "controller_tick": {"wall_ms": spread(5.0), "cpu_ms_per_tick": 2.0, "ticks": 10},
        "default_batch": {
            "batch_size": 100,
            "batching_window_s": 1,
            "delivery_concurrency": 50,
            "project_s": spread(0.25),
        },
    }


def test_a_batch_of_ten_at_256_mb() -> None:
    # Given a batch of 10 measured at 0.12 s and 1 ms of CPU per record, at 256 MB
    setting = Setting("project", batch_size=10, memory_mb=256, batch_seconds=0.12,
                      cpu_ms_per_record=1.0)  # fmt: skip

    # When its cost per million is worked out
    cost = cost_per_million(setting, CONTROLLER_AT_ONE_SECOND)

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
    # ...and the controller's daily cost spread over 1M and over 10M messages
    assert cost.total_at_1m_a_day_usd == pytest.approx(0.1597008193 + 0.0085248288)
    assert cost.total_at_10m_a_day_usd == pytest.approx(0.1597008193 + 0.00085248288)
    # ...and 1 % failing once: another receive, invocation and duration, and one visibility
    # change per 10 failures: 1 % x ($0.02 + $0.0597008 + $0.04 + $0.04)
    assert cost.one_percent_failing_usd == pytest.approx(0.001597008193)


def test_the_controller_bills_its_measured_tick_with_the_network_allowance() -> None:
    # Given 1,440 scheduled and 288 backstop ticks a day, each measured at 5 ms of wall time
    # and 2 ms of CPU on a full core, at 256 MB
    seconds = tick_seconds(wall_ms=5.0, cpu_ms=2.0, memory_mb=256)
    # Then (by hand) a tick bills 5 ms + 2 ms x (1769/256 - 1) + 0.1 s = 0.1168203125 s
    assert seconds == pytest.approx(0.1168203125)
    # ...and a day 1,728 x $1.60 per million requests = $0.0027648, and 1,728 x 0.11682 s x
    # 0.25 GB = 50.47 GB-s = $0.0006728884
    assert controller_usd_per_day(256, seconds) == pytest.approx(0.0034376884)
    # ...and a full second a tick, as the model took before make bench measured it
    assert controller_usd_per_day(256, 1.0) == pytest.approx(CONTROLLER_AT_ONE_SECOND)


def test_failures_rescheduled_one_by_one_cost_a_request_each() -> None:
    # Given a contender that makes 10 SQS requests to reschedule 10 failed records
    setting = Setting("one by one", batch_size=10, memory_mb=256, batch_seconds=0.12,
                      cpu_ms_per_record=1.0, sqs_requests_per_10_failures=10)  # fmt: skip
    # When 1 % of the messages fail once, Then each costs a visibility change of its own:
    # 1 % x ($0.02 + $0.0597008 + $0.04 + 1,000,000 x $0.40 per million)
    assert cost_per_million(setting, 0.0).one_percent_failing_usd == pytest.approx(0.005197008193)


def test_receives_of_large_messages_count_each_64_kb() -> None:
    # Given 10 KB messages: a receive of 10 carries 100 KB, two 64 KB chunks
    setting = Setting("big", batch_size=10, memory_mb=256, batch_seconds=0.1,
                      cpu_ms_per_record=0.0, message_bytes=10 * 1024)  # fmt: skip

    # When its cost is worked out, Then each receive counts twice; a delete still once
    cost = cost_per_million(setting, 0.0)
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
    cost = document(figures(0.12, 1.1, 1.0), memory_mb=256, controller_memory_mb=256)

    # When the table is rendered
    text = table(cost, latency_ms=100)

    # Then the defaults (at 256 MB, and modelled at 128 and 512 MB) and four comparisons are
    # costed, and the table names the prices' source and date and shows each total
    labels = [line["label"] for line in cost["settings"]]
    defaults = "project, defaults: BatchSize 100 (window 1 s), DeliveryConcurrency 50"
    assert labels == [
        defaults,
        f"{defaults}, at 128 MB (modelled)",
        f"{defaults}, at 512 MB (modelled)",
        "project, BatchSize 10, DeliveryConcurrency 10",
        "project, BatchSize 100, DeliveryConcurrency 10",
        "Powertools, sequential, BatchSize 10",
        "Powertools, sequential, BatchSize 100",
    ]
    assert cost["settings"][3]["per_message_usd"] == pytest.approx(0.1597008193)
    # ...the defaults by hand: 0.25 s + 100 ms of CPU x 5.91015625 = 0.841015625 s a batch;
    # 10,000 batches x 0.841015625 s x 0.25 GB = 2,102.54 GB-s = $0.0280340; requests
    # $0.002; SQS $0.08
    default = cost["settings"][0]
    assert default["billed_seconds_per_batch"] == pytest.approx(0.841015625)
    assert default["lambda_duration_usd"] == pytest.approx(0.0280339943)
    assert default["per_message_usd"] == pytest.approx(0.1100339943)
    # ...at 128 MB: 0.25 s + 100 ms x (1769/128 - 1) = 1.53203125 s; x 10,000 x 0.125 GB =
    # 1,915.04 GB-s = $0.0255340: less waiting billed, the same CPU
    at_128 = cost["settings"][1]
    assert at_128["billed_seconds_per_batch"] == pytest.approx(1.53203125)
    assert at_128["lambda_duration_usd"] == pytest.approx(0.0255339818)
    # ...at 512 MB: 0.4955078125 s x 10,000 x 0.5 GB = 2,477.54 GB-s = $0.0330340
    assert cost["settings"][2]["lambda_duration_usd"] == pytest.approx(0.0330340193)
    # ...and Powertools' failures rescheduled one by one (10 requests per 10)
    assert (
        cost["settings"][5]["one_percent_failing_usd"]
        > cost["settings"][3]["one_percent_failing_usd"]
    )
    assert cost["price_date"] == PRICE_DATE
    assert cost["controller_memory_mb"] == 256
    assert cost["controller_usd_per_day"] == pytest.approx(0.0034376884)
    assert "aws.amazon.com/lambda/pricing" in text
    assert PRICE_DATE in text
    assert (
        "| project, BatchSize 10, DeliveryConcurrency 10 | 256 | 0.179 | 0.0200 | 0.0597 "
        "| 0.0400 | 0.0400 | 0.1597 | 0.1631 | 0.1600 | +0.0016 |"
    ) in text
