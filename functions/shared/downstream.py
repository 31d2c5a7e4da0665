"""HTTP adapter for the downstream microservice: the only module that knows `requests`.

Every outcome other than a 2xx becomes a DownstreamFailure, so the rest of the consumer never
sees a library exception. A call is bounded as a whole, not only each socket read: a downstream
that trickles its answer is cut off at the call's deadline. Nothing of one delivery reaches
another: no cookies are kept, and at most a small part of an answer's body is read.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from types import TracebackType
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from shared.aws_dependencies import DependencyUnreachable, Reachability, client_config
from shared.config import redacted_url
from shared.deadline import Deadline
from shared.errors import DownstreamFailure, SecretUnavailable
from shared.observability import tracer

# An answer's body is read up to this (and then the connection is dropped): the consumer needs
# only the status and headers, and a huge body must not fill the function's memory.
MAX_BODY_BYTES = 64 * 1024
# A Retry-After of more digits than this is not a delay anyone meant; it is ignored.
_MAX_RETRY_AFTER_DIGITS = 9


@dataclass(frozen=True)
class ProbeResult:
    up: bool
    # What was asked and answered, for the log: the URL without credentials or query.
    detail: str


class SecretHeader:
    """The downstream's authentication header. Its value is read from Secrets Manager or SSM
    through Powertools' parameters utility and reused for `max_age_seconds`, so that a rotated
    secret is picked up without a deploy. The value goes in the header and nowhere else.

    The provider's client has bounded timeouts and retries (shared.aws_dependencies): an
    unreachable service (a VPC without its endpoint) fails a read within seconds, says so once,
    and is not asked again during the hold that follows."""

    def __init__(self, name: str, secret_arn: str, max_age_seconds: int) -> None:
        self.name = name
        self.secret_arn = secret_arn
        self.max_age_seconds = max_age_seconds
        self.service = "secretsmanager" if ":secretsmanager:" in secret_arn else "ssm"
        self.reachability = Reachability(self.service)
        self._provider: Any = None
        self._provider_lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        # Imported here: a function without an authentication secret never loads it.
        from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

        try:
            self.reachability.check()
        except DependencyUnreachable as exc:
            raise SecretUnavailable(
                f"could not read the downstream's authentication secret {self.secret_arn}: {exc}"
            ) from None
        try:
            if self.service == "secretsmanager":
                value = self._provided().get(self.secret_arn, max_age=self.max_age_seconds)
            else:
                value = self._provided().get(
                    self.secret_arn, decrypt=True, max_age=self.max_age_seconds
                )
        except parameters.exceptions.GetParameterError as exc:
            unreachable = self.reachability.failed(exc)
            # The library's message may quote the service's answer; ours names the ARN only.
            raise SecretUnavailable(
                f"could not read the downstream's authentication secret {self.secret_arn}"
                + (f": {self.service} unreachable" if unreachable else "")
            ) from None
        self.reachability.succeeded()
        text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
        if not _header_value_ok(text):
            # http.client would refuse it at every call with an error quoting the character
            # and its position: part of the secret, and its length. Refused here instead,
            # saying nothing of the value.
            raise SecretUnavailable(
                f"the downstream's authentication secret {self.secret_arn} cannot be sent in "
                "an HTTP header: its value must be latin-1 text without control characters "
                "(line breaks included) or surrounding spaces; fix the secret's value"
            )
        return {self.name: text}

    def _provided(self) -> Any:
        """The provider (its client made on first use, with the bounded settings); one per
        execution environment, so its cache is shared by the batch's threads."""
        with self._provider_lock:
            if self._provider is None:
                from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415

                provider = (
                    parameters.SecretsProvider
                    if self.service == "secretsmanager"
                    else parameters.SSMProvider
                )
                self._provider = provider(boto_config=client_config())
            return self._provider


def _header_value_ok(text: str) -> bool:
    """Whether http.client and requests send `text` as a header value as it is: latin-1
    (RFC 9110's field-vchar, obs-text, space and tab) and no leading or trailing whitespace."""
    return text == text.strip(" \t") and all(
        ch == "\t" or " " <= ch <= "~" or "\x80" <= ch <= "\xff" for ch in text
    )


class DownstreamClient:
    def __init__(
        self,
        url: str,
        method: str,
        timeout_seconds: float,
        pool_size: int = 10,
        secret_header: SecretHeader | None = None,
    ) -> None:
        self.url = url
        self.method = method
        self.timeout_seconds = timeout_seconds
        self.secret_header = secret_header
        # One session per execution environment: warm invocations reuse its pooled connections.
        self.session = requests.Session()
        # What requests takes from the environment is read once (environment_settings), not
        # at every call.
        self.session.trust_env = False
        self._environment = environment_settings(url)
        # Cookies a downstream sets would otherwise go out with every later message.
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        # One kept-alive connection per concurrent delivery.
        adapter = _GuardedAdapter(pool_maxsize=max(pool_size, 1))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # What every delivery sends alike, prepared once: Session.request would merge the
        # session's headers, cookies and settings and parse the URL again at every call, about
        # a fifth of a delivery's CPU (make bench-record-cpu). Each call sends a copy with its
        # own body and headers. The session keeps no cookies (above), so none are missed.
        self._prepared = self.session.prepare_request(
            requests.Request(
                method,
                url,
                headers={
                    "Content-Type": "application/json",
                    # Set at each call; named here so that the headers keep their order.
                    "Idempotency-Key": "",
                    # Bodies are read raw and bounded: a compressed one could expand.
                    "Accept-Encoding": "identity",
                },
                auth=self._environment["auth"],
            )
        )
        self._send_settings = {
            "proxies": self._environment["proxies"],
            "verify": self._environment["verify"],
        }

    @tracer.capture_method(capture_response=False)
    def deliver(self, body: str, idempotency_key: str, deadline: Deadline) -> int:
        """Send one message body; return the 2xx status or raise DownstreamFailure.

        Raises DeadlineExceeded, without calling, when too little of the invocation is left.
        """
        timeout_seconds = deadline.call_timeout_seconds(self.timeout_seconds)
        secret_headers = {} if self.secret_header is None else self.secret_header.headers()
        with _CallGuard(timeout_seconds) as guard:
            try:
                response = self.session.send(
                    self._request(body, {"Idempotency-Key": idempotency_key, **secret_headers}),
                    timeout=(timeout_seconds, timeout_seconds),
                    # A redirect is the downstream's failure to accept the message where
                    # configured; following it could POST the message where nobody intended.
                    allow_redirects=False,
                    stream=True,
                    **self._send_settings,
                )
            except requests.RequestException as exc:
                raise self._request_failure(exc, guard, timeout_seconds) from None
            status_code = response.status_code
            failure = None if 200 <= status_code <= 299 else self._status_failure(response)
            # The status decides; a body cut short by the deadline changes nothing.
            _discard_body(response)
        if failure is not None:
            raise failure
        return status_code

    def _request(self, body: str, headers: dict[str, str]) -> requests.PreparedRequest:
        """The prepared request with this call's body and headers; raises InvalidHeader, as
        Session.request does, for a header requests would refuse."""
        prepared = self._prepared.copy()
        for header in headers.items():
            requests.utils.check_header_validity(header)
        prepared.headers.update(headers)
        prepared.prepare_body(body.encode("utf-8"), None)
        return prepared

    @tracer.capture_method(capture_response=False)
    def probe(self, probe_url: str, deadline: Deadline) -> ProbeResult:
        """Whether the downstream is up, for the breaker controller's probe: a GET of the probe
        URL with the authentication header when one is configured (a health check behind the
        same gateway needs it; and after a credential failure, up must mean the credentials
        work again). Up is a 2xx and nothing else: a 4xx from a gateway whose backend is down,
        or from a POST-only service, is not up. Raises DeadlineExceeded or SecretUnavailable,
        never a library error.
        """
        timeout_seconds = deadline.call_timeout_seconds(self.timeout_seconds)
        headers = {} if self.secret_header is None else self.secret_header.headers()
        with _CallGuard(timeout_seconds) as guard:
            try:
                response = self.session.get(
                    probe_url,
                    headers={"Accept-Encoding": "identity", **headers},
                    timeout=(timeout_seconds, timeout_seconds),
                    allow_redirects=False,
                    stream=True,
                    **environment_settings(probe_url),
                )
            except requests.RequestException as exc:
                failure = self._request_failure(exc, guard, timeout_seconds, probe_url)
                return ProbeResult(up=False, detail=str(failure))
            status_code = response.status_code
            _discard_body(response)
        return ProbeResult(
            up=200 <= status_code <= 299,
            detail=f"GET {redacted_url(probe_url)} answered {status_code}",
        )

    def _status_failure(self, response: requests.Response) -> DownstreamFailure:
        return DownstreamFailure(
            f"downstream answered {response.status_code} {response.reason}",
            outcome="status",
            status_code=response.status_code,
            retry_after_seconds=retry_after_seconds(
                response.headers.get("Retry-After"), datetime.now(UTC)
            ),
        )

    def _request_failure(
        self,
        exc: requests.RequestException,
        guard: _CallGuard,
        timeout_seconds: float,
        url: str | None = None,
    ) -> DownstreamFailure:
        # Messages of requests' exceptions quote the URL; ours name it without credentials.
        where = redacted_url(self.url if url is None else url)
        if guard.expired or isinstance(exc, requests.Timeout):
            return DownstreamFailure(
                f"downstream {where} did not answer within {timeout_seconds:g}s",
                outcome="timeout",
            )
        if isinstance(exc, requests.ConnectionError):
            return DownstreamFailure(
                f"could not connect to the downstream {where}: {type(exc).__name__}",
                outcome="connection",
            )
        return DownstreamFailure(
            f"request to the downstream {where} failed: {type(exc).__name__}",
            outcome="request-error",
        )


def json_error(text: str) -> str | None:
    """None when `text` is JSON the downstream can accept (RFC 8259), else why it is not."""
    try:
        # Python's json accepts NaN and Infinity; RFC 8259 and most downstreams do not. Numbers
        # are checked, not converted: RFC 8259 sets no limit on their digits, and int() refuses
        # more than sys.get_int_max_str_digits() (4,300), a limit only the whole process can
        # change. The body is delivered as it came, so nothing needs their values.
        json.loads(text, parse_constant=_reject_constant, parse_int=_as_text, parse_float=_as_text)
    except json.JSONDecodeError as exc:
        return f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except ValueError as exc:
        return f"body is not valid JSON: {exc}"
    except RecursionError:
        return "body is not valid JSON: nested too deeply to parse"
    return None


def _as_text(number: str) -> str:
    return number


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def environment_settings(url: str) -> dict[str, Any]:
    """What requests would take from the process's environment for a call to `url`: the proxies
    (HTTPS_PROXY, NO_PROXY and the like), a CA bundle (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) and
    .netrc credentials, as requests' Session.merge_environment_settings and prepare_request
    read them. requests reads them at every call (the whole environment, and two stat calls
    for .netrc): a tenth of a delivery's CPU. A function's environment is fixed at its init.
    """
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return {
        "proxies": requests.utils.get_environ_proxies(url),
        "verify": verify,
        "auth": requests.utils.get_netrc_auth(url),
    }


def _discard_body(response: requests.Response) -> None:
    """Read at most MAX_BODY_BYTES of the body. A body read whole lets the connection go back
    to the pool; a longer one is cut off with its connection."""
    received = 0
    try:
        for chunk in response.iter_content(chunk_size=8192, decode_unicode=False):
            received += len(chunk)
            if received > MAX_BODY_BYTES:
                break
        else:
            return
    except requests.RequestException:
        pass
    response.close()


def retry_after_seconds(header_value: str | None, now: datetime) -> int | None:
    """Retry-After (RFC 9110 section 10.2.3), delta-seconds or an HTTP-date, as seconds from
    now; None when it is absent or unreadable.

    An unreadable value is ignored rather than treated as an error: it only ever raises the
    delay, and our own backoff already spaces the retry.
    """
    if header_value is None:
        return None
    value = header_value.strip()
    if value.isascii() and value.isdigit():
        return int(value) if len(value) <= _MAX_RETRY_AFTER_DIGITS else None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            # RFC 9110: HTTP-dates are always GMT, whether or not the zone is spelled out.
            when = when.replace(tzinfo=UTC)
        return max(0, math.ceil((when - now).total_seconds()))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


_current_guard = threading.local()


class _CallGuard:
    """The whole call's deadline: when it passes, the call's connection is shut down, which
    ends any read in progress (socket timeouts bound each read only, not their sum)."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self.finished = False
        self._seconds = seconds
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> _CallGuard:
        _current_guard.guard = self
        _WATCHDOG.watch(self, self._seconds)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with self._lock:
            # The connection may go back to the pool: the watchdog must not touch it any more.
            self.finished = True
            self._connection = None
        _current_guard.guard = None

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            if self.expired:
                self._abort()

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            self._abort()

    def _abort(self) -> None:
        sock = getattr(self._connection, "sock", None)
        if sock is None:
            return
        # The plain socket's shutdown, also under TLS: it leaves the TLS object alone. The
        # socket may be closing already.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread that expires every call's guard at its deadline: a timer thread per call
    would cost more CPU than a short call's own work."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, _CallGuard]] = []
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, guard: _CallGuard, seconds: float) -> None:
        with self._changed:
            due = time.monotonic() + seconds
            # The thread is woken only when this call is due before the one it waits for: a
            # wake-up per call would cost a thread switch per delivery.
            wake = not self._due or due < self._due[0][0]
            heapq.heappush(self._due, (due, next(self._order), guard))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="downstream-deadlines", daemon=True
                )
                self._thread.start()
            if wake:
                self._changed.notify()

    def _run(self) -> None:
        with self._changed:
            while True:
                # Finished calls are dropped when they come first, not searched for.
                while self._due and self._due[0][2].finished:
                    heapq.heappop(self._due)
                if not self._due:
                    self._changed.wait()
                    continue
                wait_seconds = self._due[0][0] - time.monotonic()
                if wait_seconds > 0:
                    self._changed.wait(wait_seconds)
                    continue
                heapq.heappop(self._due)[2].expire()


_WATCHDOG = _Watchdog()


def _attach_to_current_call(connection: HTTPConnection) -> None:
    guard: _CallGuard | None = getattr(_current_guard, "guard", None)
    if guard is not None:
        guard.attach(connection)


class _GuardedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_to_current_call(self)
        super().request(*args, **kwargs)


class _GuardedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_to_current_call(self)
        super().request(*args, **kwargs)


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    """requests' adapter with connections the call's guard can reach."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }
