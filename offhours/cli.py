"""The ``offhours`` command: one entry point, subcommands owned by the packages.

Each package contributes its subcommands through a ``register(subparsers)`` function;
this module only assembles them and turns a handler's return value into the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from schedules import cli as coverage_cli
from streams import cli as streams_cli


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
    coverage_cli.register(sub)
    streams_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ValidationError as exc:
        # Settings from the environment (OFFHOURS_*): say what to fix, never echo the
        # values given (they may be secrets).
        print(f"offhours {args.command}: invalid {exc.title}:", file=sys.stderr)
        for error in exc.errors(include_url=False, include_input=False):
            where = "OFFHOURS_" + "__".join(str(part) for part in error["loc"]).upper() if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            print(f"  {where + ': ' if where else ''}{message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
