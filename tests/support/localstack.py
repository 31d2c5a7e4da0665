"""LocalStack's own SQS provider as a second SQS implementation: started in host mode (no Docker)
from .venv-localstack on a free port of 127.0.0.1, with nothing but SQS, and stopped.

It is told not to reach anything beyond 127.0.0.1: no usage events (DISABLE_EVENTS), no download
of its TLS certificate (SKIP_SSL_CERT_DOWNLOAD: it makes a self-signed one), no DNS server
(DNS_ADDRESS=0), no CloudWatch metrics from SQS, and queue URLs on 127.0.0.1 itself
(SQS_ENDPOINT_STRATEGY=path with LOCALSTACK_HOST) rather than on *.localhost.localstack.cloud,
which needs a public DNS answer. Its files go to a folder of the test session's own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from local.shared.paths import ROOT

LOCALSTACK_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
# LocalStack gives every access key that is not a 12-digit number this account.
ACCOUNT_ID = "000000000000"
# Starting takes 2-5 s on a quiet machine; generous for a loaded one.
START_LIMIT_SECONDS = 120.0
STOP_LIMIT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def localstack_environment(port: int, work_dir: Path) -> dict[str, str]:
    """The whole environment of the LocalStack process: nothing inherited (no AWS variables)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work_dir),
        "LANG": "C.UTF-8",
        "SERVICES": "sqs",
        "EAGER_SERVICE_LOADING": "1",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SQS_ENDPOINT_STRATEGY": "path",
        "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DNS_ADDRESS": "0",
        # Host mode: its files under FILESYSTEM_ROOT, not /var/lib/localstack (it takes any
        # container-like sandbox for Docker otherwise).
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(work_dir / "filesystem"),
        # Its plugin index (plux) is cached here, not in the user's ~/.cache.
        "XDG_CACHE_HOME": str(work_dir / "cache"),
    }


@contextlib.contextmanager
def running_localstack(work_dir: Path) -> Iterator[str]:
    """LocalStack's SQS on 127.0.0.1 until the block ends; yields its endpoint URL."""
    if not LOCALSTACK_PYTHON.exists():
        raise RuntimeError(
            f"{LOCALSTACK_PYTHON.relative_to(ROOT)} is missing: run `make localstack-venv` "
            "(make test and make test-localstack create it)"
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint_url = f"http://127.0.0.1:{port}"
    log_path = work_dir / "localstack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
            env=localstack_environment(port, work_dir),
            cwd=work_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        _wait_ready(endpoint_url, process, log_path)
        yield endpoint_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(endpoint_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"LocalStack exited with status {process.returncode} while starting:\n"
                + _tail(log_path)
            )
        try:
            with urllib.request.urlopen(f"{endpoint_url}/_localstack/health", timeout=5) as answer:
                services = json.load(answer).get("services", {})
        except (OSError, urllib.error.URLError, ValueError):
            services = {}
        if services.get("sqs") in ("running", "available"):
            return
        # Waiting for another process to come up: polling is the only signal it gives.
        time.sleep(0.2)
    raise RuntimeError(
        f"LocalStack's SQS was not running within {START_LIMIT_SECONDS:g} s:\n" + _tail(log_path)
    )


def _tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
