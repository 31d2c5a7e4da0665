"""Lambda's control plane made as real as the breaker needs it, in front of moto's Lambda.

moto answers every Lambda API at once and without limit, and switches an event source mapping
the instant it is asked. A controller proven against that would meet three things in AWS it
never met locally; this WSGI layer, in front of moto's application, gives it them:

- One account-wide budget. "Control plane API requests (excludes invocation, GetFunction, and
  GetPolicy requests): 15 requests per second", shared by every caller of the account and
  Region and not adjustable; GetFunction has 100 and GetPolicy 15 of their own (Lambda
  Developer Guide, "Lambda quotas", API requests). AWS documents no burst: here each budget is
  a token bucket that holds one second's worth (`burst`), refilled continuously. A request
  beyond it is answered as Lambda answers it: HTTP 429, TooManyRequestsException.
- Transitions that take time. UpdateEventSourceMapping answers at once with State Disabling,
  Enabling or Updating; the mapping reaches Disabled or Enabled (and its pollers honour the
  change) only `transition_seconds` later. AWS documents the states (GetEventSourceMapping,
  State: Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting) but not how long
  they last. An update while one is in progress is refused with HTTP 409,
  ResourceConflictException ("The resource already exists, or another operation is in
  progress").
- Invoke is data plane: `POST /2015-03-31/functions/{name}/invocations` goes to the local
  execution environments (see local.lambda_service.invoke_router) when a router knows the
  function, and never spends the control-plane budget.

Every account request is counted (`calls`): the run's summary shows it as control_plane_calls.
The local system's own bookkeeping (the pollers' reading of the mapping, the deploy's reads)
identifies itself with a header (BOOKKEEPING_HEADER, set by Emulator.own_client): it spends no
budget, is counted apart (`bookkeeping_calls`), and reads the configuration the pollers must
honour, the one in force until a transition lands.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from moto.backends import get_backend

logger = logging.getLogger(__name__)

ACCOUNT_BUDGET_PER_SECOND = 15.0
GET_FUNCTION_BUDGET_PER_SECOND = 100.0
GET_POLICY_BUDGET_PER_SECOND = 15.0
# AWS does not document how long a mapping takes to settle; the study covers up to 60 s.
DEFAULT_TRANSITION_SECONDS = 5.0
# WSGI's spelling of the header Emulator.own_client sends.
BOOKKEEPING_HEADER = "X-Local-Bookkeeping"
_BOOKKEEPING_ENVIRON = "HTTP_" + BOOKKEEPING_HEADER.upper().replace("-", "_")

_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
_MAPPING = re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)/?$")
_MAPPINGS = re.compile(r"^/2015-03-31/event-source-mappings/?$")
_GET_FUNCTION = re.compile(r"^/2015-03-31/functions/[^/]+/?$")
_GET_POLICY = re.compile(r"^/2015-03-31/functions/[^/]+/policy/?$")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class TokenBucket:
    """`rate_per_second` tokens a second, at most `capacity` held; a request takes one."""

    def __init__(self, rate_per_second: float, capacity: float, clock: Callable[[], float]) -> None:
        self.rate_per_second = rate_per_second
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(
                self.capacity, self._tokens + (now - self._at) * self.rate_per_second
            )
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


@dataclass(frozen=True)
class Answer:
    """An HTTP answer the layer gives itself instead of moto."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class InvocationRouter(Protocol):
    """Runs Invoke requests for the functions it knows.

    local.lambda_service.invoke_router.InvokeRouter: the Lambda side, which this room may not
    import, so it is named by its shape."""

    def invoke(
        self, function: str, payload: bytes, invocation_type: str, qualifier: str | None
    ) -> Answer | None:
        """The answer, or None for a function it does not run (moto answers then)."""
        ...


@dataclass
class _Transition:
    uuid: str
    # Disabling, Enabling or Updating, until `lands_at`.
    state: str
    lands_at: float
    # GetEventSourceMapping's answer before the update: what the pollers honour until it lands.
    in_force: dict[str, Any]


@dataclass(frozen=True)
class ControlPlaneRequest:
    """One account request, as counted: when, which operation, and whether it was refused."""

    at: float
    operation: str
    status: int


def lambda_error(status: int, error_type: str, message: str) -> Answer:
    """An error as Lambda's REST API sends it: the type in x-amzn-ErrorType and the body."""
    body = json.dumps({"Type": "User", "Message": message, "message": message}).encode()
    return Answer(
        status,
        body,
        {"Content-Type": "application/json", "x-amzn-ErrorType": error_type},
    )


class LambdaControlPlane:
    """The WSGI layer; `wrap` puts it in front of moto's application."""

    def __init__(
        self,
        *,
        budget_per_second: float = ACCOUNT_BUDGET_PER_SECOND,
        burst: float | None = None,
        transition_seconds: float = DEFAULT_TRANSITION_SECONDS,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transition_seconds = transition_seconds
        self.region = region
        self.account_id = account_id
        self.clock = clock
        self._budgets = {
            "account": TokenBucket(budget_per_second, burst or budget_per_second, clock),
            "GetFunction": TokenBucket(
                GET_FUNCTION_BUDGET_PER_SECOND, GET_FUNCTION_BUDGET_PER_SECOND, clock
            ),
            "GetPolicy": TokenBucket(
                GET_POLICY_BUDGET_PER_SECOND, GET_POLICY_BUDGET_PER_SECOND, clock
            ),
        }
        self.router: InvocationRouter | None = None
        self._transitions: dict[str, _Transition] = {}
        self._lock = threading.Lock()
        self._requests: list[ControlPlaneRequest] = []
        self._bookkeeping_calls = 0

    # What the run reports -------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Account requests to Lambda's control plane, refused ones included."""
        with self._lock:
            return len(self._requests)

    @property
    def throttled(self) -> int:
        with self._lock:
            return sum(1 for r in self._requests if r.status == 429)

    @property
    def bookkeeping_calls(self) -> int:
        with self._lock:
            return self._bookkeeping_calls

    def requests(self) -> list[ControlPlaneRequest]:
        with self._lock:
            return list(self._requests)

    def peak_per_second(self) -> int:
        """The most account requests in any one second (by whole seconds of the clock)."""
        per_second: dict[int, int] = {}
        for request in self.requests():
            second = int(request.at)
            per_second[second] = per_second.get(second, 0) + 1
        return max(per_second.values(), default=0)

    # The layer --------------------------------------------------------------------------------

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def layered(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if "/lambda/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
                return app(environ, start_response)
            answer = self._handle(app, environ)
            start_response(
                _status_line(answer.status),
                [*answer.headers.items(), ("Content-Length", str(len(answer.body)))],
            )
            return [answer.body]

        return layered

    def _handle(self, app: WsgiApp, environ: dict[str, Any]) -> Answer:
        path = unquote(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "GET")
        body = _read_body(environ)
        invoke = _INVOKE.match(path)
        if invoke is not None and method == "POST":
            return self._invoke(app, environ, invoke["function"], body)
        bookkeeping = bool(environ.get(_BOOKKEEPING_ENVIRON))
        operation = _operation(method, path)
        if bookkeeping:
            with self._lock:
                self._bookkeeping_calls += 1
        else:
            allowed = self._budgets[_budget_of(path, method)].take()
            answer = (
                None if allowed else lambda_error(429, "TooManyRequestsException", "Rate exceeded")
            )
            if answer is not None:
                self._count(operation, 429)
                logger.info(
                    "control-plane request throttled", extra={"fields": {"operation": operation}}
                )
                return answer
        self._land_due()
        mapping = _MAPPING.match(path)
        if mapping is not None and method == "PUT":
            answer = self._update_mapping(app, environ, mapping["uuid"], body)
        else:
            answer = self._with_states(_forward(app, environ, body), bookkeeping)
        if not bookkeeping:
            self._count(operation, answer.status)
        return answer

    def _count(self, operation: str, status: int) -> None:
        with self._lock:
            self._requests.append(ControlPlaneRequest(self.clock(), operation, status))

    # Invoke -----------------------------------------------------------------------------------

    def _invoke(self, app: WsgiApp, environ: dict[str, Any], function: str, body: bytes) -> Answer:
        if self.router is not None:
            query = dict(
                part.split("=", 1)
                for part in environ.get("QUERY_STRING", "").split("&")
                if "=" in part
            )
            answer = self.router.invoke(
                function,
                body,
                environ.get("HTTP_X_AMZ_INVOCATION_TYPE", "RequestResponse"),
                query.get("Qualifier"),
            )
            if answer is not None:
                return answer
        return _forward(app, environ, body)

    # Event source mappings ----------------------------------------------------------------------

    def transition_of(self, uuid: str) -> str | None:
        """The transitional state of a mapping now, or None once settled."""
        self._land_due()
        with self._lock:
            transition = self._transitions.get(uuid)
            return transition.state if transition is not None else None

    def _land_due(self) -> None:
        now = self.clock()
        with self._lock:
            for uuid in [u for u, t in self._transitions.items() if t.lands_at <= now]:
                landed = self._transitions.pop(uuid)
                logger.info(
                    "event source mapping transition landed",
                    extra={"fields": {"uuid": uuid, "was": landed.state}},
                )

    def _update_mapping(
        self, app: WsgiApp, environ: dict[str, Any], uuid: str, body: bytes
    ) -> Answer:
        with self._lock:
            in_progress = self._transitions.get(uuid)
        if in_progress is not None:
            return lambda_error(
                409,
                "ResourceConflictException",
                f"An update is already in progress for the event source mapping {uuid} "
                f"(State {in_progress.state})",
            )
        before = self._configuration(uuid)
        answer = _forward(app, environ, body)
        # Lambda answers an update with 202 Accepted: it lands later.
        if not 200 <= answer.status < 300 or before is None:
            return answer
        changes = json.loads(body or b"{}")
        was_enabled = before.get("State") == "Enabled"
        if "Enabled" in changes and bool(changes["Enabled"]) != was_enabled:
            state = "Enabling" if changes["Enabled"] else "Disabling"
        else:
            state = "Updating"
        with self._lock:
            self._transitions[uuid] = _Transition(
                uuid, state, self.clock() + self.transition_seconds, before
            )
        document = json.loads(answer.body)
        document["State"] = state
        return Answer(answer.status, json.dumps(document).encode(), answer.headers)

    def _configuration(self, uuid: str) -> dict[str, Any] | None:
        backend = get_backend("lambda")[self.account_id][self.region]
        mapping = backend.get_event_source_mapping(uuid)
        if mapping is None:
            return None
        # As it goes over the wire: the same JSON types an answer carries.
        copied: dict[str, Any] = json.loads(json.dumps(mapping.get_configuration(), default=str))
        return copied

    def _with_states(self, answer: Answer, bookkeeping: bool) -> Answer:
        """Mappings in transition as Lambda shows them: to an account caller the new settings
        with the transitional State; to the pollers (bookkeeping) the settings still in force."""
        with self._lock:
            transitions = dict(self._transitions)
        if not transitions or not 200 <= answer.status < 300 or not answer.body.startswith(b"{"):
            return answer
        document = json.loads(answer.body)

        def shown(mapping: dict[str, Any]) -> dict[str, Any]:
            transition = transitions.get(str(mapping.get("UUID")))
            if transition is None:
                return mapping
            if bookkeeping:
                return {**transition.in_force, "LocalTransition": transition.state}
            return {**mapping, "State": transition.state}

        if "EventSourceMappings" in document:
            document["EventSourceMappings"] = [shown(m) for m in document["EventSourceMappings"]]
        elif "UUID" in document:
            document = shown(document)
        else:
            return answer
        return Answer(answer.status, json.dumps(document, default=str).encode(), answer.headers)


def _budget_of(path: str, method: str) -> str:
    if method == "GET" and _GET_POLICY.match(path):
        return "GetPolicy"
    if method == "GET" and _GET_FUNCTION.match(path):
        return "GetFunction"
    return "account"


def _operation(method: str, path: str) -> str:
    """A readable name for the counted request (the REST path's shape, not the API's name)."""
    if _MAPPING.match(path):
        return {"GET": "GetEventSourceMapping", "PUT": "UpdateEventSourceMapping"}.get(
            method, f"{method} event-source-mapping"
        )
    if _MAPPINGS.match(path):
        return "ListEventSourceMappings" if method == "GET" else "CreateEventSourceMapping"
    return f"{method} {path}"


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    return body


def _forward(app: WsgiApp, environ: dict[str, Any], body: bytes) -> Answer:
    """moto's answer to the request, whole."""
    forwarded = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = {k: v for k, v in headers if k.lower() != "content-length"}

    chunks = app(forwarded, start_response)
    try:
        content = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return Answer(captured["status"], content, captured["headers"])


def _status_line(status: int) -> str:
    reasons = {
        200: "OK",
        202: "Accepted",
        204: "No Content",
        400: "Bad Request",
        404: "Not Found",
        409: "Conflict",
        429: "Too Many Requests",
        500: "Internal Server Error",
    }
    return f"{status} {reasons.get(status, 'Status')}"
