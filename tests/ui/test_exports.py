"""The segment page's Export section: an .xlsx, PDF table or label export started from the
page, followed on its job's page to a download link that gives the file; and a CSV link
that streams it at once. Read back with readers that are not the writers."""

from __future__ import annotations

import io
import re

import openpyxl
import pypdf
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fold.db.engine import unit_of_work
from fold.db.models import Job
from tests.conftest import Tenant
from tests.segments.conftest import make_segment
from tests.ui.conftest import WebClient, csrf_of, make_user, sign_in


def export(web: WebClient, segment_uid: str, **form: str) -> tuple[str, str]:
    """Start an export from the segment page's form; its job page once finished (jobs run
    inline in tests), and the download link on it."""
    page = web.page(f"/ui/{web.bucket}/segments/{segment_uid}")
    answer = web.client.post(
        f"/ui/{web.bucket}/segments/{segment_uid}/export",
        data={"csrf_token": csrf_of(page), **form},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    job_page = web.page(answer.headers["location"])
    assert re.search(r"data-status>completed<", job_page), job_page
    link = re.search(r'href="([^"]+)" data-download', job_page)
    assert link, job_page
    return job_page, link.group(1)


def test_exports_from_the_segment_page(app_client: TestClient, tenant: Tenant) -> None:
    api = tenant.admin
    for person in ("Ada", "Grace", "Alan"):
        made = api.post(
            "/person/",
            json={
                "first_name": person, "last_name": "Tester", "email": f"{person}@example.org",
                "address": {"line1": "1 High St", "locality": "Leeds", "postal_code": "LS1 1AA"},
            },
        )  # fmt: skip
        assert made.status_code == 201, made.text
    segment = make_segment(
        api, name="Testers", rules=[{"field": "last_name", "operator": "equals", "value": "Tester"}]
    )
    made = api.post(
        f"/segments/v2/{tenant.bucket}/fieldset",
        json={"name": "Names", "fields": ["first_name", "email"]},
    )
    assert made.status_code == 201, made.text
    fieldset_uid = made.json()["uid"]
    web = sign_in(app_client, tenant.bucket, *make_user(tenant.db, tenant.bucket, "viewer"))
    page = web.page(f"/ui/{tenant.bucket}/segments/{segment['uid']}")
    assert "data-export" in page and f'<option value="{fieldset_uid}">Names</option>' in page

    # An .xlsx in the fieldset's columns, its file from the job page's link (the session's
    # cookie is the key).
    job_page, link = export(web, segment["uid"], format="xlsx", fieldset=fieldset_uid)
    assert "3 records written" in job_page
    download = web.client.get(link)
    assert download.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(download.content)).worksheets[0]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == ["First name", "Email"]
    assert sorted(r[0] for r in rows[1:]) == ["Ada", "Alan", "Grace"]

    # Address labels: a PDF with each name on it.
    _, link = export(web, segment["uid"], format="labels")
    labels = web.client.get(link)
    assert labels.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(labels.content)).pages)
    assert all(name in text for name in ("Ada", "Grace", "Alan")) and "LS1 1AA" in text

    # The CSV link streams at once.
    csv_link = re.search(r'href="([^"]+)" data-csv', page)
    assert csv_link
    streamed = web.client.get(csv_link.group(1).replace("&amp;", "&"))
    assert streamed.status_code == 200 and streamed.text.count("Tester") == 3


def test_export_form_refuses_bad_input(app_client: TestClient, tenant: Tenant) -> None:
    api = tenant.admin
    segment = make_segment(api, name="All")
    folder = make_segment(api, name="Folder", segment_type="auxiliary")
    web = sign_in(app_client, tenant.bucket, *make_user(tenant.db, tenant.bucket, "editor"))
    page = web.page(f"/ui/{tenant.bucket}/segments/{segment['uid']}")
    url = f"/ui/{tenant.bucket}/segments/{segment['uid']}/export"
    token = csrf_of(page)
    wrong_format = web.client.post(url, data={"csrf_token": token, "format": "docx"})
    assert wrong_format.status_code == 400 and "not an export format" in wrong_format.text
    twice = web.client.post(
        url, content=f"csrf_token={token}&format=xlsx&format=pdf",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert twice.status_code == 400 and "not an export format" in twice.text
    no_fieldset = web.client.post(url, data={"csrf_token": token, "fieldset": "Nothing"})
    assert no_fieldset.status_code == 400, no_fieldset.text
    unsigned = web.client.post(url, data={"format": "xlsx"}, follow_redirects=False)
    assert unsigned.status_code == 403
    # A folder holds no records: no Export section, and a form posted anyway is refused.
    assert "data-export" not in web.page(f"/ui/{tenant.bucket}/segments/{folder['uid']}")
    refused = web.client.post(
        f"/ui/{tenant.bucket}/segments/{folder['uid']}/export", data={"csrf_token": token}
    )
    assert refused.status_code == 400 and "auxiliary" in refused.text
    # Nothing was started by any of them.
    with unit_of_work(tenant.db.sessions) as session:
        started = session.scalar(
            select(func.count()).select_from(Job).where(Job.bucket == tenant.bucket)
        )
    assert started == 0
