"""Revision conflicts: a record id (VIN:revision) stands for one content, and a second one is refused.

A factory MES that corrects a build must raise its revision. One that sends a
correction under a revision already received (it forgot to raise it) would
otherwise be decided again and, if released, rendered and sealed a second time
while the archive keeps the first certificate: the correction lost without a
word. So validation keeps, per record id, the fingerprint of the content it
received (``fingerprint``), and ``judged`` refuses a build whose record id is
known with another fingerprint (``REVISION_REUSED``, production must send it as
the next free revision); a resend of the same content is decided again on the
build kept (a quiet duplicate: the same certificate comes out).

The fingerprint is the SHA-256 of the build's canonical JSON (keys sorted, no
whitespace, UTF-8) as intake normalised it, with one field left out when it is
not the MES's: ``released_at``, which intake sets to the time it received the
build when the MES sent none (equal to the record's ``received_at`` then), so
two sends of the same build without a release time differ only there. Every
other field counts, ``build_id`` too: another build of the MES under the same
VIN and revision is another content.

Pure: the pending store keeps the fingerprints, the handler carries the verdict out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.contracts import BuildRecord, Finding, Owner, Severity
from shared.contracts.builds import MAX_REVISION
from shared.contracts.events import AcceptedRecord
from shared.contracts.findings import REVISION_REUSED

FINGERPRINTS_KEPT = 100  # per VIN, those of its newest revisions: a VIN's document stays small


@dataclass(frozen=True)
class Kept:
    """What validation keeps of a VIN: its newest revision's build and a fingerprint per revision received."""

    build: BuildRecord
    fingerprints: Mapping[int, str] = field(default_factory=dict)

    @property
    def next_revision(self) -> int:
        """The next revision not received yet: the one a correction must be sent as."""
        return max([self.build.revision, *self.fingerprints]) + 1


@dataclass(frozen=True)
class Read:
    """A VIN's pending document as a handler just read it (``kept``: None for a VIN not known yet).

    Given to the store's ``save`` and the placements' ``moved_from`` by the
    handler of a later revision, which has read the document once already: they
    compare with it instead of reading it again (one read per record, not three).
    """

    kept: Kept | None


def fingerprint(record: AcceptedRecord) -> str:
    """SHA-256 (hex) of the build's canonical JSON, without a release time intake filled in."""
    # Intake's time of receipt is not the MES's content (see the module docstring).
    return content_sha256(record.build, with_release=record.build.released_at != record.received_at)


def content_sha256(build: BuildRecord, *, with_release: bool) -> str:
    """SHA-256 (hex) of the build's canonical JSON, its release time in it or left out."""
    content = build.model_dump(mode="json")
    if not with_release:
        del content["released_at"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def kept_fingerprints(fingerprints: Mapping[int, str], revision: int, value: str | None) -> dict[int, str]:
    """``fingerprints`` with ``value`` kept for ``revision`` (when given), only the newest ``FINGERPRINTS_KEPT``."""
    kept = dict(fingerprints)
    if value is not None:
        kept[revision] = value
    return {r: kept[r] for r in sorted(kept)[-FINGERPRINTS_KEPT:]}


def judged(build: BuildRecord, content: str, kept: Kept | None) -> BuildRecord | Finding:
    """The build to decide on, or the finding that refuses it.

    - its record id received before with another content: ``REVISION_REUSED``;
    - received before with the same content, and still the VIN's newest: the
      build as kept (a release time intake filled in stays the first one's, so
      the certificate made again is the same one);
    - otherwise (not received before, or an older revision received before
      fingerprints were kept): the build as received.

    The VIN's newest revision kept before fingerprints were is compared by its
    build, with and without its release time: ``content`` has the release time
    in it exactly when the MES sent one, so either match means the same content.
    """
    if kept is None:
        return build
    newest = kept.build.revision == build.revision
    known = kept.fingerprints.get(build.revision)
    if known is None and newest:
        known_ones = {content_sha256(kept.build, with_release=w) for w in (True, False)}
    elif known is None:
        return build
    else:
        known_ones = {known}
    if content not in known_ones:
        return reused(build, kept.next_revision)
    return kept.build if newest else build


def reused(build: BuildRecord, next_revision: int) -> Finding:
    """Production's finding for a build sent under a revision that was received with other content."""
    if next_revision > MAX_REVISION:
        todo = f"no revision is left after {MAX_REVISION}; integration must be asked"
    else:
        todo = f"send the correction as revision {next_revision}"
    return Finding(
        code=REVISION_REUSED,
        path="revision",
        message=(
            f"revision {build.revision} of {build.vin} was already received with other content; "
            f"this build was refused and the first one stands: {todo}"
        ),
        severity=Severity.ERROR,
        owner=Owner.PRODUCTION,
    )
