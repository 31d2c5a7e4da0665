"""`make invoke` with an event file that is not JSON names the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import invoke


def test_a_malformed_event_file_is_named_in_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event file that is not valid JSON
    event = tmp_path / "broken.json"
    event.write_text('{"Records": [')
    # When it is invoked, Then the command fails and names the file
    assert invoke.main([str(event)]) == 1
    assert f"error: {event} is not a JSON event" in capsys.readouterr().err
