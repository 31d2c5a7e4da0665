"""`make run`: the whole system locally, ending with a reconciliation and its summary line.

Template parameters come, from lowest to highest precedence, from the template's defaults, the
parameter_overrides of samconfig.toml's [ENV.deploy.parameters] (--config-env ENV; make run
ENV=prod), and this run's own flags: a flag given on the command line wins over ENV, a flag left
at its demo default gives way to ENV. ENV's DownstreamUrl is never called: the demo downstream
answers instead, as the run reconciles what it received.

Exit status: 0 when every message was delivered or dead-lettered; 1 when a message was lost;
3 when none was lost but some were still on the source queue when the run ended (unfinished);
5 when all were accounted for but a FIFO run delivered a message before an earlier one of its
group; 2 for invalid flags or parameters; 4 when the deployment failed; 130 when interrupted
(Ctrl-C) before the system was up. Ctrl-C once it is up stops the run early: the reconciliation
and summary follow as at any other end, what is still queued counted as unfinished (status 3).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from local.aws.deploy import DeployError
from local.aws.samconfig import (
    SAMCONFIG,
    AppliedOverrides,
    EnvOverrides,
    SamconfigError,
    check_names,
    deploy_overrides,
)
from local.aws.stack_updates import StackUpdate
from local.aws.template import SOURCE_TEMPLATE, ParameterError, load_template
from local.commands.build import build_if_stale
from local.commands.run_options import FIELD_PARAMETERS, PROBE_FAULTS, Ready, RunOptions, RunResult
from local.commands.system import run_local_system
from local.downstream.fault_flags import add_fault_flags, fault_plan_of
from local.shared import log
from local.shared.flags import number

DEFAULTS = RunOptions()
EXIT_LOST = 1
EXIT_INVALID = 2
EXIT_UNFINISHED = 3
EXIT_DEPLOY_FAILED = 4
EXIT_OUT_OF_ORDER = 5
# 128 + SIGINT, as a shell reports a command Ctrl-C ended.
EXIT_INTERRUPTED_STARTING = 130
# Flags whose default depends on whether --outage was given: an outage run shows the outage
# alone (no random failures on top, pass --failure-rate for them) and keeps a producer going.
RESOLVED_LATER = ("failure_rate", "outage_seconds")
OUTAGE_TRICKLE_SECONDS = 5.0


def _queue_type(text: str) -> str:
    if text not in ("standard", "fifo"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a queue type: expected standard or fifo")
    return text


def _stack_update(text: str) -> StackUpdate:
    try:
        return StackUpdate.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _probe_fault(text: str) -> str:
    if text not in PROBE_FAULTS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a probe fault: expected {' or '.join(PROBE_FAULTS)}"
        )
    return text


def _enabled_or_disabled(text: str) -> str:
    if text not in ("Enabled", "Disabled"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected Enabled or Disabled")
    return text


# (flag, RunOptions field, parser, help): one row per flag, so parser and options cannot drift.
FLAGS: list[tuple[str, str, Callable[[str], Any], str]] = [
    ("--messages", "messages", number(int, 1, 10_000), "messages to send"),
    ("--failure-rate", "failure_rate", number(float, 0.0, 1.0),
     "fraction of downstream calls answered 503 (drawn per message and attempt)"),
    ("--outage", "outage_seconds", number(float, 0.0),
     "SECONDS during which the downstream answers 503 to every call (counted from the first "
     "call). Given above 0, an outage run: no random failures unless --failure-rate asks, and "
     f"the producer also sends one message every {OUTAGE_TRICKLE_SECONDS:g} s while the "
     "circuit breaker is open or half-open, so that it has traffic to close on"),
    ("--latency-ms", "latency_ms", number(int, 0, 60_000), "downstream answer time"),
    ("--max-receive-count", "max_receive_count", number(int, 1), "template MaxReceiveCount"),
    ("--backoff-base", "backoff_base_seconds", number(int, 0), "template BackoffBaseSeconds"),
    ("--backoff-jitter", "backoff_jitter_seconds", number(int, 1),
     "template BackoffJitterSeconds"),
    ("--seed", "seed", str, "seed of the downstream's failure draws"),
    ("--downstream-timeout", "downstream_timeout_seconds", number(int, 1, 55),
     "template DownstreamTimeoutSeconds: the function's read timeout"),
    ("--send-rate", "send_rate", number(float, 0.0),
     "messages sent per second (0: all at once)"),
    ("--poison-fraction", "poison_fraction", number(float, 0.0, 1.0),
     "fraction of the messages whose body is not JSON (dead-lettered by the function)"),
    ("--queue-type", "queue_type", _queue_type,
     "template QueueType: fifo delivers each message group in order"),
    ("--idempotent-delivery", "idempotent_delivery", _enabled_or_disabled,
     "template IdempotentDelivery (Enabled: outcomes recorded in the stack's DynamoDB table)"),
    ("--circuit-breaker", "circuit_breaker", _enabled_or_disabled,
     "template CircuitBreaker: Enabled stops the mapping while the downstream is down "
     "(None: the template's default)"),
    ("--fifo-groups", "fifo_groups", number(int, 1, 1000),
     "with --queue-type fifo: message groups the messages are spread over"),
    ("--visibility-timeout", "visibility_timeout_seconds", number(int, 1, 43_200),
     "override the source queue's VisibilityTimeout after the deploy (at least the function "
     "timeout; default: the template's)"),
    ("--source-retention-seconds", "source_retention_seconds", number(int, 60, 1_123_200),
     "template SourceQueueRetentionSeconds: the emulator expires a message this long after its "
     "send (default: the template's)"),
    ("--probe-fault", "probe_fault", _probe_fault,
     "404: the breaker's probe URL (the demo downstream's health path) answers 404 whatever "
     "the outage; never: the probe's EventBridge Scheduler schedule never fires (the "
     "EventBridge backstop rule, every 5 minutes, still does)"),
    ("--mapping-transition-seconds", "mapping_transition_seconds", number(float, 0.0, 600.0),
     "how long the emulated event source mapping stays Disabling, Enabling or Updating before "
     "the change reaches its pollers (AWS documents no figure)"),
]  # fmt: skip


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after each flag's help, except where it would say nothing or
    contradict the help: no default (None), or a help that says its default itself."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.default is argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action)


def _resolved_later_default(field: str, defaults: RunOptions) -> str:
    """The default of a flag whose value depends on others, said once and as it applies to
    this command (make up's are not make run's)."""
    if field == "failure_rate":
        if defaults.failure_rate == 0:
            return " (default: 0)"
        return f" (default: {defaults.failure_rate:g}; 0 in an outage run)"
    if field == "outage_seconds":
        return f" (default: {defaults.outage_seconds:g}, not an outage run)"
    return ""


def parser(
    defaults: RunOptions = DEFAULTS,
    prog: str = "make run RUN_ARGS=...",
    description: str = "Deploy template.yaml into an embedded AWS emulator and run the consumer "
    "against a demo downstream that fails on demand.",
    flag_kinds: Mapping[str, Callable[[str], Any]] | None = None,
) -> argparse.ArgumentParser:
    """The run's flags; `make up` takes the same ones with its own defaults (and parsers,
    `flag_kinds` by flag, where its ranges differ)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument(
        "--config-env",
        metavar="ENV",
        help="samconfig.toml environment whose [ENV.deploy.parameters] parameter_overrides "
        "apply, as `sam deploy --config-env ENV` would (make run ENV=prod). Precedence: the "
        "template's defaults < ENV's overrides < the flags given here (a flag left at its "
        "default gives way to ENV); ENV's DownstreamUrl is replaced by the demo downstream",
    )
    for flag, field, kind, text in FLAGS:
        p.add_argument(
            flag,
            dest=field,
            type=(flag_kinds or {}).get(flag, kind),
            default=None if field in RESOLVED_LATER else getattr(defaults, field),
            help=f"{text}{_resolved_later_default(field, defaults)}",
        )
    p.add_argument(
        "--stack-update",
        dest="stack_updates",
        metavar="N:KEY=VALUE...",
        action="append",
        type=_stack_update,
        default=[],
        help="update the deployed stack once N messages were delivered, as make deploy would "
        "(UpdateStack; other parameters keep their values), e.g. --stack-update "
        "'10:BatchSize=5'; open or half-open instead of N: once the circuit breaker is in "
        "that state ('open:CircuitBreaker=Disabled'); repeatable. An update that would replace "
        "the source queue (QueueType) is refused and the run carries on",
    )
    add_fault_flags(p, seed=DEFAULTS.faults.seed)
    # Where the build is read and the run's files go: the end-to-end tests' own folders.
    p.add_argument("--build-dir", type=Path, default=defaults.build_dir, help=argparse.SUPPRESS)
    p.add_argument("--work-dir", type=Path, default=defaults.work_dir, help=argparse.SUPPRESS)
    return p


def options_from(argv: Sequence[str] | None, samconfig: Path = SAMCONFIG) -> RunOptions:
    """The run's options; invalid flags, an unknown ENV or overrides the template cannot take
    end the program with status 2 and a message saying why."""
    p = parser()
    return options_of(p, p.parse_args(argv), argv, parser, samconfig=samconfig)


def options_of(
    p: argparse.ArgumentParser,
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    fresh_parser: Callable[[], argparse.ArgumentParser],
    *,
    defaults: RunOptions = DEFAULTS,
    samconfig: Path = SAMCONFIG,
    downstream: str = "the demo downstream answers instead",
) -> RunOptions:
    """The options `args` (parsed by `p`) give over `defaults`, with ENV's overrides laid under
    the flags given (`fresh_parser` makes another parser like `p`: `make up` shares this with
    its own)."""
    plan = fault_plan_of(args)
    chosen = {field: getattr(args, field) for _, field, _, _ in FLAGS}
    # An explicit --outage 0 asks for no outage at all: not an outage run.
    outage_run = args.outage_seconds is not None and args.outage_seconds > 0
    if args.outage_seconds is None:
        chosen["outage_seconds"] = defaults.outage_seconds
    if args.failure_rate is None:
        chosen["failure_rate"] = 0.0 if outage_run else defaults.failure_rate
    options = replace(
        defaults,
        **chosen,
        faults=plan,
        trickle_seconds=OUTAGE_TRICKLE_SECONDS if outage_run else 0.0,
        stack_updates=tuple(args.stack_updates),
        build_dir=args.build_dir,
        work_dir=args.work_dir,
    )
    if args.config_env is None:
        return options
    try:
        return with_config_env(
            options,
            flags_given(fresh_parser(), argv),
            deploy_overrides(args.config_env, samconfig),
            downstream,
        )
    except SamconfigError as error:
        p.exit(EXIT_INVALID, f"error: {error}\n")


_NOT_GIVEN = object()


def flags_given(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The RunOptions fields whose flags `argv` gives (`p`, a fresh parser with the run's
    flags, gets sentinel defaults: argparse leaves a default in place only for a flag not given)."""
    p.set_defaults(**{field: _NOT_GIVEN for _, field, _, _ in FLAGS})
    args = p.parse_args(argv)
    return {field for _, field, _, _ in FLAGS if getattr(args, field) is not _NOT_GIVEN}


def with_config_env(
    options: RunOptions,
    given: Collection[str],
    overrides: EnvOverrides,
    downstream: str = "the demo downstream answers instead",
) -> RunOptions:
    """The options with ENV's overrides laid under the run's flags: an override of a parameter
    a flag sets becomes that flag's value unless the flag was given (`given`: RunOptions
    fields); the others are deployed as they are; DownstreamUrl is replaced (`downstream` says
    by what). A start that shares the run's flags (`make up`) applies ENV through it too.
    SamconfigError when an override names no parameter of the template or a value the flag
    refuses."""
    check_names(overrides.values, load_template(SOURCE_TEMPLATE)["Parameters"], overrides.source)
    flags = {field: (flag, kind) for flag, field, kind, _ in FLAGS}
    fields = {name: field for field, name in FIELD_PARAMETERS.items()}
    chosen: dict[str, Any] = {}
    template_parameters: dict[str, str] = {}
    applied: dict[str, str] = {}
    replaced: dict[str, str] = {}
    for name, value in overrides.values.items():
        field = fields.get(name)
        if name == "DownstreamUrl":
            replaced[name] = downstream
        elif field is None:
            template_parameters[name] = applied[name] = value
        elif field in given:
            flag, _ = flags[field]
            replaced[name] = f"{flag} {getattr(options, field)} given"
        else:
            flag, kind = flags[field]
            try:
                chosen[field] = kind(value)
            except argparse.ArgumentTypeError as error:
                raise SamconfigError(
                    f"{overrides.source}: {name}={value!r} is not a value the run takes "
                    f"for {flag}: {error}"
                ) from None
            applied[name] = value
    return replace(
        options,
        **chosen,
        template_parameters={**options.template_parameters, **template_parameters},
        config_env=AppliedOverrides(overrides.env, applied, replaced),
    )


def run_or_exit_status(
    options: RunOptions,
    out: TextIO,
    on_ready: Callable[[Ready], None] | None = None,
    log_file: Path | None = None,
) -> RunResult | int:
    """The run's result, or the exit status when the template or the deployment refused it
    (the error said on standard error). `make run`, `make up` and `make soak` start the same
    way."""
    log.configure(sys.stderr, log_file or options.work_dir.parent / "local-run.log")
    try:
        return run_local_system(options, out, on_ready or (lambda ready: None))
    except KeyboardInterrupt:
        # Before the system was up (the deploy, the environments' set-up): nothing to reconcile.
        print("interrupted while starting: nothing was sent", file=sys.stderr)
        return EXIT_INTERRUPTED_STARTING
    except ParameterError as error:
        print(f"error: the template refuses these parameters: {error}", file=sys.stderr)
        return EXIT_INVALID
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_DEPLOY_FAILED


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    options = options_from(argv)
    problem = build_if_stale()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_DEPLOY_FAILED
    return exit_status(run_or_exit_status(options, out or sys.stdout))


def exit_status(result: RunResult | int) -> int:
    if isinstance(result, int):
        return result
    if result.lost:
        return EXIT_LOST
    if result.unfinished:
        return EXIT_UNFINISHED
    return EXIT_OUT_OF_ORDER if result.out_of_order else 0


if __name__ == "__main__":
    sys.exit(main())
