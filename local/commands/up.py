"""`make up`: the local system stays up until Ctrl-C, on a fixed port, for clients of your own.

The same deployment, environments, event source mapping, demo downstream (or DOWNSTREAM_URL,
your own service) and reconciliation as `make run`, with its flags; the emulator listens on
127.0.0.1:4599 (UP_PORT or --port; 4566 is LocalStack's), and the lines printed once it is up
are ready to paste: the endpoint, the queue URLs, the environment a real client needs and an
`aws sqs send-message` that works as printed. Every message that enters the source queue is
reconciled, whoever sent it. While it is up, .local/up.json names the endpoint and the queues
for `make logs`, `make send ENV=local`, `make dlq-peek ENV=local` and `make redrive ENV=local`;
it is removed on exit.

Exit status: as `make run`'s (0; 1 a message lost; 3 messages unfinished, still on the source
queue at Ctrl-C; 2 invalid flags or a port in use; 4 the deployment failed; 130 Ctrl-C before
the system was up).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from local.aws.emulator import EMULATOR_CREDENTIALS
from local.commands import run
from local.commands.build import build_if_stale
from local.commands.run_options import WORK_DIR, Ready, RunOptions
from local.commands.run_report import shown_path
from local.commands.up_state import UpState, state_file_path
from local.shared.flags import number

DEFAULT_PORT = 4599
UP_WORK_DIR = WORK_DIR.parent / "local-up"
# A place to work, not a demo: nothing sent and nothing failing unless asked for.
UP_DEFAULTS = replace(
    RunOptions(),
    messages=0,
    failure_rate=0.0,
    outage_seconds=0.0,
    work_dir=UP_WORK_DIR,
    until_interrupted=True,
)
OUTPUT_QUEUES = ("SourceQueueUrl", "DeadLetterQueueUrl", "FailedJobsQueueUrl")


def parser() -> argparse.ArgumentParser:
    p = run.parser(
        UP_DEFAULTS,
        prog="make up UP_ARGS=...",
        description="Deploy template.yaml into an embedded AWS emulator on a fixed port and "
        "keep the whole system up until Ctrl-C, for your own clients (AWS CLI, SDKs, make "
        "send); then reconcile every message that entered the source queue.",
        flag_kinds={"--messages": number(int, 0, 10_000)},
    )
    p.add_argument(
        "--port",
        type=number(int, 1, 65_535),
        # A string default goes through `type` too: a bad UP_PORT is refused like a bad --port.
        default=os.environ.get("UP_PORT") or str(DEFAULT_PORT),
        help="the emulator's port on 127.0.0.1 (UP_PORT)",
    )
    p.add_argument(
        "--downstream-url",
        default=os.environ.get("DOWNSTREAM_URL") or None,
        help="your own downstream instead of the demo one (DOWNSTREAM_URL)",
    )
    p.add_argument("--state-file", type=Path, default=state_file_path(), help=argparse.SUPPRESS)
    return p


def port_problem(port: int) -> str | None:
    """Why 127.0.0.1:`port` cannot be served, or None. Checked before the emulator starts:
    moto's threaded server would wait forever for a server that failed to bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the emulator's server binds (http.server sets SO_REUSEADDR): a port in TIME_WAIT
        # after the last `make up` is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return (
                    f"port {port} is in use (another make up, LocalStack or another service): "
                    f"pick another with make up UP_PORT={_other(port)} "
                    f'(or UP_ARGS="--port {_other(port)}")'
                )
            return f"cannot listen on 127.0.0.1:{port}: {error.strerror}"
    return None


def _other(port: int) -> int:
    return port + 1 if port < 65_535 else port - 1


def ready_lines(ready: Ready, queue_urls: dict[str, str], log_dir: Path) -> list[str]:
    endpoint = ready.emulator.endpoint_url
    source = queue_urls["SourceQueueUrl"]
    environment = (
        f"export AWS_ENDPOINT_URL={endpoint} "
        f"AWS_ACCESS_KEY_ID={EMULATOR_CREDENTIALS['aws_access_key_id']} "
        f"AWS_SECRET_ACCESS_KEY={EMULATOR_CREDENTIALS['aws_secret_access_key']} "
        f"AWS_DEFAULT_REGION={ready.emulator.region}"
    )
    # The AWS CLI's form (aws-cli's awscli/examples/sqs/send-message.rst): aws sqs send-message
    # --queue-url URL --message-body TEXT. The SDKs and AWS CLI v2 take the endpoint from
    # AWS_ENDPOINT_URL; AWS CLI v1 (`pip install awscli`) ignores it and would send to AWS
    # itself, so the line names the endpoint with --endpoint-url, which both versions take.
    send = (
        f"aws --endpoint-url {shlex.quote(endpoint)} sqs send-message "
        f"--queue-url {shlex.quote(source)} "
        f"--message-body {shlex.quote(json.dumps({'hello': 'world'}))}"
    )
    return [
        "ready      up until Ctrl-C; then the reconciliation of every message sent",
        f"endpoint   {endpoint}",
        f"source     {source}",
        f"dlq        {queue_urls['DeadLetterQueueUrl']}",
        f"failed     {queue_urls['FailedJobsQueueUrl']}",
        f"downstream {ready.downstream_url}",
        f"logs       make logs (follows {shown_path(log_dir)})",
        "",
        "# a client of your own: paste these",
        environment,
        send,
        'make send ENV=local SEND_ARGS="--count 3"',
        "make dlq-peek ENV=local",
        "",
    ]


def queue_urls(ready: Ready) -> dict[str, str]:
    """Each queue's URL as the emulator answers GetQueueUrl on its endpoint: the one a client
    of that endpoint gets too (the stack's outputs name the queues, whatever host they show)."""
    sqs = ready.emulator.client("sqs")
    urls: dict[str, str] = {}
    for output in OUTPUT_QUEUES:
        name = ready.deployed.outputs[output].rstrip("/").rsplit("/", 1)[-1]
        urls[output] = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    return urls


def state(ready: Ready, urls: dict[str, str]) -> UpState:
    return UpState(
        pid=os.getpid(),
        endpoint_url=ready.emulator.endpoint_url,
        region=ready.emulator.region,
        access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        stack_name=ready.deployed.stack_name,
        queues=urls,
        log_dir=str(ready.log_dir),
    )


def _remove_own(state_file: Path) -> None:
    """Remove the state file if this process wrote it (not another `make up`'s)."""
    try:
        if json.loads(state_file.read_text()).get("pid") == os.getpid():
            state_file.unlink()
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    p = parser()
    args = p.parse_args(argv)
    # What replaces ENV's DownstreamUrl, said in the ENV line.
    downstream = (
        f"{args.downstream_url} (DOWNSTREAM_URL) instead"
        if args.downstream_url
        else "the demo downstream answers instead"
    )
    options = replace(
        run.options_of(p, args, argv, parser, defaults=UP_DEFAULTS, downstream=downstream),
        port=args.port,
        downstream_url=args.downstream_url,
    )
    problem = port_problem(args.port)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return run.EXIT_INVALID
    problem = build_if_stale()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return run.EXIT_DEPLOY_FAILED
    state_file: Path = args.state_file

    def on_ready(ready: Ready) -> None:
        urls = queue_urls(ready)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(state(ready, urls).to_json())
        for line in ready_lines(ready, urls, ready.log_dir):
            print(line, file=out)
        out.flush()

    try:
        result = run.run_or_exit_status(
            options, out, on_ready, log_file=options.work_dir.parent / "local-up.log"
        )
    finally:
        _remove_own(state_file)
    return run.exit_status(result)


if __name__ == "__main__":
    sys.exit(main())
