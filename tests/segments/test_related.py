"""Related-record rules through the API: a person segment with rules on payments and
memberships, an organisation segment through its people; counts that follow writes to
either type; explain's funnel and its related records for one person; refusals."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, Tenant, assert_error
from tests.segments.conftest import make_segment, names, seg_url


def create(api: Api, resource_type: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"/{resource_type}/", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def related(field: str, **value: Any) -> dict[str, Any]:
    return {"field": field, "operator": "related", "value": value}


GAVE_100 = related(
    "payment",
    where=[{"field": "status", "operator": "equals", "value": "paid"}],
    having={"sum": "amount", "operator": "greater_than_or_equals", "value": 100},
)


def count(api: Api, uid: str) -> int:
    response = api.get(seg_url(api, uid, "/count"))
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


def test_payments_and_memberships_select_people(tenant: Tenant, people: dict[str, Any]) -> None:
    api = tenant.admin
    ada, bob, cat = people["Ada"], people["Bob"], people["Cat"]
    create(api, "payment", {"contact": ada["uri"], "amount": 60, "status": "paid"})
    create(api, "payment", {"contact": ada["uri"], "amount": 50, "status": "paid"})
    create(api, "payment", {"contact": bob["uri"], "amount": 500, "status": "failed"})
    create(api, "membership", {"contact": cat["uri"], "status": "lapsed", "end_date": "2026-01-01"})
    gave = make_segment(api, name="Gave 100", rules=[GAVE_100])
    assert names(api, gave["uid"]) == ["Ada"]
    assert count(api, gave["uid"]) == 1
    assert (
        api.get(seg_url(api, gave["uid"], "/count")).json()["description"]
        == "People whose total amount of payments whose status is 'paid' is at least 100"
    )
    lapsed = make_segment(
        api,
        name="Lapsed",
        rules=[
            related(
                "membership", where=[{"field": "status", "operator": "equals", "value": "lapsed"}]
            )
        ],
    )
    never = make_segment(api, name="No payments", rules=[related("payment", having="none")])
    assert names(api, lapsed["uid"]) == ["Cat"]
    assert names(api, never["uid"]) == ["Cat", "Dan"]
    # A write to a payment changes a person segment's count.
    create(api, "payment", {"contact": cat["uri"], "amount": 100, "status": "paid"})
    assert count(api, gave["uid"]) == 2
    assert names(api, never["uid"]) == ["Dan"]
    payments = api.get("/payment/", params={"page_size": 100}).json()["results"]
    ada_60 = next(p for p in payments if p["contact"] == ada["uri"] and p["amount"] == 60)
    response = api.patch(f"/payment/{ada_60['uid']}", json={"status": "refunded"})
    assert response.status_code == 200, response.text
    assert names(api, gave["uid"]) == ["Cat"]


def test_segment_of_related_records_and_explain(tenant: Tenant, people: dict[str, Any]) -> None:
    api = tenant.admin
    ada, bob = people["Ada"], people["Bob"]
    create(api, "payment", {"contact": ada["uri"], "amount": 10, "gift_aid": True})
    create(api, "payment", {"contact": ada["uri"], "amount": 20, "gift_aid": False})
    create(api, "payment", {"contact": bob["uri"], "amount": 30, "gift_aid": False})
    gift_aid = make_segment(
        api,
        name="Gift Aid eligible",
        resource_type="payment",
        rules=[{"field": "gift_aid", "operator": "equals", "value": True}],
    )
    seg = make_segment(
        api,
        name="Gift Aiders",
        rules=[
            {"field": "membership_status", "operator": "equals", "value": "active"},
            related("payment", segment=gift_aid["uri"]),
        ],
    )
    assert names(api, seg["uid"]) == ["Ada"]
    funnel = api.get(seg_url(api, seg["uid"], "/explain")).json()
    assert [s["count"] for s in funnel["steps"]] == [2, 1]
    assert funnel["steps"][1]["sentence"] == (
        "with at least one payment in segment 'Gift Aid eligible'"
    )
    verdict = api.get(seg_url(api, seg["uid"], "/explain"), params={"uri": ada["uri"]}).json()
    assert verdict["in_segment"] is True
    shown = verdict["rules"][1]["related"]
    assert (shown["linked"], shown["passing"], shown["value"]) == (2, 1, 1.0)
    assert sorted(r["passes"] for r in shown["records"]) == [False, True]
    bob_verdict = api.get(seg_url(api, seg["uid"], "/explain"), params={"uri": bob["uri"]}).json()
    assert bob_verdict["in_segment"] is False
    assert bob_verdict["rules"][1]["related"]["passing"] == 0


def test_organisations_through_their_people(tenant: Tenant) -> None:
    api = tenant.admin
    acme = create(api, "organisation", {"name": "Acme"})
    create(api, "organisation", {"name": "Empty"})
    for first, status in (("A", "active"), ("B", "active"), ("C", "lapsed")):
        create(
            api,
            "person",
            {"first_name": first, "organisation": acme["uri"], "membership_status": status},
        )
    seg = make_segment(
        api,
        name="Two active members",
        resource_type="organisation",
        rules=[
            related(
                "person",
                where=[{"field": "membership_status", "operator": "equals", "value": "active"}],
                having={"at_least": 2},
            )
        ],
    )
    found = api.get(seg_url(api, seg["uid"], "/all")).json()["results"]
    assert [r["display_value"] for r in found] == ["Acme"]


def test_related_rules_are_validated_with_params(tenant: Tenant) -> None:
    api = tenant.viewer
    url = f"/segments/v2/{api.bucket}/validate"
    cases = [
        (related("group", having="any"), "rules[0].field"),
        ({"field": "payment", "operator": "related", "value": 3}, "rules[0].value"),
        (related("payment", having="some"), "rules[0].value.having"),
        (related("payment", having={"at_least": -1}), "rules[0].value.having.at_least"),
        (
            related("payment", having={"sum": "status", "operator": "equals", "value": 1}),
            "rules[0].value.having.sum",
        ),
        (
            related("payment", having={"sum": "amount", "operator": "starts_with", "value": 1}),
            "rules[0].value.having.operator",
        ),
        (
            related("payment", having={"max": "amount", "operator": "equals", "value": "x"}),
            "rules[0].value.having.value",
        ),
        (
            related("payment", where=[{"field": "amount", "operator": "nope", "value": 1}]),
            "rules[0].value.where[0].operator",
        ),
        (
            related("payment", segment="/elsewhere/segment/" + "a" * 24 + "/"),
            "rules[0].value.segment",
        ),
        (related("payment", how="any"), "rules[0].value"),
        (related("payment", via="amount"), "rules[0].value.via"),
    ]
    for rule, param in cases:
        result = api.post(url, json={"resource_type": "person", "rules": [rule]}).json()
        assert result["valid"] is False, rule
        assert param in {e["param"] for e in result["errors"]}, (rule, result["errors"])
    assert_error(
        api.post(
            f"/segments/v2/{api.bucket}/preview",
            json={"resource_type": "person", "rules": [related("payment", having="many")]},
        ),
        400,
        "validation_error",
        "rules[0].value.having",
    )
    person_segment = make_segment(tenant.admin, name="People")
    result = api.post(
        url,
        json={
            "resource_type": "person",
            "rules": [related("payment", segment=person_segment["uri"])],
        },
    ).json()
    assert "rules[0].value.segment" in {e["param"] for e in result["errors"]}


def test_via_names_the_link(tenant: Tenant, people: dict[str, Any]) -> None:
    """A membership segment through the payments that name the membership (`via`)."""
    api = tenant.admin
    ada = people["Ada"]
    paid = create(api, "membership", {"contact": ada["uri"], "status": "active"})
    create(api, "membership", {"contact": ada["uri"], "status": "active"})
    create(api, "payment", {"contact": ada["uri"], "membership": paid["uri"], "amount": 30})
    seg = make_segment(
        api,
        name="Paid memberships",
        resource_type="membership",
        rules=[related("payment", via="membership")],
    )
    found = api.get(seg_url(api, seg["uid"], "/all")).json()["results"]
    assert [r["uri"] for r in found] == [paid["uri"]]
    assert seg["rules"]["conditions"][0]["value"]["via"] == "membership"
