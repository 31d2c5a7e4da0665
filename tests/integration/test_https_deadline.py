"""The hard call deadline over TLS: the guard shuts the socket under the TLS layer, which ends a
trickling answer's read as it does over plain http. The downstream is a real local TLS server
with a certificate made at test time, which the function's requests trust through
REQUESTS_CA_BUNDLE."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.integration.conftest import Harness
from tests.support.downstream import Answer, Downstream
from tests.support.tls import self_signed_127_0_0_1

TRICKLE_SECONDS_PER_BYTE = 0.2


@pytest.fixture
def downstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Downstream]:
    cert, context = self_signed_127_0_0_1(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with Downstream(tls=context).serving() as serving:
        yield serving


def test_a_message_is_delivered_over_tls(consumer: Harness) -> None:
    # Given an https downstream with a certificate the function trusts
    assert consumer.downstream.url.startswith("https://127.0.0.1:")

    # When a message is delivered, Then it arrives
    consumer.send('{"n": 1}')
    assert consumer.invoke(consumer.receive_event()) == {"batchItemFailures": []}
    [request] = consumer.downstream.requests
    assert request["body"] == '{"n": 1}'


@pytest.mark.parametrize("env_overrides", [{"DOWNSTREAM_TIMEOUT_SECONDS": "1"}], indirect=True)
def test_a_trickling_tls_answer_is_cut_off_at_the_call_timeout(consumer: Harness) -> None:
    # Given an https downstream that sends its answer one byte every 0.2 s (each TLS record
    # well within the 1 s timeout of a single read; the whole answer would take 40 s or more)
    body = b"{}" * 100
    consumer.downstream.default = Answer(200, trickle_seconds=TRICKLE_SECONDS_PER_BYTE, body=body)
    uncut_seconds = len(body) * TRICKLE_SECONDS_PER_BYTE
    consumer.send('{"n": 1}')

    # When the message is delivered
    started = time.monotonic()
    with pytest.raises(BatchProcessingError):
        consumer.invoke(consumer.receive_event())
    elapsed = time.monotonic() - started

    # Then the call was cut off as a whole, far before the answer's end, as a timeout, and the
    # record was rescheduled
    assert elapsed < uncut_seconds / 2
    emitted = consumer.emitted()
    assert emitted.metric_total("DownstreamFailedTimeout") == 1
    [line] = emitted.logs_with("retry scheduled")
    assert line["outcome"] == "timeout"
    assert len(consumer.visibility_changes) == 1
