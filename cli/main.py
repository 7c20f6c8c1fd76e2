"""The ``coc`` command: one entry point, one module per command group.

Each group's module has ``register(subparsers)`` and sets ``func`` on its parsers;
a ``func`` takes the parsed namespace and returns the exit status. The modules load
their heavy libraries (lxml, the services, the Kafka client) inside the commands,
so ``coc stack up`` stays quick to start.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

MAX_ERROR_CHARS = 1_000  # an error line quotes at most this much (a 10 MB field stays in its file)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, never a traceback."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command="service"`` only that group's (see ``main``)."""
    # Imported here, not at the top: the groups import CommandError from this module.
    from cli import service

    parser = argparse.ArgumentParser(prog="coc", description="eCoC pipeline command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    if command == "service":
        service.register(subparsers)
        return parser
    from cli import archive, client, demo, keys, policy, samples, stack, users, workbench

    for group in (stack, keys, workbench, samples, service, client, archive, demo, policy, users):
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # A service process (`python -m cli service NAME`, as the stack starts them) loads no other
    # command group: their modules and what they import cost each service 5-6 MB resident.
    args = build_parser(words[0] if words[:1] == ["service"] else None).parse_args(words)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CommandError as exc:
        print(f"coc {args.command}: {short(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`coc ... | head`): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # the last net: a user never sees a traceback (COC_DEBUG=1 shows it)
        if os.environ.get("COC_DEBUG"):
            raise
        print(f"coc {args.command}: failed: {type(exc).__name__}: {short(str(exc))}", file=sys.stderr)
        return 70


def short(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One line, at most ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
