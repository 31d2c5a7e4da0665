"""The local run's deadline grows with the work it was given."""

from __future__ import annotations

from dataclasses import replace

from local.shared.run_deadline import RunWork, deadline_seconds, policy_from_parameters
from shared.backoff import BackoffPolicy, BackoffStrategy, delay_range_seconds

POLICY = BackoffPolicy(base_seconds=1, jitter_seconds=3, max_receive_count=4)
WORK = RunWork(
    messages=20,
    policy=POLICY,
    function_timeout_seconds=60,
    queue_visibility_timeout_seconds=360,
    concurrency=10,
)


def test_the_deadline_allows_for_the_schedule_the_visibility_timeout_and_every_attempt() -> None:
    # Given the demo's policy, When the deadline is computed
    deadline = deadline_seconds(WORK)

    # Then it covers the slowest schedule the policy allows, one visibility timeout (a message
    # hidden by a crashed or timed-out batch) and a function timeout for every attempt
    slowest_schedule = sum(delay_range_seconds(n, POLICY)[1] for n in range(1, 4))
    assert deadline >= slowest_schedule + 360 + 4 * 60


def test_the_deadline_grows_with_the_messages_the_outage_and_the_visibility_waits() -> None:
    # Given the deadline for the demo's work
    base = deadline_seconds(WORK)
    # When more messages, an outage or more visibility waits are added, Then it grows by them
    assert deadline_seconds(replace(WORK, messages=7_000)) > base + 300
    assert deadline_seconds(replace(WORK, outage_seconds=30)) == base + 30
    assert deadline_seconds(replace(WORK, visibility_waits=3)) == base + 2 * 360


def test_retry_after_is_a_lower_bound_of_every_delay_in_the_schedule() -> None:
    # Given the deadline for the demo's work
    base = deadline_seconds(WORK)
    # When a Retry-After of 20 s applies, Then the deadline grows
    # The demo's delays are at most 11 s; a Retry-After of 20 s lengthens each of the 3
    assert deadline_seconds(replace(WORK, retry_after_seconds=20)) > base + 3 * (20 - 11) - 0.01


def test_the_policy_is_read_from_the_deployed_parameters() -> None:
    # Given the deployed stack's backoff parameters (strings, as CloudFormation gives them)
    # When the policy is read from them
    policy = policy_from_parameters(
        {
            "BackoffBaseSeconds": "2",
            "BackoffJitterSeconds": "5",
            "BackoffMaxSeconds": "100",
            "MaxReceiveCount": "6",
            "BackoffStrategy": "full-jitter",
        }
    )
    # Then each reaches its field of the policy
    assert policy == BackoffPolicy(2, 5, 100, 6, BackoffStrategy.FULL_JITTER)


def test_a_circuit_breaker_adds_a_probe_period_half_open_and_its_slow_backlog() -> None:
    # Given the deadline for the demo's work without a breaker
    base = deadline_seconds(WORK)
    # When the deployment has the breaker's probe schedule (once a minute), Then the deadline
    # allows for the next probe after the outage, half-open's minute before it closes, and the
    # messages let through at half-open's lowest pace (2 environments, a call a second each)
    with_breaker = replace(WORK, probe_period_seconds=60, batch_size=10)
    assert deadline_seconds(with_breaker) == base + 60 + 60 + 20 / 2
