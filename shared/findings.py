"""The finding catalogue: for every finding code the pipeline emits, the next step and who to ask.

A finding says what is wrong (code, path, message, owner). A person working
through a worklist also needs what to do about it and whom to go to; that is
this table, kept as data beside the codes, read by the workspace's pages and
exports. A unit test (tests/unit/shared/test_findings.py) finds every code the
rules emit in the source and fails when one is missing here, so a new rule
cannot reach a worklist without its next step.

Codes the pipeline does not define itself (an authority's rejection code
passed through by delivery) get a step built from the finding's owner.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.findings import Owner

# The people behind each team, as a worklist names them (the workspace's roles in brackets).
ASK = {
    "mes": "Production: the plant's MES build-data owner (production role)",
    "line": "Production: the line's quality engineer (production role)",
    "approval": "Type-approval: the approval's data owner (type-approval role)",
    "lead": "Compliance: the compliance lead (compliance-lead role)",
    "reviewer": "Compliance: a reviewer (reviewer role)",
    "seal": "Integration: the keeper of the seal and signing (integration role)",
    "delivery": "Integration: the owner of delivery to the authorities (integration role)",
}
TEAM_ASK = {
    Owner.PRODUCTION: ASK["mes"],
    Owner.TYPE_APPROVAL: ASK["approval"],
    Owner.COMPLIANCE: ASK["lead"],
    Owner.INTEGRATION: ASK["delivery"],
}
NEXT_REVISION = "and send the build as the next revision"
REPUBLISH = "and publish the approval again: the records waiting on it are checked again without a resend"


@dataclass(frozen=True)
class Step:
    """What a person does about a finding, and whom they ask."""

    what_to_do: str
    who_to_ask: str


@dataclass(frozen=True)
class Entry:
    """One row of the catalogue; ``source`` names the rule's origin where it matters."""

    code: str
    ask: str  # a key of ASK
    what_to_do: str
    source: str = ""

    @property
    def step(self) -> Step:
        return Step(self.what_to_do, ASK[self.ask])


def _approval_item(code: str, item: str, source: str) -> tuple[Entry, Entry]:
    """The pair of findings about an item a category's CoC model has (``_MISSING``) or lacks (``_NOT_IN_MODEL``)."""
    return (
        Entry(f"{code}_MISSING", "approval", f"Add {item} to the approval's data {REPUBLISH}.", source),
        Entry(
            f"{code}_NOT_IN_MODEL", "approval", f"Remove {item} from the approval's data {REPUBLISH}.", source
        ),
    )


CATALOGUE: tuple[Entry, ...] = (
    # -- the build's own data: production corrects it in the MES -------------------------------
    Entry(
        "VIN_LENGTH", "mes", f"Correct the VIN in the MES to its 17 characters {NEXT_REVISION}.", "ISO 3779"
    ),
    Entry(
        "VIN_CHARACTERS",
        "mes",
        f"Correct the VIN in the MES (digits and capitals, no I, O or Q) {NEXT_REVISION}.",
        "ISO 3779",
    ),
    Entry(
        "VIN_CHECK_DIGIT",
        "mes",
        f"Compare the VIN with the vehicle's plate, correct it in the MES {NEXT_REVISION}; if the VIN is "
        "right, ask the compliance lead whether the check digit applies to this manufacturer.",
        "ISO 3779 position 9; a per-manufacturer setting (off, warn, error)",
    ),
    Entry(
        "VIN_WMI_FOREIGN",
        "mes",
        f"Check the VIN and the approval the build names; correct the wrong one in the MES {NEXT_REVISION}.",
        "ISO 3779 WMI; only the approval holder's WMIs",
    ),
    Entry(
        "MANUFACTURE_DATE_MISSING",
        "mes",
        f"Add the date of manufacture to the build in the MES {NEXT_REVISION}.",
    ),
    Entry("MANUFACTURED_IN_FUTURE", "mes", f"Correct the date of manufacture in the MES {NEXT_REVISION}."),
    Entry(
        "MANUFACTURED_BEFORE_APPROVAL",
        "mes",
        f"Check the date of manufacture and the approval the build names, correct the build in the MES "
        f"{NEXT_REVISION}; if an earlier extension applies, ask type-approval to publish it.",
        "no vehicle is made before its approval's issue date (shared/domain.md)",
    ),
    Entry(
        "MANUFACTURE_DATE_IMPLAUSIBLE", "mes", f"Correct the date of manufacture in the MES {NEXT_REVISION}."
    ),
    Entry(
        "RELEASED_BEFORE_MANUFACTURE",
        "reviewer",
        "Check the release time with the plant: if it is right, accept the record on its page; if not, "
        f"ask production to correct it in the MES {NEXT_REVISION}.",
        "official IVI 2.0 examples state IviVersionDateTime before some manufacture dates",
    ),
    Entry("RELEASED_IN_FUTURE", "mes", f"Correct the release time in the MES {NEXT_REVISION}."),
    Entry(
        "SIGNATURE_DATE_BEFORE_MANUFACTURE",
        "mes",
        f"Correct the signature date (or the release time it is taken from) in the MES {NEXT_REVISION}.",
    ),
    Entry("SIGNATURE_DATE_IN_FUTURE", "mes", f"Correct the signature date in the MES {NEXT_REVISION}."),
    Entry(
        "COUNTRY_UNKNOWN",
        "mes",
        f"Correct the intended country in the MES to its Vienna code (D, NL, F, GB …) {NEXT_REVISION}.",
        "IVI 2.0 IntendedCountryRegistration takes official Vienna codes (change overview)",
    ),
    Entry(
        "ACTUAL_MASS_MISSING",
        "line",
        f"Add the vehicle's actual mass to the build in the MES {NEXT_REVISION}.",
    ),
    Entry(
        "ACTUAL_MASS_OUT_OF_RANGE",
        "line",
        f"Weigh the vehicle again and correct the actual mass in the MES {NEXT_REVISION}; if the mass is "
        "right, ask type-approval whether the approved range is wrong.",
        "a value outside its approved range is an error, not a warning (shared/domain.md)",
    ),
    Entry(
        "TYRE_NOT_APPROVED",
        "line",
        f"Correct the fitted tyre option in the MES to one the axle is approved for {NEXT_REVISION}; if "
        "that tyre really is fitted, stop the vehicle and ask type-approval.",
        "set-up manual 1.5 p. 22 (TyreFittedProductionIndicator)",
    ),
    Entry("TYRE_MISSING", "mes", f"Add the tyre option fitted on each axle in the MES {NEXT_REVISION}."),
    Entry("COLOUR_MISSING", "mes", f"Add the colour code in the MES {NEXT_REVISION}."),
    Entry(
        "COLOUR_NOT_IN_MODEL",
        "mes",
        f"Remove the colour from the build in the MES (this category states none) {NEXT_REVISION}.",
        'guidelines 1.4 ("do not enter Colour for the vehicle category M2")',
    ),
    Entry("COLOUR_REPEATED", "mes", f"List each colour code once in the MES {NEXT_REVISION}."),
    Entry(
        "COLOUR_INVALID",
        "mes",
        f"Correct the colour code in the MES (IVI colour codes 1 to 10) {NEXT_REVISION}.",
        "IVI 2.0 colour codes",
    ),
    Entry(
        "REVISION_REUSED",
        "mes",
        "Send the correction again under the next free revision the message names; the first build of "
        "this revision stands.",
    ),
    Entry(
        "REVIEW_REJECTED",
        "mes",
        f"Read the reviewer's reason on the record's page, correct the build in the MES {NEXT_REVISION}.",
    ),
    # -- the approval's data: type-approval publishes it again ---------------------------------
    Entry(
        "APPROVAL_UNKNOWN",
        "approval",
        "Publish the approval (number, type, variant and version the build names) on the Approvals page; "
        f"if the build names the wrong one, ask production to correct it in the MES {NEXT_REVISION}.",
    ),
    Entry(
        "APPROVAL_MASS_RANGE_MISSING",
        "approval",
        f"Add the approved actual-mass range (minimum and maximum) to the approval {REPUBLISH}.",
    ),
    Entry(
        "MASTER_DATA_INVALID",
        "approval",
        f"Correct the value at the finding's path in the approval's data {REPUBLISH}.",
        "the official IVI 2.0 schema",
    ),
    Entry(
        "MASTER_DATA_GROUP_MISSING",
        "approval",
        f"Add the missing group to the approval's data {REPUBLISH}.",
        'change overview, "Mandatory fields in IVI 2.0"',
    ),
    Entry(
        "INDICATOR_INCONSISTENT",
        "approval",
        f"Set PureElectricVehicleIndicator to Y only when every energy source is 95 (electricity) {REPUBLISH}.",
        'guidelines 1.13-1.14; change overview "ICM"',
    ),
    Entry(
        "VERSION_NOT_APPLICABLE",
        "approval",
        f"Name the approval's version (N/A is for tractors and L-category vehicles only) {REPUBLISH}.",
        "change overview; Regulations 167/2013 and 168/2013",
    ),
    *_approval_item(
        "INDICATOR", "PureElectricVehicleIndicator", 'guidelines 1.13-1.14; change overview "ICM"'
    ),
    *_approval_item("ENERGY_CONVERTOR", "the energy convertor table", "set-up manual 1.5 p. 21"),
    *_approval_item("COUPLING", "the mechanical coupling table", "set-up manual 1.5 p. 11"),
    *_approval_item("COUPLING_PARTS", "the coupling parts table", "set-up manual 1.5 p. 11"),
    *_approval_item(
        "COUPLING_CAN_BE_FITTED", "the table of couplings that can be fitted", "set-up manual 1.5 p. 11"
    ),
    *_approval_item("VERTICAL_MASS", "the vertical mass at the coupling point", "set-up manual 1.5 p. 10"),
    *_approval_item(
        "VERTICAL_MASS_COUPLING",
        "the coupling number of the vertical mass",
        "set-up manual 1.5 p. 10",
    ),
    # -- multistage vehicles: the stages and the base vehicle's certificate ---------------------
    Entry(
        "MANUFACTURER_STAGES_GAP",
        "approval",
        f"Number the ManufacturerTable's stages 1 to N without gaps, each earlier stage restated, {REPUBLISH}.",
        "set-up manual (multistage: later stages restate whole tables)",
    ),
    Entry(
        "STAGE_OF_COMPLETION_INCONSISTENT",
        "approval",
        f"Set StageOfCompletion to fit the stage (stage 1: C or I; a later stage: V or I) {REPUBLISH}.",
        "Regulation (EU) 2018/858 Article 3; set-up manual (multistage)",
    ),
    Entry(
        "PREVIOUS_STAGE_AT_FIRST_STAGE",
        "approval",
        f"Remove the previous-stage approval number, type, variant and version from stage 1 {REPUBLISH}.",
        "set-up manual (multistage)",
    ),
    Entry(
        "PREVIOUS_STAGE_MISSING",
        "mes",
        "Import the base vehicle's certificate (coc ivi import --base) and send the build with its previous "
        "stage as the next revision.",
        "set-up manual (multistage: later stages name the previous stage)",
    ),
    Entry(
        "PREVIOUS_STAGE_UNEXPECTED",
        "mes",
        f"Send the build without a previous stage {NEXT_REVISION}, or ask type-approval whether the build "
        "names the wrong approval.",
    ),
    Entry(
        "PREVIOUS_STAGE_VIN",
        "mes",
        f"Name the base certificate of this same VIN in the MES {NEXT_REVISION}.",
        "the VIN stays through every stage (set-up manual; shared/domain.md)",
    ),
    Entry(
        "PREVIOUS_STAGE_NUMBER",
        "mes",
        f"Name the base certificate of the stage just before this one {NEXT_REVISION}.",
        "set-up manual (multistage)",
    ),
    Entry(
        "PREVIOUS_STAGE_DIFFERS",
        "approval",
        "Compare the approval's previous-stage values with the base certificate: correct the approval and "
        "publish it again, or ask production to name the right base certificate.",
        "set-up manual (multistage)",
    ),
    Entry(
        "STAGE_NOT_CHANGED",
        "approval",
        f"Give this stage its own approval number, variant or version {REPUBLISH}.",
        "each stage changes at least one of approval number, variant, version (set-up manual)",
    ),
    Entry(
        "PREVIOUS_STAGE_NOT_RESTATED",
        "approval",
        f"Restate the earlier stage's manufacturer as the base certificate names it {REPUBLISH}.",
        "later stages restate the earlier stages' groups as they were (set-up manual)",
    ),
    # -- compliance: names, signers, releases and reviews --------------------------------------
    Entry(
        "SIGNING_AUTHORITY_MISSING",
        "lead",
        "Name the person who signs (name, position, place) in the approval's signing authority and ask "
        "type-approval to publish the approval again.",
        "only the manufacturer or its EU representative named in the approval signs (set-up manual)",
    ),
    Entry(
        "GROUP_UNKNOWN",
        "lead",
        "If it is a real new vehicle group, add it on the Rollout page (or coc groups add); if not, ask "
        f"production to correct the group in the MES {NEXT_REVISION}.",
    ),
    Entry(
        "PLANT_UNKNOWN",
        "lead",
        "If it is a real plant, add it on the Rollout page (or coc groups add --plant); if not, ask "
        f"production to correct the plant in the MES {NEXT_REVISION}.",
    ),
    Entry(
        "GROUP_CHANGED",
        "reviewer",
        "Confirm the move to the other vehicle group with the plant, then accept the record on its page, "
        "or reject it so production corrects it.",
    ),
    Entry(
        "PLANT_CHANGED",
        "reviewer",
        "Confirm the other plant with production, then accept the record on its page, or reject it so "
        "production corrects it.",
    ),
    Entry("GROUP_REVIEW", "reviewer", "Review the record on its page and accept or reject it."),
    Entry(
        "GROUP_HELD",
        "lead",
        "Ask the compliance lead to release the group on the Rollout page, or a reviewer to release this "
        "record on its page.",
    ),
    Entry(
        "MORE_FINDINGS",
        "mes",
        "Correct the findings listed above it first; the rest are listed once those are gone.",
    ),
    # -- integration: the seal and the deliveries ----------------------------------------------
    Entry(
        "SEAL_CERT_EXPIRING",
        "seal",
        "Renew the seal certificate and install it in signing before the date the message names.",
        "at least an eIDAS advanced electronic seal (set-up manual)",
    ),
    Entry(
        "SEAL_MISSING",
        "seal",
        "Register the approval holder's seal (coc seals add, or the seal named in the message made usable); "
        "the records waiting for it are sealed then, without a resend.",
        "only the type-approval holder or its EU representative seals (IVI 2.0 guidelines)",
    ),
    Entry(
        "DELIVERY_NO_ROUTE",
        "delivery",
        "Add the intended country to a destination's countries in COC_DELIVERY_DESTINATIONS; the "
        "certificate is then delivered.",
    ),
    Entry(
        "DELIVERY_REJECTED",
        "delivery",
        "Read the authority's reason on the record's page; correct the data it names and re-issue the "
        "certificate, or send it again if the fault was in the transport.",
    ),
)
STEPS: dict[str, Step] = {entry.code: entry.step for entry in CATALOGUE}
# Codes whose owner varies with the finding (the count of further findings keeps its first one's owner).
OWNER_DECIDES = frozenset({"MORE_FINDINGS"})


def next_step(code: str, owner: Owner | str | None = None) -> Step:
    """The next step of a finding ``code``; for a code not in the catalogue, one built from ``owner``."""
    step = STEPS.get(code)
    if step is not None and code not in OWNER_DECIDES:
        return step
    try:
        team = Owner(owner) if owner else None
    except ValueError:
        team = None
    who = TEAM_ASK[team] if team else "The team named on the finding"
    if step is not None:
        return Step(step.what_to_do, who)
    return Step(
        "Read the message and the path, correct what they name at its source, and send or publish it again.",
        who,
    )
