"""The upload template as XLSX and CSV, empty or filled with approvals (a starting point to edit).

The workbook's first sheet, Approvals, has one column per template column
(``columns.template_columns``) and one row per approval; its second sheet,
Columns, says what each column holds and which a row must fill. Every cell is
written as text, so a spreadsheet keeps codes such as ``01`` as they are.
In the CSV a value that would start a formula (``=``, ``+``, ``-``, ``@``) gets a
leading quote, which the upload takes off again. Columns an approval needs beyond the template's (a second axle: ``AxleGroup[2]``)
are added after the template's own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from services.workspace.audit_chain import safe_cell
from services.workspace.upload.columns import Column, cells, template_columns
from shared.contracts import Approval
from shared.ivi import IviSchema

SHEET = "Approvals"
NOTES = "Columns"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def header(
    schema: IviSchema, approvals: Sequence[Approval] = ()
) -> tuple[list[Column], list[dict[str, str]]]:
    """The columns of a sheet holding ``approvals`` (the template's, then any they need besides), and their rows."""
    columns = list(template_columns(schema))
    known = {column.name for column in columns}
    rows = [cells(approval) for approval in approvals]
    for row in rows:
        for name in row:
            if name not in known:
                columns.append(Column(name, False, "a further item of a repeated element"))
                known.add(name)
    return columns, rows


def as_xlsx(schema: IviSchema, approvals: Sequence[Approval] = ()) -> bytes:
    from openpyxl import Workbook  # imported when used, as in files.py
    from openpyxl.utils import get_column_letter

    columns, rows = header(schema, approvals)
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append([column.name for column in columns])
    for number in range(1, len(columns) + 1):
        sheet.column_dimensions[get_column_letter(number)].number_format = "@"  # cells typed in stay text
    for line, row in enumerate(rows, start=2):
        for number, column in enumerate(columns, start=1):
            if column.name in row:
                _text_cell(sheet.cell(line, number, row[column.name]))
    sheet.freeze_panes = "A2"
    notes = book.create_sheet(NOTES)
    notes.append(["Column", "Required", "What goes in it"])
    for column in columns:
        notes.append([column.name, "yes" if column.required else "", column.meaning])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _text_cell(cell: Any) -> None:
    """A value kept as text: never read as a formula (``=...``) or a number by the spreadsheet."""
    cell.data_type = "s"
    cell.number_format = "@"


def as_csv(schema: IviSchema, approvals: Sequence[Approval] = ()) -> bytes:
    columns, rows = header(schema, approvals)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([column.name for column in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(column.name, "")) for column in columns])
    return out.getvalue().encode("utf-8")
