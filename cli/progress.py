"""How far a long step is, on standard error: one display for every command.

At a terminal it is a Rich progress bar redrawn in place; into a pipe or a log
it is a plain ``what: done/total`` line per step, which a script or a test can
read (at most one every ``every`` seconds, and always the last).
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any


class Progress:
    """``with Progress("builds published") as shown: shown(done, total)``; a callable, so it fits
    ``devkit.mes.publish``'s progress callback."""

    def __init__(self, what: str, every: float = 0.0) -> None:
        self.what = what
        self.every = every
        self.bar: Any = None
        self.task: Any = None
        self.last_line = float("-inf")
        self.last_done = -1

    def __enter__(self) -> Progress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(
                TextColumn(self.what),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True, markup=False, highlight=False),
            )
            self.bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task(self.what, total=total)
            self.bar.update(self.task, completed=done, total=total)
            return
        now = time.monotonic()
        if done == self.last_done or (done < total and now - self.last_line < self.every):
            return
        self.last_line, self.last_done = now, done
        print(f"{self.what}: {done}/{total}", file=sys.stderr, flush=True)
