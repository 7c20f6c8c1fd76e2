"""Tables and JSON on standard output, through Rich; Rich is loaded only by a command that prints one.

A table is plain text: no borders, columns two spaces apart, no trailing spaces.
At a terminal it fits the terminal's width; into a pipe or a file it is never
wrapped, so each row stays one line a script can split.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

UNWRAPPED = 10_000  # columns a table may take when it is not shown on a terminal


def table(*headers: str, right: Sequence[str] = (), show_header: bool = True) -> Table:
    """A borderless table with these columns; those named in ``right`` are aligned right (numbers)."""
    from rich.table import Table

    made = Table(box=None, pad_edge=False, show_edge=False, show_header=show_header, header_style="bold")
    for header in headers:
        made.add_column(header, justify="right" if header in right else "left", no_wrap=True)
    return made


def rows(made: Table, cells: Iterable[Sequence[object]]) -> Table:
    for row in cells:
        made.add_row(*(str(cell) for cell in row))
    return made


def render(made: Table, width: int = UNWRAPPED) -> str:
    """The table as text at most ``width`` columns wide, each line without trailing spaces."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, markup=False, highlight=False, emoji=False).print(
        made
    )
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def show(made: Table) -> None:
    """Print a table on standard output: styled at a terminal, plain and unwrapped otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console

        Console(markup=False, highlight=False, emoji=False).print(made)
    else:
        print(render(made))


def show_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))
