"""Topic names: part of the contract, so constants rather than settings."""

BUILDS = "coc.builds.v1"
APPROVALS = "coc.approvals.v1"
REVIEWS = "coc.reviews.v1"
ACCEPTED = "coc.records.accepted.v1"
VALIDATED = "coc.records.validated.v1"
RENDERED = "coc.documents.rendered.v1"
SIGNED = "coc.documents.signed.v1"
ARCHIVED = "coc.documents.archived.v1"
STATUS = "coc.status.v1"
POLICIES = "coc.policies.v1"  # key = vehicle group
MASTERDATA = "coc.masterdata.v1"  # key = kind:name (plant:..., vehicle_group:...)
SEALS = "coc.seals.v1"  # key = approval holder (shared.contracts.seals)

ALL = (
    BUILDS,
    APPROVALS,
    REVIEWS,
    ACCEPTED,
    VALIDATED,
    RENDERED,
    SIGNED,
    ARCHIVED,
    STATUS,
    POLICIES,
    MASTERDATA,
    SEALS,
)
COMPACTED = frozenset({APPROVALS, POLICIES, MASTERDATA, SEALS})


def dlq(topic: str) -> str:
    """The dead-letter topic of a source topic."""
    return f"{topic}.dlq"
