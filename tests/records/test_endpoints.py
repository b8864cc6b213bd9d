"""The records API (SPEC 6) through HTTP, good paths and refusals."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, Tenant, assert_error

ADA = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.org",
    "tags": ["donor", "Volunteer"],
    "address": {"locality": "London", "postal_code": "N1 9GU"},
    "date_of_birth": "1815-12-10",
}


def create(api: Api, resource_type: str = "person", **fields: Any) -> dict[str, Any]:
    response = api.post(f"/{resource_type}/", json=fields or ADA)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestCreateRecord:
    def test_adds_fold_fields(self, api: Api) -> None:
        record = create(api)
        assert len(record["uid"]) == 24 and int(record["uid"], 16) >= 0
        assert record["uri"] == f"/{api.bucket}/person/{record['uid']}/"
        assert record["record_state"] == "active"
        assert record["display_value"] == "Ada Lovelace"
        assert record["created"].count(".") == 1 and len(record["created"]) == 26
        assert record["address"] == {"locality": "London", "postal_code": "N1 9GU"}

    def test_values_are_read_as_their_field_type(self, api: Api) -> None:
        record = create(
            api,
            first_name="Bo",
            email="bo@example.org",
            tags="a, b,,c",
            email_opt_out="yes",
            date_of_birth="1990-02-03T10:00:00Z",
            geo="51.5,-0.12",
            **{"address.postal_code": "SW1A 1AA"},
        )
        assert record["tags"] == ["a", "b", "c"]
        assert record["email_opt_out"] is True
        assert record["date_of_birth"] == "1990-02-03"
        assert record["geo"] == {"lat": 51.5, "lng": -0.12}
        assert record["address"] == {"postal_code": "SW1A 1AA"}

    def test_display_values_per_type(self, api: Api) -> None:
        payment = create(api, "payment", amount="25.5", date="2024-03-01", currency="GBP")
        assert payment["display_value"] == "£25.50 on 2024-03-01"
        org = create(api, "organisation", name="Riverside Trust")
        assert org["display_value"] == "Riverside Trust"
        membership = create(
            api, "membership", membership_type="Joint", membership_number="M1", status="active"
        )
        assert membership["display_value"] == "Joint M1 (active)"

    def test_undeclared_fields_are_kept_as_given(self, api: Api) -> None:
        record = create(api, first_name="Cy", extras={"shoe_size": 9}, legacy_id="X-1")
        assert record["extras"] == {"shoe_size": 9} and record["legacy_id"] == "X-1"

    def test_wrong_types_are_refused_naming_every_field(self, api: Api) -> None:
        response = api.post(
            "/person/", json={"date_of_birth": "last tuesday", "email_opt_out": "maybe"}
        )
        body = assert_error(response, 400, "validation_error", "date_of_birth")
        assert {e["param"] for e in body["errors"]} == {"date_of_birth", "email_opt_out"}
        assert api.get("/person/").json()["total"] == 0

    def test_status_outside_allowed_values_is_refused(self, api: Api) -> None:
        response = api.post("/membership/", json={"status": "zombie"})
        body = assert_error(response, 400, "validation_error", "status")
        assert "active" in body["description"]

    def test_unknown_resource_type_is_400(self, api: Api) -> None:
        body = assert_error(api.post("/wizard/", json={}), 400, "validation_error", "resource_type")
        assert "person" in body["description"]
        assert_error(api.post("/contact/", json={}), 400, "validation_error", "resource_type")

    def test_body_must_be_a_json_object(self, api: Api) -> None:
        assert_error(api.post("/person/", json=[1, 2]), 400, "validation_error")
        response = api.post(
            "/person/", content=b'{"first_name": ', headers={"content-type": "application/json"}
        )
        assert_error(response, 400, "validation_error", "body")
        assert_error(api.post("/person/"), 400, "validation_error", "body")

    def test_other_media_types_are_415(self, api: Api) -> None:
        response = api.post("/person/", content=b"x", headers={"content-type": "text/plain"})
        assert_error(response, 415, "unsupported_media_type")

    def test_oversized_body_is_413(self, api: Api) -> None:
        response = api.post("/person/", json={"notes": "x" * 1_100_000})
        assert_error(response, 413, "payload_too_large")

    def test_bad_field_names_and_uris(self, api: Api) -> None:
        assert_error(api.post("/person/", json={"bad key!": 1}), 400, "validation_error")
        response = api.post(
            "/person/", json={"organisation": "/other-bucket/organisation/" + "a" * 24 + "/"}
        )
        assert_error(response, 400, "validation_error", "organisation")
        assert_error(
            api.post("/person/", json={"organisation": "nope"}),
            400,
            "validation_error",
            "organisation",
        )

    def test_unique_email_conflicts(self, api: Api) -> None:
        create(api)
        response = api.post("/person/", json={"email": " ADA@example.org "})
        assert_error(response, 409, "conflict", "email")

    def test_viewer_cannot_write(self, tenant: Tenant) -> None:
        assert_error(tenant.viewer.post("/person/", json=ADA), 403, "permission_denied")


class TestReadRecord:
    def test_read_and_display(self, api: Api) -> None:
        record = create(api)
        got = api.get(f"/person/{record['uid']}/").json()
        assert got == record
        assert api.get(f"/person/{record['uid']}").json() == record
        assert api.get(f"/person/{record['uid']}/display").json() == {
            "display_value": "Ada Lovelace"
        }

    def test_missing_and_malformed_uids_are_404(self, api: Api) -> None:
        assert_error(api.get("/person/" + "0" * 24 + "/"), 404, "not_found")
        assert_error(api.get("/person/xyz/"), 404, "not_found")

    def test_unknown_paths_are_404_in_shape(self, api: Api) -> None:
        assert_error(api.get("/person/" + "0" * 24 + "/nothing/here"), 404, "not_found")
        assert_error(api.client.get("/no/such/path"), 404, "not_found")

    def test_wrong_method_is_405_in_shape(self, api: Api) -> None:
        response = api.client.put("/health")
        assert response.status_code == 405 and response.json()["type"] == "method_not_allowed"


class TestChangeRecord:
    def test_replace_sets_exactly_the_body(self, api: Api) -> None:
        record = create(api)
        got = api.put(
            f"/person/{record['uid']}/", json={"first_name": "Augusta", "email": "a@x.org"}
        )
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["first_name"] == "Augusta" and "last_name" not in body
        assert body["display_value"] == "Augusta"
        assert body["created"] == record["created"]

    def test_patch_merges_and_null_removes(self, api: Api) -> None:
        record = create(api)
        body = api.patch(
            f"/person/{record['uid']}/",
            json={"address": {"postal_code": "EC1V 2NX"}, "tags": None, "title": "Countess"},
        ).json()
        assert body["address"] == {"locality": "London", "postal_code": "EC1V 2NX"}
        assert "tags" not in body
        assert body["display_value"] == "Countess Ada Lovelace"

    def test_patch_with_wrong_type_changes_nothing(self, api: Api) -> None:
        record = create(api)
        assert_error(
            api.patch(f"/person/{record['uid']}/", json={"date_of_birth": "soon"}),
            400,
            "validation_error",
            "date_of_birth",
        )
        assert api.get(f"/person/{record['uid']}/").json() == record

    def test_patch_body_must_be_object(self, api: Api) -> None:
        record = create(api)
        assert_error(api.patch(f"/person/{record['uid']}/", json=["x"]), 400, "validation_error")

    def test_patch_keeps_or_changes_the_unique_email(self, api: Api) -> None:
        ada = create(api)
        bo = create(api, first_name="Bo", email="bo@example.org")
        # Another field, or the same email sent again: the record keeps its own email.
        kept = api.patch(f"/person/{ada['uid']}/", json={"tags": ["x"], "email": "ada@example.org"})
        assert kept.status_code == 200, kept.text
        assert kept.json()["email"] == "ada@example.org" and kept.json()["tags"] == ["x"]
        # Another's email: refused, naming the record that holds it.
        taken = api.patch(f"/person/{ada['uid']}/", json={"email": " BO@example.org "})
        assert_error(taken, 409, "conflict", "email")
        assert bo["uri"] in taken.json()["description"]
        assert api.get(f"/person/{ada['uid']}/").json()["email"] == "ada@example.org"


class TestDeleteAndRestore:
    def test_soft_delete_then_restore(self, api: Api) -> None:
        record = create(api)
        deleted = api.delete(f"/person/{record['uid']}/").json()
        assert deleted["record_state"] == "deleted"
        assert_error(api.get(f"/person/{record['uid']}/"), 404, "not_found")
        assert api.get("/person/").json()["total"] == 0
        restored = api.post(f"/person/{record['uid']}/restore").json()
        assert restored["record_state"] == "active"
        assert api.get(f"/person/{record['uid']}/").status_code == 200

    def test_editor_cannot_delete_or_restore(self, tenant: Tenant) -> None:
        record = create(tenant.editor)
        assert_error(tenant.editor.delete(f"/person/{record['uid']}/"), 403, "permission_denied")
        tenant.admin.delete(f"/person/{record['uid']}/")
        response = tenant.editor.post(f"/person/{record['uid']}/restore")
        assert_error(response, 403, "permission_denied")

    def test_restore_refused_when_email_was_taken_meanwhile(self, api: Api) -> None:
        record = create(api)
        api.delete(f"/person/{record['uid']}/")
        create(api)
        assert_error(api.post(f"/person/{record['uid']}/restore"), 409, "conflict", "email")


class TestListRecords:
    def test_paging_and_envelope(self, api: Api) -> None:
        for n in range(5):
            create(api, first_name=f"P{n}", email=f"p{n}@x.org")
        page = api.get("/person/", params={"page": 2, "page_size": 2}).json()
        assert (page["page"], page["page_size"], page["total"], page["pages"]) == (2, 2, 5, 3)
        assert [r["first_name"] for r in page["results"]] == ["P2", "P3"]

    def test_bad_paging_is_400(self, api: Api) -> None:
        for params, param in (
            ({"page": 0}, "page"),
            ({"page": "x"}, "page"),
            ({"page_size": 1001}, "page_size"),
            ({"page_size": -1}, "page_size"),
        ):
            assert_error(api.get("/person/", params=params), 400, "validation_error", param)

    def test_field_filters_and_mode(self, api: Api) -> None:
        create(
            api, first_name="Ann", email="ann@x.org", tags=["Donor"], address={"locality": "Leeds"}
        )
        create(
            api,
            first_name="Bob",
            email="bob@x.org",
            tags=["volunteer"],
            address={"locality": "York"},
        )
        create(api, first_name="Cat", email="cat@x.org", address={"locality": "leeds "})

        def names(params: dict[str, str]) -> list[str]:
            results = api.get("/person/", params=params).json()["results"]
            return sorted(r["first_name"] for r in results)

        assert names({"address.locality": "LEEDS"}) == ["Ann", "Cat"]
        assert names({"tags": "donor"}) == ["Ann"]
        assert names({"tags": "donor", "address.locality": "york", "mode": "OR"}) == ["Ann", "Bob"]
        assert names({"first_name": "ann", "address.locality": "york"}) == []

    def test_sort(self, api: Api) -> None:
        for name in ("b", "c", "a"):
            create(api, first_name=name, email=f"{name}@x.org")
        results = api.get("/person/", params={"sort": "-first_name"}).json()["results"]
        assert [r["first_name"] for r in results] == ["c", "b", "a"]

    def test_bad_filter_names_and_mode(self, api: Api) -> None:
        assert_error(
            api.get("/person/", params={"bad key": "x"}), 400, "validation_error", "bad key"
        )
        assert_error(api.get("/person/", params={"mode": "XOR"}), 400, "validation_error", "mode")


class TestResourceTypes:
    def test_counts_and_last_modified(self, api: Api) -> None:
        create(api)
        create(api, "organisation", name="Org")
        body = api.get("/").json()
        types = {t["resource_type"]: t for t in body["resource_types"]}
        assert types["person"]["count"] == 1 and types["organisation"]["count"] == 1
        assert types["payment"]["count"] == 0 and types["payment"]["last_modified"] is None
        assert types["person"]["last_modified"]
        assert "contact" not in types


class TestCustomFields:
    def test_declared_field_is_validated(self, tenant: Tenant) -> None:
        api = tenant.admin
        response = api.post("/person/fields", json={"field": "extras.shoe_size", "type": "number"})
        assert response.status_code == 201, response.text
        fields = {f["field"]: f for f in api.get("/person/fields").json()["fields"]}
        assert fields["extras.shoe_size"]["custom"] is True
        assert create(api, extras={"shoe_size": "9"})["extras"] == {"shoe_size": 9}
        response = api.post("/person/", json={"extras": {"shoe_size": "big"}})
        assert_error(response, 400, "validation_error", "extras.shoe_size")

    def test_refusals(self, tenant: Tenant) -> None:
        api = tenant.admin
        assert_error(api.post("/person/fields", json={"field": "email"}), 409, "conflict", "field")
        assert_error(
            api.post("/person/fields", json={"field": "x", "type": "blob"}),
            400,
            "validation_error",
            "type",
        )
        assert_error(
            api.post("/person/fields", json={"field": "$x"}), 400, "validation_error", "field"
        )
        assert_error(
            tenant.editor.post("/person/fields", json={"field": "y"}), 403, "permission_denied"
        )
