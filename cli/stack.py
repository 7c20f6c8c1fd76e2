"""``coc stack install | up | down | status``: the local stack (``deploy/local``) from the command line.

It parses, prints and turns a StackError into a CommandError; the stack's logic,
which loads its client libraries only when probing, lives in ``deploy.local``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from cli.main import CommandError
from deploy.local import supervise
from deploy.local.install import install
from deploy.local.layout import ProcessSpec, StackError
from deploy.local.settings import StackSettings

Command = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    """Add ``stack`` with its four subcommands."""
    parser = subparsers.add_parser(
        "stack",
        help="the local stack: Kafka, FerretDB and the eight services as background processes (no docker)",
        description="Local stack: Kafka (KRaft), FerretDB and the eight services (intake, validation, "
        "render, signing, delivery, archive, status, workspace), with pids, logs and data under COC_STATE_DIR and "
        "binaries under COC_CACHE_DIR. --infra: only Kafka and FerretDB.",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    commands: dict[str, tuple[Command, str]] = {
        "install": (_install, "fetch Kafka's jars and build FerretDB once into the cache"),
        "up": (
            _up,
            "install if needed, start Kafka, FerretDB and the eight services where not running, "
            "wait until each answers",
        ),
        "down": (_down, "stop the processes `up` started, by their recorded pids"),
        "status": (_status, "show each process, pid, address and health; exit 1 unless all healthy"),
    }
    for name, (func, help_text) in commands.items():
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(func=func)
        if name in ("up", "status"):
            sub.add_argument(
                "--infra", action="store_true", help="only Kafka and FerretDB, not the eight services"
            )


def _services(args: argparse.Namespace, settings: StackSettings) -> list[ProcessSpec]:
    """The eight services as stack processes, unless only the infrastructure is wanted."""
    if getattr(args, "infra", False):
        return []
    from deploy.local.services import service_specs

    return service_specs(settings)


def _say(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """A StackError is the user's to act on: one message, no traceback."""
    try:
        yield
    except StackError as exc:
        raise CommandError(str(exc)) from exc


def _install(args: argparse.Namespace) -> int:
    with _user_errors():
        install(StackSettings(), out=_say)
    return 0


def _up(args: argparse.Namespace) -> int:
    began = time.monotonic()
    settings = StackSettings()
    with _user_errors():
        supervise.up(settings, extra_specs=_services(args, settings), out=_say)
    _say(f"stack: ready in {time.monotonic() - began:.1f}s")
    return 0


def _down(args: argparse.Namespace) -> int:
    with _user_errors():
        still_open = supervise.down(StackSettings(), out=_say)
    for host, port in still_open:
        print(
            f"coc stack down: {host}:{port} still accepts connections, from a process "
            "the stack did not start (left alone)",
            file=sys.stderr,
        )
    return 1 if still_open else 0


def _status(args: argparse.Namespace) -> int:
    settings = StackSettings()
    rows = supervise.status(settings, extra_specs=_services(args, settings))
    _say(f"{'PROCESS':<10} {'PID':>8}  {'ADDRESS':<22} STATE")
    for row in rows:
        pid = str(row.pid) if row.pid is not None else "-"
        note = f" ({row.note})" if row.note else ""
        _say(f"{row.name:<10} {pid:>8}  {row.address:<22} {row.state}{note}")
    return 0 if rows and all(row.state == "healthy" for row in rows) else 1
