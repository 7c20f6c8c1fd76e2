"""The ``coc`` command: one entry point, one module per command group.

Each group's module has ``register(subparsers)`` and sets ``func`` on its parsers;
a ``func`` takes the parsed namespace and returns the exit status. The modules load
their heavy libraries (lxml, the services, the Kafka client) inside the commands,
so ``coc stack up`` stays quick to start.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    # Imported here, not at the top: the groups import CommandError from this module.
    from cli import client, demo, keys, policy, samples, service, stack, users, workbench

    parser = argparse.ArgumentParser(prog="coc", description="eCoC pipeline command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in (stack, keys, workbench, samples, service, client, demo, policy, users):
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CommandError as exc:
        print(f"coc {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
