"""The test downstreams answer 204 and 304 as real servers do: the header section ends the
answer. A body after one stayed on the kept-alive connection and was read as the start of the
next answer on it: the cause of issue 19's flake in test_concurrent_delivery.py (the 204 there
was followed by a BadStatusLine, '{}HTTP/1.1 503 ...', whenever the body arrived after urllib3's
check of the idle connection, which a loaded machine makes likely)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from local.downstream.demo_downstream import DemoDownstream, FailurePlan
from tests.support.downstream import Answer, Downstream


def _request(body: str) -> bytes:
    return (
        f"POST /messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def two_answers_on_one_connection(port: int, first: str, second: str) -> tuple[bytes, bytes]:
    """Both requests sent at once on one connection (as a pooled connection carries them one
    after the other); the first answer's header section, and every byte after it up to the end
    of the second answer's."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(_request(first) + _request(second))
        received = b""
        # Two header sections, then the second answer's Content-Length of body.
        while received.count(b"\r\n\r\n") < 2 or not _second_complete(received):
            chunk = connection.recv(65536)
            assert chunk, f"the server closed the connection after {received!r}"
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


def _second_complete(received: bytes) -> bool:
    rest = received.partition(b"\r\n\r\n")[2]
    second_head, separator, body = rest.rpartition(b"\r\n\r\n")
    if not separator:
        return False
    for line in second_head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


@contextmanager
def scripted(status: int) -> Iterator[int]:
    """The integration tests' downstream: `status` for the first request, 200 after it."""
    downstream = Downstream()
    downstream.answer(Answer(status))
    with downstream.serving():
        yield int(downstream.url.split(":")[2].split("/")[0])


@contextmanager
def demo() -> Iterator[int]:
    """The local system's demo downstream (a body's {"simulate": ...} sets the status)."""
    downstream = DemoDownstream(FailurePlan())
    with downstream.serving():
        yield int(downstream.url.split(":")[2].split("/")[0])


@pytest.mark.parametrize("status", [204, 304])
def test_the_test_downstream_sends_nothing_after_a_no_content_answer(status: int) -> None:
    # Given the test downstream answering `status` to the first request on a connection
    with scripted(status) as port:
        # When a second request follows on the same connection
        head, rest = two_answers_on_one_connection(port, '{"n": 1}', '{"n": 2}')
    # Then the first answer is its header section alone, without a Content-Length, and
    # the next bytes are the second answer's status line
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert (b"content-length" in head.lower()) is False
    assert rest.startswith(b"HTTP/1.1 200 "), rest


@pytest.mark.parametrize("status", [204, 304])
def test_the_demo_downstream_sends_nothing_after_a_no_content_answer(status: int) -> None:
    # Given the demo downstream, and a first message that asks for `status`
    first = json.dumps({"simulate": {"status": status}})
    with demo() as port:
        # When a second message follows on the same connection
        head, rest = two_answers_on_one_connection(port, first, '{"n": 2}')
    # Then the second answer's status line follows the first's header section at once
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert rest.startswith(b"HTTP/1.1 200 "), rest


def test_other_answers_keep_their_body() -> None:
    # Given the test downstream answering 200 with its default body, Then the body is sent
    with scripted(200) as port:
        head, rest = two_answers_on_one_connection(port, '{"n": 1}', '{"n": 2}')
    assert b"Content-Length: 2" in head
    assert rest.startswith(b"{}HTTP/1.1 200 "), rest
