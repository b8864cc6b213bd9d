"""Keys, users, policies and rate limits (SPEC 7)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fold.auth.service import add_user, create_key, revoke_key
from fold.db.engine import unit_of_work
from fold.web.app import create_app
from tests.conftest import Database, Tenant, assert_error, settings_for


class TestAuthentication:
    def test_missing_malformed_unknown_keys_are_401(self, tenant: Tenant) -> None:
        client = tenant.admin.client
        path = f"/api/v2/{tenant.bucket}/person/"
        assert_error(client.get(path), 401, "authentication_error")
        for header in ("Basic abc", "Bearer", "Bearer a b", "fold_123", "Bearer fold_nope"):
            response = client.get(path, headers={"Authorization": header})
            assert_error(response, 401, "authentication_error")
            assert response.headers["www-authenticate"] == "Bearer"

    def test_revoked_key_is_401(self, tenant: Tenant) -> None:
        with unit_of_work(tenant.db.sessions) as session:
            key = create_key(session, bucket=tenant.bucket, policy="viewer").key
        api = tenant.viewer.with_key(key)
        assert api.get("/person/").status_code == 200
        with unit_of_work(tenant.db.sessions) as session:
            revoke_key(session, key_or_id=key)
        body = assert_error(api.get("/person/"), 401, "authentication_error")
        assert "revoked" in body["description"]

    def test_only_a_hash_is_stored(self, tenant: Tenant) -> None:
        from sqlalchemy import select

        from fold.db.models import ApiKey

        with unit_of_work(tenant.db.sessions) as session:
            hashes = session.scalars(select(ApiKey.key_hash)).all()
        assert tenant.admin.key not in hashes
        assert all(len(h) == 64 for h in hashes)


class TestBucketIsolation:
    def test_other_bucket_is_403_and_says_nothing_of_records(
        self, tenant: Tenant, other_tenant: Tenant
    ) -> None:
        uid = tenant.admin.post("/person/", json={"first_name": "A"}).json()["uid"]
        intruder = other_tenant.admin.with_key(other_tenant.admin.key)
        existing = intruder.get(f"/api/v2/{tenant.bucket}/person/{uid}/")
        missing = intruder.get(f"/api/v2/{tenant.bucket}/person/{'0' * 24}/")
        nowhere = intruder.get(f"/api/v2/no-such-bucket/person/{uid}/")
        for response in (existing, missing, nowhere):
            assert_error(response, 403, "permission_denied")
        assert existing.json()["description"].replace(tenant.bucket, "B") == missing.json()[
            "description"
        ].replace(tenant.bucket, "B")
        assert uid not in existing.text

    def test_list_never_shows_another_bucket(self, tenant: Tenant, other_tenant: Tenant) -> None:
        tenant.admin.post("/person/", json={"first_name": "Mine", "email": "same@x.org"})
        other_tenant.admin.post("/person/", json={"first_name": "Theirs", "email": "same@x.org"})
        names = [r["first_name"] for r in tenant.admin.get("/person/").json()["results"]]
        assert names == ["Mine"]


class TestPolicies:
    def test_viewer_reads_but_cannot_write(self, tenant: Tenant) -> None:
        uid = tenant.editor.post("/person/", json={"first_name": "E"}).json()["uid"]
        assert tenant.viewer.get(f"/person/{uid}/").status_code == 200
        assert_error(
            tenant.viewer.patch(f"/person/{uid}/", json={"first_name": "V"}),
            403,
            "permission_denied",
        )


class TestLogin:
    def test_login_returns_a_working_key(self, tenant: Tenant) -> None:
        with unit_of_work(tenant.db.sessions) as session:
            add_user(
                session,
                username="sam",
                password="correct horse",
                bucket=tenant.bucket,
                policy="editor",
            )
        client = tenant.admin.client
        response = client.post(
            "/api/v1/auth/", json={"username": "sam", "password": "correct horse"}
        )
        assert response.status_code == 200, response.text
        key = response.json()["api_key"]
        api = tenant.admin.with_key(key)
        created = api.post("/person/", json={"first_name": "Via login"})
        assert created.status_code == 201
        audit = api.get(f"/audit/v2/{tenant.bucket}/audit").json()["audit"][0]
        assert audit["user"] == f"/{tenant.bucket}/user/sam/"
        assert_error(api.delete(f"/person/{created.json()['uid']}/"), 403, "permission_denied")

    def test_form_body_works_too(self, tenant: Tenant) -> None:
        with unit_of_work(tenant.db.sessions) as session:
            add_user(
                session,
                username="formy",
                password="password1",
                bucket=tenant.bucket,
                policy="viewer",
            )
        response = tenant.admin.client.post(
            "/api/v1/auth", data={"username": "formy", "password": "password1"}
        )
        assert response.status_code == 200 and response.json()["api_key"].startswith("fold_")

    def test_wrong_password_and_unknown_user_look_the_same(self, tenant: Tenant) -> None:
        with unit_of_work(tenant.db.sessions) as session:
            add_user(
                session, username="kim", password="password1", bucket=tenant.bucket, policy="viewer"
            )
        client = tenant.admin.client
        wrong = client.post("/api/v1/auth/", json={"username": "kim", "password": "nope-nope"})
        nobody = client.post("/api/v1/auth/", json={"username": "nobody", "password": "nope-nope"})
        assert_error(wrong, 403, "permission_denied")
        assert wrong.json() == nobody.json()

    def test_missing_fields_are_400(self, tenant: Tenant) -> None:
        client = tenant.admin.client
        assert_error(
            client.post("/api/v1/auth/", json={"username": "x"}),
            400,
            "validation_error",
            "password",
        )
        assert_error(client.post("/api/v1/auth/", json=[1]), 400, "validation_error")


class TestRateLimit:
    def test_limited_after_the_limit_with_headers(self, database: Database) -> None:
        app = create_app(settings_for(database, rate_limit_per_minute=3), database.engine)
        with unit_of_work(database.sessions) as session:
            key = create_key(session, bucket="rl-bucket", policy="viewer").key
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(app) as client:
            responses = [client.get("/api/v2/rl-bucket/person/", headers=headers) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert responses[0].headers["x-rate-limit-limit"] == "3"
        assert responses[0].headers["x-rate-limit-remaining"] == "2"
        assert int(responses[0].headers["x-rate-limit-reset"]) >= 1
        limited = assert_error(responses[3], 429, "rate_limited")
        assert "3 requests" in limited["description"]
        assert int(responses[3].headers["retry-after"]) >= 1

    def test_redis_limiter_counts_across_instances(self) -> None:
        import secrets

        import pytest
        import redis

        from fold.api.ratelimit import RedisRateLimiter

        try:
            redis.Redis.from_url("redis://127.0.0.1:6379/15").ping()
        except redis.RedisError:
            pytest.skip("Redis is not reachable")
        key = secrets.token_hex(6)
        first = RedisRateLimiter(2, "redis://127.0.0.1:6379/15")
        second = RedisRateLimiter(2, "redis://127.0.0.1:6379/15")
        verdicts = [first.hit(key), second.hit(key), first.hit(key)]
        assert [v.allowed for v in verdicts] == [True, True, False]
        assert verdicts[1].remaining == 0
