"""The `aws sqs send-message` line make up prints works as printed with AWS CLI v1, the one
`pip install awscli` installs, which ignores AWS_ENDPOINT_URL (v2 and the SDKs read it): the
line carries --endpoint-url, a global option of both versions. v1 is installed from PyPI into
a throwaway virtual environment, and the line is run against the embedded emulator.

AWS CLI v2 is not on PyPI (it ships as its own installer), so it is not run here; its
synopsis lists the same global `--endpoint-url` before the command."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from local.aws.emulator import running_emulator
from local.commands import up

# The AWS CLI v1 release this test runs (any 1.x behaves the same here).
AWS_CLI_V1 = "awscli==1.46.3"
SOURCE_QUEUE = "sqs-backoff-consumer-source"


@pytest.fixture(scope="module")
def aws_cli_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("aws-cli-v1") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            AWS_CLI_V1,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        pytest.skip(f"could not install {AWS_CLI_V1} from PyPI: {installed.stderr[-500:]}")
    return venv / "bin"


@pytest.fixture
def emulator() -> Iterator[Any]:
    with running_emulator() as running:
        yield running


def printed_lines(endpoint: str, source_url: str) -> list[str]:
    """What make up prints for this endpoint and source queue."""
    ready = SimpleNamespace(
        emulator=SimpleNamespace(endpoint_url=endpoint, region="us-east-1"),
        downstream_url="http://127.0.0.1:1/messages",
    )
    urls = {name: source_url for name in up.OUTPUT_QUEUES}
    return up.ready_lines(cast(Any, ready), urls, Path("logs"))


@pytest.mark.slow
def test_the_printed_line_sends_with_aws_cli_v1(aws_cli_v1: Path, emulator: Any) -> None:
    # Given make up's printed lines for a running emulator, and AWS CLI v1 on PATH
    sqs = emulator.client("sqs")
    source_url = sqs.create_queue(QueueName=SOURCE_QUEUE)["QueueUrl"]
    lines = printed_lines(emulator.endpoint_url, source_url)
    [export] = [line for line in lines if line.startswith("export ")]
    [send] = [line for line in lines if line.startswith("aws ")]
    variables = dict(pair.split("=", 1) for pair in shlex.split(export)[1:])
    version = subprocess.run(
        [str(aws_cli_v1 / "aws"), "--version"], capture_output=True, text=True, check=True
    )
    assert f"{version.stdout}{version.stderr}".startswith("aws-cli/1.")
    # When the send line is pasted after the export line, as make up says
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **variables,
        "PATH": f"{aws_cli_v1}{os.pathsep}{os.environ['PATH']}",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    sent = subprocess.run(
        shlex.split(send), env=env, capture_output=True, text=True, check=False, timeout=60
    )
    # Then v1 sent it to the emulator (not to AWS), and the message is on the source queue
    assert sent.returncode == 0, sent.stderr
    message_id = json.loads(sent.stdout)["MessageId"]
    [message] = sqs.receive_message(QueueUrl=source_url)["Messages"]
    assert (message["MessageId"], message["Body"]) == (message_id, '{"hello": "world"}')
