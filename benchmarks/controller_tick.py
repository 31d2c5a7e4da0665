"""The breaker controller's tick, warm: what each of its 1,728 daily invocations (the schedule's
one a minute, the backstop's one every 5 minutes) bills while the breaker is closed.

The built stack is deployed into moto's server on 127.0.0.1 (as make bench's cold starts do),
and the built controller runs in a Lambda-like process (an ExecutionEnvironment) with its
deployed configuration; each tick reads the stack's event source mapping there. Its wall time
is the invocation's, its CPU time the process's (user + system) during the invocation. The
first tick (the cold start) is left out: at one a minute the environment stays warm. The
mapping read crosses the loopback here, where in Lambda it crosses the Region's network: the
cost model adds an allowance for it (benchmarks.cost.TICK_NETWORK_SECONDS).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.cold_start import STACK_NAME, process_cpu_ms
from benchmarks.spread import Spread
from local.aws.deploy import deploy
from local.aws.emulator import running_emulator
from local.lambda_service.execution_environment import ExecutionEnvironment, FunctionSpec, Setup
from local.lambda_service.function_code import RUNTIME_SDK, CodePaths, link_distribution_closure

CONTROLLER = "BreakerControllerFunction"
TICK_EVENT: dict[str, Any] = {"breakerProbe": {}}


@dataclass(frozen=True)
class TickFigures:
    wall_ms: Spread
    # The process's CPU time over all the warm ticks, divided among them: /proc counts it in
    # 10 ms clock ticks, coarser than one tick's.
    cpu_ms_per_tick: float
    ticks: int

    def as_dict(self) -> dict[str, object]:
        return {
            "wall_ms": self.wall_ms.as_dict(),
            "cpu_ms_per_tick": self.cpu_ms_per_tick,
            "ticks": self.ticks,
        }


def measure(build_dir: Path, downstream_url: str, ticks: int) -> TickFigures:
    build_dir = build_dir.resolve()
    with _code(build_dir) as code, running_emulator() as emulator:
        deployed = deploy(emulator, build_dir, STACK_NAME, {"DownstreamUrl": downstream_url})
        emulator.detach_builtin_sqs_pollers()
        spec = FunctionSpec.from_configuration(deployed.functions[CONTROLLER].configuration)
        setup = Setup(spec, code, emulator.endpoint_url, emulator.region)
        environment = _Environment(setup, code.task_root.parent / "controller.log")
        try:
            _tick(environment)  # the cold start
            process = environment.pid
            if process is None:
                raise RuntimeError("the controller's process did not stay up after its tick")
            cpu_before = process_cpu_ms(process)
            walls = [_tick(environment) for _ in range(ticks)]
            cpu_ms = process_cpu_ms(process) - cpu_before
        finally:
            environment.shutdown()
    return TickFigures(wall_ms=Spread.of(walls), cpu_ms_per_tick=cpu_ms / ticks, ticks=ticks)


def _tick(environment: ExecutionEnvironment) -> float:
    """One scheduled tick; its wall time in milliseconds."""
    invocation = environment.invoke(TICK_EVENT)
    response = invocation.response if isinstance(invocation.response, dict) else {}
    if not invocation.succeeded or "error" in response:
        raise RuntimeError(f"the controller's tick failed: {invocation}")
    return invocation.duration_seconds * 1000


class _Environment(ExecutionEnvironment):
    @property
    def pid(self) -> int | None:
        """The running process's id, None before the first invocation starts it."""
        return None if self._process is None else self._process.pid


@contextmanager
def _code(build_dir: Path) -> Iterator[CodePaths]:
    function_dir = build_dir / CONTROLLER
    layer_dir = build_dir / "DependenciesLayer"
    if not (function_dir / "breaker_controller").is_dir() or not (layer_dir / "python").is_dir():
        raise FileNotFoundError(f"no built controller and layer in {build_dir}: run `make build`")
    with tempfile.TemporaryDirectory(prefix="controller-tick-") as scratch:
        root = Path(scratch)
        runtime_packages = root / "runtime-packages"
        link_distribution_closure(RUNTIME_SDK, runtime_packages)
        (root / "controller").mkdir()
        (root / "controller" / "task").symlink_to(function_dir)
        yield CodePaths(root / "controller" / "task", layer_dir, runtime_packages)
