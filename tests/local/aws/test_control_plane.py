"""Lambda's control plane in the emulator: one account budget of 15 requests a second
(TooManyRequestsException beyond), mapping transitions that take time (Disabling, Enabling,
Updating; ResourceConflictException on an overlapping update), and the local system's own reads
spending none of it."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.aws.control_plane import LambdaControlPlane
from local.aws.emulator import Emulator, running_emulator
from local.lambda_service.event_source_mapping import MappingState

# One attempt per call: the SDK's own retries of a throttled call would hide the 429.
NO_RETRIES = Config(retries={"total_max_attempts": 1})


class FrozenClock:
    """The control plane's clock, moved by the test only."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Account:
    emulator: Emulator
    plane: LambdaControlPlane
    clock: FrozenClock
    lambda_client: Any
    uuid: str


def create_mapping(emulator: Emulator, name: str) -> str:
    """A function and its SQS mapping, made through the bookkeeping client (the deploy's
    reads and writes spend no budget)."""
    sqs, lambda_client = emulator.client("sqs"), emulator.own_client("lambda")
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=sqs.create_queue(QueueName=name)["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    role = emulator.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"][
        "Arn"
    ]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "")
    lambda_client.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return str(
        lambda_client.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name)[
            "UUID"
        ]
    )


@pytest.fixture
def account() -> Iterator[Account]:
    clock = FrozenClock()
    plane = LambdaControlPlane(transition_seconds=30.0, clock=clock)
    with running_emulator(layer=plane.wrap) as emulator:
        uuid = create_mapping(emulator, "consumer")
        yield Account(emulator, plane, clock, emulator.client("lambda", NO_RETRIES), uuid)


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_the_sixteenth_request_in_a_second_is_throttled(account: Account) -> None:
    # Given an account whose budget nobody has spent, and a clock that does not move
    # When 15 control-plane requests come in the same instant, from two different callers
    other_caller = account.emulator.client("lambda", NO_RETRIES)
    for index in range(15):
        caller = account.lambda_client if index % 2 else other_caller
        caller.get_event_source_mapping(UUID=account.uuid)
    # Then the 16th is refused as Lambda refuses it, whatever API it calls
    with pytest.raises(ClientError) as refused:
        other_caller.list_event_source_mappings()
    assert error_code(refused) == "TooManyRequestsException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    # and every request is counted, the refused one too
    assert account.plane.calls == 16
    assert account.plane.throttled == 1
    assert account.plane.peak_per_second() == 16


def test_the_budget_comes_back_at_15_a_second(account: Account) -> None:
    # Given a spent budget
    for _ in range(15):
        account.lambda_client.get_event_source_mapping(UUID=account.uuid)
    # When a fifth of a second passes
    account.clock.now += 0.2
    # Then three more requests go through (15 x 0.2), and the fourth is throttled
    for _ in range(3):
        account.lambda_client.get_event_source_mapping(UUID=account.uuid)
    with pytest.raises(ClientError) as refused:
        account.lambda_client.get_event_source_mapping(UUID=account.uuid)
    assert error_code(refused) == "TooManyRequestsException"


def test_the_local_systems_own_reads_spend_no_budget(account: Account) -> None:
    # Given a spent budget
    for _ in range(15):
        account.lambda_client.get_event_source_mapping(UUID=account.uuid)
    # When the local system reads the mapping for its pollers, many times
    own = account.emulator.own_client("lambda", NO_RETRIES)
    for _ in range(40):
        own.get_event_source_mapping(UUID=account.uuid)
    # Then none is refused or counted as the account's; they are counted apart
    assert account.plane.calls == 15
    assert account.plane.bookkeeping_calls >= 40


def test_a_disable_lands_after_the_transition_and_pollers_poll_until_then(
    account: Account,
) -> None:
    # Given an enabled mapping
    own = account.emulator.own_client("lambda")
    # When the controller disables it
    answer = account.lambda_client.update_event_source_mapping(UUID=account.uuid, Enabled=False)
    # Then the answer and the account's reads say Disabling, while the pollers' own reads
    # still give the mapping in force: they keep polling
    assert answer["State"] == "Disabling"
    read = account.lambda_client.get_event_source_mapping(UUID=account.uuid)
    assert read["State"] == "Disabling"
    assert MappingState.from_mapping(own.get_event_source_mapping(UUID=account.uuid)).polling
    # When the transition's 30 s have passed
    account.clock.now += 30
    # Then the mapping is Disabled for everyone, and the pollers stop
    assert account.lambda_client.get_event_source_mapping(UUID=account.uuid)["State"] == "Disabled"
    seen = MappingState.from_mapping(own.get_event_source_mapping(UUID=account.uuid))
    assert not seen.polling


def test_an_update_while_one_is_in_progress_is_refused(account: Account) -> None:
    # Given a disable in progress
    account.lambda_client.update_event_source_mapping(UUID=account.uuid, Enabled=False)
    account.clock.now += 10
    # When another update comes before it lands
    with pytest.raises(ClientError) as refused:
        account.lambda_client.update_event_source_mapping(UUID=account.uuid, Enabled=True)
    # Then Lambda's answer is ResourceConflictException (HTTP 409), and the disable still lands
    assert error_code(refused) == "ResourceConflictException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    account.clock.now += 20
    assert account.lambda_client.get_event_source_mapping(UUID=account.uuid)["State"] == "Disabled"
    # and once it has, an enable is accepted and goes through Enabling
    answer = account.lambda_client.update_event_source_mapping(UUID=account.uuid, Enabled=True)
    assert answer["State"] == "Enabling"
    account.clock.now += 30
    assert account.lambda_client.get_event_source_mapping(UUID=account.uuid)["State"] == "Enabled"


def test_a_concurrency_change_is_updating_and_the_old_one_holds_until_it_lands(
    account: Account,
) -> None:
    # Given an enabled mapping at MaximumConcurrency 10
    own = account.emulator.own_client("lambda")
    account.lambda_client.update_event_source_mapping(
        UUID=account.uuid, ScalingConfig={"MaximumConcurrency": 10}
    )
    account.clock.now += 30
    # When the controller lowers it to 3
    answer = account.lambda_client.update_event_source_mapping(
        UUID=account.uuid, ScalingConfig={"MaximumConcurrency": 3}
    )
    # Then it is Updating, and the pollers keep 10 until it lands, then 3
    assert answer["State"] == "Updating"
    assert MappingState.from_mapping(own.get_event_source_mapping(UUID=account.uuid)) == (
        MappingState("Enabled", True, 10)
    )
    account.clock.now += 30
    assert MappingState.from_mapping(own.get_event_source_mapping(UUID=account.uuid)) == (
        MappingState("Enabled", True, 3)
    )
