"""What the files hold, read back with readers that are not the writers: openpyxl for
.xlsx, pypdf for PDF."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import openpyxl
import pypdf

from tests.conftest import Api, Tenant
from tests.exports.conftest import everyone, export_file

MM = 72 / 25.4


def fieldset(api: Api, name: str, fields: list[str]) -> None:
    response = api.post(
        f"/segments/v2/{api.bucket}/fieldset", json={"name": name, "fields": fields}
    )
    assert response.status_code == 201, response.text


class TestXlsx:
    def test_labels_as_headers_and_cells_of_each_fields_type(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        api = tenant.admin
        api.post(
            f"/api/v2/{api.bucket}/person/fields",
            json={"field": "shoe_size", "type": "number", "label": "Shoe size"},
        )
        api.patch(
            f"/person/{contacts['Lovelace']['uid']}/",
            json={"shoe_size": 38.5, "date_of_birth": "1985-12-10"},
        )
        api.patch(f"/person/{contacts['Brown']['uid']}/", json={"date_of_birth": "1815-12-10"})
        fieldset(api, "Finance", [
            "first_name", "date_of_birth", "created", "shoe_size", "email_opt_out", "tags",
            "address.postal_code", "notes",
        ])  # fmt: skip
        _, download = export_file(api, everyone(api)["uid"], "xlsx", template="Finance",
                                  gdpr_channel="post")  # fmt: skip
        book = openpyxl.load_workbook(io.BytesIO(download.content))
        sheet = book.worksheets[0]
        rows = list(sheet.iter_rows())
        assert [c.value for c in rows[0]] == [
            "First name", "Date of birth", "Created", "Shoe size", "Opted out of email", "Tags",
            "Postcode", "Notes",
        ]  # fmt: skip
        by_name = {r[0].value: r for r in rows[1:]}
        assert len(by_name) == 5  # Clarke opted out of post
        ada = by_name["Ada"]
        assert ada[1].is_date and ada[1].value == datetime(1985, 12, 10)
        assert ada[1].number_format == "yyyy-mm-dd"
        assert ada[2].is_date and isinstance(ada[2].value, datetime)
        assert ada[3].data_type == "n" and ada[3].value == 38.5
        assert ada[5].value == "donor, vip" and ada[6].value == "SW1Y 4JH"
        assert ada[4].value is None
        # Before 1900 a spreadsheet has no day number: the date is ISO text.
        assert by_name["Bob"][1].data_type == "s" and by_name["Bob"][1].value == "1815-12-10"
        fay = by_name["Fay"]
        assert fay[4].data_type == "b" and fay[4].value is False
        # Formula-looking text is a plain string cell: no spreadsheet evaluates it.
        eve = by_name['=HYPERLINK("http://evil")']
        assert eve[0].data_type == "s" and eve[7].data_type == "s"
        assert eve[7].value == "+1 555 0100"
        assert not any(c.data_type == "f" for row in rows for c in row)

    def test_default_columns_are_the_name_and_list_fields(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        api = tenant.admin
        _, download = export_file(api, everyone(api)["uid"], "excel")
        sheet = openpyxl.load_workbook(io.BytesIO(download.content)).worksheets[0]
        headers = [c.value for c in next(sheet.iter_rows())]
        assert headers == ["Name", "Email", "Town or city", "Postcode", "Membership status"]


def page_texts(content: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages]


class TestPdfTable:
    def test_title_sentence_pages_and_header_on_every_page(
        self, tenant: Tenant, contacts: dict[str, Any]
    ) -> None:
        api = tenant.admin
        for n in range(90):
            person = {"first_name": f"Member{n:03d}", "last_name": "Many", "email": f"m{n}@x.org"}
            api.post("/person/", json={**person, "notes": "word " * (n % 40)})
        seg = everyone(api, name="Board pack", rules=[
            {"field": "email", "operator": "starts_with", "value": "m"}])  # fmt: skip
        fieldset(api, "Board", ["display_value", "email", "notes"])
        done, download = export_file(api, seg["uid"], "pdf", template="Board")
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].endswith('.pdf"')
        texts = page_texts(download.content)
        assert len(texts) >= 3 and done["rows"] == 90
        assert "Board pack" in texts[0] and "Made " in texts[0]
        assert "starts with" in texts[0]  # the rule sentence
        for number, text in enumerate(texts, start=1):
            assert "Name" in text and "Email" in text and "Notes" in text
            assert f"Page {number}" in text
        everything = " ".join(texts)
        assert all(f"Member{n:03d}" in everything for n in range(90))
        page = pypdf.PdfReader(io.BytesIO(download.content)).pages[0]
        assert float(page.mediabox.width) > float(page.mediabox.height)  # landscape

    def test_long_text_is_wrapped_not_cut(self, tenant: Tenant) -> None:
        api = tenant.admin
        long = " ".join(f"word{n}" for n in range(120))
        api.post("/person/", json={"first_name": "Long", "last_name": "Text", "notes": long})
        fieldset(api, "Notes", ["display_value", "notes"])
        _, download = export_file(api, everyone(api)["uid"], "pdf", template="Notes")
        text = " ".join(page_texts(download.content)).replace("\n", " ")
        assert "word0 " in text and "word119" in text


class TestLabels:
    def test_three_by_seven_on_a4_in_the_l7160_positions(self, tenant: Tenant) -> None:
        api = tenant.admin
        for n in range(23):
            api.post("/person/", json={
                "first_name": f"Label{n:02d}", "last_name": "Person",
                "address": {"line1": f"{n} Label Road", "locality": "Bristol",
                            "postal_code": "BS1 4DJ"}})  # fmt: skip
        api.post("/person/", json={"first_name": "Nowhere", "last_name": "Person"})
        done, download = export_file(api, everyone(api)["uid"], "pdf", template="labels")
        assert (done["rows"], done["left_out_no_address"]) == (23, 1)
        assert done["report_format"] == "labels" and done["gdpr_channel"] == "post"
        reader = pypdf.PdfReader(io.BytesIO(download.content))
        assert len(reader.pages) == 2
        page = reader.pages[0]
        assert round(float(page.mediabox.width) / MM) == 210
        assert round(float(page.mediabox.height) / MM) == 297
        names: dict[str, tuple[float, float]] = {}

        def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
            if text.startswith("Label") and "Person" in text:
                names[text.split()[0]] = (tm[4], tm[5])

        page.extract_text(visitor_text=visit)
        assert len(names) == 21
        top = 297 * MM - 15.15 * MM
        for n in range(21):
            x, y = names[f"Label{n:02d}"]
            column, row = n % 3, n // 3
            left = 7.2 * MM + column * 66.04 * MM
            label_top = top - row * 38.1 * MM
            assert left < x < left + 63.5 * MM, (n, x)
            assert label_top - 38.1 * MM < y < label_top, (n, y)
        first = page.extract_text()
        assert "0 Label Road" in first and "Bristol" in first and "BS1 4DJ" in first
        assert "Label21" in reader.pages[1].extract_text()
