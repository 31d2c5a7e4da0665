"""The local system on FIFO queues (QueueType=fifo): nothing lost, and every message group
delivered in the order it was sent, failures and retries included."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from local.system import RunOptions, run_local_system

pytestmark = pytest.mark.slow


def test_a_fifo_run_keeps_each_groups_order_and_loses_nothing(built: Path, tmp_path: Path) -> None:
    # Given a FIFO run of 12 messages in 3 groups, a third of the calls failing
    options = dataclasses.replace(
        RunOptions(),
        queue_type="fifo",
        fifo_groups=3,
        messages=12,
        failure_rate=0.35,
        outage_seconds=0,
        latency_ms=0,
        max_receive_count=5,
        backoff_base_seconds=0,
        backoff_jitter_seconds=2,
        seed="3",
        build_dir=built,
        work_dir=tmp_path / "run",
    )

    # When it runs to its end
    out = io.StringIO()
    result = run_local_system(options, out)

    # Then every message was delivered or dead-lettered, the groups were really FIFO...
    assert result.lost == 0
    assert result.unfinished == 0
    assert len({group for _, group in result.groups}) == 3
    assert any(call.status != 200 for call in result.calls)
    # ...and no message was delivered before an earlier one of its group
    assert result.out_of_order == ()
    assert "fifo order        0" in out.getvalue()
