"""Message templates: their API, checks when saved, the preview for one record, and the
sandbox that keeps a template from reaching Python's internals."""

from __future__ import annotations

import pytest

from fold.messages import render
from tests.conftest import Tenant, assert_error
from tests.messages.conftest import make_template

BASE = "/messages/v1/{bucket}/templates"


def url(mt: Tenant, suffix: str = "") -> str:
    return BASE.format(bucket=mt.bucket) + suffix


class TestTemplateApi:
    def test_create_read_change_list_delete(self, mt: Tenant) -> None:
        api = mt.admin
        made = make_template(api, name="Renewal", subject="Hi {{ first_name }}", text_body="x")
        assert made["uri"] == f"/{mt.bucket}/message_template/{made['uid']}/"
        assert api.get(url(mt, f"/{made['uid']}")).json()["subject"] == "Hi {{ first_name }}"
        changed = api.patch(url(mt, f"/{made['uid']}"), json={"name": "Renewal 2"}).json()
        assert (changed["name"], changed["text_body"]) == ("Renewal 2", "x")
        make_template(api, name="Rota", channel="sms", text_body="Hi")
        listed = api.get(url(mt), params={"channel": "sms"}).json()
        assert [t["name"] for t in listed["templates"]] == ["Rota"] and listed["total"] == 1
        assert api.delete(url(mt, f"/{made['uid']}")).status_code == 200
        assert_error(api.get(url(mt, f"/{made['uid']}")), 404, "not_found")

    def test_bad_templates_are_refused_when_saved(self, mt: Tenant) -> None:
        api = mt.admin
        body = make_template(api, 400, subject="Hi {{ first_name ", text_body="x")
        assert body["param"] == "subject" and "line 1" in body["description"]
        assert make_template(api, 400, subject="s", html_body="{% if %}")["param"] == "html_body"
        assert make_template(api, 400, channel="fax", text_body="x")["param"] == "channel"
        assert make_template(api, 400, subject="s")["param"] == "text_body"
        assert make_template(api, 400, text_body="no subject")["param"] == "subject"
        assert make_template(api, 400, channel="sms", text_body="x", html_body="<p>")["param"] == (
            "html_body"
        )
        assert make_template(api, 400, subject="s", text_body="x", colour="red")["param"] == (
            "colour"
        )

    def test_viewers_read_but_do_not_write_and_buckets_stay_apart(
        self, mt: Tenant, other_mt: Tenant
    ) -> None:
        made = make_template(mt.admin, subject="s", text_body="t")
        assert mt.viewer.get(url(mt, f"/{made['uid']}")).status_code == 200
        response = mt.viewer.post(url(mt), json={"name": "x", "channel": "sms", "text_body": "y"})
        assert_error(response, 403, "permission_denied")
        assert make_template(mt.editor, subject="s", text_body="t")["name"] == "Template"
        theirs = other_mt.admin.get(f"/messages/v1/{other_mt.bucket}/templates/{made['uid']}")
        assert_error(theirs, 404, "not_found")
        assert_error(other_mt.admin.get(url(mt)), 403, "permission_denied")


class TestPreview:
    def test_render_for_one_record(self, mt: Tenant) -> None:
        api = mt.admin
        person = api.post(
            "/person/",
            json={"first_name": "<b>Zoë</b>", "email": "z@example.org", "joined": "2024-02-29"},
        ).json()
        made = make_template(
            api,
            subject="Welcome {{ first_name }}",
            html_body="<p>Hello {{ first_name }}, since {{ joined|date('%d/%m/%Y') }}</p>",
        )
        answer = api.get(url(mt, f"/{made['uid']}/render"), params={"uri": person["uri"]}).json()
        assert answer["would"] == "send" and answer["to"] == "z@example.org"
        assert answer["subject"] == "Welcome <b>Zoë</b>"
        assert answer["html"] == "<p>Hello &lt;b&gt;Zoë&lt;/b&gt;, since 29/02/2024</p>"
        assert answer["text"] == "Hello <b>Zoë</b>, since 29/02/2024\n"
        bad = api.get(url(mt, f"/{made['uid']}/render"), params={"uri": "/nope/person/1/"})
        assert_error(bad, 400, "validation_error", "uri")

    def test_a_record_the_template_cannot_render_for(self, mt: Tenant) -> None:
        api = mt.admin
        person = api.post("/person/", json={"first_name": "A", "email": "a@example.org"}).json()
        api.patch(f"/person/{person['uid']}/", json={"amount_due": "lots"})
        made = make_template(api, subject="s", text_body="Due: {{ amount_due|amount }}")
        answer = api.get(url(mt, f"/{made['uid']}/render"), params={"uri": person["uri"]}).json()
        assert answer["would"] == "fail" and "'lots' is not an amount" in answer["reason"]


ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ first_name.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ contact.update({'x': 1}) }}",
    "{{ self.__init__.__globals__ }}",
    "{{ range(10**9)|list }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
]


class TestSandbox:
    @pytest.mark.parametrize("source", ESCAPES)
    def test_templates_cannot_reach_python_internals(self, source: str) -> None:
        try:
            out = render.render(source, {"first_name": "A", "contact": {}}, as_html=False)
        except render.RenderError:
            return
        # Whatever renders holds nothing of Python's internals.
        assert "class" not in out and "function" not in out and "module" not in out, out

    def test_through_the_api(self, mt: Tenant) -> None:
        api = mt.admin
        person = api.post("/person/", json={"first_name": "A", "email": "a@example.org"}).json()
        made = make_template(api, subject="s", text_body="{{ ''.__class__.__mro__ }}")
        answer = api.get(url(mt, f"/{made['uid']}/render"), params={"uri": person["uri"]}).json()
        assert answer["would"] == "fail" and "SecurityError" in answer["reason"]


def test_text_from_html() -> None:
    text = render.text_from_html(
        "<html><head><style>p{}</style></head><body><h1>Title</h1><p>One &amp; two</p>"
        '<ul><li>a</li><li>b</li></ul><p><a href="https://x.org/u">Unsubscribe</a></p>'
        "<script>alert(1)</script></body></html>"
    )
    assert text == "Title\n\nOne & two\n\n- a\n\n- b\n\nUnsubscribe (https://x.org/u)\n"
