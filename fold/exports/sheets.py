"""CSV and .xlsx writers, a row at a time: neither holds the file in memory (XlsxWriter's
constant-memory mode flushes each row to disk as the next begins)."""

from __future__ import annotations

import csv
from datetime import date, datetime
from typing import IO, Any

import xlsxwriter

from fold.exports.columns import Column, inert, text

EXCEL_FIRST_MONTH = (1900, 3)  # before it, Excel's day numbers are off or missing
XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit, header included
SHEET_NAME_BAD = str.maketrans({c: " " for c in "[]:*?/\\"})


class CsvWriter:
    """Headers are the field paths (scripts read them); every text cell is made inert."""

    def __init__(self, out: IO[str], columns: list[Column]) -> None:
        self.writer = csv.writer(out)
        self.writer.writerow([c.path for c in columns])

    def write(self, values: list[Any]) -> None:
        self.writer.writerow([csv_cell(v) for v in values])

    def close(self) -> None:
        return None


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return inert(text(value))


class XlsxWriter:
    """A workbook with the fields' labels as headers and each cell of its field's type;
    past a worksheet's million rows it goes on in a new sheet, headers repeated."""

    def __init__(self, out: IO[bytes], columns: list[Column], *, title: str, tmpdir: str) -> None:
        self.book = xlsxwriter.Workbook(
            out,
            {
                "constant_memory": True,
                "tmpdir": tmpdir,
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "default_date_format": "yyyy-mm-dd",
            },
        )
        self.book.set_properties({"title": title, "creator": "Fold"})
        self.header = self.book.add_format({"bold": True, "bottom": 1})
        self.date = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.datetime = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.columns = columns
        self.base = (title.translate(SHEET_NAME_BAD).strip() or "Export")[:25]
        self.sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        name = self.base if self.sheets == 1 else f"{self.base} {self.sheets}"
        self.sheet = self.book.add_worksheet(name)
        self.sheet.freeze_panes(1, 0)
        for index, col in enumerate(self.columns):
            self.sheet.write_string(0, index, col.label, self.header)
            width = 12 if col.type in ("date", "number", "boolean") else 20
            self.sheet.set_column(index, index, max(width, min(len(col.label) + 2, 40)))
        self.row = 1

    def write(self, values: list[Any]) -> None:
        if self.row >= XLSX_MAX_ROWS:
            self._new_sheet()
        sheet, row = self.sheet, self.row
        for index, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool):
                sheet.write_boolean(row, index, value)
            elif isinstance(value, int | float):
                sheet.write_number(row, index, value)
            elif isinstance(value, date) and (value.year, value.month) < EXCEL_FIRST_MONTH:
                # Spreadsheets count days from 1900; earlier dates stay ISO text.
                sheet.write_string(row, index, value.isoformat())
            elif isinstance(value, datetime):
                sheet.write_datetime(row, index, value, self.datetime)
            elif isinstance(value, date):
                sheet.write_datetime(row, index, value, self.date)
            else:
                # A string cell is never evaluated, whatever it starts with.
                sheet.write_string(row, index, value)
        self.row += 1

    def close(self) -> None:
        self.book.close()
