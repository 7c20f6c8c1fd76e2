"""Uploads between their dry run and their publication, kept server-side under a token bound to the session.

What a person publishes is what they reviewed: the parsed approvals stay here,
under a random token only the session that uploaded them may use, and the
publish form also carries the digest of the approvals the page showed
(``digest``), compared before anything is sent. An upload is published once
(``take`` removes it) and forgotten after ``KEEP``; at most ``PER_SESSION`` of
one session and ``LIMIT`` in all are kept (the oldest go first). Kept in this
process: a workspace behind a load balancer needs sticky sessions for the
upload's few minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from services.workspace.upload.files import Parsed
from shared.contracts import Approval
from shared.contracts.approvals import master_data_sha256

KEEP: Final = dt.timedelta(minutes=30)
LIMIT: Final = 20  # uploads kept in all (each up to 5 MB of input, parsed)
PER_SESSION: Final = 3  # a session's newest uploads
TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{22}")


@dataclass(frozen=True)
class Staged:
    """One upload's dry run: who made it in which session, the file, what it held."""

    token: str
    session: str
    person: str
    filename: str
    file_sha256: str
    parsed: Parsed
    at: dt.datetime

    @property
    def digest(self) -> str:
        return digest(self.parsed.approvals)


def digest(approvals: Sequence[Approval]) -> str:
    """One SHA-256 over the master data of the approvals, in their order."""
    joined = "\n".join(f"{approval.key}={master_data_sha256(approval)}" for approval in approvals)
    return hashlib.sha256(joined.encode()).hexdigest()


class StagedUploads:
    def __init__(self, keep: dt.timedelta = KEEP, limit: int = LIMIT) -> None:
        self.keep, self.limit = keep, limit
        self._kept: OrderedDict[str, Staged] = OrderedDict()

    def put(
        self, session: str, person: str, filename: str, content: bytes, parsed: Parsed, now: dt.datetime
    ) -> Staged:
        self._forget(now)
        mine = [token for token, staged in self._kept.items() if staged.session == session]
        for token in mine[: max(0, len(mine) - PER_SESSION + 1)]:
            del self._kept[token]  # a person's older uploads go first
        while len(self._kept) >= self.limit:
            self._kept.popitem(last=False)
        token = secrets.token_urlsafe(16)
        staged = Staged(token, session, person, filename, hashlib.sha256(content).hexdigest(), parsed, now)
        self._kept[token] = staged
        return staged

    def get(self, token: str, session: str, now: dt.datetime) -> Staged | None:
        """The upload of ``token`` when it is this session's and not yet forgotten."""
        self._forget(now)
        staged = self._kept.get(token) if TOKEN.fullmatch(token) else None
        return staged if staged is not None and secrets.compare_digest(staged.session, session) else None

    def take(self, token: str, session: str, now: dt.datetime) -> Staged | None:
        """As ``get``, and removed: an upload is published at most once."""
        staged = self.get(token, session, now)
        if staged is not None:
            del self._kept[token]
        return staged

    def _forget(self, now: dt.datetime) -> None:
        for token in [t for t, staged in self._kept.items() if now - staged.at > self.keep]:
            del self._kept[token]
