"""`make docs-samples`: run the commands whose output the README and the docs show, and write
their output into the pages, so that every sample is what the program prints today.

A sample is a fenced block between `<!-- sample: NAME -->` and `<!-- /sample -->`; NAME says
which recipe makes it, and every block of that name in README.md and docs/*.md gets the same
text. Each recipe runs the project's own commands as `make` runs them (after `make build`), in
this checkout; paths inside the checkout are shown relative to it, never as this machine's.
`tests/unit/test_doc_samples.py` checks, without running anything, that the samples still have
the format the program prints (its field names, the lines it prints).

The quick recipes take about two minutes; `--long` adds the outage run (about 14 minutes) and
the soak (about 10). `--only NAME` makes the named samples only.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import boto3

from local.shared.paths import ROOT

PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# A fenced block (the output as printed), or Markdown as it is (a table of figures).
SAMPLE_BLOCK = re.compile(
    r"(?P<open><!-- sample: (?P<name>[^>]+?) -->\n(?:```[\w-]*\n)?)(?P<body>.*?)"
    r"(?P<close>\n(?:```\n)?<!-- /sample -->)",
    re.DOTALL,
)
PYTHON = sys.executable
# make up's port in the docs: the one a reader's make up prints.
UP_PORT = 4599
# How long a recipe waits for the system to reach the state its sample shows.
SETTLE_SECONDS = 120.0


class SampleError(Exception):
    """A recipe could not make its sample; the message says why."""


def sample_names(text: str) -> list[str]:
    return [match.group("name") for match in SAMPLE_BLOCK.finditer(text)]


def fill(text: str, samples: dict[str, str]) -> str:
    """`text` with the body of every sample block named in `samples` replaced."""

    def replaced(match: re.Match[str]) -> str:
        body = samples.get(match.group("name"))
        if body is None:
            return match.group(0)
        return match.group("open") + body.rstrip("\n") + match.group("close")

    return SAMPLE_BLOCK.sub(replaced, text)


def shown(text: str) -> str:
    """Output as a reader of the repository sees it: this checkout's paths made relative."""
    return text.replace(f"{ROOT}/", "").replace(str(ROOT), ".")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = "functions"
    env.update(extra)
    return env


def _run(argv: Sequence[str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=ROOT, env=_env(**extra), capture_output=True, text=True, check=False
    )


def _module(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def run_default() -> dict[str, str]:
    """`make run` as the quickstart tells a newcomer to type it."""
    done = _run(_module("local.commands.run", "--config-env", "default"))
    if done.returncode not in (0, 3):
        raise SampleError(f"make run exited {done.returncode}: {done.stderr[-2000:]}")
    return {"make run": "$ make run\n" + shown(done.stdout)}


def run_prod() -> dict[str, str]:
    """The first lines of a run with samconfig's prod overrides, up to the poller's."""
    args = ("--messages", "5", "--max-receive-count", "3")
    done = _run(_module("local.commands.run", "--config-env", "prod", *args))
    if done.returncode not in (0, 3):
        raise SampleError(f"make run ENV=prod exited {done.returncode}: {done.stderr[-2000:]}")
    lines = shown(done.stdout).splitlines()
    labels = ("ENV ", "emulator   ", "stack      ", "poller     ")
    kept = [line for line in lines if line.startswith(labels)]
    head = [f'$ make run ENV=prod RUN_ARGS="{" ".join(args)}"', *kept[:3], "...", *kept[3:]]
    return {"make run ENV=prod": "\n".join(head)}


def invoke_prod() -> dict[str, str]:
    """`make invoke ENV=prod` with overrides: the response (jq -c .) and the lines on stderr
    that say where each parameter came from."""
    event = "events/sqs-batch-with-failures.json"
    overrides = ("LogLevel=WARNING", "MaxReceiveCount=5")
    done = _run(
        _module(
            "local.commands.invoke",
            event,
            "--config-env",
            "prod",
            "--parameter-overrides",
            *overrides,
        )
    )
    if done.returncode not in (0, 1):
        raise SampleError(f"make invoke exited {done.returncode}: {done.stderr[-2000:]}")
    response = json.dumps(json.loads(done.stdout), separators=(",", ":"))
    said = [
        line
        for line in shown(done.stderr).splitlines()
        if line.startswith(("ENV ", "--parameter-overrides:", "downstream:"))
    ]
    command = (
        f"$ make invoke ENV=prod EVENT={event} \\\n"
        f'    INVOKE_ARGS="--parameter-overrides {" ".join(overrides)}" 2>/dev/null | jq -c .'
    )
    return {"make invoke": f"{command}\n{response}", "make invoke, stderr": "\n".join(said)}


def unfinished_run() -> dict[str, str]:
    """A run stopped (Ctrl-C) while retries wait out their backoff: unfinished, exit 3."""
    argv = _module(
        "local.commands.run", "--messages", "5", "--outage", "0", "--failure-rate", "1",
        "--max-receive-count", "10", "--backoff-base", "30",
    )  # fmt: skip
    with _started(argv) as process:
        assert process.stdout is not None
        _read_until(process.stdout, lambda line: bool(re.search(r"waiting_backoff=[1-9]", line)))
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()
        status = process.wait(timeout=SETTLE_SECONDS)
    if status != 3:
        raise SampleError(f"the interrupted run exited {status}, not 3")
    lines = shown(rest).splitlines()
    start = lines.index("reconciliation")
    return {"unfinished run": "\n".join(lines[start:])}


@dataclass
class _UpSession:
    process: subprocess.Popen[str]
    printed: list[str]


def up_session() -> dict[str, str]:
    """make up on its port; a boto3 client and make send ENV=local send one good and one
    poison message; make logs, make dlq-peek ENV=local; then Ctrl-C."""
    problem = _port_taken(UP_PORT)
    if problem:
        raise SampleError(problem)
    argv = _module("local.commands.up", "--config-env", "default", "--port", str(UP_PORT))
    with _started(argv) as process:
        assert process.stdout is not None
        printed = _read_until(process.stdout, lambda line: line == "make dlq-peek ENV=local")
        ready_at = next(i for i, line in enumerate(printed) if line.startswith("ready "))
        ready = printed[ready_at:]
        export = next(line for line in ready if line.startswith("export "))
        variables = dict(pair.split("=", 1) for pair in export.removeprefix("export ").split())
        source = next(line.split()[1] for line in ready if line.startswith("source "))
        sqs = boto3.client(
            "sqs",
            endpoint_url=variables["AWS_ENDPOINT_URL"],
            region_name=variables["AWS_DEFAULT_REGION"],
            aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"],
        )
        sqs.send_message(QueueUrl=source, MessageBody=json.dumps({"orderId": "A-1"}))
        send = ("--body", "not json")
        sent = _run(_module("local.commands.send", "--config-env", "local", *send))
        if sent.returncode != 0:
            raise SampleError(f"make send ENV=local exited {sent.returncode}: {sent.stderr}")
        _settle(sqs, source, variables["AWS_ENDPOINT_URL"], ready)
        logs = _run(_module("local.commands.logs", "--no-follow"))
        peek = _run(_module("tools.dlq_peek", "--config-env", "local"))
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read().splitlines()
        process.wait(timeout=SETTLE_SECONDS)
    end = rest.index(next(line for line in rest if line.startswith("interrupted:")))
    return {
        "make up": "$ make up\n...\n" + shown("\n".join(ready)),
        "make logs": "$ make logs LOGS_ARGS=--no-follow\n" + shown(logs.stdout),
        "make dlq-peek": "$ make dlq-peek ENV=local\n" + shown(peek.stdout),
        "make up, Ctrl-C": shown("\n".join(rest[max(0, end - 3) :])),
    }


def _settle(sqs: Any, source: str, endpoint: str, ready: list[str]) -> None:
    """Until the source queue is empty and the poison message is on the DLQ."""
    dlq = next(line.split()[1] for line in ready if line.startswith("dlq "))
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        depth = [_depth(sqs, url) for url in (source, dlq)]
        if depth == [0, 1]:
            return
        time.sleep(0.5)  # polling another process's queues, with a deadline
    raise SampleError(f"make up at {endpoint}: the two messages did not settle")


def _depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def port_in_use() -> dict[str, str]:
    """make up refused on a port that is taken (the sample holds 4599 itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        # make up's own session may have just left the port in TIME_WAIT
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", UP_PORT))
        holder.listen()
        done = _run(_module("local.commands.up", "--config-env", "default", "--port", str(UP_PORT)))
    if done.returncode != 2:
        raise SampleError(f"make up on a port in use exited {done.returncode}, not 2")
    return {"port in use": shown(done.stderr).strip()}


def python_missing() -> dict[str, str]:
    """A fresh checkout's first make on a machine without python3.13 on PATH."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            ["make", "--no-print-directory", "venv", f"VENV={scratch}/venv"],
            cwd=ROOT,
            env={**_env(), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
    line = next((e for e in done.stderr.splitlines() if e.startswith("error:")), None)
    if done.returncode == 0 or line is None:
        raise SampleError("make venv without python3.13 on PATH did not fail as expected")
    return {"python3.13 missing": line}


def outage_run() -> dict[str, str]:
    """make run RUN_ARGS="--outage 600", progress lines cut to the breaker's transitions."""
    done = _run(_module("local.commands.run", "--outage", "600"))
    if done.returncode != 0:
        raise SampleError(f"the outage run exited {done.returncode}: {done.stderr[-2000:]}")
    lines = shown(done.stdout).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("estimate "))
    end = lines.index("reconciliation")
    kept: list[str] = []
    for i in range(start, end):
        line = lines[i]
        follows_transition = i > start and lines[i - 1].startswith("breaker:")
        before_transition = i + 1 < end and lines[i + 1].startswith("breaker:")
        if not line.startswith("[") or follows_transition or before_transition or i == end - 1:
            kept.append(line)
    return {"outage run": "\n".join([*kept, *lines[end:]])}


def soak() -> dict[str, str]:
    """The last lines of make soak: the faults injected, the checks and the summary."""
    done = _run(_module("local.commands.soak"))
    if done.returncode != 0:
        raise SampleError(f"make soak exited {done.returncode}: {done.stderr[-2000:]}")
    lines = shown(done.stdout).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  faults "))
    return {"make soak": "\n".join(lines[start:])}


def sizes() -> dict[str, str]:
    """make bench's table of what sam build produced (the rest of make bench takes minutes)."""
    from benchmarks.bench import size_table  # noqa: PLC0415 (development only, as benchmarks)
    from benchmarks.package_size import measure  # noqa: PLC0415

    measured = dataclasses.asdict(measure(ROOT / ".aws-sam" / "build"))
    return {"sizes": "\n".join(size_table(measured))}


QUICK: dict[str, Callable[[], dict[str, str]]] = {
    "run": run_default,
    "run-prod": run_prod,
    "invoke": invoke_prod,
    "unfinished": unfinished_run,
    "up": up_session,
    "port": port_in_use,
    "python": python_missing,
    "sizes": sizes,
}
LONG: dict[str, Callable[[], dict[str, str]]] = {"outage": outage_run, "soak": soak}


@contextlib.contextmanager
def _started(argv: Sequence[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        list(argv),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=SETTLE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()


def _read_until(stream: IO[str], done: Callable[[str], bool]) -> list[str]:
    lines: list[str] = []
    for raw in stream:
        line = raw.rstrip("\n")
        lines.append(line)
        if done(line):
            return lines
    raise SampleError(
        "the command ended before printing what the sample shows:\n" + "\n".join(lines[-20:])
    )


def _port_taken(port: int) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return f"port {port} is in use: stop the make up (or other service) holding it"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="make docs-samples DOCS_SAMPLES_ARGS=...",
        description="Run the commands the README and the docs show, and write their output "
        "into the sample blocks.",
    )
    p.add_argument("--long", action="store_true", help="also the outage run and the soak (~25 min)")
    p.add_argument(
        "--only",
        action="append",
        choices=sorted([*QUICK, *LONG]),
        help="make these recipes only (repeatable)",
    )
    args = p.parse_args(argv)
    recipes = {**QUICK, **(LONG if args.long else {})}
    if args.only:
        recipes = {name: {**QUICK, **LONG}[name] for name in args.only}
    samples: dict[str, str] = {}
    failed = False
    for name, recipe in recipes.items():
        started = time.monotonic()
        try:
            made = recipe()
        except (SampleError, OSError) as error:
            # The others are still written: a rerun with --only NAME makes the missing one.
            print(f"docs-samples: {name}: {error}", file=sys.stderr)
            failed = True
            continue
        samples.update(made)
        print(f"{name:10s} {time.monotonic() - started:5.1f} s  {', '.join(made)}", file=sys.stderr)
    known = {name for recipe_name in [*QUICK, *LONG] for name in _names_of(recipe_name)}
    for page in PAGES:
        text = page.read_text()
        unknown = sorted(set(sample_names(text)) - known)
        if unknown:
            print(f"docs-samples: {page.name}: no recipe makes {unknown}", file=sys.stderr)
            return 1
        filled = fill(text, samples)
        if filled != text:
            page.write_text(filled)
            print(f"updated    {page.relative_to(ROOT)}", file=sys.stderr)
    return 1 if failed else 0


def _names_of(recipe: str) -> tuple[str, ...]:
    """The sample names a recipe makes, without running it."""
    return SAMPLE_NAMES[recipe]


SAMPLE_NAMES: dict[str, tuple[str, ...]] = {
    "run": ("make run",),
    "run-prod": ("make run ENV=prod",),
    "invoke": ("make invoke", "make invoke, stderr"),
    "unfinished": ("unfinished run",),
    "up": ("make up", "make logs", "make dlq-peek", "make up, Ctrl-C"),
    "port": ("port in use",),
    "python": ("python3.13 missing",),
    "sizes": ("sizes",),
    "outage": ("outage run",),
    "soak": ("make soak",),
}


if __name__ == "__main__":
    sys.exit(main())
