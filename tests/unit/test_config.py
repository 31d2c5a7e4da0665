"""Configuration from the environment: defaults, validation, every problem named at once."""

from __future__ import annotations

import pytest

from shared.breaker_policy.rules import TripRules
from shared.config import Config
from shared.errors import ConfigurationError

REQUIRED = {
    "DOWNSTREAM_URL": "https://downstream.example.com/messages",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
}


def test_defaults_are_the_additive_jitter_formula() -> None:
    # Given only the required variables, When the configuration is read
    config = Config.from_environ(REQUIRED)

    # Then every optional setting has its documented default
    assert config.downstream_method == "POST"
    assert config.downstream_timeout_seconds == 10.0
    policy = config.backoff_policy
    assert (policy.base_seconds, policy.jitter_seconds, policy.max_seconds) == (30, 60, 43_200)
    assert policy.max_receive_count == 10
    assert config.non_retryable_status_codes == frozenset()


def test_values_are_parsed() -> None:
    # Given every optional variable set, with loose case and spacing, When the configuration is read
    config = Config.from_environ(
        {
            **REQUIRED,
            "DOWNSTREAM_METHOD": "put",
            "DOWNSTREAM_TIMEOUT_SECONDS": "2.5",
            "BACKOFF_BASE_SECONDS": "0",
            "BACKOFF_JITTER_SECONDS": "1",
            "BACKOFF_MAX_SECONDS": "900",
            "MAX_RECEIVE_COUNT": "3",
            "NON_RETRYABLE_STATUS_CODES": "400, 422,404",
        }
    )

    # Then each value is parsed and normalised
    assert config.downstream_method == "PUT"
    assert config.downstream_timeout_seconds == 2.5
    assert config.backoff_policy.max_seconds == 900
    assert config.max_receive_count == 3
    assert config.non_retryable_status_codes == {400, 404, 422}


def test_every_problem_is_reported_at_once() -> None:
    # Given an environment with a problem in nearly every variable and one required one missing,
    # When the configuration is read
    with pytest.raises(ConfigurationError) as raised:
        Config.from_environ(
            {
                "DOWNSTREAM_URL": "ftp://files.example.com",
                "BACKOFF_MAX_SECONDS": "50000",
                "BACKOFF_JITTER_SECONDS": "0",
                "MAX_RECEIVE_COUNT": "ten",
                "NON_RETRYABLE_STATUS_CODES": "404,201",
                "DOWNSTREAM_METHOD": "DELETE",
                "DOWNSTREAM_TIMEOUT_SECONDS": "nan",
            }
        )

    # Then one error names every problem, not just the first
    message = str(raised.value)
    for fragment in (
        "DOWNSTREAM_URL='ftp://files.example.com'",
        "DEAD_LETTER_QUEUE_URL is required",
        "BACKOFF_MAX_SECONDS='50000': expected a value from 0 to 43200",
        "BACKOFF_JITTER_SECONDS='0'",
        "MAX_RECEIVE_COUNT='ten': expected int",
        "201 is a success status",
        "DOWNSTREAM_METHOD='DELETE': expected one of POST, PUT, PATCH",
        "DOWNSTREAM_TIMEOUT_SECONDS='nan'",
    ):
        assert fragment in message


@pytest.mark.parametrize("codes", ["abc", "99", "600", "4O4", "400,,422"])
def test_status_codes_must_be_http_statuses(codes: str) -> None:
    # Given a NON_RETRYABLE_STATUS_CODES that is not a list of HTTP statuses,
    # When the configuration is read, Then it is refused, naming the variable
    with pytest.raises(ConfigurationError, match="NON_RETRYABLE_STATUS_CODES"):
        Config.from_environ({**REQUIRED, "NON_RETRYABLE_STATUS_CODES": codes})


def test_blank_values_take_the_default() -> None:
    # Given optional variables set but blank, When the configuration is read
    config = Config.from_environ({**REQUIRED, "NON_RETRYABLE_STATUS_CODES": "", "LOG": " "})

    # Then they take their defaults rather than being refused
    assert config.non_retryable_status_codes == frozenset()


def test_plain_http_downstream_is_refused_unless_loopback() -> None:
    # Given a downstream URL in plain http to a host on the network
    environ = {**REQUIRED, "DOWNSTREAM_URL": "http://downstream.example.com/messages"}
    # When the configuration is read, Then it is refused, naming the rule
    with pytest.raises(
        ConfigurationError,
        match=r"DOWNSTREAM_URL=.*expected https://, or http:// to a loopback host",
    ):
        Config.from_environ(environ)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/m", "http://localhost/m", "http://[::1]:1/m"]
)
def test_plain_http_to_loopback_is_accepted(url: str) -> None:
    # Given a plain-http downstream on a loopback host, When the configuration is read,
    # Then the URL is accepted as it is
    assert Config.from_environ({**REQUIRED, "DOWNSTREAM_URL": url}).downstream_url == url


def test_the_dead_letter_queue_url_keeps_whatever_scheme_sqs_returned() -> None:
    # Given a plain-http dead-letter queue URL on the network (queue URLs come from the service:
    # an SQS-compatible endpoint may well be plain http)
    environ = {**REQUIRED, "DEAD_LETTER_QUEUE_URL": "http://sqs.internal.example:9324/q/dlq"}

    # When the configuration is read, Then the URL is kept as it is
    assert Config.from_environ(environ).dead_letter_queue_url.startswith("http://")


def test_the_breaker_is_off_unless_switched_on() -> None:
    # Given an environment without the breaker's settings, Then it is off, at the study's rules
    config = Config.from_environ(REQUIRED)
    assert (config.breaker_enabled, config.breaker_controller_function) == (False, None)
    assert config.breaker_rules == TripRules()


def test_the_breakers_settings_are_parsed() -> None:
    # Given the breaker's settings as the template passes them
    config = Config.from_environ(
        {
            **REQUIRED,
            "BREAKER_ENABLED": "true",
            "BREAKER_CONTROLLER_FUNCTION": "breaker-1c2fa620-982a-11e3-aff7-50e2416294e0",
            "BREAKER_WINDOW_SECONDS": "120",
            "BREAKER_FAILURE_PERCENT": "80",
            "BREAKER_MINIMUM_FAILURES": "5",
            "BREAKER_WHOLE_BATCH_FAILURES": "2",
            "BREAKER_PAUSE_STATUS_CODES": "401",
        }
    )
    # Then each is read
    assert config.breaker_enabled is True
    assert config.breaker_controller_function == "breaker-1c2fa620-982a-11e3-aff7-50e2416294e0"
    assert config.breaker_rules == TripRules(
        window_s=120.0,
        failure_ratio=0.8,
        min_failures=5,
        whole_batch_failures=2,
        pause_status_codes=frozenset({401}),
    )


def test_an_empty_pause_list_pauses_on_nothing() -> None:
    # Given BREAKER_PAUSE_STATUS_CODES set to empty (the template's parameter left empty)
    config = Config.from_environ({**REQUIRED, "BREAKER_PAUSE_STATUS_CODES": ""})
    # Then no status pauses delivery
    assert config.breaker_rules.pause_status_codes == frozenset()


def test_bad_breaker_settings_are_named() -> None:
    # Given a bad value for each of the breaker's settings
    with pytest.raises(ConfigurationError) as raised:
        Config.from_environ(
            {
                **REQUIRED,
                "BREAKER_ENABLED": "yes",
                "BREAKER_WINDOW_SECONDS": "5",
                "BREAKER_FAILURE_PERCENT": "101",
                "BREAKER_MINIMUM_FAILURES": "0",
                "BREAKER_WHOLE_BATCH_FAILURES": "x",
                "BREAKER_PAUSE_STATUS_CODES": "401,429",
            }
        )
    # Then every one is named, in one error
    message = str(raised.value)
    for name in (
        "BREAKER_ENABLED",
        "BREAKER_WINDOW_SECONDS",
        "BREAKER_FAILURE_PERCENT",
        "BREAKER_MINIMUM_FAILURES",
        "BREAKER_WHOLE_BATCH_FAILURES",
        "BREAKER_PAUSE_STATUS_CODES",
    ):
        assert name in message


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@exa mple.com:99999/x",
        "https://user:pw@exa mple.com/x",
        "https://user:pw@example.com:99999/x",
    ],
)
def test_a_url_the_http_client_cannot_parse_fails_the_configuration(url: str) -> None:
    # Given a downstream URL whose host has a space or whose port is beyond 65535
    environ = {**REQUIRED, "DOWNSTREAM_URL": url}

    # When the configuration is read, Then it is refused at once (not at every delivery),
    # saying why without quoting the credentials
    with pytest.raises(ConfigurationError, match="host or port cannot be parsed") as refused:
        Config.from_environ(environ)
    assert "pw" not in str(refused.value)


def test_a_status_cannot_both_pause_and_dead_letter() -> None:
    # Given 401 both non-retryable and a pause status (the default pause list)
    with pytest.raises(ConfigurationError) as raised:
        Config.from_environ({**REQUIRED, "NON_RETRYABLE_STATUS_CODES": "400,401"})
    # Then the configuration is refused, naming both settings and the status
    message = str(raised.value)
    assert "NON_RETRYABLE_STATUS_CODES" in message
    assert "BREAKER_PAUSE_STATUS_CODES" in message
    assert "[401]" in message
