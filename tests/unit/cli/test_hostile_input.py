"""The command line under hostile or careless input: one line, a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.inputs import MAX_INPUT_BYTES
from cli.main import main as coc
from devkit.samples import generate
from services.validation.rules import FINDINGS_MAX
from shared.settings import XSD_DOWNLOAD_HINT

pytestmark = pytest.mark.unit


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def approvals(tmp_path: Path) -> Path:
    path = tmp_path / "approvals.json"
    sample = generate(2, seed=4, defect_share=0.0)
    import json

    path.write_text(json.dumps([a.model_dump(mode="json") for a in sample.approvals]))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"vin": "\xff"}', "not UTF-8 (byte 9)"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b'{"revision": ' + b"9" * 5_000 + b"}", "a JSON number too long to read"),
    ],
    ids=["not-utf8", "nested-100000", "number-5000-digits"],
)
def test_render_and_check_refuse_json_that_is_not_utf8_or_nested_too_deep(
    tmp_path: Path, approvals: Path, content: bytes, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert coc(["render", "--approvals", str(approvals), "--build", str(bad), "--unsigned"]) == 2
    assert message in one_line_error(capsys)
    assert coc(["render", "--approvals", str(bad), "--build", str(bad), "--unsigned"]) == 2
    assert message in one_line_error(capsys)
    assert coc(["check", "--approvals", str(bad), "--builds", str(bad)]) == 2
    assert message in one_line_error(capsys)


def test_a_builds_file_with_a_line_that_is_not_utf8_is_refused_naming_the_line(
    tmp_path: Path, approvals: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    builds = tmp_path / "builds.jsonl"
    good = generate(2, seed=4, defect_share=0.0).builds[0].model_dump_json().encode()
    builds.write_bytes(good + b"\n" + b'{"vin": "\xfe\xff"}\n')
    assert coc(["check", "--approvals", str(approvals), "--builds", str(builds)]) == 2
    assert f"{builds} line 2: not UTF-8" in one_line_error(capsys)


def test_an_unreadable_schema_is_one_line(
    tmp_path: Path, approvals: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "IVI-2.0.xsd"
    broken.write_text("<xs:schema this is not a schema")
    monkeypatch.setenv("COC_IVI_XSD", str(broken))
    build = tmp_path / "build.json"
    build.write_bytes(generate(2, seed=4, defect_share=0.0).builds[0].model_dump_json().encode())
    status = coc(["render", "--approvals", str(approvals), "--build", str(build), "--unsigned", "--out", "-"])
    assert status == 2
    assert f"the IVI schema {broken} cannot be read" in one_line_error(capsys)


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    # `coc check ... | head -1`: the pipe closes after the first line, while many remain.
    import json

    sample = generate(3000, seed=4, defect_share=0.5)
    (tmp_path / "approvals.json").write_text(
        json.dumps([a.model_dump(mode="json") for a in sample.approvals])
    )
    (tmp_path / "builds.jsonl").write_text("\n".join(b.model_dump_json() for b in sample.builds))
    done = subprocess.run(
        f"{sys.executable} -m cli check --approvals {tmp_path / 'approvals.json'} "
        f"--builds {tmp_path / 'builds.jsonl'} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.stdout.count("\n") == 1
    assert done.stderr == "", done.stderr[-2000:]


@pytest.mark.parametrize("how", [["builds"], ["builds", "--kafka"]], ids=["http", "kafka"])
def test_publishing_builds_with_a_line_that_is_not_utf8_is_refused_naming_the_line_before_any_is_sent(
    tmp_path: Path, how: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    builds = tmp_path / "builds.jsonl"
    good = generate(2, seed=4, defect_share=0.0).builds[0].model_dump_json().encode()
    builds.write_bytes(good + b"\n" + b'{"vin": "\xe9"}\n')
    assert coc(["publish", *how, str(builds)]) == 2
    assert one_line_error(capsys) == f"coc publish: {builds} line 2: not UTF-8 (byte 9)"


def test_publishing_approvals_that_are_not_utf8_or_too_large_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    approvals = tmp_path / "approvals.json"
    approvals.write_bytes(b'[{"number": "e\xe9"}]')
    assert coc(["publish", "approvals", str(approvals)]) == 2
    assert one_line_error(capsys) == f"coc publish: {approvals}: not UTF-8 (byte 14)"
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as out:
        out.truncate(MAX_INPUT_BYTES + 1)  # sparse: refused on its size, never read
    for kind in ("approvals", "builds"):
        assert coc(["publish", kind, str(huge)]) == 2
        assert f"cannot read {huge}: larger than {MAX_INPUT_BYTES} bytes" in one_line_error(capsys)


def test_a_schema_without_the_signature_schema_it_imports_is_one_line_naming_the_file_with_the_hint(
    tmp_path: Path,
    approvals: Path,
    xsd_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alone = tmp_path / "xsd" / "IVI-2.0.xsd"
    alone.parent.mkdir()
    alone.write_bytes(xsd_path.read_bytes())
    monkeypatch.setenv("COC_IVI_XSD", str(alone))
    build = tmp_path / "build.json"
    build.write_bytes(generate(2, seed=4, defect_share=0.0).builds[0].model_dump_json().encode())
    render = ["render", "--approvals", str(approvals), "--build", str(build), "--unsigned", "--out", "-"]
    for command in (render, ["check", "--approvals", str(approvals), "--builds", str(build)]):
        assert coc(command) == 2
        error = one_line_error(capsys)
        assert f"{alone.parent / 'xmldsig-core-schema.xsd'}" in error
        assert XSD_DOWNLOAD_HINT in error


def test_check_lists_at_most_the_capped_findings_of_a_build_whose_approval_has_thousands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = generate(1, seed=4, defect_share=0.0)
    (approval,) = (a for a in sample.approvals if a.key == sample.builds[0].approval.key)
    bad = {"RemarkSubjectDescription": "XXXXX", "RemarkSubjectLanguage": "zz", "Remark": "R"}
    certificate = {**approval.certificate, "RemarkTable": {"RemarkGroup": [bad] * 3000}}
    broken = approval.model_copy(update={"certificate": certificate})
    (tmp_path / "approvals.json").write_text(json.dumps([broken.model_dump(mode="json")]))
    (tmp_path / "builds.jsonl").write_text(sample.builds[0].model_dump_json())
    args = [
        "check",
        "--approvals",
        str(tmp_path / "approvals.json"),
        "--builds",
        str(tmp_path / "builds.jsonl"),
    ]
    assert coc(args) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + FINDINGS_MAX + 1  # the record, its findings, the summary
    assert "MORE_FINDINGS" in lines[-2] and "more findings not listed" in lines[-2]
