"""PDF tables and address labels, written page by page.

`PdfFile` writes each page to the file as soon as it is drawn and keeps only byte
offsets, so a document of any length takes the same memory. Text is set in the standard
Helvetica fonts (nothing embedded); reportlab supplies their glyph widths."""

from __future__ import annotations

import zlib
from datetime import date, datetime
from functools import lru_cache
from typing import IO, Any

from reportlab.pdfbase.pdfmetrics import getFont

from fold.exports.columns import Column, text

MM = 72 / 25.4
A4 = (595.28, 841.89)
A4_LANDSCAPE = (841.89, 595.28)
REGULAR, BOLD = "Helvetica", "Helvetica-Bold"
FONT_KEYS = {REGULAR: "F1", BOLD: "F2"}


GLYPH_WIDTHS = {name: tuple(getFont(name).widths) for name in FONT_KEYS}


@lru_cache(maxsize=200_000)
def _units(value: str, font: str) -> int:
    widths = GLYPH_WIDTHS[font]
    return sum(widths[b] for b in value.encode("cp1252", errors="replace"))


def text_width(value: str, font: str, size: float) -> float:
    """The width of a line in points; names, towns and postcodes repeat, so it is cached."""
    return _units(value, font) * size / 1000


def pdf_text(value: str) -> bytes:
    """A PDF string literal in WinAnsi; characters it lacks become '?'."""
    raw = value.encode("ascii") if value.isascii() else value.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


class Page:
    """The drawing operators of one page."""

    def __init__(self) -> None:
        self.ops: list[bytes] = []

    def text(self, x: float, y: float, value: str, font: str = REGULAR, size: float = 8) -> None:
        self.ops.append(
            b"BT /%s %.1f Tf %.2f %.2f Td %s Tj ET"
            % (FONT_KEYS[font].encode(), size, x, y, pdf_text(value))
        )

    def line(self, x1: float, y1: float, x2: float, y2: float, grey: float = 0.6) -> None:
        self.ops.append(b"%.2f G 0.4 w %.2f %.2f m %.2f %.2f l S" % (grey, x1, y1, x2, y2))

    def fill(self, x: float, y: float, w: float, h: float, grey: float) -> None:
        self.ops.append(b"%.2f g %.2f %.2f %.2f %.2f re f 0 g" % (grey, x, y, w, h))

    def content(self) -> bytes:
        return b"\n".join(self.ops)


class PdfFile:
    """A PDF written object by object; `close` writes the page tree and the index."""

    def __init__(self, out: IO[bytes], size: tuple[float, float], title: str) -> None:
        self.out = out
        self.size = size
        self.title = title
        self.offsets: list[int] = []  # object n at offsets[n - 1]
        self.pages: list[int] = []
        self.written = 0
        self._raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        # Reserved numbers: 1 catalog, 2 page tree, 3 and 4 fonts, 5 document info.
        self.offsets.extend([0, 0, 0, 0, 0])
        self._object(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                        b"/Encoding /WinAnsiEncoding >>")  # fmt: skip
        self._object(4, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold "
                        b"/Encoding /WinAnsiEncoding >>")  # fmt: skip

    def _raw(self, data: bytes) -> None:
        self.out.write(data)
        self.written += len(data)

    def _new(self) -> int:
        self.offsets.append(0)
        return len(self.offsets)

    def _object(self, number: int, body: bytes) -> None:
        self.offsets[number - 1] = self.written
        self._raw(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def add(self, page: Page) -> None:
        data = zlib.compress(page.content(), 6)
        stream = self._new()
        self._object(
            stream,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream",
        )
        number = self._new()
        self._object(
            number,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (self.size[0], self.size[1], stream),
        )
        self.pages.append(number)

    def close(self) -> None:
        if not self.pages:
            self.add(Page())
        kids = b" ".join(b"%d 0 R" % n for n in self.pages)
        self._object(2, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(self.pages), kids))
        self._object(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        self._object(5, b"<< /Title %s /Producer (Fold) >>" % pdf_text(self.title))
        start = self.written
        lines = [b"xref\n0 %d\n" % (len(self.offsets) + 1), b"0000000000 65535 f \n"]
        lines.extend(b"%010d 00000 n \n" % offset for offset in self.offsets)
        self._raw(b"".join(lines))
        self._raw(
            b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(self.offsets) + 1, start)
        )


def wrap(value: str, font: str, size: float, width: float) -> list[str]:
    """Lines no wider than `width`, broken between words; a word wider than the column is
    broken too, so nothing is cut."""
    if "\n" not in value and text_width(value, font, size) <= width:
        return [value]
    room = width * 1000 / size  # in glyph units
    space = _units(" ", font)
    out: list[str] = []
    for paragraph in value.splitlines() or [""]:
        line, used = "", 0
        for word in paragraph.split(" "):
            units = _units(word, font)
            if line and used + space + units <= room:
                line, used = f"{line} {word}", used + space + units
                continue
            if line:
                out.append(line)
            while units > room and len(word) > 1:
                cut = len(word) - 1
                while cut > 1 and _units(word[:cut], font) > room:
                    cut -= 1
                out.append(word[:cut])
                word = word[cut:]
                units = _units(word, font)
            line, used = word, units
        out.append(line)
    return out


def shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.2f}"
    return text(value)  # measured and set alike: characters WinAnsi lacks become '?'


WEIGHTS = {"date": 1.4, "datetime": 1.9, "number": 1.2, "boolean": 1.0, "list": 2.4}


class TableWriter:
    """A4 landscape: title, the rule sentence and when it was made on the first page;
    the header row on every page; page numbers; long text wrapped within its column."""

    MARGIN = 36.0
    SIZE = 8.0
    LEADING = 9.6
    PAD = 3.0

    def __init__(
        self, out: IO[bytes], columns: list[Column], *, title: str, sentence: str, made: str
    ) -> None:
        self.file = PdfFile(out, A4_LANDSCAPE, title)
        self.columns = columns
        self.title, self.sentence, self.made = title, sentence, made
        width = A4_LANDSCAPE[0] - 2 * self.MARGIN
        weights = [WEIGHTS.get(c.type, 2.6 if c.path == "display_value" else 2.0) for c in columns]
        total = sum(weights) or 1.0
        self.widths = [width * w / total for w in weights]
        self.xs = [self.MARGIN + sum(self.widths[:i]) for i in range(len(columns))]
        self.page: Page | None = None
        self.number = 0
        self.y = 0.0

    def _start_page(self) -> None:
        page = self.page = Page()
        self.number += 1
        top = A4_LANDSCAPE[1] - self.MARGIN
        if self.number == 1:
            page.text(self.MARGIN, top - 14, self.title, BOLD, 14)
            top -= 22
            for line in wrap(self.sentence, REGULAR, 9, 770)[:4]:
                page.text(self.MARGIN, top - 9, line, REGULAR, 9)
                top -= 11
            page.text(self.MARGIN, top - 9, f"Made {self.made}", REGULAR, 8)
            top -= 18
        page.text(self.MARGIN, 20, self.title[:120], REGULAR, 7)
        label = f"Page {self.number}"
        page.text(
            A4_LANDSCAPE[0] - self.MARGIN - text_width(label, REGULAR, 7), 20, label, REGULAR, 7
        )
        heads = [wrap(c.label, BOLD, self.SIZE, w - 2 * self.PAD)
                 for c, w in zip(self.columns, self.widths, strict=True)]  # fmt: skip
        height = max((len(h) for h in heads), default=1) * self.LEADING + 2 * self.PAD
        page.fill(self.MARGIN, top - height, sum(self.widths), height, 0.88)
        self._cells(heads, top, BOLD)
        self.y = top - height

    def _cells(self, cells: list[list[str]], top: float, font: str) -> None:
        assert self.page is not None
        for x, lines in zip(self.xs, cells, strict=True):
            for n, line in enumerate(lines):
                y = top - self.PAD - self.SIZE - n * self.LEADING + 1
                self.page.text(x + self.PAD, y, line, font, self.SIZE)

    def write(self, values: list[Any]) -> None:
        cells = [wrap(shown(v), REGULAR, self.SIZE, w - 2 * self.PAD)
                 for v, w in zip(values, self.widths, strict=True)]  # fmt: skip
        if self.page is None:
            self._start_page()
        room = A4_LANDSCAPE[1] - 2 * self.MARGIN - 60
        most = max(1, int((room - 2 * self.PAD) / self.LEADING))
        lines = min(max((len(c) for c in cells), default=1), most)
        height = lines * self.LEADING + 2 * self.PAD
        if self.y - height < self.MARGIN:
            self._flush()
            self._start_page()
        self._cells([c[:lines] for c in cells], self.y, REGULAR)
        assert self.page is not None
        self.y -= height
        self.page.line(self.MARGIN, self.y, self.MARGIN + sum(self.widths), self.y, 0.8)

    def _flush(self) -> None:
        if self.page is not None:
            self.file.add(self.page)
            self.page = None

    def close(self) -> None:
        if self.page is None and self.number == 0:
            self._start_page()
        self._flush()
        self.file.close()


class LabelWriter:
    """Address labels on A4 sheets, 3 across and 7 down, 63.5 x 38.1 mm each (the
    common L7160 layout): the name, then the postal address a line each."""

    COLUMNS, ROWS = 3, 7
    WIDTH, HEIGHT = 63.5 * MM, 38.1 * MM
    LEFT, TOP = 7.2 * MM, 15.15 * MM
    PITCH_X = 66.04 * MM
    PAD_X, PAD_Y = 5 * MM, 4 * MM
    SIZE, LEADING = 9.0, 10.8

    def __init__(self, out: IO[bytes], *, title: str) -> None:
        self.file = PdfFile(out, A4, title)
        self.page: Page | None = None
        self.slot = 0

    def origin(self, slot: int) -> tuple[float, float]:
        """The top-left corner of a label, in PDF points from the bottom-left of the page."""
        column, row = slot % self.COLUMNS, slot // self.COLUMNS
        return self.LEFT + column * self.PITCH_X, A4[1] - self.TOP - row * self.HEIGHT

    def write(self, lines: list[str]) -> None:
        if self.page is None:
            self.page = Page()
        x, top = self.origin(self.slot)
        room = self.WIDTH - 2 * self.PAD_X
        most = int((self.HEIGHT - 2 * self.PAD_Y) / self.LEADING) + 1
        for n, line in enumerate(lines[:most]):
            font = BOLD if n == 0 else REGULAR
            value, size = line, self.SIZE
            if text_width(value, font, size) > room:
                while size > 6 and text_width(value, font, size) > room:
                    size -= 0.5
                while len(value) > 1 and text_width(value, font, size) > room:
                    value = value[:-2] + "\u2026"
            y = top - self.PAD_Y - self.SIZE - n * self.LEADING
            self.page.text(x + self.PAD_X, y, value, font, size)
        self.slot += 1
        if self.slot == self.COLUMNS * self.ROWS:
            self.file.add(self.page)
            self.page, self.slot = None, 0

    def close(self) -> None:
        if self.page is not None:
            self.file.add(self.page)
        self.file.close()
