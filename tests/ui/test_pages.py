"""The web interface as a server: sessions, CSRF, policies, escaping, headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

from fastapi.testclient import TestClient

from fold.auth.sessions import SESSION_COOKIE
from fold.web.app import create_app
from tests.conftest import Database, Tenant, assert_error, settings_for
from tests.ui.conftest import WebClient, csrf_of, make_user, sign_in

XSS = "<img src=x onerror=alert(1)>"


def _segment(tenant: Tenant, **body: object) -> dict[str, object]:
    body.setdefault("resource_type", "person")
    created = tenant.admin.post(f"/segments/v2/{tenant.bucket}/create", json=body)
    assert created.status_code == 201, created.text
    result: dict[str, object] = created.json()
    return result


def _browser(app_client: TestClient, tenant: Tenant, policy: str) -> WebClient:
    name, password = make_user(tenant.db, tenant.bucket, policy)
    return sign_in(app_client, tenant.bucket, name, password)


class TestSignIn:
    def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        name, password = make_user(tenant.db, tenant.bucket, "editor")
        client = TestClient(app_client.app)
        token = csrf_of(client.get("/ui/login").text)
        answer = client.post(
            "/ui/login",
            data={"csrf_token": token, "username": name, "password": password},
            follow_redirects=False,
        )
        cookie = answer.headers["set-cookie"].lower()
        assert SESSION_COOKIE in cookie and "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain HTTP here; HTTPS adds Secure
        home = client.get(f"/ui/{tenant.bucket}/")
        assert home.status_code == 200 and name in home.text
        session_key = client.cookies[SESSION_COOKIE]
        out = client.post(
            "/ui/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False
        )
        assert out.status_code == 303
        # The key behind the session is revoked, so a copied cookie is worthless too.
        revoked = tenant.admin.with_key(session_key).get("/")
        assert_error(revoked, 401, "authentication_error")
        assert client.get(f"/ui/{tenant.bucket}/", follow_redirects=False).status_code == 303

    def test_https_cookie_is_secure(self, app_client: TestClient, tenant: Tenant) -> None:
        name, password = make_user(tenant.db, tenant.bucket, "viewer")
        client = TestClient(app_client.app, base_url="https://testserver")
        token = csrf_of(client.get("/ui/login").text)
        answer = client.post(
            "/ui/login",
            data={"csrf_token": token, "username": name, "password": password},
            follow_redirects=False,
        )
        assert "secure" in answer.headers["set-cookie"].lower()

    def test_api_key_quick_sign_in(self, app_client: TestClient, tenant: Tenant) -> None:
        client = TestClient(app_client.app)
        token = csrf_of(client.get("/ui/login").text)
        answer = client.post("/ui/login", data={"csrf_token": token, "api_key": tenant.viewer.key})
        assert answer.status_code == 200 and "viewer" in answer.text

    def test_wrong_password_and_missing_csrf(self, app_client: TestClient, tenant: Tenant) -> None:
        name, _ = make_user(tenant.db, tenant.bucket, "viewer")
        client = TestClient(app_client.app)
        token = csrf_of(client.get("/ui/login").text)
        wrong = client.post(
            "/ui/login", data={"csrf_token": token, "username": name, "password": "nope-nope"}
        )
        assert wrong.status_code == 403 and "not right" in wrong.text
        forged = client.post("/ui/login", data={"username": name, "password": "nope-nope"})
        assert forged.status_code == 403 and "CSRF" in forged.text

    def test_sign_in_is_throttled_the_same_for_missing_users(
        self, database: Database, tenant: Tenant
    ) -> None:
        settings = settings_for(database, login_failures_per_user=2, login_failures_per_address=50)
        name, password = make_user(tenant.db, tenant.bucket, "viewer")
        with TestClient(create_app(settings, database.engine)) as client:
            token = csrf_of(client.get("/ui/login").text)
            seen = {}
            for who in (name, "nobody-at-all"):
                answers = [
                    client.post(
                        "/ui/login",
                        data={"csrf_token": token, "username": who, "password": "wrong-pass"},
                    )
                    for _ in range(3)
                ]
                seen[who] = [a.status_code for a in answers]
                assert "Retry-After" in answers[-1].headers
            assert seen[name] == seen["nobody-at-all"] == [403, 403, 429]
            late = client.post(
                "/ui/login", data={"csrf_token": token, "username": name, "password": password}
            )
            assert late.status_code == 429 and "try again" in late.text

    def test_pages_need_a_session(self, app_client: TestClient, tenant: Tenant) -> None:
        client = TestClient(app_client.app)
        answer = client.get(f"/ui/{tenant.bucket}/", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"

    def test_another_bucket_is_refused(
        self, app_client: TestClient, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        browser = _browser(app_client, tenant, "admin")
        assert browser.client.get(f"/ui/{other_tenant.bucket}/").status_code == 403


class TestHeadersAndEscaping:
    def test_every_page_forbids_inline_script(self, app_client: TestClient, tenant: Tenant) -> None:
        browser = _browser(app_client, tenant, "viewer")
        for path in ("/ui/login", f"/ui/{tenant.bucket}/"):
            csp = browser.client.get(path).headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp

    def test_a_hostile_name_is_text(self, app_client: TestClient, tenant: Tenant) -> None:
        person = tenant.admin.post("/person/", json={"first_name": XSS, "last_name": XSS}).json()
        segment = _segment(tenant, name=XSS, description=XSS)
        browser = _browser(app_client, tenant, "viewer")
        pages = [
            f"/ui/{tenant.bucket}/",
            f"/ui/{tenant.bucket}/segments/{segment['uid']}",
            f"/ui/{tenant.bucket}/records/person/{person['uid']}?segment={segment['uid']}",
        ]
        for path in pages:
            html = browser.page(path)
            assert XSS not in html
            assert "&lt;img src=x onerror=alert(1)&gt;" in html

    def test_vendor_htmx_is_served_from_the_installed_package(self, app_client: TestClient) -> None:
        answer = app_client.get("/ui/vendor/htmx.min.js")
        assert answer.status_code == 200 and "htmx" in answer.text[:2000]
        assert app_client.get("/ui/vendor/other.js").status_code == 404
        assert app_client.get("/ui/static/../render.py").status_code == 404


class TestPolicy:
    def test_viewer_sees_no_write_controls_and_forged_writes_are_refused(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        segment = _segment(tenant, name="Readers")
        browser = _browser(app_client, tenant, "viewer")
        html = browser.page(f"/ui/{tenant.bucket}/segments/{segment['uid']}")
        for control in ("/edit", "/delete", "/action", "New segment", "New child"):
            assert control not in html
        csrf = csrf_of(html)
        base = f"/ui/{tenant.bucket}"
        forged = {
            f"{base}/new": {"name": "x", "resource_type": "person", "rules": "[]"},
            f"{base}/segments/{segment['uid']}/edit": {"name": "x", "rules": "[]"},
            f"{base}/segments/{segment['uid']}/delete": {},
            f"{base}/segments/{segment['uid']}/action": {
                "action": "add_tag",
                "value": "x",
                "description": "x",
            },
        }
        for path, data in forged.items():
            answer = browser.client.post(path, data={**data, "csrf_token": csrf})
            assert answer.status_code == 403, (path, answer.text)
        assert browser.client.get(f"{base}/new").status_code == 403
        assert (
            tenant.admin.get(f"/segments/v2/{tenant.bucket}/segment/{segment['uid']}").json()[
                "name"
            ]
            == "Readers"
        )

    def test_a_form_without_its_csrf_token_is_refused(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        segment = _segment(tenant, name="Keep me")
        browser = _browser(app_client, tenant, "admin")
        path = f"/ui/{tenant.bucket}/segments/{segment['uid']}/delete"
        assert browser.client.post(path, data={}).status_code == 403
        assert browser.client.post(path, data={"csrf_token": "0" * 64}).status_code == 403
        still = tenant.admin.get(f"/segments/v2/{tenant.bucket}/segment/{segment['uid']}")
        assert still.status_code == 200

    def test_the_api_takes_the_session_cookie_only_with_its_csrf_header(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        browser = _browser(app_client, tenant, "editor")
        body = {"resource_type": "person", "rules": []}
        url = f"/segments/v2/{tenant.bucket}/preview"
        assert_error(browser.client.post(url, json=body), 403, "permission_denied")
        ok = browser.client.post(url, json=body, headers={"X-CSRF-Token": browser.csrf()})
        assert ok.status_code == 200 and "count" in ok.json()
        assert browser.client.get(f"/api/v2/{tenant.bucket}/person/fields").status_code == 200


class TestWrites:
    def test_create_edit_delete_cascade_and_restore(
        self, app_client: TestClient, tenant: Tenant, database: Database
    ) -> None:
        browser = _browser(app_client, tenant, "admin")
        base = f"/ui/{tenant.bucket}"
        csrf = browser.csrf()
        rules = '[{"field": "first_name", "operator": "equals", "value": "Ada"}]'
        made = browser.client.post(
            f"{base}/new",
            data={"csrf_token": csrf, "name": "Adas", "segment_type": "dynamic",
                  "resource_type": "person", "active": "true", "rules": rules},
            follow_redirects=False,
        )  # fmt: skip
        assert made.status_code == 303, made.text
        uid = made.headers["location"].rsplit("/", 1)[-1]
        bad = browser.client.post(
            f"{base}/segments/{uid}/edit",
            data={"csrf_token": csrf, "name": "Adas", "segment_type": "dynamic",
                  "resource_type": "person", "active": "true",
                  "rules": '[{"field": "joined", "operator": "greater_than", "value": "soon"}]'},
        )  # fmt: skip
        assert bad.status_code == 400 and "rules[0].value" in bad.text
        child = _segment(tenant, name="Child", parent_segment=f"/{tenant.bucket}/segment/{uid}/")
        confirm = browser.page(f"{base}/segments/{uid}/delete")
        assert "Child" in confirm and 'name="cascade"' in confirm
        refused = browser.client.post(f"{base}/segments/{uid}/delete", data={"csrf_token": csrf})
        assert refused.status_code == 409
        gone = browser.client.post(
            f"{base}/segments/{uid}/delete",
            data={"csrf_token": csrf, "cascade": "true"},
            follow_redirects=False,
        )
        assert gone.status_code == 303
        api = tenant.admin
        assert api.get(f"/segments/v2/{tenant.bucket}/segment/{child['uid']}").status_code == 404
        back = browser.client.post(
            f"{base}/segments/{uid}/restore", data={"csrf_token": csrf}, follow_redirects=False
        )
        assert back.status_code == 303
        assert api.get(f"/segments/v2/{tenant.bucket}/segment/{uid}").status_code == 200


def _etag_of(html: str) -> str:
    found = re.search(r'name="etag" value="([^"]+)"', html)
    assert found, "no ETag in the form"
    return unescape(found.group(1))


ADA = {"field": "first_name", "operator": "equals", "value": "Ada"}


class TestHistory:
    def test_ten_edits_are_listed_and_a_revert_through_the_form_restores_the_rules(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        segment = _segment(tenant, name="v1", rules=[ADA])
        uid, api = segment["uid"], tenant.admin
        url = f"/segments/v2/{tenant.bucket}/segment/{uid}"
        for i in range(2, 11):
            rules = [ADA] if i < 10 else [{**ADA, "value": "Bob"}]
            changed = api.patch(url, json={"name": f"v{i}", "rules": rules})
            assert changed.status_code == 200, changed.text
        browser = _browser(app_client, tenant, "editor")
        base = f"/ui/{tenant.bucket}/segments/{uid}"
        html = browser.page(base)
        assert all(f'data-version="{n}"' in html for n in range(1, 11))
        assert 'data-version="11"' not in html and "rules" in html
        # The history is shown once, in the page, and the page's title is the name alone.
        assert html.count('id="history-h"') == 1
        assert "<title>v10 · Fold</title>" in html
        shown = browser.page(f"{base}/versions/1")
        assert "Revert to version 1" in shown and "Bob" in shown and "v10" in shown
        reverted = browser.client.post(
            f"{base}/versions/1/revert",
            data={"csrf_token": csrf_of(shown), "etag": _etag_of(shown)},
            follow_redirects=False,
        )
        assert reverted.status_code == 303, reverted.text
        now = api.get(url).json()
        assert now["name"] == "v1" and now["rules"]["conditions"] == [ADA]
        assert 'data-version="11"' in browser.page(base)
        assert "No difference" in browser.page(f"{base}/versions/1")

    def test_viewer_sees_no_revert_and_forged_ones_are_refused(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        segment = _segment(tenant, name="Before", rules=[ADA])
        uid = segment["uid"]
        url = f"/segments/v2/{tenant.bucket}/segment/{uid}"
        assert tenant.admin.patch(url, json={"name": "After"}).status_code == 200
        base = f"/ui/{tenant.bucket}/segments/{uid}"
        viewer = _browser(app_client, tenant, "viewer")
        shown = viewer.page(f"{base}/versions/1")
        assert "Before" in shown and "After" in shown
        assert "Revert" not in shown and "/revert" not in shown
        assert "Take a snapshot" not in viewer.page(base)
        csrf = csrf_of(shown)
        forged = viewer.client.post(f"{base}/versions/1/revert", data={"csrf_token": csrf})
        assert forged.status_code == 403
        snap = viewer.client.post(f"{base}/snapshots", data={"csrf_token": csrf})
        assert snap.status_code == 403
        editor = _browser(app_client, tenant, "editor")
        for path in (f"{base}/versions/1/revert", f"{base}/snapshots"):
            assert editor.client.post(path, data={}).status_code == 403
        assert tenant.admin.get(url).json()["name"] == "After"
        listed = tenant.admin.get(f"{url}/snapshots").json()
        assert listed["total"] == 0

    def test_changes_since_a_snapshot_lists_who_entered(
        self, app_client: TestClient, tenant: Tenant
    ) -> None:
        segment = _segment(tenant, name="Adas", rules=[ADA])
        uid = segment["uid"]
        base = f"/ui/{tenant.bucket}/segments/{uid}"
        editor = _browser(app_client, tenant, "editor")
        html = editor.page(base)
        assert 'type="date"' in html and "Take a snapshot now" in html
        taken = editor.client.post(
            f"{base}/snapshots", data={"csrf_token": csrf_of(html)}, follow_redirects=False
        )
        assert taken.status_code == 303
        ada = tenant.admin.post("/person/", json={"first_name": "Ada", "last_name": XSS})
        assert ada.status_code == 201, ada.text
        today = datetime.now(UTC).date().isoformat()
        shown = editor.page(f"{base}/changes?since={today}")
        assert re.search(r"data-entered>1<", shown) and re.search(r"data-left>0<", shown)
        assert ada.json()["uid"] in shown and XSS not in shown
        bad = editor.client.get(f"{base}/changes?since=yesterday")
        assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
        early = editor.client.get(f"{base}/changes?since=2001-01-01")
        assert early.status_code == 400 and "first snapshot" in early.text


def test_the_builder_offers_every_operator_but_related_rules() -> None:
    """Each operator the rules take is offered by the builder for some field type, with a
    label; `related` rules (a rule set of their own) are written through the API or the
    raw filter."""
    from fold.rules.compile import OPERATORS
    from fold.ui.render import STATIC

    script = (STATIC / "builder.js").read_text()
    offered_block = script[script.index("const OPERATORS") : script.index("const LABELS")]
    labels_block = script[script.index("const LABELS") : script.index("const LISTS")]
    ordered = re.search(r"const ORDERED = \[([^\]]*)\]", script)
    assert ordered is not None
    offered = set(re.findall(r'"(\w+)"', offered_block + ordered.group(1)))
    labelled = set(re.findall(r"(\w+):", labels_block))
    assert offered == set(OPERATORS) - {"related"}
    assert offered <= labelled
