"""Step 3 of an upload: what publishing it would touch, per approval key it changes.

The records waiting on the key (validation's ``/v1/waiting``, as the approval
page reads them) are decided again once it is published; the archived
certificates checked against another version of the key (the archive's
``/v1/certificates?approval_key=…&other_than=…``) carry content the new version
would change. A service that does not answer leaves its number unknown, said so
on the page, never shown as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from services.workspace.adapters.pipeline import PipelineUnavailable
from services.workspace.upload.diff import KeyDiff
from shared.contracts.approvals import master_data_sha256

MAX_KEYS: Final = 50  # keys whose impact one page asks for; the rest are said to be not computed
# No VINs are listed with the count: the count comes from the archive's counters at once, while a
# page of VINs scans every archived vehicle on FerretDB (11 s at 100,000); the re-issue lists them.


class Reads(Protocol):
    async def waiting_on_many(self, approval_keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]: ...

    async def affected(
        self, approval_key: str, *, other_than: str | None = None, limit: int = 1, after: str | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Impact:
    """What one approval key's new version would touch; None where the service did not answer."""

    key: str
    waiting: list[dict[str, Any]] | None
    archived: int | None
    problem: str | None = None


async def impact_of(api: Reads, diffs: Sequence[KeyDiff]) -> dict[str, Impact]:
    """The impact of each key the upload changes or adds, for the first ``MAX_KEYS`` of them.

    The waiting records of all of them in one request to validation (one read there).
    """
    changed = [d for d in diffs if not d.unchanged][:MAX_KEYS]
    waiting: dict[str, list[dict[str, Any]]] | None = None
    unanswered: str | None = None
    try:
        waiting = await api.waiting_on_many([d.approval.key for d in changed])
    except PipelineUnavailable as exc:
        unanswered = f"validation: {exc}"
    found: dict[str, Impact] = {}
    for diff in changed:
        key = diff.approval.key
        problems = [unanswered] if unanswered else []
        archived: int | None = None
        try:
            page = await api.affected(key, other_than=master_data_sha256(diff.approval), limit=0)
            archived = int(page.get("total", 0))
        except (PipelineUnavailable, TypeError, ValueError) as exc:
            problems.append(f"archive: {exc}")
        mine = None if waiting is None else waiting.get(key, [])
        found[key] = Impact(key, mine, archived, "; ".join(problems) or None)
    return found
