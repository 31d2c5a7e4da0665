"""The consumer's settings: parsed once from the environment, validated, immutable. The breaker
controller parses them too: its probe sends a message exactly as the consumer would.

Every problem is reported at once, naming the variable, so a misconfigured deployment is fixed in
one pass instead of one error per cold start.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import jmespath
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from shared.backoff import MAX_VISIBILITY_TIMEOUT_SECONDS, BackoffPolicy, BackoffStrategy
from shared.breaker_policy.rules import TripRules
from shared.breaker_policy.settings import rules_from_environ
from shared.errors import ConfigurationError

HTTP_METHODS = ("POST", "PUT", "PATCH")
# Settings without a default that may be left unset.
_OPTIONAL = frozenset(
    {
        "SOURCE_QUEUE_RETENTION_SECONDS",
        "DOWNSTREAM_AUTH_SECRET_ARN",
        "IDEMPOTENCY_TABLE_NAME",
        "BREAKER_CONTROLLER_FUNCTION",
    }
)
# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_SECRET_ARN = re.compile(
    r"arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:[0-9]{12}:(secret:|parameter/)\S+"
)


@dataclass(frozen=True)
class Config:
    downstream_url: str
    dead_letter_queue_url: str
    downstream_method: str = "POST"
    downstream_timeout_seconds: float = 10.0
    backoff_base_seconds: int = 30
    backoff_jitter_seconds: int = 60
    backoff_max_seconds: int = MAX_VISIBILITY_TIMEOUT_SECONDS
    max_receive_count: int = 10
    backoff_strategy: BackoffStrategy = BackoffStrategy.ADDITIVE_JITTER
    non_retryable_status_codes: frozenset[int] = frozenset()
    # Where the downstream's authentication header's value is kept (a Secrets Manager secret or
    # an SSM parameter ARN); None sends no such header.
    downstream_auth_secret_arn: str | None = None
    downstream_auth_header: str = "Authorization"
    downstream_auth_cache_seconds: int = 300
    # Idempotent delivery: the DynamoDB table's name (None: off), the JMESPath of the key in
    # {"messageId": ..., "body": ...}, and how long an outcome is remembered.
    idempotency_table_name: str | None = None
    idempotency_key_jmespath: str = "messageId"
    idempotency_ttl_seconds: int = 86_400
    # Records of a batch delivered at once; 1 delivers them one after another.
    delivery_concurrency: int = 50
    # The source queue's MessageRetentionPeriod; None when not configured (no expiry check).
    source_queue_retention_seconds: int | None = None
    # The circuit breaker (consumer.breaker): this environment fails fast on its own verdict
    # and reports to the controller, the function named here (name or ARN). Without it the
    # breaker is off, as it is with BREAKER_ENABLED=false.
    breaker_enabled: bool = False
    breaker_controller_function: str | None = None
    breaker_rules: TripRules = field(default_factory=TripRules)

    @property
    def backoff_policy(self) -> BackoffPolicy:
        return BackoffPolicy(
            base_seconds=self.backoff_base_seconds,
            jitter_seconds=self.backoff_jitter_seconds,
            max_seconds=self.backoff_max_seconds,
            max_receive_count=self.max_receive_count,
            strategy=self.backoff_strategy,
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Config:
        problems: list[str] = []

        def read[V](name: str, parse: Callable[[str], V], default: V | None = None) -> V | None:
            """The parsed setting, its default when unset (None: required), or a problem."""
            raw = environ.get(name, "").strip()
            if not raw:
                if default is None and name not in _OPTIONAL:
                    problems.append(f"{name} is required")
                return default
            try:
                return parse(raw)
            except ValueError as exc:
                # A URL may carry credentials: the error shows it without them.
                shown = redacted_url(raw) if name.endswith("_URL") else raw
                problems.append(f"{name}={shown!r}: {exc}")
                return default

        rules = rules_from_environ(environ, problems)
        non_retryable = read("NON_RETRYABLE_STATUS_CODES", _status_codes, frozenset[int]())
        config_values = {
            "downstream_url": read("DOWNSTREAM_URL", _downstream_url),
            "dead_letter_queue_url": read("DEAD_LETTER_QUEUE_URL", _http_url),
            "downstream_method": read("DOWNSTREAM_METHOD", _http_method, "POST"),
            "downstream_timeout_seconds": read(
                "DOWNSTREAM_TIMEOUT_SECONDS", _bounded(float, 0.1, 900.0), 10.0
            ),
            "backoff_base_seconds": read(
                "BACKOFF_BASE_SECONDS", _bounded(int, 0, MAX_VISIBILITY_TIMEOUT_SECONDS), 30
            ),
            "backoff_jitter_seconds": read(
                "BACKOFF_JITTER_SECONDS", _bounded(int, 1, MAX_VISIBILITY_TIMEOUT_SECONDS), 60
            ),
            "backoff_max_seconds": read(
                "BACKOFF_MAX_SECONDS",
                _bounded(int, 0, MAX_VISIBILITY_TIMEOUT_SECONDS),
                MAX_VISIBILITY_TIMEOUT_SECONDS,
            ),
            "max_receive_count": read("MAX_RECEIVE_COUNT", _bounded(int, 1, 1000), 10),
            "backoff_strategy": read(
                "BACKOFF_STRATEGY", _backoff_strategy, BackoffStrategy.ADDITIVE_JITTER
            ),
            "non_retryable_status_codes": non_retryable,
            "downstream_auth_secret_arn": read("DOWNSTREAM_AUTH_SECRET_ARN", _secret_arn),
            "downstream_auth_header": read("DOWNSTREAM_AUTH_HEADER", _header_name, "Authorization"),
            "downstream_auth_cache_seconds": read(
                "DOWNSTREAM_AUTH_CACHE_SECONDS", _bounded(int, 0, 3600), 300
            ),
            "idempotency_table_name": read("IDEMPOTENCY_TABLE_NAME", str),
            "idempotency_key_jmespath": read("IDEMPOTENCY_KEY_JMESPATH", _jmespath, "messageId"),
            "idempotency_ttl_seconds": read(
                "IDEMPOTENCY_TTL_SECONDS", _bounded(int, 60, 1_209_600), 86_400
            ),
            "delivery_concurrency": read("DELIVERY_CONCURRENCY", _bounded(int, 1, 100), 50),
            "source_queue_retention_seconds": read(
                "SOURCE_QUEUE_RETENTION_SECONDS", _bounded(int, 60, 1_209_600)
            ),
            "breaker_enabled": read("BREAKER_ENABLED", _boolean, False),
            "breaker_controller_function": read("BREAKER_CONTROLLER_FUNCTION", str),
            "breaker_rules": rules,
        }
        both = sorted(rules.pause_status_codes & (non_retryable or frozenset()))
        if both:
            # A paused status must keep its message for the credentials' return; a
            # non-retryable one dead-letters it at once: a status cannot be both.
            problems.append(
                f"NON_RETRYABLE_STATUS_CODES and BREAKER_PAUSE_STATUS_CODES both hold {both}: "
                "a status either pauses delivery or dead-letters its message"
            )
        if config_values["backoff_strategy"] != BackoffStrategy.ADDITIVE_JITTER and (
            config_values["backoff_base_seconds"] == 0
        ):
            # Both strategies scale the base: with 0 every delay is 0 and each retry would come
            # back at once, spending the receive count in seconds.
            problems.append(
                f"BACKOFF_BASE_SECONDS=0: the {config_values['backoff_strategy']} strategy "
                "needs a base of at least 1"
            )
        if problems:
            raise ConfigurationError("invalid function configuration: " + "; ".join(problems))
        return cls(**config_values)  # type: ignore[arg-type]


def redacted_url(url: str) -> str:
    """The URL without its userinfo, query string and fragment: what logs and errors may show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _http_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an absolute http:// or https:// URL")
    try:
        # What the HTTP client will make of it: a host it cannot parse or a port beyond 65535
        # would otherwise fail every delivery instead of the configuration.
        parse_url(raw)
    except LocationParseError:
        # Its message quotes the URL, credentials included.
        raise ValueError(
            "its host or port cannot be parsed (a host name of letters, digits, '-' and '.', "
            "or an IP address; a port from 0 to 65535)"
        ) from None
    return raw


# The hosts plain http:// may name, as template.yaml's DownstreamUrl AllowedPattern does:
# 127.0.0.0/8, localhost and [::1] (the local system and the tests), spelled as written.
_LOOPBACK_HOST_PORT = re.compile(
    r"(localhost|127(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|\[::1\])(:[0-9]{1,5})?"
)


def _downstream_url(raw: str) -> str:
    url = _http_url(raw)
    parts = urlsplit(url)
    # The host is what follows the last "@" (user:password@127.0.0.1 is loopback;
    # 127.0.0.1@example.com is not), as urllib and requests read it.
    host_port = parts.netloc.rpartition("@")[2]
    if parts.scheme != "https" and not _LOOPBACK_HOST_PORT.fullmatch(host_port):
        raise ValueError(
            "expected https://, or http:// to a loopback host (127.0.0.0/8, localhost, [::1])"
        )
    return url


def _boolean(raw: str) -> bool:
    value = raw.lower()
    if value not in ("true", "false"):
        raise ValueError("expected true or false")
    return value == "true"


def _jmespath(raw: str) -> str:
    try:
        jmespath.compile(raw)
    except jmespath.exceptions.JMESPathError:
        raise ValueError("expected a JMESPath expression") from None
    return raw


def _secret_arn(raw: str) -> str:
    if not _SECRET_ARN.fullmatch(raw):
        raise ValueError("expected the ARN of a Secrets Manager secret or an SSM parameter")
    return raw


def _header_name(raw: str) -> str:
    if not _HEADER_NAME.fullmatch(raw):
        raise ValueError("expected an HTTP header name")
    return raw


def _http_method(raw: str) -> str:
    method = raw.upper()
    if method not in HTTP_METHODS:
        raise ValueError(f"expected one of {', '.join(HTTP_METHODS)}")
    return method


def _backoff_strategy(raw: str) -> BackoffStrategy:
    try:
        return BackoffStrategy(raw)
    except ValueError:
        allowed = ", ".join(strategy.value for strategy in BackoffStrategy)
        raise ValueError(f"expected one of {allowed}") from None


def _bounded[N: (int, float)](kind: Callable[[str], N], low: N, high: N) -> Callable[[str], N]:
    def parse(raw: str) -> N:
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"expected {getattr(kind, '__name__', 'a number')}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a value from {low} to {high}")
        return value

    return parse


def _status_codes(raw: str) -> frozenset[int]:
    codes: set[int] = set()
    for item in raw.split(","):
        text = item.strip()
        if not (text.isascii() and text.isdigit() and 100 <= int(text) <= 599):
            raise ValueError(f"{text!r} is not an HTTP status code (100..599)")
        if 200 <= int(text) <= 299:
            raise ValueError(f"{text} is a success status; only failures can be non-retryable")
        codes.add(int(text))
    return frozenset(codes)
