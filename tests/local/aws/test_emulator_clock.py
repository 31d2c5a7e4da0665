"""The emulator's SQS counts time as SQS does, on its own steady clock: a step of the host's wall
clock (an NTP step, a virtual machine's clock set again after a pause) neither shortens nor
lengthens a visibility timeout. moto counts on the wall clock: a +1 s step brought a batch back
exactly 1 s early by the monotonic clock the soak's checks use (docs/soak.md)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto.core import utils as moto_utils

from local.aws import emulator as emulator_module
from local.aws.emulator import running_emulator


class Clocks:
    """The monotonic clock the emulator reads, and a step added to the wall clock moto reads;
    both moved by the test only."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._lock = threading.Lock()
        self._monotonic = emulator_module._monotonic()
        self._wall_step = datetime.timedelta()
        real_utcnow = moto_utils.utcnow
        monkeypatch.setattr(emulator_module, "_monotonic", self.monotonic)
        monkeypatch.setattr(moto_utils, "utcnow", lambda: real_utcnow() + self.wall_step())

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def wall_step(self) -> datetime.timedelta:
        with self._lock:
            return self._wall_step

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._monotonic += seconds

    def step_wall_clock(self, seconds: float) -> None:
        with self._lock:
            self._wall_step += datetime.timedelta(seconds=seconds)


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> Clocks:
    return Clocks(monkeypatch)


@pytest.fixture
def sqs(clocks: Clocks) -> Iterator[Any]:
    with running_emulator() as emulator:
        yield emulator.client("sqs")


def visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


@pytest.mark.parametrize("step_seconds", [1.0, 30.0, -30.0])
def test_a_step_of_the_wall_clock_moves_no_visibility_timeout(
    clocks: Clocks, sqs: Any, step_seconds: float
) -> None:
    # Given a message received with the queue's 60 s visibility timeout
    url = sqs.create_queue(QueueName="source", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="{}")
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]

    # When the wall clock steps while 59 s pass on the monotonic clock
    clocks.step_wall_clock(step_seconds)
    clocks.advance(59)

    # Then the message is still hidden, neither received nor counted visible
    assert visible(sqs, url) == 0
    assert "Messages" not in sqs.receive_message(QueueUrl=url)

    # ...and once its 60 s have passed it is handed out again
    clocks.advance(1.01)
    [again] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert again["MessageId"] == message["MessageId"]
