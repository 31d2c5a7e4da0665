"""What is left of SQS's 12 hours for a record's next visibility, counted from its receive."""

from __future__ import annotations

from typing import Any, cast

from consumer.sqs_batch import Batch, RecordHandler
from shared.deadline import Deadline


def test_the_visibility_left_counts_the_batching_window_and_the_whole_invocation() -> None:
    # Given an invocation 100 s in with 50 s left (SQS's 12 hours count from the receive,
    # which Lambda made up to a 300 s batching window before the invocation)
    clock = iter([1_000.0, 1_100.0])
    deadline = Deadline(lambda: 50_000, clock=lambda: next(clock))
    handler = RecordHandler(cast(Any, None), deadline, Batch([], seed=0))

    # When the visibility SQS still accepts is computed, Then it is 43200 - (300 + 100 + 50)
    assert handler._visibility_left_seconds() == 42_750
