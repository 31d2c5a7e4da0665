"""Cold starts, side by side: a fresh Lambda-like process imports a handler and serves its first
batch of 10 records, against the naive handler (benchmarks/naive_function).

Each process is local.execution_environment's: Python 3.13 started isolated, without writing
bytecode (Lambda's /var/task and /opt are read-only), with only the function's code, its
layer and the runtime's boto3 on its path, and Lambda's environment variables. The project
runs the built function and layer (.aws-sam/build, as `sam build` left them), tracing off (as
the template's TracingMode=PassThrough sets it) and on (Active: the X-Ray SDK records and sends
to a daemon address where a socket of this process swallows the segments), and tracing off with
a copy of the layer without its bytecode (what a layer built without layers/Makefile costs).
The naive function gets the layer's own copies of requests and its dependencies, compiled here
as the layer is, so both sides import the same bytecode of the same libraries.

CPU time is the operating system's account of the finished process (user + system); wall time
runs from the process's start to the batch's response. Ratios are taken round by round.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import re
import resource
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from py_compile import PycInvalidationMode
from typing import Any

from benchmarks.spread import Spread, alternating
from local.execution_environment import ExecutionEnvironment, FunctionSpec, Setup
from local.function_code import RUNTIME_SDK, CodePaths, link_distribution_closure
from local.lambda_sqs_event import lambda_sqs_event

NAIVE_FUNCTION = Path(__file__).parent / "naive_function"
RUNTIME = "python3.13"
REGION = "us-east-1"
# Nothing listens here: a successful batch makes no SQS request.
UNUSED_ENDPOINT = "http://127.0.0.1:9"
SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:sqs-backoff-consumer-source"


@dataclass(frozen=True)
class ColdStart:
    cpu_ms: Spread
    wall_ms: Spread
    # Against the naive handler, round by round; None for the naive handler itself.
    cpu_ratio: Spread | None
    wall_ratio: Spread | None


@dataclass(frozen=True)
class Run:
    cpu_ms: float
    wall_ms: float


def _traced(daemon_address: str) -> type[ExecutionEnvironment]:
    """Execution environments of a function with active tracing, as Lambda sets them up."""

    class TracedEnvironment(ExecutionEnvironment):
        def _environment(self) -> dict[str, str]:
            return {
                **super()._environment(),
                "POWERTOOLS_TRACE_DISABLED": "false",
                "AWS_XRAY_DAEMON_ADDRESS": daemon_address,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;"
                "Parent=53995c3f42cd8ad8;Sampled=1",
            }

    return TracedEnvironment


def first_batch() -> dict[str, Any]:
    return lambda_sqs_event(
        [
            {
                "MessageId": f"00000000-0000-4000-8000-{n:012d}",
                "ReceiptHandle": f"handle-{n}",
                "Body": f'{{"orderId": "C-{n}"}}',
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
            }
            for n in range(10)
        ],
        SOURCE_ARN,
    )


def measure(
    build_dir: Path, function_environment: dict[str, str], downstream_url: str, repeats: int
) -> dict[str, ColdStart]:
    with _code(build_dir) as (project, naive, without_bytecode), _xray_daemon() as daemon_address:
        project_spec = _spec("consumer.app.lambda_handler", function_environment)
        naive_spec = _spec("naive_app.lambda_handler", {"DOWNSTREAM_URL": downstream_url})
        contenders: dict[str, Callable[[], Run]] = {
            "naive": _cold_start(Setup(naive_spec, naive, UNUSED_ENDPOINT, REGION)),
            "project_tracing_off": _cold_start(
                Setup(project_spec, project, UNUSED_ENDPOINT, REGION)
            ),
            "project_tracing_on": _cold_start(
                Setup(project_spec, project, UNUSED_ENDPOINT, REGION), _traced(daemon_address)
            ),
            "project_without_bytecode": _cold_start(
                Setup(project_spec, without_bytecode, UNUSED_ENDPOINT, REGION)
            ),
        }
        alternating(contenders, 1)  # warm the file cache: the first start reads from disk
        runs = alternating(contenders, repeats)
    baseline = runs["naive"]
    return {
        name: ColdStart(
            cpu_ms=Spread.of([run.cpu_ms for run in series]),
            wall_ms=Spread.of([run.wall_ms for run in series]),
            cpu_ratio=None
            if name == "naive"
            else Spread.of([a.cpu_ms / b.cpu_ms for a, b in zip(series, baseline, strict=True)]),
            wall_ratio=None
            if name == "naive"
            else Spread.of([a.wall_ms / b.wall_ms for a, b in zip(series, baseline, strict=True)]),
        )
        for name, series in runs.items()
    }


def _spec(handler: str, environment: dict[str, str]) -> FunctionSpec:
    name = "sqs-backoff-consumer-ConsumerFunction"
    return FunctionSpec(
        name=name,
        arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}",
        handler=handler,
        runtime=RUNTIME,
        timeout_seconds=60,
        memory_mb=256,
        environment=environment,
        log_group=f"/aws/lambda/{name}",
    )


def _cold_start(
    setup: Setup, environment_class: type[ExecutionEnvironment] = ExecutionEnvironment
) -> Callable[[], Run]:
    def run() -> Run:
        # A finished child's CPU time is added to RUSAGE_CHILDREN once it has been waited for.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        environment = environment_class(setup, setup.code.task_root.parent / "cold-start.log")
        try:
            invocation = environment.invoke(first_batch())
        finally:
            environment.shutdown()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if not invocation.succeeded or invocation.response != {"batchItemFailures": []}:
            raise RuntimeError(f"the cold start failed: {invocation}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Run(cpu_ms=cpu * 1000, wall_ms=invocation.duration_seconds * 1000)

    return run


@contextmanager
def _code(build_dir: Path) -> Iterator[tuple[CodePaths, CodePaths, CodePaths]]:
    """The project's code paths, the naive function's, and the project's with a layer without
    bytecode, in a temporary folder."""
    function_dir = build_dir / "ConsumerFunction"
    layer_dir = build_dir / "DependenciesLayer"
    if not (function_dir / "consumer").is_dir() or not (layer_dir / "python").is_dir():
        raise FileNotFoundError(f"no built function and layer in {build_dir}: run `make build`")
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch:
        root = Path(scratch)
        runtime_packages = root / "runtime-packages"
        link_distribution_closure(RUNTIME_SDK, runtime_packages)
        # Each function gets a folder of its own for its log; its task root sits inside it.
        project_root = root / "project"
        project_root.mkdir()
        (project_root / "task").symlink_to(function_dir.resolve())
        naive_task = root / "naive" / "task"
        _naive_task_root(naive_task, layer_dir / "python")
        empty_opt = root / "naive" / "opt"
        empty_opt.mkdir()
        plain_root = root / "without-bytecode"
        plain_root.mkdir()
        (plain_root / "task").symlink_to(function_dir.resolve())
        shutil.copytree(
            layer_dir, plain_root / "opt", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        yield (
            CodePaths(project_root / "task", layer_dir, runtime_packages),
            CodePaths(naive_task, empty_opt, runtime_packages),
            CodePaths(plain_root / "task", plain_root / "opt", runtime_packages),
        )


def _naive_task_root(task_root: Path, layer_site: Path) -> None:
    """The naive handler with requests and what it requires, copied from the layer, compiled as
    the layer's Makefile compiles."""
    task_root.mkdir(parents=True)
    shutil.copy(NAIVE_FUNCTION / "naive_app.py", task_root)
    for top_level in top_levels(layer_site, distribution_closure(layer_site, "requests")):
        target = task_root / top_level.name
        if top_level.is_dir():
            shutil.copytree(top_level, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(top_level, target)
    compiled = compileall.compile_dir(
        task_root,
        quiet=1,
        force=True,
        invalidation_mode=PycInvalidationMode.UNCHECKED_HASH,
    )
    if not compiled:
        raise RuntimeError(f"could not compile {task_root}")


def distribution_closure(site: Path, name: str) -> set[str]:
    """Normalised names of `name` and everything it requires (extras excluded), as installed
    in `site`."""
    installed = {
        _normalised(distribution.metadata["Name"]): distribution
        for distribution in importlib.metadata.distributions(path=[str(site)])
    }
    closure: set[str] = set()
    pending = [_normalised(name)]
    while pending:
        current = pending.pop()
        if current in closure or current not in installed:
            continue
        closure.add(current)
        for requirement in installed[current].requires or []:
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            if match and "extra ==" not in requirement:
                pending.append(_normalised(match.group(0)))
    return closure


def top_levels(site: Path, names: set[str]) -> set[Path]:
    """The folders and modules these distributions installed at the top of `site`, their
    metadata folders and the bytecode of top-level modules included."""
    paths: set[Path] = set()
    for distribution in importlib.metadata.distributions(path=[str(site)]):
        if _normalised(distribution.metadata["Name"]) not in names:
            continue
        for file in distribution.files or []:
            first = file.parts[0]
            if first in ("..", "__pycache__", "bin") or first.endswith(".data"):
                continue
            paths.add(site / first)
            if len(file.parts) == 1 and first.endswith(".py"):
                paths.update((site / "__pycache__").glob(f"{first[:-3]}.*.pyc"))
    return paths


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@contextmanager
def _xray_daemon() -> Iterator[str]:
    """A UDP socket that takes the X-Ray SDK's segments and never reads them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        host, port = daemon.getsockname()
        yield f"{host}:{port}"
