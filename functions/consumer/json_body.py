"""Whether a message body is JSON the downstream can accept (RFC 8259, not Python's superset)."""

from __future__ import annotations

import json


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_error(text: str) -> str | None:
    """None when `text` is valid JSON, else why it is not."""
    try:
        # Python's json accepts NaN and Infinity; RFC 8259 and most downstreams do not.
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except ValueError as exc:
        return f"body is not valid JSON: {exc}"
    except RecursionError:
        return "body is not valid JSON: nested too deeply to parse"
    return None
