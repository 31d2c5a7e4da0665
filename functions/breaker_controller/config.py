"""The controller's settings, parsed once from its environment and validated; every problem is
reported at once. The downstream, backoff and authentication settings are the consumer's own,
parsed by the consumer's Config (shared.config): the probe sends a message exactly as the
consumer would."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from breaker_controller.controller import ControllerSettings
from shared.breaker_policy.settings import rules_from_environ
from shared.breaker_policy.timing import MIN_RETENTION_SECONDS_WITH_BREAKER
from shared.config import Config, redacted_url
from shared.errors import ConfigurationError

_REQUIRED = (
    "EVENT_SOURCE_MAPPING_UUID",
    "CONSUMER_FUNCTION_NAME",
    "SOURCE_QUEUE_URL",
    "MAXIMUM_CONCURRENCY",
    "SOURCE_QUEUE_RETENTION_SECONDS",
)


@dataclass(frozen=True)
class ControllerConfig:
    mapping_uuid: str
    consumer_function: str
    source_queue_url: str
    settings: ControllerSettings
    # GET this URL to probe (up: 2xx); None: probe with one real message.
    probe_url: str | None
    delivery: Config

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ControllerConfig:
        problems = [
            f"{name} is required" for name in _REQUIRED if not environ.get(name, "").strip()
        ]
        try:
            delivery = Config.from_environ(environ)
        except ConfigurationError as exc:
            problems.append(str(exc))
            delivery = None
        concurrency = _number(environ, "MAXIMUM_CONCURRENCY", 2, 1000, problems)
        retention = _number(environ, "SOURCE_QUEUE_RETENTION_SECONDS", 60, 1_209_600, problems)
        enabled = environ.get("BREAKER_ENABLED", "false").strip().lower() == "true"
        if enabled and retention is not None and retention < MIN_RETENTION_SECONDS_WITH_BREAKER:
            problems.append(
                f"SOURCE_QUEUE_RETENTION_SECONDS={retention}: the circuit breaker needs at least "
                f"{MIN_RETENTION_SECONDS_WITH_BREAKER}s (its longest hold is a quarter of it "
                "plus the backstop's 300s, and the sweep needs a minute more)"
            )
        rules = rules_from_environ(environ, problems)
        probe_url = environ.get("BREAKER_PROBE_URL", "").strip() or None
        if probe_url is not None and not probe_url.startswith(("https://", "http://")):
            problems.append(f"BREAKER_PROBE_URL={redacted_url(probe_url)!r}: expected a URL")
        if problems or delivery is None or concurrency is None or retention is None:
            raise ConfigurationError("invalid controller configuration: " + "; ".join(problems))
        return cls(
            mapping_uuid=environ["EVENT_SOURCE_MAPPING_UUID"].strip(),
            consumer_function=environ["CONSUMER_FUNCTION_NAME"].strip(),
            source_queue_url=environ["SOURCE_QUEUE_URL"].strip(),
            settings=ControllerSettings(
                enabled=enabled,
                configured_concurrency=concurrency,
                retention_seconds=retention,
                rules=rules,
            ),
            probe_url=probe_url,
            delivery=delivery,
        )


def _number(
    environ: Mapping[str, str], name: str, low: int, high: int, problems: list[str]
) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        problems.append(f"{name}={raw!r}: expected a whole number from {low} to {high}")
        return None
    return int(raw)
