"""Stack updates in the middle of a local run (--stack-update): the deployed stack is updated
through the emulator's CloudFormation as `make deploy` updates it in AWS, the running system
follows, and the reconciliation proves nothing was lost. An update that would replace the
source queue is refused before it starts, and the run carries on with its queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.template_defaults import default_batching
from local.aws.stack_updates import StackUpdate
from tests.e2e.conftest import short_run

pytestmark = pytest.mark.slow


def test_a_batch_size_update_mid_run_is_followed_and_loses_nothing(
    built: Path, tmp_path: Path
) -> None:
    # Given a run of 40 messages in batches of the default size (auto: 100 on a standard queue),
    # a third of the calls failing (their retries come 2 s and more later), and an update to
    # BatchSize=3 at once
    result, printed = short_run(
        built,
        tmp_path / "run",
        messages=40,
        failure_rate=0.35,
        max_receive_count=6,
        seed="2",
        stack_updates=(StackUpdate.parse("0:BatchSize=3"),),
    )

    # Then the update completed, changing BatchSize alone, in the emulator's mapping too
    [applied] = result.stack_updates
    assert (applied.status, applied.detail) == ("UPDATE_COMPLETE", "BatchSize=3")
    assert result.deployed.parameters["BatchSize"] == "3"
    [mapping] = result.deployed.event_source_mappings
    assert mapping["BatchSize"] == 3
    assert "update     after 0 delivered: BatchSize=3 -> UPDATE_COMPLETE" in printed
    # ...messages came back after failures, and no batch was larger than the BatchSize it was
    # gathered under, the default or 3 (tests/local/lambda_service/test_mapping_state.py shows the
    # pollers taking the new size)
    assert any(receive.receive_count > 1 for receive in result.receives)
    default_batch_size, _ = default_batching()
    assert {batch.batch_size_limit for batch in result.batches} <= {default_batch_size, 3}
    assert all(len(batch.message_ids) <= batch.batch_size_limit for batch in result.batches)
    # ...and every message was delivered or dead-lettered
    assert result.lost == 0
    assert result.unfinished == 0
    assert "lost=0 unfinished=0" in printed


def test_a_queue_type_switch_mid_run_is_refused_before_it_starts(
    built: Path, tmp_path: Path
) -> None:
    # Given a standard run and an update to QueueType=fifo once 5 messages are delivered
    result, printed = short_run(
        built,
        tmp_path / "run",
        messages=20,
        failure_rate=0.3,
        seed="4",
        stack_updates=(StackUpdate.parse("5:QueueType=fifo"),),
    )

    # Then the update was refused, saying why and where the way out is described
    [applied] = result.stack_updates
    assert applied.status == "refused"
    assert "QueueType standard -> fifo replaces the source and dead-letter queues" in applied.detail
    assert "docs/deploy-safety.md" in applied.detail
    assert "-> refused: QueueType standard -> fifo" in printed
    # ...the stack kept its standard queue, which the pollers went on consuming
    assert result.deployed.parameters["QueueType"] == "standard"
    assert not result.deployed.outputs["SourceQueueUrl"].endswith(".fifo")
    # ...and nothing was lost or left behind
    assert result.lost == 0
    assert result.unfinished == 0
    assert "lost=0 unfinished=0" in printed


def test_an_update_of_the_functions_configuration_mid_run_loses_nothing(
    built: Path, tmp_path: Path
) -> None:
    # Given a run with the circuit breaker on, and an update turning it off after 5 deliveries
    # (the function's environment changes)
    result, printed = short_run(
        built,
        tmp_path / "run",
        messages=20,
        failure_rate=0.3,
        seed="5",
        circuit_breaker="Enabled",
        stack_updates=(StackUpdate.parse("5:CircuitBreaker=Disabled"),),
    )

    # Then the update completed, and the function runs with its new environment
    [applied] = result.stack_updates
    assert (applied.status, applied.detail) == ("UPDATE_COMPLETE", "CircuitBreaker=Disabled")
    variables = result.deployed.function["Environment"]["Variables"]
    assert variables["BREAKER_ENABLED"] == "false"
    # ...and every message was delivered or dead-lettered
    assert result.lost == 0
    assert result.unfinished == 0
    assert "lost=0 unfinished=0" in printed
