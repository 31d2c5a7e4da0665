"""BACKOFF_STRATEGY: parsed into the backoff policy, refused with the allowed values named."""

from __future__ import annotations

import pytest

from shared.backoff import BackoffStrategy
from shared.config import Config
from shared.errors import ConfigurationError

REQUIRED = {
    "DOWNSTREAM_URL": "https://downstream.example.com/messages",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}


def test_strategy_defaults_to_additive_jitter() -> None:
    # Given no BACKOFF_STRATEGY, When the configuration is read, Then the policy is additive jitter
    assert Config.from_environ(REQUIRED).backoff_policy.strategy is BackoffStrategy.ADDITIVE_JITTER


@pytest.mark.parametrize("value", ["additive-jitter", "full-jitter", "decorrelated"])
def test_each_allowed_strategy_reaches_the_policy(value: str) -> None:
    # Given an allowed BACKOFF_STRATEGY with spaces around it, When the configuration is read
    config = Config.from_environ({**REQUIRED, "BACKOFF_STRATEGY": f" {value} "})

    # Then the backoff policy uses that strategy
    assert config.backoff_policy.strategy == value


@pytest.mark.parametrize("value", ["full_jitter", "seed", "exponential"])
def test_an_unknown_strategy_is_refused_naming_the_allowed_values(value: str) -> None:
    # Given an unknown BACKOFF_STRATEGY, When the configuration is read
    with pytest.raises(ConfigurationError) as raised:
        Config.from_environ({**REQUIRED, "BACKOFF_STRATEGY": value})

    # Then it is refused, naming the value and the allowed ones
    message = str(raised.value)
    assert f"BACKOFF_STRATEGY={value!r}" in message
    assert "expected one of additive-jitter, full-jitter, decorrelated" in message


@pytest.mark.parametrize("value", ["full-jitter", "decorrelated"])
def test_scaled_strategies_refuse_a_zero_base(value: str) -> None:
    # Given a strategy that multiplies the base, and a base of 0 (every delay would be 0)
    environ = {**REQUIRED, "BACKOFF_STRATEGY": value, "BACKOFF_BASE_SECONDS": "0"}

    # Then the configuration is refused, naming the variable and the strategy
    with pytest.raises(ConfigurationError, match=f"BACKOFF_BASE_SECONDS=0: the {value} strategy"):
        Config.from_environ(environ)


def test_the_additive_jitter_strategy_accepts_a_zero_base() -> None:
    # Given the default additive-jitter strategy and a base of 0 (the jitter still spreads delays)
    environ = {**REQUIRED, "BACKOFF_BASE_SECONDS": "0"}

    # When the configuration is read, Then the zero base is kept
    assert Config.from_environ(environ).backoff_policy.base_seconds == 0


def test_a_bad_strategy_is_reported_with_the_other_problems() -> None:
    # Given a bad strategy and another bad variable
    environ = {**REQUIRED, "BACKOFF_STRATEGY": "nope", "MAX_RECEIVE_COUNT": "0"}

    # When the configuration is read
    with pytest.raises(ConfigurationError) as raised:
        Config.from_environ(environ)

    # Then one error names both
    assert "BACKOFF_STRATEGY='nope'" in str(raised.value)
    assert "MAX_RECEIVE_COUNT='0'" in str(raised.value)
