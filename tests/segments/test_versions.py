"""Segment versions: one per definition change, diffs between two, revert (SPEC 12)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, Tenant, assert_error
from tests.segments.conftest import make_segment, people, seg_url

__all__ = ["people"]


def versions(api: Api, uid: str, **params: Any) -> dict[str, Any]:
    response = api.get(seg_url(api, uid, "/versions"), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def diff(api: Api, uid: str, a: int, b: int) -> dict[str, Any]:
    response = api.get(seg_url(api, uid, f"/versions/{a}/diff/{b}"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def count(api: Api, uid: str) -> int:
    response = api.get(seg_url(api, uid, "/count"))
    assert response.status_code == 200, response.text
    value: int = response.json()["count"]
    return value


ACTIVE = {"field": "membership_status", "operator": "equals", "value": "active"}
LONDON = {"field": "address.locality", "operator": "equals", "value": "london"}
DONOR = {"field": "tags", "operator": "equals", "value": "donor"}


class TestVersions:
    def test_ten_edits_give_ten_versions_with_their_diffs(
        self, api: Api, people: dict[str, Any]
    ) -> None:
        ada, bob, cat = (people[n]["uri"] for n in ("Ada", "Bob", "Cat"))
        segment = make_segment(api, name="v1", segment_type="hybrid", rules=[ACTIVE])
        uid = segment["uid"]
        edits: list[tuple[str, dict[str, Any]]] = [
            ("PATCH", {"name": "v2"}),
            ("PATCH", {"rules": [ACTIVE, LONDON]}),
            ("PATCH", {"uris_include": [ada, bob]}),
            ("PATCH", {"uris_include": [bob, cat], "uris_exclude": [ada]}),
            ("PATCH", {"description": "the fifth"}),
            ("PATCH", {"active": False}),
            ("PATCH", {"rules": [DONOR]}),
            ("PATCH", {"tags": ["board"]}),
            ("PUT", {"name": "v10", "segment_type": "hybrid", "rules": [DONOR]}),
        ]
        for method, body in edits:
            response = api.request(method, seg_url(api, uid), json=body)
            assert response.status_code == 200, response.text
        listed = versions(api, uid, page_size=100)
        assert listed["total"] == 10
        assert [v["version"] for v in listed["versions"]] == list(range(10, 0, -1))
        actions = [v["action"] for v in reversed(listed["versions"])]
        assert actions == ["create", *["change"] * 8, "replace"]
        assert all(v["user"].startswith(f"/{api.bucket}/api_key/") for v in listed["versions"])
        assert listed["versions"][-1]["fields_changed"][0] == "name"  # create: every field
        assert listed["versions"][-2]["fields_changed"] == ["name"]

        d = diff(api, uid, 1, 2)
        assert d["fields"] == [{"field": "name", "from": "v1", "to": "v2"}]
        assert d["rules"] == {"added": [], "removed": []} and d["changed"]
        d = diff(api, uid, 2, 3)
        assert d["fields"] == []
        assert [r["field"] for r in d["rules"]["added"]] == ["address.locality"]
        assert d["rules"]["removed"] == []
        d = diff(api, uid, 3, 4)
        assert d["uris_include"] == {
            "added_count": 2, "removed_count": 0, "added": [ada, bob], "removed": []
        }  # fmt: skip
        d = diff(api, uid, 4, 5)
        assert d["uris_include"]["added"] == [cat] and d["uris_include"]["removed"] == [ada]
        assert d["uris_exclude"]["added"] == [ada]
        assert diff(api, uid, 5, 6)["fields"] == [
            {"field": "description", "from": "", "to": "the fifth"}
        ]
        assert diff(api, uid, 6, 7)["fields"] == [{"field": "active", "from": True, "to": False}]
        d = diff(api, uid, 7, 8)
        assert sorted(r["field"] for r in d["rules"]["removed"]) == [
            "address.locality",
            "membership_status",
        ]
        assert [r["field"] for r in d["rules"]["added"]] == ["tags"]
        assert diff(api, uid, 8, 9)["fields"] == [{"field": "tags", "from": [], "to": ["board"]}]
        d = diff(api, uid, 9, 10)  # a PUT: what it did not send went back to defaults
        changed = {f["field"] for f in d["fields"]}
        assert changed == {"name", "description", "active", "tags"}
        assert d["uris_include"]["removed_count"] == 2 and d["uris_exclude"]["removed_count"] == 1
        same = diff(api, uid, 10, 10)
        assert not same["changed"]
        # Backwards works too: what was added is now removed.
        assert [r["field"] for r in diff(api, uid, 3, 2)["rules"]["removed"]] == [
            "address.locality"
        ]

        one = api.get(seg_url(api, uid, "/versions/3")).json()
        assert one["version"] == 3 and one["action"] == "change"
        assert one["definition"]["name"] == "v2"
        assert len(one["definition"]["rules"]["conditions"]) == 2

    def test_paged_newest_first(self, api: Api) -> None:
        uid = make_segment(api, name="p0")["uid"]
        for i in range(1, 5):
            assert api.patch(seg_url(api, uid), json={"name": f"p{i}"}).status_code == 200
        page = versions(api, uid, page=2, page_size=2)
        assert [v["version"] for v in page["versions"]] == [3, 2]
        assert (page["total"], page["pages"]) == (5, 3)
        assert page["versions"][0]["fields_changed"] == ["name"]

    def test_delete_and_restore_are_versions(self, tenant: Tenant) -> None:
        uid = make_segment(tenant.admin)["uid"]
        assert tenant.admin.delete(seg_url(tenant.admin, uid)).status_code == 200
        assert tenant.admin.post(seg_url(tenant.admin, uid, "/restore")).status_code == 200
        listed = versions(tenant.admin, uid)
        assert [v["action"] for v in listed["versions"]] == ["restore", "delete", "create"]
        assert listed["versions"][1]["fields_changed"] == ["record_state"]

    def test_bad_version_numbers(self, api: Api) -> None:
        uid = make_segment(api)["uid"]
        assert_error(api.get(seg_url(api, uid, "/versions/abc")), 400, "validation_error")
        assert_error(api.get(seg_url(api, uid, "/versions/0")), 400, "validation_error")
        assert_error(api.get(seg_url(api, uid, "/versions/2")), 404, "not_found")
        assert_error(api.get(seg_url(api, uid, "/versions/1/diff/9")), 404, "not_found")
        assert_error(api.get(seg_url(api, uid, "/versions/1/diff/x")), 400, "validation_error")
        assert_error(
            api.get(seg_url(api, uid, "/versions"), params={"page": 0}), 400, "validation_error"
        )
        assert_error(api.get(seg_url(api, "0" * 24, "/versions")), 404, "not_found")

    def test_another_bucket_sees_nothing(self, api: Api, other_tenant: Tenant) -> None:
        uid = make_segment(api)["uid"]
        other = other_tenant.admin
        assert_error(other.get(seg_url(other, uid, "/versions")), 404, "not_found")
        assert_error(other.post(seg_url(other, uid, "/versions/1/revert")), 404, "not_found")


class TestRevert:
    def test_revert_restores_the_definition_and_its_count(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.editor
        created = make_segment(api, name="Active", rules=[ACTIVE], tags=["a"])
        uid = created["uid"]
        assert count(api, uid) == 2  # Ada, Cat
        changed = api.put(
            seg_url(api, uid), json={"name": "Donors", "rules": [DONOR], "description": "d"}
        )
        assert changed.status_code == 200
        assert count(api, uid) == 2  # Ada, Bob
        assert api.patch(seg_url(api, uid), json={"rules": [DONOR, LONDON]}).status_code == 200
        assert count(api, uid) == 1

        response = api.post(
            seg_url(api, uid, "/versions/1/revert"),
            headers={"If-Match": api.get(seg_url(api, uid)).headers["ETag"]},
        )
        assert response.status_code == 200, response.text
        reverted = response.json()
        for field in ("name", "description", "rules", "tags", "segment_type", "active"):
            assert reverted[field] == created[field], field
        assert count(api, uid) == 2
        names = api.get(seg_url(api, uid, "/all")).json()["results"]
        assert sorted(r["display_value"].split()[0] for r in names) == ["Ada", "Cat"]
        assert response.headers["ETag"] == api.get(seg_url(api, uid)).headers["ETag"]

        listed = versions(api, uid)
        assert listed["total"] == 4
        newest = listed["versions"][0]
        assert newest["action"] == "revert" and newest["version"] == 4
        assert diff(api, uid, 1, 4)["changed"] is False
        audit = tenant.admin.get(f"/audit/v2/{api.bucket}/segment/{uid}/audit").json()["audit"]
        assert audit[0]["message"] == "Segment reverted to version 1"

    def test_stale_if_match_is_412(self, api: Api) -> None:
        uid = make_segment(api, name="one")["uid"]
        stale = api.get(seg_url(api, uid)).headers["ETag"]
        assert api.patch(seg_url(api, uid), json={"name": "two"}).status_code == 200
        response = api.post(seg_url(api, uid, "/versions/1/revert"), headers={"If-Match": stale})
        assert_error(response, 412, "precondition_failed", "If-Match")
        assert api.get(seg_url(api, uid)).json()["name"] == "two"
        assert versions(api, uid)["total"] == 2

    def test_revert_needs_an_editor(self, tenant: Tenant) -> None:
        uid = make_segment(tenant.admin)["uid"]
        viewer = tenant.viewer
        response = viewer.post(seg_url(viewer, uid, "/versions/1/revert"))
        assert_error(response, 403, "permission_denied")

    def test_revert_to_a_missing_version_is_404(self, api: Api) -> None:
        uid = make_segment(api)["uid"]
        assert_error(api.post(seg_url(api, uid, "/versions/7/revert")), 404, "not_found")

    def test_revert_to_a_deleted_parent_is_refused(self, api: Api) -> None:
        parent = make_segment(api, name="parent")["uid"]
        parent_uri = f"/{api.bucket}/segment/{parent}/"
        uid = make_segment(api, name="child", parent_segment=parent_uri)["uid"]
        assert api.patch(seg_url(api, uid), json={"parent_segment": None}).status_code == 200
        assert api.delete(seg_url(api, parent)).status_code == 200
        response = api.post(seg_url(api, uid, "/versions/1/revert"))
        assert_error(response, 400, "validation_error", "parent_segment")
        assert versions(api, uid)["total"] == 2
