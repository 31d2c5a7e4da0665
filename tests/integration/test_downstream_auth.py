"""An authenticated downstream: the header's value comes from Secrets Manager or SSM, is cached
for DOWNSTREAM_AUTH_CACHE_SECONDS, and appears in no log line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from consumer.delivery import get_runtime
from tests.integration.conftest import Harness

SECRET_VALUE = "Bearer do-not-log-0123456789"


@pytest.fixture(autouse=True)
def no_cached_parameters() -> Iterator[None]:
    # Powertools keeps fetched values and its clients for the process: each test starts afresh.
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    yield
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def use_secret(consumer: Harness, arn: str, cache_seconds: int, header: str = "") -> None:
    consumer.monkeypatch.setenv("DOWNSTREAM_AUTH_SECRET_ARN", arn)
    consumer.monkeypatch.setenv("DOWNSTREAM_AUTH_CACHE_SECONDS", str(cache_seconds))
    if header:
        consumer.monkeypatch.setenv("DOWNSTREAM_AUTH_HEADER", header)
    get_runtime.cache_clear()
    consumer.watch_runtime()


def deliver_one(consumer: Harness, body: str = '{"n": 1}') -> Any:
    consumer.send(body)
    return consumer.invoke(consumer.receive_event())


def test_the_header_comes_from_secrets_manager_and_is_never_logged(consumer: Harness) -> None:
    # Given a Secrets Manager secret holding the header's value
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="downstream-token", SecretString=SECRET_VALUE)["ARN"]
    use_secret(consumer, arn, cache_seconds=300)

    # When a message is delivered
    assert deliver_one(consumer) == {"batchItemFailures": []}

    # Then the downstream got the header, and no log line or metric holds the value
    [request] = consumer.downstream.requests
    assert request["headers"]["Authorization"] == SECRET_VALUE
    emitted = consumer.emitted()
    assert emitted.logs
    for document in [*emitted.logs, *emitted.metric_documents]:
        assert "do-not-log" not in str(document)


def test_an_ssm_parameter_and_a_named_header(consumer: Harness) -> None:
    # Given an SSM SecureString parameter, and the header X-Api-Key
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/downstream/key", Value="k-123", Type="SecureString")
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/downstream/key"
    use_secret(consumer, arn, cache_seconds=300, header="X-Api-Key")

    # When a message is delivered, Then the header carries the decrypted value
    assert deliver_one(consumer) == {"batchItemFailures": []}
    [request] = consumer.downstream.requests
    assert request["headers"]["X-Api-Key"] == "k-123"
    assert "Authorization" not in request["headers"]


@pytest.mark.parametrize(("cache_seconds", "second_value"), [(0, "Bearer v2"), (300, "Bearer v1")])
def test_a_rotated_secret_is_picked_up_once_the_cache_expires(
    consumer: Harness, cache_seconds: int, second_value: str
) -> None:
    # Given a secret read once, then rotated
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="rotating", SecretString="Bearer v1")["ARN"]
    use_secret(consumer, arn, cache_seconds=cache_seconds)
    deliver_one(consumer, '{"n": 1}')
    secrets.put_secret_value(SecretId=arn, SecretString="Bearer v2")

    # When the next message is delivered (a warm start)
    deliver_one(consumer, '{"n": 2}')

    # Then it carries the new value once the cache has expired, and the old one until then
    assert [r["headers"]["Authorization"] for r in consumer.downstream.requests] == [
        "Bearer v1",
        second_value,
    ]


def test_an_unreadable_secret_fails_the_record_for_a_retry_without_a_call(
    consumer: Harness,
) -> None:
    # Given a secret ARN that does not exist
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf"
    use_secret(consumer, arn, cache_seconds=300)

    # When a message is delivered
    with pytest.raises(BatchProcessingError):
        deliver_one(consumer)

    # Then the downstream was not called, and the record was rescheduled, saying why
    assert consumer.downstream.requests == []
    assert len(consumer.visibility_changes) == 1
    [line] = consumer.emitted().logs_with("retry scheduled")
    assert line["error_type"] == "SecretUnavailable"


@pytest.mark.parametrize("value", ["Bearer t\u20acken-secret-part", "Bearer a\r\nX-Injected: 1"])
def test_a_secret_no_header_can_carry_is_refused_without_quoting_it(
    consumer: Harness, value: str
) -> None:
    # Given a secret whose value holds a character outside latin-1 (or a line break)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="not-latin-1", SecretString=value)["ARN"]
    use_secret(consumer, arn, cache_seconds=300)

    # When a message is delivered
    with pytest.raises(BatchProcessingError):
        deliver_one(consumer)

    # Then the downstream was not called, the record was rescheduled, and the log says why in
    # words that name the secret's ARN but hold no part of its value, its length or a position
    assert consumer.downstream.requests == []
    assert len(consumer.visibility_changes) == 1
    [line] = consumer.emitted().logs_with("retry scheduled")
    assert line["error_type"] == "SecretUnavailable"
    assert arn in line["error"]
    assert "cannot be sent in an HTTP header" in line["error"]
    for document in consumer.emitted().logs:
        text = str(document)
        for leaked in ("\u20ac", "\\u20ac", "secret-part", "position", "X-Injected"):
            assert leaked not in text
