"""What a re-issue is: the archived build record again, as the VIN's next revision, with its ``Correction``.

Pure. The record is fixed when the job plans it (revision, time, correction),
so a job resumed after a kill publishes the same content again, which
validation takes as a repeat of the same record id (``revisions.judged``).

- revision: the VIN's current revision in status + 1 (never below the archived
  revision + 1), so it never reuses a revision received with other content;
- ``released_at``: the job's time, which render writes as IviVersionDateTime and
  whose date is the SignatureDate (a correction has a new time; guidelines 1.7,
  1.12), so a ``signature_date`` the original carried (an imported certificate's) is dropped;
- IviReferenceId (from the record id) and IviVersionNumber (+1, render's
  counter per VIN) follow from the new revision; TypeApprovalIssueDate stays the approval's.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.contracts import BuildRecord
from shared.contracts.builds import MAX_REVISION, Correction

ACTIVE = ("planning", "publishing")


class ReissueError(ValueError):
    """An archived certificate cannot be re-issued (its build is missing from the evidence, no revision left)."""


@dataclass(frozen=True)
class Job:
    """One re-issue: an approval version's corrected certificates, started by one person."""

    id: str
    approval_key: str
    approval_sha256: str  # the corrected approval's master-data SHA-256
    changed_by: str  # who changed the approval
    started_by: str
    started_at: dt.datetime  # milliseconds, UTC: the re-issued certificates' time
    expected: int = 0  # the archive's count when it was started
    state: str = "planning"  # planning → publishing → done (failed: said in ``error``)
    plan_after: str | None = None  # the archive's cursor of the next page to plan
    planned: int = 0  # items planned (their sequence numbers 0..planned-1)
    published: int = 0  # items published (sequence numbers below this one)
    skipped: int = 0  # affected certificates that could not be re-issued (said in ``error``)
    error: str | None = None
    finished_at: dt.datetime | None = None
    worker: str | None = None  # the workspace process carrying it out (one at a time)
    lease_until: dt.datetime | None = None  # until when that process holds it; then another may take it over

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def new_job_id(at: dt.datetime) -> str:
    return f"reissue-{at:%Y%m%d%H%M%S}-{secrets.token_hex(3)}"


def job_time(at: dt.datetime) -> dt.datetime:
    """``at`` in UTC to the millisecond, as MongoDB keeps it and IviVersionDateTime writes it."""
    at = at.astimezone(dt.UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def item_id(job: str, seq: int) -> str:
    return f"{job}:{seq:07d}"


def next_revision(archived_revision: int, status_revision: int | None) -> int:
    """The revision a re-issue is sent as: after every revision status or the archive knows of the VIN."""
    revision = max(archived_revision, status_revision or 0) + 1
    if revision > MAX_REVISION:
        raise ReissueError(f"no revision is left after {MAX_REVISION}")
    return revision


def reissue_record(
    job: Job, archived: Mapping[str, Any], build: Mapping[str, Any] | None, revision: int
) -> BuildRecord:
    """The re-issue of one archived certificate (an item of ``/v1/certificates``) with its archived ``build``."""
    if build is None:
        raise ReissueError(
            f"{archived['vin']}: the archive kept no build record for revision {archived['revision']}"
        )
    correction = Correction(
        of_revision=int(archived["revision"]),
        of_version_number=int(archived.get("version_number") or archived["revision"]),
        approval_key=job.approval_key,
        approval_sha256=job.approval_sha256,
        changed_by=job.changed_by,
        started_by=job.started_by,
        job=job.id,
    )
    content = {
        **build,
        "revision": revision,
        "released_at": job.started_at.isoformat(),
        "signature_date": None,
        "correction": correction.model_dump(mode="json"),
    }
    return BuildRecord.model_validate(content)
