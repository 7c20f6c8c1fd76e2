"""The ``coc`` command: one entry point, one module per command group, on Click.

Each group's module has ``register(group)``, which adds its commands; the help
of a command is its function's docstring, its exit statuses the epilog. The
modules import only Click at the top and load everything else (pydantic, httpx,
lxml, Kafka's client, Rich) inside the commands, so ``coc --help`` and
``coc CMD --help`` start in a fraction of a second (``python -m bench.cli``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from cli import archive, client, demo, groups, keys, policy, samples, seals, service, stack, users, workbench
from cli.errors import FAILED, USAGE, CommandError, short

GROUPS = (stack, keys, seals, samples, workbench, service, client, archive, demo, policy, groups, users)
CLOSED_PIPE = 141  # as a shell reports a process ended by SIGPIPE
INTERRUPTED = 130  # as a shell reports a process ended by SIGINT


class Coc(click.Group):
    """The top group; it ends a command whose reader went away (`coc ... | head`) quietly."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Nothing more reaches the closed pipe, not even the flush at the interpreter's exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(CLOSED_PIPE)


def build() -> click.Group:
    """The whole command line."""
    coc = Coc(
        "coc",
        help="The eCoC pipeline from the command line: the local stack, one vehicle's certificate, "
        "the running pipeline.",
        epilog="Exit status of every command: 0 done; 1 failed (check, verify and audit: problems "
        "found); 2 bad command line or input. COC_DEBUG=1 shows the traceback of an unexpected error.",
        context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    )
    for group in GROUPS:
        group.register(coc)
    return coc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; its exit status. No command ever shows a traceback."""
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((word for word in words if not word.startswith("-")), "")
    try:
        status = build().main(args=words, prog_name="coc", standalone_mode=False)
    except click.ClickException as exc:  # a mistake on the command line: usage and the mistake
        exc.show()
        return exc.exit_code
    except click.Abort as exc:
        return INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else FAILED
    except CommandError as exc:
        print(f"coc {command}: {short(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the last net (COC_DEBUG=1 shows the traceback)
        if os.environ.get("COC_DEBUG"):
            raise
        if _bad_settings(exc):  # a COC_ setting that is not what it must be: the command cannot run
            print(f"coc {command}: a setting is not valid: {short(str(exc))}", file=sys.stderr)
            return USAGE
        print(f"coc {command}: failed: {type(exc).__name__}: {short(str(exc))}", file=sys.stderr)
        return FAILED
    return status if isinstance(status, int) else 0


def _bad_settings(exc: Exception) -> bool:
    """Whether ``exc`` is pydantic's refusal of a settings class (read from ``COC_`` variables)."""
    pydantic_core = sys.modules.get("pydantic_core")  # loaded when a setting was read; never loaded here
    if pydantic_core is None or not isinstance(exc, pydantic_core.ValidationError):
        return False
    return exc.title.endswith("Settings")
