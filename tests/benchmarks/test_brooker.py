"""Validation of the simulator core: Brooker's contention result at a reduced number of runs."""

from __future__ import annotations

import pytest

from benchmarks.brooker import contention, contention_strategies

STRATEGIES = contention_strategies()


@pytest.fixture(scope="module")
def hundred_clients() -> dict[str, float]:
    # 100 clients as published, 10 runs instead of 100: the ratio is stable well before that
    return {key: contention(s, clients=100, runs=10).mean_calls for key, s in STRATEGIES.items()}


def test_full_jitter_needs_well_under_six_tenths_of_the_calls_of_no_jitter(
    hundred_clients: dict[str, float],
) -> None:
    # Given the mean calls of a hundred contending clients per strategy
    # Then full jitter (S2) needs well under 0.6 of the calls of no jitter (S1); published: less
    # than half the calls of un-jittered exponential backoff
    assert hundred_clients["S2"] < 0.6 * hundred_clients["S1"]


def test_decorrelated_jitter_also_beats_no_jitter(hundred_clients: dict[str, float]) -> None:
    # Given the mean calls of a hundred contending clients per strategy
    # Then decorrelated jitter (S3) needs under 0.75 of the calls of no jitter (S1)
    assert hundred_clients["S3"] < 0.75 * hundred_clients["S1"]


def test_each_client_writes_successfully_once_so_calls_are_at_least_the_clients() -> None:
    # Given one client, When it writes, Then it never contends: one read, one write
    assert contention(STRATEGIES["S1"], clients=1, runs=3).mean_calls == 1.0
    # Given twenty clients, When they contend, Then every client still succeeds exactly once,
    # after failed writes
    result = contention(STRATEGIES["S2"], clients=20, runs=3)
    assert result.mean_calls > 20
    assert result.mean_completion_ms > 0


def test_contention_grows_with_the_number_of_clients() -> None:
    # Given ten and then fifty clients, When they contend
    few = contention(STRATEGIES["S1"], clients=10, runs=5).mean_calls
    many = contention(STRATEGIES["S1"], clients=50, runs=5).mean_calls
    # Then calls per client grow: each round lets exactly one of the contenders through
    assert many / 50 > few / 10
