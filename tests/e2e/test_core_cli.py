"""The eCoC core as a compliance engineer runs it: the coc commands as processes, no stack needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from shared.settings import CocSettings

pytestmark = pytest.mark.e2e

COC = str(Path(sys.executable).with_name("coc"))
IVI = "{http://eu.ereg.initialvehicleinformation.v2}"


def coc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COC, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


def ok(*args: str | Path) -> str:
    result = coc(*args)
    assert result.returncode == 0, f"coc {args} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (make test installs it: apt-get install xmlsec1 libxml2-utils)")
    return found


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("core")
    ok("keys", "dev", "--out", folder / "keys")
    ok("samples", "--out", folder / "samples", "--vehicles", "40", "--seed", "11")
    return folder


def builds(work: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (work / "samples" / "builds.jsonl").read_text().splitlines()]


def test_every_defect_yields_its_finding_with_its_owner(work: Path) -> None:
    result = coc(
        "check",
        "--approvals",
        work / "samples/approvals.json",
        "--builds",
        work / "samples/builds.jsonl",
        "--json",
    )
    assert result.returncode == 1  # some builds have errors
    findings = {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        findings[row["record_id"]] = {(f["code"], f["owner"]) for f in row["findings"]}
    defects = json.loads((work / "samples/defects.json").read_text())
    by_build = {b["build_id"]: f"{b['vin']}:{b['revision']}" for b in builds(work)}
    assert defects, "the sample has defects"
    for build_id, defect in defects.items():
        assert (defect["expected_code"], defect["owner"]) in findings[by_build[build_id]], build_id
    clean = [record for build_id, record in by_build.items() if build_id not in defects]
    assert all(findings[record] == set() for record in clean)


def test_every_clean_build_renders_signs_and_verifies_with_independent_tools(work: Path) -> None:
    xsd = CocSettings().xsd_path()
    defects = json.loads((work / "samples/defects.json").read_text())
    clean = [b for b in builds(work) if b["build_id"] not in defects]
    assert len(clean) >= 30
    keys = work / "keys"
    for build in clean:
        build_file = work / f"{build['vin']}.json"
        build_file.write_text(json.dumps(build))
        signed = work / f"{build['vin']}.xml"
        ok("render", "--approvals", work / "samples/approvals.json", "--build", build_file,
           "--key", keys / "seal.key", "--cert", keys / "seal.crt", "--out", signed)  # fmt: skip
        ok("verify", signed, "--cert", keys / "seal.crt")
        subprocess.run([tool("xmllint"), "--noout", "--nonet", "--schema", str(xsd), str(signed)], check=True)
        subprocess.run(
            [tool("xmlsec1"), "--verify", "--enabled-reference-uris", "empty",
             "--trusted-pem", str(keys / "seal.crt"), str(signed)],
            check=True, capture_output=True,
        )  # fmt: skip


def test_render_refuses_a_build_with_an_error_and_names_the_finding(work: Path) -> None:
    defects = json.loads((work / "samples/defects.json").read_text())
    bad = next(b for b in builds(work) if b["build_id"] in defects)
    build_file = work / "bad.json"
    build_file.write_text(json.dumps(bad))
    result = coc(
        "render", "--approvals", work / "samples/approvals.json", "--build", build_file, "--unsigned"
    )
    assert result.returncode != 0
    assert defects[str(bad["build_id"])]["expected_code"] in result.stderr
    assert "Traceback" not in result.stderr


def coc_data_group(path: Path) -> dict[str, str]:
    """CocDataGroup leaves by path (local names, 1-based index among same-named siblings)."""
    root = etree.parse(str(path)).getroot()
    group = root.find(f"{IVI}CocDataGroup")
    assert group is not None
    leaves: dict[str, str] = {}

    def walk(element: etree._Element, prefix: str) -> None:
        seen: dict[str, int] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child).localname
            seen[name] = seen.get(name, 0) + 1
            here = f"{prefix}/{name}[{seen[name]}]"
            if len(child):
                walk(child, here)
            else:
                leaves[here] = (child.text or "").strip()

    walk(group, "")
    return leaves


def test_specimen_round_trips_and_a_new_vin_changes_only_the_vin(work: Path) -> None:
    specimen = CocSettings().xsd_path().parent / "specimen-M1-CHR.xml"
    out = work / "imported"
    ok("ivi", "import", specimen, "--out", out)
    rendered = work / "roundtrip.xml"
    ok(
        "render",
        "--approvals",
        out / "approval.json",
        "--build",
        out / "build.json",
        "--unsigned",
        "--out",
        rendered,
    )
    original, again = coc_data_group(specimen), coc_data_group(rendered)
    assert len(original) > 100
    assert original == again

    build = json.loads((out / "build.json").read_text())
    old_vin = build["vin"]
    build["vin"] = "JTAM1C0MPTEST0099"
    (out / "build2.json").write_text(json.dumps(build))
    changed = work / "changed.xml"
    ok(
        "render",
        "--approvals",
        out / "approval.json",
        "--build",
        out / "build2.json",
        "--unsigned",
        "--out",
        changed,
    )
    before, after = coc_data_group(rendered), coc_data_group(changed)
    differing = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert differing == {"/VehicleIdentificationNumber[1]"}
    assert after["/VehicleIdentificationNumber[1]"] == "JTAM1C0MPTEST0099" != old_vin


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"vin": 5}', "vin"),
    ],
    ids=["malformed-json", "wrong-type"],
)
def test_bad_build_input_gets_a_clear_message_and_no_traceback(
    work: Path, content: str, expected: str
) -> None:
    build_file = work / "broken.json"
    build_file.write_text(content)
    result = coc(
        "render", "--approvals", work / "samples/approvals.json", "--build", build_file, "--unsigned"
    )
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_approval_is_named(work: Path) -> None:
    build = builds(work)[0]
    build["approval"] = {**build["approval"], "number": "e9*2018/858*99999*00"}  # type: ignore[dict-item]
    build_file = work / "unknown.json"
    build_file.write_text(json.dumps(build))
    result = coc(
        "render", "--approvals", work / "samples/approvals.json", "--build", build_file, "--unsigned"
    )
    assert result.returncode != 0
    assert "APPROVAL_UNKNOWN" in result.stderr and "e9*2018/858*99999*00" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [("verify",), ("ivi", "import")])
def test_xml_with_a_dtd_is_refused(work: Path, command: tuple[str, ...]) -> None:
    evil = work / "dtd.xml"
    evil.write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>')
    extra = ("--out", str(work / "dtd-out")) if command[0] == "ivi" else ()
    result = coc(*command, evil, *extra)
    assert result.returncode != 0
    assert "DTD" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
