"""``coc stack install | up | down | status``: the local stack from the command line.

The logic lives in shared.stack (which loads its client libraries only when
probing), so this module stays cheap for the dispatcher to import on every
``coc`` call; it parses, prints and turns StackError into a CommandError.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from shared import stack
from shared.cli import CommandError
from shared.settings import CocSettings

Command = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stack`` with its four subcommands."""
    parser = subparsers.add_parser(
        "stack",
        help="local Kafka and FerretDB as background processes (no docker)",
        description="Local stack: Kafka (KRaft) and FerretDB, with pids, logs and data "
        "under COC_STATE_DIR and binaries under COC_CACHE_DIR.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    commands: dict[str, tuple[Command, str]] = {
        "install": (_install, "fetch Kafka's jars and build FerretDB once into the cache"),
        "up": (_up, "install if needed, start what is not running, wait until it answers"),
        "down": (_down, "stop the processes `up` started, by their recorded pids"),
        "status": (_status, "show each process, pid, address and health; exit 1 unless all healthy"),
    }
    for name, (func, help_text) in commands.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        if name in ("up", "status"):
            sub.add_argument(
                "--infra", action="store_true", help="only Kafka and FerretDB, not the six services"
            )


def _services(args: argparse.Namespace) -> list[stack.ProcessSpec]:
    """The six services as stack processes, unless only the infrastructure is wanted."""
    if getattr(args, "infra", False):
        return []
    from shared.stack_services import service_specs

    return service_specs()


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """A StackError is the user's to act on: one message, no traceback."""
    try:
        yield
    except stack.StackError as exc:
        raise CommandError(str(exc)) from exc


def _install(args: argparse.Namespace) -> int:
    with _user_errors():
        stack.install(CocSettings(), out=_say)
    return 0


def _up(args: argparse.Namespace) -> int:
    began = time.monotonic()
    with _user_errors():
        stack.up(CocSettings(), extra_specs=_services(args), out=_say)
    _say(f"stack: ready in {time.monotonic() - began:.1f}s")
    return 0


def _down(args: argparse.Namespace) -> int:
    with _user_errors():
        still_open = stack.down(CocSettings(), out=_say)
    for host, port in still_open:
        print(
            f"coc stack down: {host}:{port} still accepts connections, from a process "
            "the stack did not start (left alone)",
            file=sys.stderr,
        )
    return 1 if still_open else 0


def _status(args: argparse.Namespace) -> int:
    rows = stack.status(CocSettings(), extra_specs=_services(args))
    _say(f"{'PROCESS':<10} {'PID':>8}  {'ADDRESS':<22} STATE")
    for row in rows:
        pid = str(row.pid) if row.pid is not None else "-"
        note = f" ({row.note})" if row.note else ""
        _say(f"{row.name:<10} {pid:>8}  {row.address:<22} {row.state}{note}")
    return 0 if rows and all(row.state == "healthy" for row in rows) else 1
