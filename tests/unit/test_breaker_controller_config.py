"""The controller's settings: what it needs from the template, and each problem named at once."""

from __future__ import annotations

import pytest

from breaker_controller.config import ControllerConfig
from shared.breaker_policy.rules import TripRules
from shared.errors import ConfigurationError

ENVIRONMENT = {
    "EVENT_SOURCE_MAPPING_UUID": "a1b2c3d4-0000-4000-8000-000000000001",
    "CONSUMER_FUNCTION_NAME": "stack-ConsumerFunction-abc",
    "SOURCE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stack-source",
    "SOURCE_QUEUE_RETENTION_SECONDS": "345600",
    "MAXIMUM_CONCURRENCY": "10",
    "BREAKER_ENABLED": "true",
    "BREAKER_PROBE_URL": "",
    "DOWNSTREAM_URL": "https://downstream.example.com/messages",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/stack-dlq",
}


def test_the_templates_environment_is_read() -> None:
    config = ControllerConfig.from_environ(ENVIRONMENT)
    assert config.mapping_uuid == ENVIRONMENT["EVENT_SOURCE_MAPPING_UUID"]
    assert config.probe_url is None
    settings = config.settings
    assert (settings.enabled, settings.configured_concurrency) == (True, 10)
    assert settings.max_open_s == 345_600 // 4
    assert settings.rules == TripRules()
    # ...and the probe sends messages as the consumer would: its delivery settings
    assert config.delivery.downstream_url == ENVIRONMENT["DOWNSTREAM_URL"]


def test_every_problem_is_named_at_once() -> None:
    environ = {
        **ENVIRONMENT,
        "EVENT_SOURCE_MAPPING_UUID": "",
        "MAXIMUM_CONCURRENCY": "1",
        "BREAKER_FAILURE_PERCENT": "0",
        "DOWNSTREAM_URL": "",
    }
    with pytest.raises(ConfigurationError) as raised:
        ControllerConfig.from_environ(environ)
    message = str(raised.value)
    for name in (
        "EVENT_SOURCE_MAPPING_UUID",
        "MAXIMUM_CONCURRENCY",
        "BREAKER_FAILURE_PERCENT",
        "DOWNSTREAM_URL",
    ):
        assert name in message


def test_a_retention_without_room_is_refused_while_the_breaker_is_on() -> None:
    # Given a 120 s retention (the template's Rule refuses it; a hand-made stack might not)
    environ = {**ENVIRONMENT, "SOURCE_QUEUE_RETENTION_SECONDS": "120"}
    with pytest.raises(ConfigurationError, match="at least 480s"):
        ControllerConfig.from_environ(environ)
    # ...while with the breaker off the controller only restores the mapping: accepted
    off = ControllerConfig.from_environ({**environ, "BREAKER_ENABLED": "false"})
    assert off.settings.enabled is False
