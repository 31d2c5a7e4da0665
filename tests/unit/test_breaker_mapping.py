"""The controller's Lambda adapter: retries with jitter on TooManyRequestsException,
ResourceConflictException and ResourceInUseException only, each request counted, and the
mapping's states read."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from breaker_controller.errors import MappingUnavailable
from breaker_controller.mapping import EventSourceMapping, MappingView, RetryPolicy
from shared.breaker_policy.state import BreakerState


def refusal(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, "UpdateEventSourceMapping")


class ScriptedClient:
    """Answers GetEventSourceMapping from a script of errors, then the mapping."""

    def __init__(self, *errors: ClientError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def get_event_source_mapping(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {
            "UUID": "uuid-1",
            "State": "Disabled",
            "ScalingConfig": {"MaximumConcurrency": 3},
            "LastModified": datetime(2026, 12, 7, tzinfo=UTC),
        }


def adapter(client: ScriptedClient, sleeps: list[float]) -> EventSourceMapping:
    return EventSourceMapping(
        lambda: client,  # type: ignore[arg-type,return-value]
        "uuid-1",
        retry=RetryPolicy(attempts=3, base_s=0.25, cap_s=2.0),
        sleep=sleeps.append,
        rng=random.Random(1),
    )


@pytest.mark.parametrize(
    "code", ["TooManyRequestsException", "ResourceConflictException", "ResourceInUseException"]
)
def test_refusals_worth_retrying_are_retried_with_jitter(code: str) -> None:
    # Given two refusals, then an answer
    client = ScriptedClient(refusal(code), refusal(code))
    sleeps: list[float] = []
    mapping = adapter(client, sleeps)
    # When the mapping is read
    view = mapping.read()
    # Then it was asked three times, waiting a jittered, growing bound in between
    assert (client.calls, mapping.requests) == (3, 3)
    assert 0 <= sleeps[0] <= 0.25
    assert 0 <= sleeps[1] <= 0.5
    assert view == MappingView(
        "uuid-1", "Disabled", 3, datetime(2026, 12, 7, tzinfo=UTC).timestamp()
    )


def test_retries_are_bounded() -> None:
    client = ScriptedClient(*[refusal("TooManyRequestsException")] * 5)
    sleeps: list[float] = []
    with pytest.raises(MappingUnavailable, match="TooManyRequestsException"):
        adapter(client, sleeps).read()
    assert client.calls == 3


def test_other_refusals_are_not_retried() -> None:
    client = ScriptedClient(refusal("AccessDeniedException"))
    sleeps: list[float] = []
    with pytest.raises(MappingUnavailable, match="AccessDeniedException"):
        adapter(client, sleeps).read()
    assert (client.calls, sleeps) == (1, [])


@pytest.mark.parametrize(
    ("state", "concurrency", "breaker", "in_transition"),
    [
        ("Enabled", 10, BreakerState.CLOSED, False),
        ("Enabled", None, BreakerState.CLOSED, False),
        ("Enabled", 3, BreakerState.HALF_OPEN, False),
        ("Enabling", 3, BreakerState.HALF_OPEN, True),
        ("Updating", 10, BreakerState.CLOSED, True),
        ("Disabling", 10, BreakerState.OPEN, True),
        ("Disabled", 10, BreakerState.OPEN, False),
        ("Creating", 10, BreakerState.CLOSED, True),
    ],
)
def test_the_mappings_state_is_the_breakers(
    state: str, concurrency: int | None, breaker: BreakerState, in_transition: bool
) -> None:
    view = MappingView("uuid-1", state, concurrency)
    assert view.breaker_state(10) is breaker
    assert view.in_transition is in_transition
