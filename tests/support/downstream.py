"""A real HTTP downstream on 127.0.0.1 whose answers each test scripts."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from local.demo_downstream import simulated_answer

PATH = "/messages"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Set to block the request until the test releases it: a downstream that never answers
    # within the client's timeout, without any sleep in the test.
    hold: threading.Event | None = None


class Downstream:
    """Answers from a script, then `default`; a body's {"simulate": {"status": N}} overrides both.

    The simulate convention is the one the sample events in events/ use; the demo downstream of
    the local system reads it with the same function.
    """

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.script: deque[Answer] = deque()
        self.default = Answer()
        self.requests: list[dict[str, Any]] = []
        self._served_holds: list[Answer] = []
        self._lock = threading.Lock()
        server.expect_request(PATH).respond_with_handler(self._answer)

    @property
    def url(self) -> str:
        return str(self.server.url_for(PATH))

    def release_all(self) -> None:
        for answer in [*self.script, self.default, *self._served_holds]:
            if answer.hold is not None:
                answer.hold.set()

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    def _answer(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        with self._lock:
            self.requests.append(
                {"method": request.method, "headers": dict(request.headers), "body": body}
            )
            answer = self.script.popleft() if self.script else self.default
        answer = _simulated(body) or answer
        if answer.hold is not None:
            with self._lock:
                self._served_holds.append(answer)
            answer.hold.wait(timeout=30)
        return Response("{}", status=answer.status, headers=answer.headers)


def _simulated(body: str) -> Answer | None:
    simulated = simulated_answer(body)
    return None if simulated is None else Answer(status=simulated[0], headers=simulated[1])
