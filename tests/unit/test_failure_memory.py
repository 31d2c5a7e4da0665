"""A batch keeps its failures until its end: they must not keep their frames' locals alive."""

from __future__ import annotations

import gc
import traceback
import weakref

from consumer.sqs_batch import _release_locals


class Payload:
    """Stands in for what a failed call's frame held: an HTTP response and its buffers."""


def fail_holding(payload: Payload) -> None:
    held = payload  # noqa: F841 - the local a traceback would keep alive
    try:
        raise ConnectionError("the downstream reset the connection")
    except ConnectionError as cause:
        raise RuntimeError("delivery failed") from cause


def test_a_failures_frames_let_go_of_their_locals_and_still_format() -> None:
    # Given a failure, with its cause, raised in a frame that held a payload
    payload = Payload()
    watched = weakref.ref(payload)
    try:
        fail_holding(payload)
    except RuntimeError as failure:
        error = failure
    del payload
    gc.collect()
    assert watched() is not None  # the traceback keeps it alive

    # When its locals are released
    _release_locals(error)
    gc.collect()

    # Then the payload is gone, and the traceback still names the failing line
    assert watched() is None
    formatted = "".join(traceback.format_exception(error))
    assert "fail_holding" in formatted
    assert "the downstream reset the connection" in formatted
