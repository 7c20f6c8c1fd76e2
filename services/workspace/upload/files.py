"""An uploaded file, bounded, as approvals and per-row errors: XLSX, CSV, JSON or an IVI 2.0 certificate.

The kind is told by the bytes, not by the name: an XLSX is a ZIP archive, an
IVI document XML, JSON starts with ``{`` or ``[``, anything else is read as
CSV (UTF-8). Limits are checked before the work they bound, and a file past
one gets one error naming the limit; nothing of it is taken.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from services.workspace.audit_chain import FORMULA_STARTS
from services.workspace.upload.rows import CONTRACT, RowError, approval_of_row, checked
from shared.contracts import Approval
from shared.ivi import IviSchema
from shared.ivi_import import IviImportError, import_document

MAX_BYTES: Final = 5_000_000  # an upload; the 500 rows of a full template are about 1 MB as XLSX
MAX_ROWS: Final = 500  # approvals in one upload
MAX_LINES: Final = 5_000  # lines of a sheet read, blank ones included
MAX_COLUMNS: Final = 2_000  # the template has some 540
MAX_ERRORS: Final = 5_000  # errors kept of one upload (the rest counted)
MAX_UNPACKED: Final = 60_000_000  # an XLSX's parts unpacked: a ZIP of a few KB may unpack to gigabytes
LIMIT: Final = "upload limit"
FILE: Final = "file format"
KEY: Final = "one row per approval key"


@dataclass(frozen=True)
class Parsed:
    """What a file held: its kind, the approvals of its good rows, the errors of the others."""

    kind: str  # "XLSX", "CSV", "JSON", "IVI 2.0 certificate"
    approvals: tuple[Approval, ...]
    errors: tuple[RowError, ...] = field(default=())
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.approvals)


def parse(content: bytes, schema: IviSchema) -> Parsed:
    """Every row of ``content`` checked; errors name row, column and rule."""
    kind = kind_of(content)
    if len(content) > MAX_BYTES:
        return Parsed(
            kind, (), (_file_error(LIMIT, f"the file has {len(content)} bytes; at most {MAX_BYTES}"),)
        )
    try:
        items = list(_items(kind, content, schema))
    except _Refused as exc:
        return Parsed(kind, (), (exc.error,))
    approvals, errors = [], []
    for row, approval, row_errors in items:
        errors += row_errors
        if approval is not None:
            approvals.append((row, approval))
    errors += _duplicates(approvals)
    if not items:
        errors.append(_file_error(FILE, "the file holds no approval (a header row and at least one row)"))
    if len(errors) > MAX_ERRORS:
        more = _file_error(LIMIT, f"{len(errors) - MAX_ERRORS} more errors not listed; correct these first")
        errors = [*errors[:MAX_ERRORS], more]
    return Parsed(kind, tuple(a for _row, a in approvals), tuple(errors), len(items))


def kind_of(content: bytes) -> str:
    start = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if content.startswith(b"PK\x03\x04"):
        return "XLSX"
    if start.startswith(b"<"):
        return "IVI 2.0 certificate"
    if start[:1] in (b"{", b"["):
        return "JSON"
    return "CSV"


class _Refused(Exception):
    def __init__(self, error: RowError) -> None:
        super().__init__(error.message)
        self.error = error


def _file_error(rule: str, message: str) -> RowError:
    return RowError(0, "(file)", rule, message)


Item = tuple[int, Approval | None, list[RowError]]


def _items(kind: str, content: bytes, schema: IviSchema) -> Iterator[Item]:
    if kind == "IVI 2.0 certificate":
        yield _certificate(content, schema)
    elif kind == "JSON":
        yield from _json(content, schema)
    else:
        table = _xlsx(content) if kind == "XLSX" else _csv(content)
        yield from _table(table, schema)


def _certificate(content: bytes, schema: IviSchema) -> Item:
    try:
        approval, _build = import_document(content, schema)
    except IviImportError as exc:
        return 1, None, [RowError(1, "(document)", "IVI 2.0 import", str(exc))]
    return 1, approval, []


def _json(content: bytes, schema: IviSchema) -> Iterator[Item]:
    try:
        data = json.loads(content)
    except RecursionError:
        raise _Refused(
            _file_error(LIMIT, "JSON nested deeper than any approval (IVI data is 20 levels)")
        ) from None
    except ValueError as exc:
        raise _Refused(_file_error(FILE, f"not JSON: {str(exc)[:200]}")) from None
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_ROWS:
        raise _Refused(_file_error(LIMIT, f"the file holds {len(items)} approvals; at most {MAX_ROWS}"))
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            yield number, None, [RowError(number, "(item)", CONTRACT, "an approval is a JSON object")]
        else:
            yield (number, *checked(number, item, schema))


def _table(rows: Iterable[list[str]], schema: IviSchema) -> Iterator[Item]:
    """A header row of column names, then one approval per row (blank rows skipped); row 1 is the header."""
    lines = iter(rows)
    header = [name.strip() for name in next(lines, [])]
    if len(header) > MAX_COLUMNS:
        raise _Refused(_file_error(LIMIT, f"the header has {len(header)} columns; at most {MAX_COLUMNS}"))
    seen = set()
    for name in header:
        if name and name in seen:
            raise _Refused(RowError(1, name, FILE, "the column is named twice in the header"))
        seen.add(name)
    taken = 0
    for number, line in enumerate(lines, start=2):
        if number > MAX_LINES:
            raise _Refused(
                _file_error(LIMIT, f"the sheet has more than {MAX_LINES} lines; at most {MAX_LINES}")
            )
        values = {header[i]: text.strip() for i, text in enumerate(line[: len(header)]) if text.strip()}
        if any(text.strip() for text in line[len(header) :]):
            yield (
                number,
                None,
                [RowError(number, f"(column {len(header) + 1})", FILE, "a value with no header")],
            )
        elif values:
            taken += 1
            if taken > MAX_ROWS:
                raise _Refused(
                    _file_error(LIMIT, f"the file has more than {MAX_ROWS} rows; at most {MAX_ROWS}")
                )
            yield (number, *approval_of_row(number, {k: v for k, v in values.items() if k}, schema))


def _csv(content: bytes) -> Iterator[list[str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Refused(
            _file_error(FILE, f"not UTF-8 text (byte {exc.start}): save the CSV as UTF-8")
        ) from None
    try:
        for line in csv.reader(io.StringIO(text, newline="")):
            yield [_unquoted(cell) for cell in line]
    except csv.Error as exc:
        raise _Refused(_file_error(FILE, f"not a CSV file this reads: {exc}")) from None


def _unquoted(cell: str) -> str:
    """A cell as written before ``safe_cell`` kept a spreadsheet from reading it as a formula."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


def _xlsx(content: bytes) -> Iterator[list[str]]:
    """The first sheet's rows as text; its unpacked size checked before openpyxl reads it."""
    from openpyxl import (
        load_workbook,
    )  # imported when used: a workspace that never sees an upload never loads it

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_UNPACKED:
            raise _Refused(
                _file_error(LIMIT, f"the workbook unpacks to {unpacked} bytes; at most {MAX_UNPACKED}")
            )
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except _Refused:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise _Refused(
            _file_error(FILE, f"not an XLSX workbook openpyxl reads: {type(exc).__name__}")
        ) from None
    try:
        sheet = book.worksheets[0]
        for line in sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True):
            texts = [_text(value) for value in line]
            while texts and not texts[-1]:
                texts.pop()  # a read-only sheet pads each row to the widest one
            yield texts
    finally:
        book.close()


def _text(value: Any) -> str:
    """A cell's value as the text the template means: whole numbers without '.0', dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _duplicates(found: list[tuple[int, Approval]]) -> list[RowError]:
    first: dict[str, int] = {}
    errors = []
    for row, approval in found:
        if approval.key in first:
            message = f"the same approval key as row {first[approval.key]}: one row per version"
            errors.append(RowError(row, "CocDataGroup/Version", KEY, message))
        first.setdefault(approval.key, row)
    return errors
