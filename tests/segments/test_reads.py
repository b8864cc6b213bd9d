"""Reading a segment's records: pages, search, lookup, CSV, config, explain, preview."""

from __future__ import annotations

import csv
import io
from typing import Any

from fold.db.engine import unit_of_work
from fold.segments.postcodes import load_postcodes
from tests.conftest import Tenant, assert_error
from tests.segments.conftest import make_segment, names, seg_url


class TestPagesAndSearch:
    def test_all_and_count_agree_and_page(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        seg = make_segment(api, name="Everyone")
        page = api.get(seg_url(api, seg["uid"], "/all"), params={"page_size": 3, "page": 2}).json()
        assert (page["total"], page["pages"], len(page["results"])) == (4, 2, 1)
        assert page["segment"] == seg["uri"] and page["computed_at"]
        assert api.get(seg_url(api, seg["uid"], "/count")).json()["count"] == page["total"]
        summary = page["results"][0]
        assert set(summary) >= {"uri", "uid", "resource_type", "display_value", "email"}
        verbose = api.get(seg_url(api, seg["uid"], "/all"), params={"verbose": "true"}).json()
        assert "tags" in verbose["results"][0] and "record_state" in verbose["results"][0]

    def test_sort(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        seg = make_segment(api)

        def first(sort: str) -> str:
            results = api.get(seg_url(api, seg["uid"], "/all"), params={"sort": sort}).json()
            return str(results["results"][0]["display_value"])

        assert first("first_name") == "Ada Lovelace"
        assert first("-first_name") == "Dan Doe"
        assert first("-joined") == "Cat Clarke"
        assert_error(
            api.get(seg_url(api, seg["uid"], "/all"), params={"sort": "bad field!"}),
            400,
            "validation_error",
            "sort",
        )

    def test_q_and_lookup_find_by_name_email_and_postcode(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = make_segment(api)
        assert names(api, seg["uid"], q="lovelace") == ["Ada"]
        assert names(api, seg["uid"], q="BOB@X") == ["Bob"]
        assert names(api, seg["uid"], q="sw1a 1aa") == ["Cat"]
        assert names(api, seg["uid"], q="sw1a1aa") == ["Cat"]
        assert names(api, seg["uid"], q="100%") == []
        found = api.get(seg_url(api, seg["uid"], "/lookup"), params={"q": "ada"}).json()
        assert found == [
            {
                "id": people["Ada"]["uid"],
                "uri": people["Ada"]["uri"],
                "value": people["Ada"]["uri"],
                "label": "Ada Lovelace",
                "text": "Ada Lovelace",
                "display_value": "Ada Lovelace",
            }
        ]

    def test_paging_refusals(self, tenant: Tenant) -> None:
        api = tenant.admin
        seg = make_segment(api)
        for params, param in (
            ({"page": 0}, "page"),
            ({"page_size": 5000}, "page_size"),
            ({"page": "two"}, "page"),
        ):
            assert_error(
                api.get(seg_url(api, seg["uid"], "/all"), params=params),
                400,
                "validation_error",
                param,
            )
            assert_error(
                api.get(f"/segments/v2/{api.bucket}", params=params), 400, "validation_error", param
            )

    def test_a_write_shows_in_the_next_count(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        seg = make_segment(api, rules=[{"field": "tags", "operator": "equals", "value": "donor"}])
        assert api.get(seg_url(api, seg["uid"], "/count")).json()["count"] == 2
        api.patch(f"/person/{people['Dan']['uid']}/", json={"tags": ["Donor"]})
        assert api.get(seg_url(api, seg["uid"], "/count")).json()["count"] == 3


class TestCsvAndConfig:
    def test_csv_streams_config_fields_or_a_fieldset(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = make_segment(api, rules=[{"field": "tags", "operator": "equals", "value": "donor"}])
        response = api.get(seg_url(api, seg["uid"], "/all/csv"))
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/csv"
        )
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert sorted(r["display_value"] for r in rows) == ["Ada Lovelace", "Bob Brown"]
        fieldset = api.post(
            f"/segments/v2/{api.bucket}/fieldset",
            json={"name": "Mailing", "fields": ["first_name", "tags", "address.postal_code"]},
        )
        assert fieldset.status_code == 201, fieldset.text
        response = api.get(seg_url(api, seg["uid"], "/all/csv"), params={"template": "Mailing"})
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows[0] == ["uri", "first_name", "tags", "address.postal_code"]
        assert rows[1][2:] == ["volunteer, donor", "LS6 1AA"] or rows[2][2:] == [
            "volunteer, donor",
            "LS6 1AA",
        ]
        assert_error(
            api.get(seg_url(api, seg["uid"], "/all/csv"), params={"template": "nope"}),
            400,
            "validation_error",
            "template",
        )

    def test_config(self, tenant: Tenant) -> None:
        api = tenant.viewer
        seg = make_segment(tenant.admin, name="Cfg")
        config = api.get(seg_url(api, seg["uid"], "/config")).json()
        mapping = config["mapping"]
        assert mapping["collection"] == "person" and mapping["unique_field"] == "email"
        assert {
            "field": "email",
            "label": "Email",
            "form_type": "text",
            "style": "string",
        } in mapping["fields"]
        assert config["segment"] == seg["uri"] and config["segment_type"] == "dynamic"
        assert config["user_interface"]["policy_name"] == "viewer"
        assert config["user_interface"]["can_bypass_gdpr"] == [False]
        assert mapping["use_mapreduce"] is False


class TestFieldsets:
    def test_create_from_resource_get_and_delete(self, tenant: Tenant) -> None:
        api = tenant.admin
        base = f"/segments/v2/{api.bucket}/fieldset"
        made = api.post(base, json={"name": "People", "resource": "person"}).json()
        assert "email" in made["fields"] and made["applicable_resources"] == ["person"]
        assert api.get(f"{base}/{made['uid']}").json()["name"] == "People"
        assert [f["name"] for f in api.get(base).json()["fieldsets"]] == ["People"]
        locked = api.post(base, json={"name": "Locked", "fields": ["email"], "locked": True}).json()
        assert_error(api.delete(base, params={"uid": locked["uid"]}), 403, "permission_denied")
        assert api.delete(base, params={"uid": made["uid"]}).status_code == 200
        assert_error(api.get(f"{base}/{made['uid']}"), 404, "not_found")

    def test_refusals(self, tenant: Tenant) -> None:
        base = f"/segments/v2/{tenant.bucket}/fieldset"
        assert_error(
            tenant.admin.post(base, json={"name": 7, "fields": ["email"]}),
            400,
            "validation_error",
            "name",
        )
        assert_error(tenant.admin.post(base, json={"name": "x"}), 400, "validation_error", "fields")
        assert_error(
            tenant.admin.post(base, json={"name": "x", "resource": "wizard"}),
            400,
            "validation_error",
        )
        assert_error(
            tenant.viewer.post(base, json={"name": "x", "fields": ["a"]}), 403, "permission_denied"
        )


class TestNearPostcodes:
    def test_postcode_centres_from_the_bucket_table(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        with unit_of_work(tenant.db.sessions) as session:
            result = load_postcodes(
                session,
                bucket=tenant.bucket,
                lines=["postcode,lat,lng\n", "SW1A 1AA,51.501,-0.142\n", "bad,row\n"],
            )
        assert (result.loaded, result.failed) == (1, 1)
        near = make_segment(
            api, rules=[{"field": "geo", "operator": "near", "value": "sw1a1aa,5mi"}]
        )
        assert names(api, near["uid"]) == ["Ada", "Cat"]
        tight = make_segment(
            api, rules=[{"operator": "near", "value": {"postcode": "SW1A 1AA", "distance": 1}}]
        )
        assert names(api, tight["uid"]) == ["Cat"]
        point = make_segment(
            api, rules=[{"field": "geo", "operator": "near", "value": "53.8,-1.55,20km"}]
        )
        assert names(api, point["uid"]) == ["Bob"]


class TestExplain:
    def test_funnel_counts_after_each_rule(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.admin
        parent = make_segment(
            api,
            name="Has tags",
            rules=[{"field": "tags", "operator": "or_list", "value": ["donor", "volunteer"]}],
        )
        seg = make_segment(
            api,
            parent_segment=parent["uri"],
            rules=[
                {"field": "address.locality", "operator": "equals", "value": "london"},
                {"field": "membership_status", "operator": "equals", "value": "active"},
            ],
        )
        funnel = api.get(seg_url(api, seg["uid"], "/explain")).json()
        assert funnel["base_count"] == 4
        assert [s["count"] for s in funnel["steps"]] == [2, 2, 1]
        assert [s["step"] for s in funnel["steps"]] == ["rules[0]", "rules[1]", "parent_segment"]
        assert funnel["count"] == 1

    def test_explain_accounts_for_every_record(
        self, tenant: Tenant, people: dict[str, Any]
    ) -> None:
        api = tenant.admin
        seg = make_segment(
            api,
            segment_type="hybrid",
            rules=[{"field": "tags", "operator": "equals", "value": "donor"}],
            uris_include=[people["Dan"]["uri"]],
            uris_exclude=[people["Bob"]["uri"]],
        )
        members = set(names(api, seg["uid"]))
        for person in people.values():
            verdict = api.get(
                seg_url(api, seg["uid"], "/explain"), params={"uri": person["uri"]}
            ).json()
            assert verdict["in_segment"] == (person["first_name"] in members), verdict
            assert verdict["reasons"]
        bob = api.get(
            seg_url(api, seg["uid"], "/explain"), params={"uri": people["Bob"]["uri"]}
        ).json()
        assert bob["all_rules_hold"] and bob["excluded"] and not bob["in_segment"]
        assert any("uris_exclude" in r for r in bob["reasons"])

    def test_explain_refusals(self, tenant: Tenant) -> None:
        api = tenant.admin
        seg = make_segment(api)
        url = seg_url(api, seg["uid"], "/explain")
        assert_error(api.get(url, params={"uri": "nope"}), 400, "validation_error", "uri")
        assert_error(
            api.get(url, params={"uri": f"/{api.bucket}/payment/{'a' * 24}/"}),
            400,
            "validation_error",
            "uri",
        )
        assert_error(
            api.get(url, params={"uri": f"/{api.bucket}/person/{'a' * 24}/"}), 404, "not_found"
        )


class TestPreviewValidateSchema:
    def test_preview_saves_nothing(self, tenant: Tenant, people: dict[str, Any]) -> None:
        api = tenant.viewer
        before = api.get(f"/segments/v2/{api.bucket}/all").json()["total"]
        body = {
            "resource_type": "person",
            "rules": [{"field": "tags", "operator": "equals", "value": "volunteer"}],
            "page_size": 1,
        }
        response = api.post(f"/segments/v2/{api.bucket}/preview", json=body)
        assert response.status_code == 200, response.text
        preview = response.json()
        assert preview["count"] == 2 and len(preview["results"]) == 1
        assert preview["description"] == "People whose tags include 'volunteer'"
        static = api.post(
            f"/segments/v2/{api.bucket}/preview",
            json={
                "resource_type": "person",
                "segment_type": "static",
                "uris_include": [people["Cat"]["uri"]],
            },
        ).json()
        assert static["count"] == 1
        assert api.get(f"/segments/v2/{api.bucket}/all").json()["total"] == before
        assert_error(
            api.post(
                f"/segments/v2/{api.bucket}/preview",
                json={
                    "resource_type": "person",
                    "rules": [{"field": "a", "operator": "x", "value": 1}],
                },
            ),
            400,
            "validation_error",
            "rules[0].operator",
        )

    def test_validate_lists_every_problem(self, tenant: Tenant) -> None:
        api = tenant.viewer
        body = {
            "resource_type": "person",
            "rules": [
                {"field": "a", "operator": "x", "value": 1},
                {"field": "date_of_birth", "operator": "equals", "value": "soon"},
            ],
        }
        result = api.post(f"/segments/v2/{api.bucket}/validate", json=body).json()
        assert result["valid"] is False
        assert {e["param"] for e in result["errors"]} == {"rules[0].operator", "rules[1].value"}
        soon = next(e for e in result["errors"] if e["param"] == "rules[1].value")
        assert "today-30d" in soon["description"] and "2026-01-31" in soon["description"]
        ok = api.post(
            f"/segments/v2/{api.bucket}/validate", json={"name": "n", "resource_type": "person"}
        ).json()
        assert ok == {"valid": True, "errors": [], "rules": {"match": "all", "conditions": []}}

    def test_rules_json_schema_is_published(self, tenant: Tenant) -> None:
        schema = tenant.admin.client.get("/segments/v2/schema/rules.json").json()
        operators = schema["$defs"]["rule"]["properties"]["operator"]["enum"]
        assert len(operators) == 16 and "near" in operators and "raw" in operators
        assert "related" in operators and "related" in schema["$defs"]
