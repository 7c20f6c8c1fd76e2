"""The finding catalogue covers every code the pipeline emits, found in the source, and says what to do."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.validation.rules import CATEGORY_ITEMS, PER_VEHICLE_ITEMS
from shared.contracts.findings import Owner
from shared.findings import ASK, CATALOGUE, STEPS, Step, next_step

ROOT = Path(__file__).parents[3]
SCANNED = ("services", "shared")
FINDING_CALLS = frozenset({"Finding", "finding"})
# Codes made at run time, each with where its values come from. A new dynamic code fails the scan
# until it is named here, with the codes it can take.
APPROVAL_ITEMS = [row.codes for row in CATEGORY_ITEMS if row.item not in PER_VEHICLE_ITEMS]
DYNAMIC: dict[tuple[str, str], list[str]] = {
    # the rules' own helper, which every rule calls with a constant (collected where it is called)
    ("services/validation/rules.py", "code"): [],
    # an item of the approval against its category's CoC model (CATEGORY_ITEMS)
    ("services/validation/rules.py", "f'{row.codes}_MISSING'"): [f"{c}_MISSING" for c in APPROVAL_ITEMS],
    ("services/validation/rules.py", "f'{row.codes}_NOT_IN_MODEL'"): [
        f"{c}_NOT_IN_MODEL" for c in APPROVAL_ITEMS
    ],
    # an authority's own rejection code, passed through (next_step builds a step from the owner)
    ("services/delivery/deliver.py", "self.code or 'DELIVERY_REJECTED'"): [],
}


def module_constants(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def parsed(root: Path = ROOT) -> Iterator[tuple[str, ast.Module]]:
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            yield str(path.relative_to(root)), ast.parse(path.read_text(encoding="utf-8"))


def code_argument(call: ast.Call) -> ast.expr | None:
    """The code a ``Finding(...)``/``finding(...)`` call gives, or the ``code=`` of any call."""
    for keyword in call.keywords:
        if keyword.arg == "code":
            return keyword.value
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    if name in FINDING_CALLS and call.args:
        return call.args[0]
    return None


def is_finding_call(call: ast.Call) -> bool:
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
    return name in FINDING_CALLS


def scan(root: Path = ROOT) -> tuple[dict[str, str], list[str]]:
    """Every code the source emits (code → where), and the dynamic codes nobody explained."""
    modules = list(parsed(root))
    constants: dict[str, str] = {}
    for _, tree in modules:
        constants.update(module_constants(tree))
    emitted: dict[str, str] = {}
    unexplained: list[str] = []
    for where, tree in modules:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            expr = code_argument(node)
            if expr is None:
                continue
            text = ast.unparse(expr)
            if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
                emitted.setdefault(expr.value, where)
            elif isinstance(expr, ast.Name) and expr.id in constants:
                emitted.setdefault(constants[expr.id], where)
            elif (where, text) in DYNAMIC:
                for code in DYNAMIC[(where, text)]:
                    emitted.setdefault(code, where)
                for inner in ast.walk(expr) if isinstance(expr, ast.BoolOp) else ():
                    if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                        emitted.setdefault(inner.value, where)
            elif is_finding_call(node):
                unexplained.append(f"{where}:{node.lineno} code={text}")
    return emitted, unexplained


def missing_steps(emitted: dict[str, str]) -> dict[str, str]:
    return {code: where for code, where in emitted.items() if code.isupper() and code not in STEPS}


def test_every_code_the_pipeline_emits_has_its_next_step_in_the_catalogue() -> None:
    emitted, unexplained = scan()
    assert not unexplained, f"finding codes made at run time, not named in DYNAMIC: {unexplained}"
    missing = missing_steps(emitted)
    assert not missing, f"finding codes without a next step in shared/findings.py: {missing}"


def test_a_new_rule_whose_code_the_catalogue_lacks_is_caught_and_so_is_a_code_made_at_run_time(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "services" / "newrule"
    rules.mkdir(parents=True)
    (rules / "rules.py").write_text(
        "WHEELS = 'WHEELS_MISSING'\n"
        "def one():\n    return finding('AXLE_COUNT_WRONG', 'p', 'm', owner)\n"
        "def two():\n    return Finding(code=WHEELS, path='p')\n"
        "def three(kind):\n    return Finding(code=f'{kind}_BAD', path='p')\n",
        encoding="utf-8",
    )
    (tmp_path / "shared").mkdir()
    emitted, unexplained = scan(tmp_path)
    assert missing_steps(emitted) == {
        "AXLE_COUNT_WRONG": "services/newrule/rules.py",
        "WHEELS_MISSING": "services/newrule/rules.py",
    }
    assert unexplained == ["services/newrule/rules.py:7 code=f'{kind}_BAD'"]


def test_the_scan_finds_the_codes_of_rules_helpers_and_category_items() -> None:
    emitted, _ = scan()
    for code in ("VIN_LENGTH", "GROUP_HELD", "REVISION_REUSED", "SEAL_CERT_EXPIRING", "DELIVERY_NO_ROUTE"):
        assert code in emitted
    assert "ENERGY_CONVERTOR_MISSING" in emitted and "COUPLING_NOT_IN_MODEL" in emitted
    assert "COLOUR_INVALID" in emitted


def test_every_catalogue_entry_is_a_code_the_pipeline_emits() -> None:
    emitted, _ = scan()
    stale = [entry.code for entry in CATALOGUE if entry.code not in emitted]
    assert not stale, f"catalogue entries no rule emits: {stale}"


def test_each_code_is_in_the_catalogue_once() -> None:
    codes = [entry.code for entry in CATALOGUE]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.code)
def test_each_next_step_is_a_sentence_a_person_acts_on_and_names_whom_to_ask(entry: object) -> None:
    step = next_step(entry.code, "production")  # type: ignore[attr-defined]
    assert step.what_to_do[0].isupper() and step.what_to_do.endswith(".")
    assert len(step.what_to_do) <= 300
    assert step.who_to_ask in ASK.values() and "role)" in step.who_to_ask


def test_the_steps_for_the_colour_approval_and_held_group_say_what_the_person_does() -> None:
    assert next_step("COLOUR_INVALID").what_to_do.startswith("Correct the colour code in the MES")
    assert "next revision" in next_step("COLOUR_INVALID").what_to_do
    assert next_step("APPROVAL_UNKNOWN").what_to_do.startswith("Publish the approval")
    assert next_step("APPROVAL_UNKNOWN").who_to_ask.startswith("Type-approval")
    assert next_step("GROUP_HELD").what_to_do.startswith("Ask the compliance lead to release the group")


def test_an_authority_code_unknown_to_the_catalogue_gets_a_step_for_the_finding_owner() -> None:
    step = next_step("XSD_E1234", "integration")
    assert step == Step(step.what_to_do, ASK["delivery"])
    assert next_step("XSD_E1234", Owner.PRODUCTION).who_to_ask.startswith("Production")
    assert next_step("XSD_E1234", "nobody").who_to_ask == "The team named on the finding"


def test_the_count_of_further_findings_names_the_owner_it_stands_for() -> None:
    assert next_step("MORE_FINDINGS", "type-approval").who_to_ask.startswith("Type-approval")
    assert next_step("MORE_FINDINGS", "compliance").who_to_ask.startswith("Compliance")
