"""What the running local system follows of a stack update
(local.commands.system._follow_update), as CloudFormation leaves the stack: a function's new
configuration reaches its environments, a function the update deleted is invoked no more, and a
schedule it removed stops firing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from local.aws.deploy import DeployedFunction, DeployedStack, S3Location
from local.commands import system
from local.commands.run_options import RunOptions
from local.lambda_service.execution_environment import FunctionSpec, Invocation
from local.lambda_service.invoke_router import InvokeRouter, LocalFunction
from local.lambda_service.scheduler import ScheduledTarget, SchedulerEmulator

ACCOUNT = "arn:aws:lambda:us-east-1:123456789012:function:"


@dataclass(frozen=True)
class Setup:
    function: Any


class Pool:
    """An EnvironmentPool's part that an update touches."""

    def __init__(self) -> None:
        self.setup = Setup(None)
        self.replaced: list[Setup] = []
        self.shut_down = False

    def replace_setup(self, setup: Setup) -> None:
        self.setup = setup
        self.replaced.append(setup)

    def shutdown(self) -> None:
        self.shut_down = True

    def environment(self) -> Any:
        raise AssertionError("nothing is invoked in these tests")

    def invoke(self, event: Any, request_id: str | None = None) -> Invocation:
        raise AssertionError("nothing is invoked in these tests")


def function(logical_id: str, name: str, breaker: str) -> DeployedFunction:
    configuration = {
        "FunctionName": name,
        "FunctionArn": ACCOUNT + name,
        "Handler": "app.handler",
        "Runtime": "python3.13",
        "Timeout": 60,
        "MemorySize": 256,
        "Environment": {"Variables": {"BREAKER_ENABLED": breaker}},
    }
    return DeployedFunction(logical_id, configuration, S3Location("b", "k"), [])


def stack(*functions: DeployedFunction) -> DeployedStack:
    return DeployedStack(
        stack_name="s",
        parameters={},
        outputs={},
        function=functions[0].configuration,
        function_code=S3Location("b", "k"),
        layers=[],
        event_source_mappings=[],
        functions={f.logical_id: f for f in functions},
    )


def test_an_update_that_deletes_a_function_and_its_schedule_stops_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the consumer and the controller running, the controller on a one-minute schedule
    consumer, controller = Pool(), Pool()
    before = stack(
        function("ConsumerFunction", "consumer", "true"),
        function("BreakerControllerFunction", "controller", "true"),
    )
    router = InvokeRouter(clock=lambda: 0.0)
    router.register(LocalFunction("controller", ACCOUNT + "controller", controller))
    routing = system._Router(
        router,
        consumer,  # type: ignore[arg-type]
        [],
        {},
        pools_by_id={"ConsumerFunction": consumer, "BreakerControllerFunction": controller},  # type: ignore[dict-item]
    )
    tick = ScheduledTarget(
        "tick", "rate(1 minute)", 60.0, {"breakerProbe": {}}, ACCOUNT + "controller"
    )
    scheduler = SchedulerEmulator([tick], controller)
    scheduler.start()
    # When an update deletes the controller and its schedule, and changes the consumer's
    # environment (the schedules, read again, are gone)
    after = stack(function("ConsumerFunction", "consumer", "false"))
    monkeypatch.setattr(system, "_read_targets", lambda emulator, deployed: [])
    try:
        lines = system._follow_update(
            before,
            after,
            emulator=None,  # type: ignore[arg-type]
            routing=routing,
            scheduler=scheduler,
            options=RunOptions(),
        )
    finally:
        scheduler.stop()
        router.stop()

    # Then the consumer's new invocations get the new environment
    [replaced] = consumer.replaced
    assert isinstance(replaced.function, FunctionSpec)
    assert replaced.function.environment == {"BREAKER_ENABLED": "false"}
    # ...the controller is invoked no more here, and its environments are gone
    assert router.submit(ACCOUNT + "controller", {"breakerProbe": {}}) is False
    assert controller.shut_down
    assert "BreakerControllerFunction" not in routing.pools_by_id
    # ...its schedule stopped, and each change was said
    assert scheduler.targets == []
    assert lines == [
        "function   ConsumerFunction configuration updated: new invocations get it",
        "function   BreakerControllerFunction deleted by the update: invoked no more",
        "schedule   tick rate(1 minute) -> BreakerControllerFunction stopped: the update "
        "removed or changed it",
    ]
