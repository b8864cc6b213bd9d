"""Test set-up: every database test runs on SQLite and, when reachable, on PostgreSQL.

Each run gets fresh databases built by the migrations; each test gets its own bucket, so
tests cannot see each other's data (the same isolation tenants get)."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fold.auth.service import create_key
from fold.columns.index import ColumnIndex
from fold.config import Settings
from fold.db import migrate
from fold.db.engine import make_engine, make_sessionmaker, unit_of_work
from fold.records import clock
from fold.rules.sqlite import FUNCTIONS as SQLITE_FUNCTIONS
from fold.web.app import create_app

PG_ADMIN = os.environ.get("FOLD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("FOLD_REQUIRE_POSTGRES") == "1"


def _postgres_reachable() -> bool:
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.Error:
        if REQUIRE_PG:
            raise
        return False
    return True


DATABASES = ["sqlite"] + (["postgresql"] if _postgres_reachable() else [])


@dataclass
class Database:
    name: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]  # stamping the change clock, using `columns`
    columns: ColumnIndex


def sessions_for(
    engine: Engine, columns: ColumnIndex | None = None, *, writes: bool = False
) -> sessionmaker[Session]:
    """A session factory as the application makes one: its flushes stamp the change clock,
    its reads may use `columns`; `writes` for work that reads and then writes (on SQLite
    BEGIN IMMEDIATE: a deferred transaction whose first read was overtaken by another
    connection's commit fails its first write at once with "database is locked")."""
    factory = clock.install(make_sessionmaker(engine, writes=writes))
    return factory if columns is None else columns.attach(factory)


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[Database]:
    """A new database built by the migrations: a file in `directory` for SQLite, a database
    of its own (dropped afterwards) on PostgreSQL."""
    name = ""
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'fold.db'}"
    else:
        name = f"fold_test_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url, sqlite_functions=SQLITE_FUNCTIONS)
    try:
        migrate.upgrade(engine)
        columns = ColumnIndex()
        yield Database(kind, url, engine, sessions_for(engine, columns), columns)
    finally:
        engine.dispose()
        if kind != "sqlite":
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=DATABASES)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path_factory.mktemp("db")) as db:
        yield db


def settings_for(db: Database, **overrides: Any) -> Settings:
    """Jobs run inline once their request commits, unless a test asks for a real queue."""
    values: dict[str, Any] = {"queue": "immediate", "allow_private_webhooks": True}
    values.update(overrides)
    return Settings(database_url=db.url, **values)


@pytest.fixture(scope="session")
def app_client(database: Database) -> Iterator[TestClient]:
    app = create_app(settings_for(database), database.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


_bucket_numbers = itertools.count(1)


@dataclass
class Api:
    """A client bound to a bucket and a key; paths are relative to /api/v2/{bucket}."""

    client: TestClient
    bucket: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def url(self, path: str) -> str:
        if path.startswith(
            ("/api/", "/audit/", "/segments/", "/messages/", "/settings/", "/xero/")
        ):
            return path
        return f"/api/v2/{self.bucket}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def with_key(self, key: str) -> Api:
        return Api(self.client, self.bucket, key)


@dataclass
class Tenant:
    bucket: str
    admin: Api
    editor: Api
    viewer: Api
    db: Database


def make_tenant(client: TestClient, db: Database, prefix: str = "t") -> Tenant:
    bucket = f"{prefix}{next(_bucket_numbers)}-{secrets.token_hex(3)}"
    keys = {}
    with unit_of_work(sessions_for(db.engine, db.columns, writes=True)) as session:
        for policy in ("admin", "editor", "viewer"):
            keys[policy] = create_key(session, bucket=bucket, policy=policy, name="test").key
    return Tenant(
        bucket,
        Api(client, bucket, keys["admin"]),
        Api(client, bucket, keys["editor"]),
        Api(client, bucket, keys["viewer"]),
        db,
    )


@pytest.fixture
def tenant(app_client: TestClient, database: Database) -> Tenant:
    return make_tenant(app_client, database)


@pytest.fixture
def other_tenant(app_client: TestClient, database: Database) -> Tenant:
    return make_tenant(app_client, database, prefix="o")


@pytest.fixture
def api(tenant: Tenant) -> Api:
    return tenant.admin


def created(api: Api, resource_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """A record made through the records API (201); answers it."""
    response = api.post(f"/{resource_type}/", json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def assert_error(
    response: Any, status: int, type_: str, param: str | None = None
) -> dict[str, Any]:
    """The response is an error in SPEC 9's shape; answers its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == type_, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["description"], str) and body["description"]
    assert "Traceback" not in response.text
    assert response.headers.get("x-request-id")
    if param is not None:
        assert body.get("param") == param, body
    return body


def api_routes(app: Any) -> list[Any]:
    """Every APIRoute of an application, inside included routers too."""
    from fastapi.routing import APIRoute

    out: list[Any] = []
    pending = list(app.routes)
    while pending:
        item = pending.pop(0)
        if isinstance(item, APIRoute):
            out.append(item)
        elif hasattr(item, "original_router"):
            pending.extend(item.original_router.routes)
        elif hasattr(item, "routes") and not hasattr(item, "app"):
            pending.extend(item.routes)
    return out
