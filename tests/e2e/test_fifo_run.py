"""The local system on FIFO queues (QueueType=fifo): nothing lost, and every message group
delivered in the order it was sent, failures and retries included."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import short_run

pytestmark = pytest.mark.slow


def test_a_fifo_run_keeps_each_groups_order_and_loses_nothing(built: Path, tmp_path: Path) -> None:
    # Given a FIFO run of 12 messages in 3 groups, a third of the calls failing
    # When it runs to its end
    result, printed = short_run(
        built,
        tmp_path / "run",
        queue_type="fifo",
        fifo_groups=3,
        messages=12,
        failure_rate=0.35,
        max_receive_count=5,
        seed="3",
    )

    # Then every message was delivered or dead-lettered, the groups were really FIFO...
    assert result.lost == 0
    assert result.unfinished == 0
    assert len({group for _, group in result.groups}) == 3
    assert any(call.status != 200 for call in result.calls)
    # ...and no message was delivered before an earlier one of its group
    assert result.out_of_order == ()
    assert "fifo order        0" in printed
