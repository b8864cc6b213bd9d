"""The audit trail: an entry with a field diff for every write, from every path."""

from __future__ import annotations

from tests.conftest import Api, Tenant, assert_error


def entries(api: Api, path: str = "/audit", **params: object) -> list[dict[str, object]]:
    response = api.get(f"/audit/v2/{api.bucket}{path}", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return body if isinstance(body, list) else body["audit"]  # type: ignore[no-any-return]


class TestRecordAudit:
    def test_every_write_leaves_an_entry_with_its_diff(self, api: Api) -> None:
        uid = api.post("/person/", json={"first_name": "Ann", "tags": ["a"]}).json()["uid"]
        api.patch(
            f"/person/{uid}/", json={"first_name": "Anne", "email": "anne@x.org", "tags": None}
        )
        api.delete(f"/person/{uid}/")
        api.post(f"/person/{uid}/restore")
        found = entries(api, f"/person/{uid}/audit")
        assert [e["message"] for e in found] == ["Restored", "Deleted", "Changed", "Created"]
        created = found[3]
        assert created["uri"] == f"/{api.bucket}/person/{uid}/"
        assert created["resource"] == "person"
        assert {"field": "first_name", "prev": None, "value": "Ann", "verb": "add"} in created[
            "clean_diff"
        ]  # type: ignore[operator]
        changed = found[2]["clean_diff"]
        assert changed == [
            {"field": "email", "prev": None, "value": "anne@x.org", "verb": "add"},
            {"field": "first_name", "prev": "Ann", "value": "Anne", "verb": "change"},
            {"field": "tags", "prev": ["a"], "value": None, "verb": "drop"},
        ]
        assert found[1]["clean_diff"] == [
            {"field": "record_state", "prev": "active", "value": "deleted", "verb": "change"}
        ]
        assert str(found[0]["user"]).startswith(f"/{api.bucket}/api_key/")

    def test_imports_are_audited_too(self, api: Api) -> None:
        api.post(
            "/person/import",
            content=b'{"email": "i@x.org", "first_name": "I"}\n',
            headers={"content-type": "application/x-ndjson"},
        )
        found = entries(api, resource="person")
        assert found[0]["message"] == "Imported"

    def test_filters_and_format(self, api: Api) -> None:
        api.post("/person/", json={"first_name": "P"})
        api.post("/organisation/", json={"name": "O"})
        assert [e["resource"] for e in entries(api, resource="organisation")] == ["organisation"]
        as_list = entries(api, format="list", limit=1)
        assert len(as_list) == 1
        assert entries(api, **{"from": "2999-01-01"}) == []
        assert len(entries(api, skip=1)) == 1

    def test_segment_entries_filter_by_resource(self, api: Api) -> None:
        made = api.post(
            f"/segments/v2/{api.bucket}/create", json={"name": "S", "resource_type": "person"}
        ).json()
        found = entries(api, resource="segment")
        assert [(e["resource"], e["uri"]) for e in found] == [("segment", made["uri"])]

    def test_bad_parameters(self, tenant: Tenant) -> None:
        api = tenant.viewer
        base = f"/audit/v2/{api.bucket}/audit"
        assert_error(api.get(base, params={"limit": 0}), 400, "validation_error", "limit")
        assert_error(api.get(base, params={"skip": -1}), 400, "validation_error", "skip")
        assert_error(api.get(base, params={"from": "yesterday"}), 400, "validation_error", "from")
        assert_error(api.get(base, params={"format": "xml"}), 400, "validation_error", "format")
        assert_error(
            api.get(base, params={"resource": "wizard"}), 400, "validation_error", "resource"
        )
        assert_error(
            api.get(f"/audit/v2/{api.bucket}/person/zz/audit"), 400, "validation_error", "uid"
        )

    def test_other_bucket_cannot_read_audit(self, tenant: Tenant, other_tenant: Tenant) -> None:
        response = other_tenant.admin.get(f"/audit/v2/{tenant.bucket}/audit")
        assert_error(response, 403, "permission_denied")
