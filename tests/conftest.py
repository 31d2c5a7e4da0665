"""Settings every test shares. Nothing here may reach AWS: moto stands in for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.sam_build import sam_build

# Powertools reads these when shared.observability is first imported, so they are set before
# any test module imports the function. The template sets them the same way in AWS.
os.environ["POWERTOOLS_SERVICE_NAME"] = "sqs-backoff-consumer"
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "SqsBackoffConsumerTests"
os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"
# Credentials and region that can only ever reach moto.
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `sam build` for the session: the end-to-end and LocalStack tests run its output."""
    return sam_build(tmp_path_factory.mktemp("sam") / "build")
