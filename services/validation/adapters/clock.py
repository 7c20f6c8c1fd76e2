"""The host's clock, the one place validation reads the time from."""

from __future__ import annotations

import datetime as dt


class SystemClock:
    def now(self) -> dt.datetime:
        """The current instant in UTC (never the host's local time)."""
        return dt.datetime.now(dt.UTC)
