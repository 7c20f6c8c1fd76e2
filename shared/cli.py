"""The ``coc`` command: one entry point, each area registers its own subcommands.

Command modules are imported lazily by name, so ``coc stack up`` does not load
the XML stack and a service never imports another service.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Each module exposes ``register(subparsers)`` and sets ``func`` on its parsers.
# A ``func`` takes the parsed namespace and returns the exit status.
COMMAND_MODULES = (
    "shared.stack_commands",
    "services.signing.commands",
    "services.render.commands",
    "services.validation.commands",
    "services.intake.commands",
    "services.intake.samples_cli",
    "shared.workbench",
    "shared.service_commands",
    "shared.client_commands",
    "shared.demo",
)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, never a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coc", description="eCoC pipeline command line")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # that area has no commands yet
            raise
        module.register(subparsers)
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


if __name__ == "__main__":
    sys.exit(main())
