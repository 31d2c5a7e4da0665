"""make schedule: ranges from the function's backoff module, the span, the retention warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import schedule
from benchmarks.template_parameters import SOURCE_TEMPLATE, load_template, parameter_defaults
from shared.backoff import BackoffPolicy, BackoffStrategy


def test_the_additive_jitter_schedule_adds_up_each_attempts_range() -> None:
    # Given the additive-jitter defaults: delay(n) = 2^n + 30 + [0, 59], 10 receives
    rows = schedule.attempts(BackoffPolicy())

    # Then every attempt but the last has the formula's range, and the spans are their sums
    assert [row.number for row in rows] == list(range(1, 11))
    for row in rows[:-1]:
        assert (row.min_delay_s, row.max_delay_s) == (2**row.number + 30, 2**row.number + 89)
    assert rows[-2].cumulative_min_s == sum(2**n + 30 for n in range(1, 10))
    assert rows[-2].cumulative_max_s == sum(2**n + 89 for n in range(1, 10))
    # ...and the final attempt waits 0: SQS dead-letters at the next receive
    assert (rows[-1].min_delay_s, rows[-1].max_delay_s) == (0, 0)
    assert rows[-1].cumulative_max_s == rows[-2].cumulative_max_s


def test_no_warning_when_the_schedule_fits_the_retention() -> None:
    # Given the defaults' schedule, When checked against 4 days' retention, Then there is no warning
    rows = schedule.attempts(BackoffPolicy())
    assert schedule.expiry_warning(rows, retention_s=4 * 86_400) is None


def test_warns_when_some_messages_would_expire_before_the_dlq() -> None:
    # Given full jitter, 20 receives: its longest span (about 5.2 days) exceeds 4 days
    policy = BackoffPolicy(strategy=BackoffStrategy.FULL_JITTER, max_receive_count=20)
    # When it is checked against 4 days' retention
    warning = schedule.expiry_warning(schedule.attempts(policy), retention_s=4 * 86_400)
    # Then the warning says some messages would expire, and names the retention
    assert warning is not None
    assert "some messages" in warning
    assert "4 d" in warning


def test_warns_that_every_message_would_expire_when_even_the_shortest_span_is_too_long() -> None:
    # Given 20 receives and a retention one second shorter than the shortest span
    policy = BackoffPolicy(max_receive_count=20)
    rows = schedule.attempts(policy)
    # When the schedule is checked
    warning = schedule.expiry_warning(rows, retention_s=rows[-2].cumulative_min_s - 1)
    # Then the warning says every message would expire
    assert warning is not None
    assert "every message" in warning


def test_a_single_receive_has_no_span() -> None:
    # Given a single receive, When its schedule is built, Then it has one row and never warns
    rows = schedule.attempts(BackoffPolicy(max_receive_count=1))
    assert len(rows) == 1
    assert schedule.expiry_warning(rows, retention_s=60) is None


def test_defaults_come_from_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the template whose MaxReceiveCount default is 4
    text = SOURCE_TEMPLATE.read_text()
    marker = "  MaxReceiveCount:\n    Type: Number\n    Default: 10\n"
    assert marker in text
    template = tmp_path / "template.yaml"
    template.write_text(text.replace(marker, marker.replace("Default: 10", "Default: 4")))

    # When the schedule is printed for it
    assert schedule.main([f"--template={template}"]) == 0

    # Then it has 4 attempts, the last one final
    out = capsys.readouterr().out
    assert "MaxReceiveCount=4" in out
    assert "| 4 | 0 (final attempt) |" in out
    assert "| 5 |" not in out


def test_flags_override_the_template_and_the_warning_is_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given flags for full jitter, 20 receives and 4 days' retention
    argv = ["--strategy=full-jitter", "--max-receive-count=20", "--retention-seconds=345600"]
    # When the schedule is printed
    assert schedule.main(argv) == 0
    # Then the flags' values are used, said to override the template, and the warning is printed
    out = capsys.readouterr().out
    assert "BackoffStrategy=full-jitter" in out
    assert "overridden by flags" in out
    assert "| 19 | 0 s | 43200 s |" in out
    assert "WARNING: the span to the last attempt" in out


@pytest.mark.parametrize(
    "argv", [["--strategy=exponential"], ["--max-receive-count=0"], ["--jitter-seconds=0"]]
)
def test_invalid_flags_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    # Given an invalid flag, When the schedule is asked for, Then it exits with a usage error
    with pytest.raises(SystemExit) as exited:
        schedule.main(argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_a_span_whose_ends_read_the_same_is_named_once() -> None:
    # Given a schedule whose shortest and longest spans round to the same duration (20 receives)
    defaults = parameter_defaults(load_template(SOURCE_TEMPLATE))
    rendered = schedule.render({**defaults, "MaxReceiveCount": 20}, "test")
    # When it is rendered, Then the span reads once, not "2.8 d to 2.8 d"
    assert "(attempt 20): 2.8 d," in rendered
