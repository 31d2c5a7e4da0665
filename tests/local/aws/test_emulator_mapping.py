"""The embedded emulator's event source mapping says when it last changed in seconds since the
epoch, as Lambda does, whatever the process's time zone (moto alone is right only in UTC)."""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Iterator

import pytest

from local.aws.emulator import running_emulator


@pytest.fixture
def local_time_behind_utc() -> Iterator[None]:
    """The process's local time zone five hours behind UTC (as in New York in winter)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "EST+05"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("local_time_behind_utc")
def test_a_mappings_last_modified_is_seconds_since_the_epoch_in_any_time_zone() -> None:
    # Given the emulator in a process whose local time is not UTC, and a new mapping
    with running_emulator() as emulator:
        sqs, lambda_client = emulator.client("sqs"), emulator.client("lambda")
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=sqs.create_queue(QueueName="stamped")["QueueUrl"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        role = emulator.client("iam").create_role(
            RoleName="stamped", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("index.py", "")
        lambda_client.create_function(
            FunctionName="stamped",
            Runtime="python3.13",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": code.getvalue()},
        )
        before = time.time()
        uuid = lambda_client.create_event_source_mapping(
            EventSourceArn=queue_arn, FunctionName="stamped"
        )["UUID"]
        # When its LastModified is read, Then it is now (moto stamps whole seconds), not five
        # hours off
        modified = lambda_client.get_event_source_mapping(UUID=uuid)["LastModified"].timestamp()
        assert before - 1 <= modified <= time.time()
