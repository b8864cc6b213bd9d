"""Error shape, request ids, docs and health (SPEC 9 and 10)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from fold.web.app import create_app
from tests.conftest import Database, settings_for


class TestErrorShape:
    def test_unexpected_errors_are_500_without_internals(self, database: Database) -> None:
        app = create_app(settings_for(database), database.engine)

        @app.get("/boom")
        def boom() -> None:
            raise RuntimeError("secret internals /etc/passwd")

        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom", headers={"X-Request-ID": "trace-123"})
        assert response.status_code == 500
        body = response.json()
        assert body["type"] == "internal_error"
        assert "trace-123" in body["description"]
        assert "secret" not in response.text and "Traceback" not in response.text
        assert response.headers["x-request-id"] == "trace-123"

    def test_request_id_is_made_when_missing_or_unsafe(self, app_client: TestClient) -> None:
        generated = app_client.get("/health").headers["x-request-id"]
        assert len(generated) == 32
        unsafe = app_client.get("/health", headers={"X-Request-ID": "bad id\twith space"})
        assert unsafe.headers["x-request-id"] != "bad id\twith space"


class TestServiceEndpoints:
    def test_health_needs_no_key(self, app_client: TestClient) -> None:
        response = app_client.get("/health")
        assert response.status_code == 200 and response.json()["status"] == "ok"

    def test_docs_are_served_without_a_cdn(self, app_client: TestClient) -> None:
        page = app_client.get("/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower() and "/static/docs/swagger-ui-bundle.js" in page.text
        assert app_client.get("/static/docs/swagger-ui-bundle.js").status_code == 200
        spec = app_client.get("/openapi.json").json()
        assert "/api/v2/{bucket}/{resource_type}/" in spec["paths"]
