"""Cold starts, side by side: a fresh Lambda-like process imports a handler and serves its first
batch of 10 records, against the naive handler (benchmarks/naive_function).

Each process is an ExecutionEnvironment's: Python 3.13 started isolated, without writing
bytecode (Lambda's /var/task and /opt are read-only), with only the function's code, its
layer and the runtime's boto3 on its path, and Lambda's environment variables. The built stack
(.aws-sam/build, as `sam build` left it) is deployed into moto's server on 127.0.0.1 (as `make
invoke` deploys it), so the SDK inside the function reaches a real endpoint: the circuit
breaker (on by default) finds and reads the stack's own event source mapping there, as it does
in Lambda before its first batch. The project runs with the breaker off
(CircuitBreaker=Disabled: BREAKER_ENABLED=false) and on, tracing off (as the template's
TracingMode=PassThrough sets it); with the breaker on and tracing on (Active: the X-Ray SDK
records and sends to a daemon address where a socket of this process swallows the segments);
and with the breaker on and a copy of the layer without its bytecode (what a layer built
without layers/Makefile costs). The naive function gets the layer's own copies of requests and
its dependencies, compiled here as the layer is, so both sides import the same bytecode of the
same libraries.

CPU time is the operating system's account of the finished process (user + system): moto's
work for the Lambda API calls runs in this process and is not counted, as Lambda's control
plane is not billed to the function. Wall time runs from the process's start to the batch's
response. Ratios are taken round by round.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import os
import re
import resource
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from py_compile import PycInvalidationMode
from typing import Any

from benchmarks.spread import Spread, alternating
from local.aws.deploy import deploy
from local.aws.emulator import running_emulator
from local.lambda_service.execution_environment import ExecutionEnvironment, FunctionSpec, Setup
from local.lambda_service.function_code import RUNTIME_SDK, CodePaths, link_distribution_closure
from local.lambda_service.lambda_sqs_event import lambda_sqs_event

NAIVE_FUNCTION = Path(__file__).parent / "naive_function"
STACK_NAME = "sqs-backoff-consumer"
# The Lambda API's event source mapping requests (ListEventSourceMappings, GetEventSourceMapping,
# UpdateEventSourceMapping) all go to this path and below.
MAPPING_API_PATH = "/2015-03-31/event-source-mappings"


@dataclass(frozen=True)
class ColdStart:
    cpu_ms: Spread
    wall_ms: Spread
    # Against the naive handler, round by round; None for the naive handler itself.
    cpu_ratio: Spread | None
    wall_ratio: Spread | None
    # Event source mapping requests the process made to the Lambda API.
    mapping_requests: Spread
    # The CPU time spent after the init phase, in the first invocation (the batch), and its
    # ratio to the naive handler's (None for the naive handler itself).
    batch_cpu_ms: Spread
    batch_cpu_ratio: Spread | None


@dataclass(frozen=True)
class Run:
    cpu_ms: float
    wall_ms: float
    mapping_requests: int
    batch_cpu_ms: float


class MappingRequests:
    """Counts the event source mapping requests moto's server answers: a WSGI layer in front
    of its application."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def wrap(self, app: Callable[[dict[str, Any], Any], Any]) -> Callable[..., Any]:
        def counting(environ: dict[str, Any], start_response: Any) -> Any:
            if str(environ.get("PATH_INFO", "")).startswith(MAPPING_API_PATH):
                with self._lock:
                    self.count += 1
            return app(environ, start_response)

        return counting


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


def first_batch(source_arn: str) -> dict[str, Any]:
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
        source_arn,
    )


def measure(build_dir: Path, downstream_url: str, repeats: int) -> dict[str, ColdStart]:
    # The processes run elsewhere: their paths must not depend on this one's folder.
    build_dir = build_dir.resolve()
    counter = MappingRequests()
    with (
        _code(build_dir) as (project, naive, without_bytecode),
        _xray_daemon() as daemon_address,
        running_emulator(layer=counter.wrap) as emulator,
    ):
        deployed = deploy(emulator, build_dir, STACK_NAME, {"DownstreamUrl": downstream_url})
        # moto's own SQS-to-Lambda hook would run the function in Docker: nothing is sent here,
        # and the mapping only has to be there to be read.
        emulator.detach_builtin_sqs_pollers()
        [mapping] = deployed.event_source_mappings
        event = first_batch(mapping["EventSourceArn"])
        breaker_on = FunctionSpec.from_configuration(deployed.function)
        if breaker_on.environment.get("BREAKER_ENABLED") != "true":
            raise RuntimeError("the deployed function's circuit breaker is not on")
        # What CircuitBreaker=Disabled deploys: the same function with the breaker off.
        breaker_off = replace(
            breaker_on, environment={**breaker_on.environment, "BREAKER_ENABLED": "false"}
        )
        naive_spec = replace(
            breaker_on,
            handler="naive_app.lambda_handler",
            environment={"DOWNSTREAM_URL": downstream_url},
        )
        endpoint = emulator.endpoint_url
        contenders: dict[str, Callable[[], Run]] = {
            "naive": _cold_start(
                Setup(naive_spec, naive, endpoint, emulator.region), event, counter
            ),
            "project_breaker_off": _cold_start(
                Setup(breaker_off, project, endpoint, emulator.region), event, counter
            ),
            "project_breaker_on": _cold_start(
                Setup(breaker_on, project, endpoint, emulator.region), event, counter
            ),
            "project_breaker_on_tracing_on": _cold_start(
                Setup(breaker_on, project, endpoint, emulator.region),
                event,
                counter,
                _traced(daemon_address),
            ),
            "project_breaker_on_without_bytecode": _cold_start(
                Setup(breaker_on, without_bytecode, endpoint, emulator.region), event, counter
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
            mapping_requests=Spread.of([float(run.mapping_requests) for run in series]),
            batch_cpu_ms=Spread.of([run.batch_cpu_ms for run in series]),
            batch_cpu_ratio=None
            if name == "naive"
            else Spread.of(
                [
                    a.batch_cpu_ms / max(b.batch_cpu_ms, CLOCK_TICK_MS)
                    for a, b in zip(series, baseline, strict=True)
                ]
            ),
        )
        for name, series in runs.items()
    }


def _cold_start(
    setup: Setup,
    event: dict[str, Any],
    counter: MappingRequests,
    environment_class: type[ExecutionEnvironment] = ExecutionEnvironment,
) -> Callable[[], Run]:
    measured_class = _init_measured(environment_class)

    def run() -> Run:
        requests_before = counter.count
        # A finished child's CPU time is added to RUSAGE_CHILDREN once it has been waited for.
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        environment = measured_class(setup, setup.code.task_root.parent / "cold-start.log")
        try:
            invocation = environment.invoke(event)
        finally:
            environment.shutdown()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if not invocation.succeeded or invocation.response != {"batchItemFailures": []}:
            raise RuntimeError(f"the cold start failed: {invocation}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Run(
            cpu_ms=cpu * 1000,
            wall_ms=invocation.duration_seconds * 1000,
            # Made before the batch's response: the process's requests are all in.
            mapping_requests=counter.count - requests_before,
            batch_cpu_ms=max(0.0, cpu * 1000 - environment.init_cpu_ms),
        )

    return run


# /proc counts a process's CPU time in clock ticks.
CLOCK_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _init_measured(base: type[ExecutionEnvironment]) -> type[_InitMeasured]:
    """Execution environments that note their process's CPU time when its init phase ends."""

    class Measured(_InitMeasured, base):  # type: ignore[valid-type,misc]
        pass

    return Measured


class _InitMeasured(ExecutionEnvironment):
    init_cpu_ms = 0.0

    def _start(self, limit_seconds: float, phase: str) -> tuple[Any, dict[str, Any]] | None:
        failure = super()._start(limit_seconds, phase)
        if failure is None and self._process is not None:
            # The process waits for its invocation now: its CPU time so far is the init's.
            self.init_cpu_ms = process_cpu_ms(self._process.pid)
        return failure


def process_cpu_ms(pid: int) -> float:
    """A running process's user + system CPU time (proc(5): /proc/<pid>/stat, utime and stime,
    fields 14 and 15, in clock ticks)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name, field 2, is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) * CLOCK_TICK_MS


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
