"""Validation: Brooker's 2015 contention experiment, re-run on this package's simulator core.

Model (aws-samples/aws-arch-backoff-simulator, src/backoff_simulator.py, as published):
- One row on an optimistic-concurrency (OCC) server, holding a version number.
- N clients start together at t = 0. Each reads the version, then writes with it; the write
  succeeds only if the version is still the one read (and bumps it), so of the clients that read
  the same version exactly one succeeds. Every write is a call; reads are not counted.
- Each message crosses the network in |Normal(10 ms, 2 ms)|, both ways, reads and writes alike.
- A client whose write failed waits the network delay plus backoff(attempt), attempt = 1, 2, ...,
  then reads again; it stops after its one successful write.
- Backoff base 5 ms, cap 2000 ms; the published figure averages 100 runs per client count.

The strategies are the study's own (benchmarks.strategies, i.e. the function's backoff module)
with milliseconds as the unit and integer draws, which at 1 ms resolution against a 10 ms network
changes nothing the comparison depends on. Decorrelated jitter regenerates each client's chain
from a source seeded by the client's id, as the consumer does with the message id; the published
simulator keeps the chain in the client instead, which draws from the same distribution.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from benchmarks.des import Simulation
from benchmarks.strategies import Strategy, strategies
from shared.backoff import BackoffPolicy

BASE_MS = 5
CAP_MS = 2000
NETWORK_MEAN_MS = 10.0
NETWORK_SD_MS = 2.0
# Brooker's clients retry until they succeed: no final attempt.
_NEVER_FINAL = 1 << 62
COMPARED = ("S1", "S2", "S3")


def contention_strategies() -> dict[str, Strategy]:
    policy = BackoffPolicy(base_seconds=BASE_MS, max_seconds=CAP_MS, max_receive_count=_NEVER_FINAL)
    every = strategies(policy)
    return {key: every[key] for key in COMPARED}


@dataclass(frozen=True)
class ContentionResult:
    strategy: str
    clients: int
    runs: int
    mean_calls: float
    mean_completion_ms: float


class _OccRun:
    """One run: N clients racing to update one row."""

    def __init__(self, clients: int, strategy: Strategy, run_id: str, rng: random.Random) -> None:
        self.sim = Simulation()
        self.strategy = strategy
        self.run_id = run_id
        self.rng = rng
        self.version = 0
        self.calls = 0
        self.read_versions = [0] * clients
        self.attempts = [0] * clients
        for client in range(clients):
            self.sim.schedule(self._network(), self._server_read, client)

    def _network(self) -> float:
        return abs(self.rng.normalvariate(NETWORK_MEAN_MS, NETWORK_SD_MS))

    def _server_read(self, client: int) -> None:
        self.read_versions[client] = self.version
        self.sim.schedule(self.sim.now + self._network(), self._client_read_response, client)

    def _client_read_response(self, client: int) -> None:
        self.sim.schedule(self.sim.now + self._network(), self._server_write, client)

    def _server_write(self, client: int) -> None:
        self.calls += 1
        if self.read_versions[client] == self.version:
            self.version += 1
            return  # the success reaches the client, which stops: nothing further to simulate
        self.sim.schedule(self.sim.now + self._network(), self._client_write_failed, client)

    def _client_write_failed(self, client: int) -> None:
        self.attempts[client] += 1
        backoff = self.strategy.visibility(
            self.attempts[client], f"{self.run_id}-{client}", None, self.rng
        )
        # None is "no backoff of its own" (S5); no compared strategy returns it.
        wait = self._network() + (backoff or 0)
        self.sim.schedule(self.sim.now + wait, self._server_read, client)

    def run(self) -> tuple[int, float]:
        # The published simulator's clock stops at the last success's reply; ours at the last
        # write, one network delay earlier: the same for every strategy.
        completion_ms = self.sim.run()
        return self.calls, completion_ms


def contention(
    strategy: Strategy, clients: int = 100, runs: int = 100, seed: int = 2015
) -> ContentionResult:
    total_calls = 0
    total_ms = 0.0
    for run in range(runs):
        rng = random.Random(f"{seed}-{strategy.key}-{run}")
        calls, completion_ms = _OccRun(clients, strategy, f"{seed}-{run}", rng).run()
        total_calls += calls
        total_ms += completion_ms
    return ContentionResult(strategy.key, clients, runs, total_calls / runs, total_ms / runs)
