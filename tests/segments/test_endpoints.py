"""The Segments v2 API: definitions, types, hierarchy, reads and refusals."""

from __future__ import annotations

from typing import Any

from tests.conftest import Tenant, assert_error
from tests.segments.conftest import make_segment, names, seg_url


class TestCreateSegment:
    def test_dynamic_segment_and_its_records(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        seg = make_segment(
            api,
            name="London donors",
            rules=[
                {"field": "address.locality", "operator": "equals", "value": "LONDON"},
                {"field": "tags", "operator": "or_list", "value": "donor,volunteer"},
            ],
        )
        assert seg["uri"] == f"/{api.bucket}/segment/{seg['uid']}/"
        assert seg["rules"]["match"] == "all" and len(seg["rules"]["conditions"]) == 2
        assert seg["view_context"] == ["crm"] and seg["segment_type"] == "dynamic"
        assert seg["user_interface"]["policy_name"] == "admin"
        assert names(api, seg["uid"]) == ["Ada"]
        count = api.get(seg_url(api, seg["uid"], "/count")).json()
        assert count["count"] == 1 and count["segment"] == seg["uri"]
        assert "town or city is 'LONDON'" in count["description"]

    def test_round_trip_posts_back_unchanged(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        seg = make_segment(
            api,
            name="Joined lately",
            rules=[{"field": "joined", "operator": "greater_than", "value": "today-10y"}],
        )
        again = make_segment(api, **{k: v for k, v in seg.items() if k not in ("uid", "uri")})
        for key in ("rules", "segment_type", "view_context", "resource_type", "uris_include"):
            assert again[key] == seg[key]
        assert names(api, again["uid"]) == names(api, seg["uid"]) == ["Ada", "Cat"]
        put = api.put(seg_url(api, seg["uid"]), json=seg)
        assert put.status_code == 200 and put.json()["rules"] == seg["rules"]

    def test_inputs_from_form_and_query_string(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        rules = '[{"field": "membership_status", "operator": "equals", "value": "active"}]'
        form = api.post(
            f"/segments/v2/{api.bucket}/create",
            data={"name": "F", "resource_type": "person", "rules": rules},
        )
        query = api.post(
            f"/segments/v2/{api.bucket}/create",
            params={"name": "Q", "resource_type": "person", "rules": rules},
        )
        for response in (form, query):
            assert response.status_code == 201, response.text
            assert names(api, response.json()["uid"]) == ["Ada", "Cat"]

    def test_static_and_hybrid_lists(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        static = make_segment(
            api,
            segment_type="static",
            uris_include=[people["Bob"]["uri"], people["Dan"]["uri"].rstrip("/")],
        )
        assert names(api, static["uid"]) == ["Bob", "Dan"]
        assert static["uris_include"][1] == people["Dan"]["uri"]
        hybrid = make_segment(
            api,
            segment_type="hybrid",
            rules=[{"field": "tags", "operator": "equals", "value": "donor"}],
            uris_include=[people["Dan"]["uri"]],
            uris_exclude=[people["Bob"]["uri"]],
        )
        assert names(api, hybrid["uid"]) == ["Ada", "Dan"]
        api.delete(f"/person/{people['Dan']['uid']}/")
        assert names(api, static["uid"]) == ["Bob"]
        assert (
            api.get(seg_url(api, static["uid"])).json()["uris_include"][1] == people["Dan"]["uri"]
        )

    def test_auxiliary_holds_nothing(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        folder = make_segment(api, segment_type="auxiliary", name="Folder")
        assert api.get(seg_url(api, folder["uid"], "/count")).json()["count"] == 0
        assert api.get(seg_url(api, folder["uid"], "/all")).json()["results"] == []

    def test_contact_segments_hold_people_and_organisations(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        api.post("/organisation/", json={"name": "Leeds Trust", "address": {"locality": "Leeds"}})
        seg = make_segment(
            api,
            resource_type="contact",
            rules=[{"field": "address.locality", "operator": "equals", "value": "leeds"}],
        )
        results = api.get(seg_url(api, seg["uid"], "/all")).json()["results"]
        assert sorted(r["resource_type"] for r in results) == ["organisation", "person"]


class TestRefusedDefinitions:
    def test_combinations_that_mean_nothing(self, tenant: Tenant) -> None:
        api = tenant.admin
        rule = [{"field": "email", "operator": "equals", "value": "x"}]
        uri = f"/{api.bucket}/person/{'a' * 24}/"
        cases: list[tuple[dict[str, Any], str]] = [
            ({"segment_type": "static", "rules": rule}, "rules"),
            ({"segment_type": "auxiliary", "rules": rule}, "rules"),
            ({"segment_type": "dynamic", "uris_include": [uri]}, "uris_include"),
            ({"segment_type": "auxiliary", "uris_exclude": [uri]}, "uris_exclude"),
            ({"resource_type": "payment", "mailchimp_sync": True}, "mailchimp_sync"),
        ]
        for body, param in cases:
            body = {"name": "x", "resource_type": "person", **body}
            response = api.post(f"/segments/v2/{api.bucket}/create", json=body)
            error = assert_error(response, 400, "validation_error", param)
            assert "segment" in error["description"] or "contacts" in error["description"]

    def test_bad_rules_name_their_param_and_save_nothing(self, tenant: Tenant) -> None:
        api = tenant.admin
        before = api.get(f"/segments/v2/{api.bucket}/all").json()["total"]
        cases = [
            ([{"field": "email", "operator": "sounds_like", "value": "x"}], "rules[0].operator"),
            (
                [{"field": "date_of_birth", "operator": "equals", "value": "last easter"}],
                "rules[0].value",
            ),
            (
                [{"field": "email_opt_out", "operator": "greater_than", "value": True}],
                "rules[0].operator",
            ),
            (
                [{"field": "x", "operator": "raw", "value": {"$where": "sleep(1)"}}],
                "rules[0].value.$where",
            ),
            (
                [{"field": "x", "operator": "raw", "value": "1=1; DROP TABLE records"}],
                "rules[0].value",
            ),
            (
                [{"field": "x", "operator": "raw", "value": {"a": {"$regex": "(a+)+$"}}}],
                "rules[0].value.a.$regex",
            ),
            (
                [
                    {
                        "field": "organisation",
                        "operator": "equals",
                        "value": f"/other/organisation/{'a' * 24}/",
                    }
                ],
                "rules[0].value",
            ),
            ([{"field": "geo", "operator": "near", "value": "ZZ9 9ZZ,5mi"}], "rules[0].value"),
            ([{"field": "bad path!", "operator": "equals", "value": 1}], "rules[0].field"),
            ("not json", "rules"),
        ]
        for rules, param in cases:
            response = api.post(
                f"/segments/v2/{api.bucket}/create",
                json={"name": "x", "resource_type": "person", "rules": rules},
            )
            assert_error(response, 400, "validation_error", param)
        assert api.get(f"/segments/v2/{api.bucket}/all").json()["total"] == before

    def test_every_problem_is_listed_at_once(self, tenant: Tenant) -> None:
        api = tenant.admin
        body = {
            "resource_type": "wizard",
            "segment_type": "sideways",
            "rules": [{"field": "a", "operator": "nope", "value": 1}],
        }
        errors = assert_error(
            api.post(f"/segments/v2/{api.bucket}/create", json=body), 400, "validation_error"
        )["errors"]
        assert {"resource_type", "segment_type"} <= {e["param"] for e in errors}

    def test_uris_of_other_buckets_and_types(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        other = f"/elsewhere/person/{'a' * 24}/"
        response = api.post(
            f"/segments/v2/{api.bucket}/create",
            json={
                "name": "x",
                "resource_type": "person",
                "segment_type": "static",
                "uris_include": [people["Ada"]["uri"], other],
            },
        )
        assert_error(response, 400, "validation_error", "uris_include[1]")
        wrong_type = f"/{api.bucket}/payment/{'a' * 24}/"
        response = api.post(
            f"/segments/v2/{api.bucket}/create",
            json={
                "name": "x",
                "resource_type": "person",
                "segment_type": "static",
                "uris_include": [wrong_type],
            },
        )
        assert_error(response, 400, "validation_error", "uris_include[0]")

    def test_segment_membership_cycles_are_refused(self, tenant: Tenant) -> None:
        api = tenant.admin
        a = make_segment(api, name="A")
        b = make_segment(
            api, name="B", rules=[{"field": "segment", "operator": "or_list", "value": [a["uri"]]}]
        )
        response = api.patch(
            seg_url(api, a["uid"]),
            json={"rules": [{"field": "segment", "operator": "or_list", "value": [b["uri"]]}]},
        )
        error = assert_error(response, 400, "validation_error", "rules[0].value")
        assert "cycle" in error["description"]
        response = api.patch(
            seg_url(api, a["uid"]),
            json={"rules": [{"field": "segment", "operator": "none_of", "value": [a["uri"]]}]},
        )
        assert_error(response, 400, "validation_error", "rules[0].value")


class TestSegmentMembershipRules:
    def test_or_and_none_of_segments(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        donors = make_segment(
            api, name="Donors", rules=[{"field": "tags", "operator": "equals", "value": "donor"}]
        )
        volunteers = make_segment(
            api,
            name="Volunteers",
            rules=[{"field": "tags", "operator": "equals", "value": "volunteer"}],
        )
        both = make_segment(
            api,
            rules=[
                {
                    "field": "segment",
                    "operator": "and_list",
                    "value": [donors["uri"], volunteers["uri"]],
                }
            ],
        )
        either = make_segment(
            api,
            rules=[
                {
                    "field": "segment",
                    "operator": "or_list",
                    "value": f"{donors['uri']},{volunteers['uri']}",
                }
            ],
        )
        neither = make_segment(
            api,
            rules=[
                {
                    "field": "segment",
                    "operator": "none_of",
                    "value": [donors["uri"], volunteers["uri"]],
                }
            ],
        )
        assert names(api, both["uid"]) == ["Bob"]
        assert names(api, either["uid"]) == ["Ada", "Bob", "Dan"]
        assert names(api, neither["uid"]) == ["Cat"]
        count = api.get(seg_url(api, both["uid"], "/count")).json()
        assert "'Donors'" in count["description"]


class TestHierarchy:
    def test_child_refines_its_parent(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        parent = make_segment(
            api,
            name="Active",
            rules=[{"field": "membership_status", "operator": "equals", "value": "active"}],
        )
        child = make_segment(
            api,
            name="Active donors",
            parent_segment=parent["uri"],
            rules=[{"field": "tags", "operator": "equals", "value": "donor"}],
        )
        assert names(api, child["uid"]) == ["Ada"]
        folder = make_segment(api, name="Folder", segment_type="auxiliary")
        loose = make_segment(
            api,
            name="In folder",
            parent_segment=folder["uri"],
            rules=[{"field": "tags", "operator": "equals", "value": "donor"}],
        )
        assert names(api, loose["uid"]) == ["Ada", "Bob"]
        trees = api.get(f"/segments/v2/{api.bucket}/trees").json()["segments"]
        by_name = {s["name"]: s for s in trees}
        assert [c["name"] for c in by_name["Active"]["children"]] == ["Active donors"]
        assert [c["name"] for c in by_name["Folder"]["children"]] == ["In folder"]

    def test_parent_checks(self, tenant: Tenant, other_tenant: Tenant) -> None:
        api = tenant.admin
        a = make_segment(api, name="A")
        b = make_segment(api, name="B", parent_segment=a["uri"])
        assert_error(
            api.patch(seg_url(api, a["uid"]), json={"parent_segment": b["uri"]}),
            400,
            "validation_error",
            "parent_segment",
        )
        assert_error(
            api.patch(seg_url(api, a["uid"]), json={"parent_segment": a["uri"]}),
            400,
            "validation_error",
            "parent_segment",
        )
        orgs = make_segment(api, name="Orgs", resource_type="organisation")
        assert_error(
            api.post(
                f"/segments/v2/{api.bucket}/create",
                json={"name": "x", "resource_type": "person", "parent_segment": orgs["uri"]},
            ),
            400,
            "validation_error",
            "parent_segment",
        )
        foreign = make_segment(other_tenant.admin, name="Theirs")
        assert_error(
            api.post(
                f"/segments/v2/{api.bucket}/create",
                json={"name": "x", "resource_type": "person", "parent_segment": foreign["uri"]},
            ),
            400,
            "validation_error",
            "parent_segment",
        )
        missing = f"/{api.bucket}/segment/{'c' * 24}/"
        assert_error(
            api.post(
                f"/segments/v2/{api.bucket}/create",
                json={"name": "x", "resource_type": "person", "parent_segment": missing},
            ),
            400,
            "validation_error",
            "parent_segment",
        )

    def test_delete_with_children_needs_cascade_and_restore(self, tenant: Tenant) -> None:
        api = tenant.admin
        parent = make_segment(api, name="P")
        child = make_segment(api, name="C", parent_segment=parent["uri"])
        assert_error(api.delete(seg_url(api, parent["uid"])), 409, "conflict", "cascade")
        deleted = api.delete(seg_url(api, parent["uid"]), params={"cascade": "true"})
        assert deleted.status_code == 200 and deleted.json()["record_state"] == "deleted"
        assert_error(api.get(seg_url(api, child["uid"])), 404, "not_found")
        assert_error(api.get(seg_url(api, parent["uid"], "/count")), 404, "not_found")
        assert_error(api.post(seg_url(api, child["uid"], "/restore")), 409, "conflict")
        assert api.post(seg_url(api, parent["uid"], "/restore")).json()["record_state"] == "active"
        assert api.post(seg_url(api, child["uid"], "/restore")).json()["record_state"] == "active"
        listed = api.get(
            f"/segments/v2/{api.bucket}/all", params={"include_deleted": "true"}
        ).json()
        assert {s["name"] for s in listed["segments"]} >= {"P", "C"}


class TestSystemAndActive:
    def test_new_buckets_have_system_segments_that_cannot_change(self, tenant: Tenant) -> None:
        api = tenant.admin
        segments = api.get(f"/segments/v2/{api.bucket}").json()["segments"]
        system = {s["name"]: s for s in segments if s["system_segment"]}
        assert {"All people", "All organisations", "Current members"} <= set(system)
        uid = system["All people"]["uid"]
        assert system["All people"]["user_interface"]["can_edit_segment"] is False
        assert_error(api.patch(seg_url(api, uid), json={"name": "Mine"}), 403, "system_segment")
        assert_error(api.delete(seg_url(api, uid)), 403, "system_segment")
        assert_error(
            tenant.editor.post(
                f"/segments/v2/{api.bucket}/create",
                json={"name": "S", "resource_type": "person", "system_segment": True},
            ),
            403,
            "permission_denied",
        )
        assert make_segment(api, name="S", system_segment=True)["system_segment"] is True

    def test_inactive_segments_are_hidden_but_readable(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = make_segment(api, name="Dormant", active=False, view_context="giving")
        assert "Dormant" not in [
            s["name"] for s in api.get(f"/segments/v2/{api.bucket}").json()["segments"]
        ]
        assert api.get(f"/segments/v2/{api.bucket}/giving").json()["segments"] == []
        assert "Dormant" in [
            s["name"] for s in api.get(f"/segments/v2/{api.bucket}/all").json()["segments"]
        ]
        assert api.get(seg_url(api, seg["uid"], "/count")).json()["count"] == 4
        api.patch(seg_url(api, seg["uid"]), json={"active": True})
        assert [
            s["name"] for s in api.get(f"/segments/v2/{api.bucket}/giving").json()["segments"]
        ] == ["Dormant"]

    def test_view_context_and_find(self, tenant: Tenant) -> None:
        api = tenant.admin
        make_segment(api, name="Gift Aid donors", view_context=["giving", "crm"])
        found = api.get(f"/segments/v2/{api.bucket}/find", params={"name": "gift aid"}).json()
        assert [s["name"] for s in found["segments"]] == ["Gift Aid donors"]
        body = assert_error(
            api.get(f"/segments/v2/{api.bucket}/wizards"), 400, "validation_error", "view_context"
        )
        assert "membership" in body["description"]
        assert_error(
            api.post(
                f"/segments/v2/{api.bucket}/create",
                json={"name": "x", "resource_type": "person", "view_context": "wizards"},
            ),
            400,
            "validation_error",
            "view_context",
        )


class TestUpdates:
    def test_etag_and_if_match(self, tenant: Tenant) -> None:
        api = tenant.admin
        seg = make_segment(api, name="E")
        etag = api.get(seg_url(api, seg["uid"])).headers["etag"]
        first = api.patch(
            seg_url(api, seg["uid"]), json={"description": "one"}, headers={"If-Match": etag}
        )
        assert first.status_code == 200 and first.headers["etag"] != etag
        stale = api.patch(
            seg_url(api, seg["uid"]), json={"description": "two"}, headers={"If-Match": etag}
        )
        assert_error(stale, 412, "precondition_failed")
        assert api.get(seg_url(api, seg["uid"])).json()["description"] == "one"

    def test_put_replaces_patch_changes(self, tenant: Tenant) -> None:
        api = tenant.admin
        seg = make_segment(api, name="R", description="kept?", tags=["a"])
        patched = api.patch(seg_url(api, seg["uid"]), json={"name": "R2"}).json()
        assert patched["description"] == "kept?" and patched["tags"] == ["a"]
        put = api.put(seg_url(api, seg["uid"]), json={"name": "R3"}).json()
        assert put["description"] == "" and put["tags"] == [] and put["resource_type"] == "person"

    def test_permissions(self, tenant: Tenant) -> None:
        seg = make_segment(tenant.editor, name="Ed")
        assert seg["user_interface"] == {
            "can_create_segment": True, "can_edit_segment": True, "can_delete_segment": True,
            "can_restore_segment": False, "policy_name": "editor",
        }  # fmt: skip
        viewer = tenant.viewer
        assert_error(
            viewer.post(
                f"/segments/v2/{viewer.bucket}/create",
                json={"name": "v", "resource_type": "person"},
            ),
            403,
            "permission_denied",
        )
        assert_error(
            viewer.patch(seg_url(viewer, seg["uid"]), json={"name": "v"}), 403, "permission_denied"
        )
        assert (
            viewer.get(seg_url(viewer, seg["uid"])).json()["user_interface"]["can_edit_segment"]
            is False
        )
        tenant.editor.delete(seg_url(tenant.editor, seg["uid"]))
        assert_error(
            tenant.editor.post(seg_url(tenant.editor, seg["uid"], "/restore")),
            403,
            "permission_denied",
        )

    def test_changes_are_audited(self, tenant: Tenant) -> None:
        api = tenant.admin
        seg = make_segment(api, name="Audited")
        api.patch(seg_url(api, seg["uid"]), json={"name": "Audited 2"})
        entries = api.get(f"/audit/v2/{api.bucket}/segment/{seg['uid']}/audit").json()["audit"]
        assert [e["message"] for e in entries] == ["Segment changed", "Segment created"]
        assert {
            "field": "name",
            "prev": "Audited",
            "value": "Audited 2",
            "verb": "change",
        } in entries[0]["clean_diff"]

    def test_other_bucket_sees_nothing(self, tenant: Tenant, other_tenant: Tenant) -> None:
        seg = make_segment(tenant.admin, name="Private")
        response = other_tenant.admin.get(f"/segments/v2/{tenant.bucket}/segment/{seg['uid']}")
        assert_error(response, 403, "permission_denied")
        own = other_tenant.admin.get(f"/segments/v2/{other_tenant.bucket}/segment/{seg['uid']}")
        assert_error(own, 404, "not_found")
