"""The ``offhours`` command: one entry point for every subcommand.

:mod:`offhours.coverage_commands` and :mod:`offhours.commands` add their subcommands
through a ``register(subparsers)`` function, ``config check`` is here; this module
assembles them and turns a handler's return value into the exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from offhours import commands, coverage_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="offhours",
        description=(
            "Off-hours response for social-media customer care: applies each team's "
            "coverage schedule to incoming messages, acknowledges customers honestly "
            "and routes messages to the staff on duty."
        ),
        epilog="Run 'offhours COMMAND --help' for the options of each command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    coverage_commands.register(sub)
    commands.register(sub)
    _register_config(sub)
    return parser


EXIT_INVALID = 2

_CONFIG_CHECK_DESCRIPTION = """\
Says what 'offhours run' would be able to do with the settings of this environment
(OFFHOURS_* variables), without starting anything: for each channel (facebook,
instagram, whatsapp, x, telegram, generic webhook, chatwoot desk), each staff notifier (slack,
teams, e-mail, webhook, telegram) and the operations API, whether it is configured
and, when not, which variable to set. The start banner of 'offhours run' prints the
same lines. Values are never printed, only the names of the variables.

A channel or notifier you do not use may stay unconfigured: that is information,
not an error. Its webhook answers 503 naming the variable until it is set.

With --coverage (or OFFHOURS_COVERAGE_FILE) the coverage file is checked as
'offhours run' checks it, and the accounts it lists that have no credentials in
OFFHOURS_RESPONDERS__ACCOUNTS are named; a Chatwoot desk's inboxes (chatwoot:1/3)
need OFFHOURS_RESPONDERS__CHATWOOT_URL and OFFHOURS_RESPONDERS__CHATWOOT_TOKEN instead.

Settings are read from the environment only, not from a .env file; load one with
  set -a; . examples/local.env; set +a
"""

_CONFIG_CHECK_EPILOG = """\
exit codes:
  0  the settings are valid (some capabilities may be unconfigured: see the lines)
  2  a setting is invalid (each problem names its variable), or the coverage file is

examples:
  offhours config check
  (set -a; . examples/local.env; set +a; offhours config check --coverage examples/coverage.yaml)
"""


def _register_config(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser(
        "config",
        help="check the service's settings: what is configured, what to set for the rest",
        description="Commands about the service's settings (OFFHOURS_* environment variables).",
    )
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = config_sub.add_parser(
        "check",
        help="list each channel, notifier and the operations API: configured, or the variable to set",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_CONFIG_CHECK_DESCRIPTION,
        epilog=_CONFIG_CHECK_EPILOG,
    )
    check.add_argument(
        "--coverage", type=Path, metavar="FILE",
        help="also check this coverage file and name its accounts without credentials "
        "(default: OFFHOURS_COVERAGE_FILE when set)",
    )
    check.set_defaults(handler=_config_check)


def _config_check(args: argparse.Namespace) -> int:
    from offhours.service import (
        ServiceError,
        configuration_lines,
        load_coverage_or_fail,
    )
    from streams.settings import Settings

    settings = Settings()  # invalid settings: main() names each variable, exit 2
    coverage = None
    if args.coverage is not None or "coverage_file" in settings.model_fields_set:
        settings = settings.with_overrides(coverage_file=args.coverage)
        try:
            coverage = load_coverage_or_fail(settings)
        except ServiceError as exc:
            print(f"offhours config check: {exc}", file=sys.stderr)
            return EXIT_INVALID
    broker = settings.broker_url or (
        f"embedded Apache Kafka (data in {settings.data_dir / 'kafka'}; started by 'offhours run')"
        if settings.durable
        else "embedded (memory only; started by 'offhours run')"
    )
    print(f"broker:   {broker}")
    if coverage is not None:
        print(f"coverage: {settings.coverage_file} (valid; teams: {', '.join(sorted(coverage.teams))})")
    print(*configuration_lines(settings, coverage, banner=False), sep="\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # here, so that a reader gone away is the BrokenPipeError below
        return code
    except ValidationError as exc:
        # Settings from the environment (OFFHOURS_*): say what to fix, never echo the
        # values given (they may be secrets).
        command = " ".join(filter(None, (args.command, getattr(args, "config_command", None))))
        print(f"offhours {command}: invalid {exc.title}:", file=sys.stderr)
        for error in exc.errors(include_url=False, include_input=False):
            where = "OFFHOURS_" + "__".join(str(part) for part in error["loc"]).upper() if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            print(f"  {where + ': ' if where else ''}{message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `offhours coverage week ... | head`): stop quietly, as
        # other line tools do; the interpreter's exit flush needs a file to write to.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
