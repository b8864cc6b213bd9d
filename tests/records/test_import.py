"""Bulk import of NDJSON and CSV: upsert on uid or unique field, bad rows reported."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, Tenant, assert_error

NDJSON = {"content-type": "application/x-ndjson"}
CSV = {"content-type": "text/csv"}


def ndjson(*rows: Any) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def people(api: Api) -> dict[str, dict[str, Any]]:
    results = api.get("/person/", params={"page_size": 100}).json()["results"]
    return {r.get("email", r["uid"]): r for r in results}


class TestImport:
    def test_ndjson_creates_and_reports(self, api: Api) -> None:
        body = ndjson({"email": "a@x.org", "first_name": "A"}, {"email": "b@x.org", "tags": "x,y"})
        result = api.post("/person/import", content=body, headers=NDJSON).json()
        assert result == {
            "rows": 2,
            "created": 2,
            "updated": 0,
            "failed": 0,
            "errors": [],
            "errors_truncated": False,
        }
        assert people(api)["b@x.org"]["tags"] == ["x", "y"]

    def test_upsert_on_email_merges_fields(self, api: Api) -> None:
        api.post("/person/", json={"email": "a@x.org", "first_name": "A", "last_name": "Old"})
        body = ndjson({"email": "A@X.org ", "last_name": "New"})
        result = api.post("/person/import", content=body, headers=NDJSON).json()
        assert (result["created"], result["updated"]) == (0, 1)
        person = people(api)["A@X.org "]
        assert (person["first_name"], person["last_name"]) == ("A", "New")
        assert person["display_value"] == "A New"

    def test_upsert_on_uid(self, api: Api) -> None:
        uid = api.post("/person/", json={"first_name": "U"}).json()["uid"]
        body = ndjson({"uid": uid, "last_name": "Given"}, {"uid": "a" * 24, "first_name": "Fresh"})
        result = api.post("/person/import", content=body, headers=NDJSON).json()
        assert (result["created"], result["updated"]) == (1, 1)
        assert api.get(f"/person/{uid}/").json()["display_value"] == "U Given"
        assert api.get(f"/person/{'a' * 24}/").json()["first_name"] == "Fresh"

    def test_same_key_twice_in_one_file_updates_the_first(self, api: Api) -> None:
        body = ndjson(
            {"email": "d@x.org", "first_name": "One"}, {"email": "d@x.org", "last_name": "Two"}
        )
        result = api.post("/person/import", content=body, headers=NDJSON).json()
        assert (result["created"], result["updated"]) == (1, 0)
        assert people(api)["d@x.org"]["display_value"] == "One Two"

    def test_bad_rows_are_listed_and_good_rows_kept(self, api: Api) -> None:
        body = ndjson(
            {"email": "ok1@x.org"},
            "{not json",
            {"email": "bad@x.org", "date_of_birth": "someday"},
            "[1, 2]",
            {"uid": "short"},
            {"email": "ok2@x.org"},
        )
        result = api.post("/person/import", content=body, headers=NDJSON).json()
        assert (result["rows"], result["created"], result["failed"]) == (6, 2, 4)
        by_row = {e["row"]: e for e in result["errors"]}
        assert set(by_row) == {2, 3, 4, 5}
        assert by_row[3]["param"] == "date_of_birth"
        assert by_row[5]["param"] == "uid"
        assert set(people(api)) == {"ok1@x.org", "ok2@x.org"}

    def test_csv_with_dotted_headers(self, api: Api) -> None:
        body = (
            b"email,first_name,address.postal_code,email_opt_out,tags\n"
            b'c1@x.org,Cy,N1 9GU,yes,"a,b"\n'
            b"c2@x.org,,SW1A 1AA,no,\n"
            b"c3@x.org,Di,E8 1AA,perhaps,\n"
        )
        result = api.post("/person/import", content=body, headers=CSV).json()
        assert (result["created"], result["failed"]) == (2, 1)
        assert result["errors"][0]["row"] == 4 and result["errors"][0]["param"] == "email_opt_out"
        found = people(api)
        assert found["c1@x.org"]["address"] == {"postal_code": "N1 9GU"}
        assert found["c1@x.org"]["email_opt_out"] is True and found["c1@x.org"]["tags"] == [
            "a",
            "b",
        ]
        assert "first_name" not in found["c2@x.org"]

    def test_multipart_file_upload(self, api: Api) -> None:
        files = {"file": ("people.csv", b"email\nm@x.org\n", "text/csv")}
        result = api.post("/person/import", files=files).json()
        assert result["created"] == 1

    def test_refusals(self, tenant: Tenant) -> None:
        api = tenant.admin
        assert_error(
            api.post("/person/import", content=b"x", headers={"content-type": "text/plain"}),
            415,
            "unsupported_media_type",
        )
        assert_error(
            api.post("/wizard/import", content=b"{}", headers=NDJSON),
            400,
            "validation_error",
            "resource_type",
        )
        assert_error(
            tenant.viewer.post("/person/import", content=b"{}", headers=NDJSON),
            403,
            "permission_denied",
        )

    def test_unique_conflict_with_existing_record_by_uid(self, api: Api) -> None:
        api.post("/person/", json={"email": "taken@x.org"})
        uid = api.post("/person/", json={"email": "mine@x.org"}).json()["uid"]
        result = api.post(
            "/person/import", content=ndjson({"uid": uid, "email": "taken@x.org"}), headers=NDJSON
        ).json()
        assert result["failed"] == 1 and result["errors"][0]["param"] == "email"
        assert api.get(f"/person/{uid}/").json()["email"] == "mine@x.org"
