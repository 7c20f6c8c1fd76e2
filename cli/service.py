"""``coc service NAME``: one service in the foreground, as the local stack runs it.

The command replaces itself with ``python -m services NAME`` (``services.launch``),
so the service process holds none of the command line's modules.
"""

from __future__ import annotations

import os
import sys

import click

# shared.settings.SERVICE_PORT_OFFSETS, in pipeline order (a unit test holds them equal);
# written out here so that `coc service --help` loads no settings.
SERVICES = ("intake", "validation", "render", "signing", "delivery", "archive", "status", "workspace")


def register(coc: click.Group) -> None:
    coc.add_command(service)


@click.command(
    epilog="Exit status: that of the service; 2 bad command line, or the service cannot start "
    "(a setting, key or file it needs is wrong)."
)
@click.argument("name", type=click.Choice(SERVICES), metavar="NAME")
@click.option("--port", type=int, help="HTTP port (default: the service's own, or COC_HTTP_PORT)")
def service(name: str, port: int | None) -> None:
    """Run one service in the foreground until stopped (Ctrl-C).

    NAME is one of intake, validation, render, signing, delivery, archive,
    status and workspace. The process becomes `python -m services NAME`, as the
    local stack starts it.
    """
    argv = [sys.executable, "-m", "services", name, *(["--port", str(port)] if port else [])]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
