"""Failed logins are slowed down per username and per client address (issue 10, item 7)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from fold.auth.service import add_user
from fold.auth.throttle import LoginThrottle, MemoryCounter, RedisCounter, ThrottleLimits
from fold.db.engine import unit_of_work
from fold.errors import RateLimited
from fold.web.app import create_app
from tests.conftest import Database, assert_error, settings_for

REDIS_URL = os.environ.get("FOLD_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    settings = settings_for(
        database, login_failures_per_user=3, login_failures_per_address=6, login_window_seconds=60
    )
    with TestClient(create_app(settings, database.engine), raise_server_exceptions=False) as c:
        yield c


def _user(database: Database, password: str = "right-password") -> str:
    name = f"u-{secrets.token_hex(4)}"
    with unit_of_work(database.sessions) as session:
        add_user(session, username=name, password=password, bucket="throttle", policy="viewer")
    return name


def _login(client: TestClient, username: str, password: str) -> object:
    return client.post("/api/v1/auth/", json={"username": username, "password": password})


class TestLoginThrottle:
    def test_wrong_passwords_are_refused_with_429_after_the_limit(
        self, client: TestClient, database: Database
    ) -> None:
        name = _user(database)
        for _ in range(3):
            assert_error(_login(client, name, "wrong-one"), 403, "permission_denied")
        limited = _login(client, name, "wrong-one")
        assert_error(limited, 429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60  # type: ignore[attr-defined]
        # Even the right password waits until the window ends.
        assert_error(_login(client, name, "right-password"), 429, "rate_limited")

    def test_the_answer_is_the_same_whether_or_not_the_user_exists(
        self, client: TestClient, database: Database
    ) -> None:
        real, ghost = _user(database), f"ghost-{secrets.token_hex(4)}"
        answers = {}
        for name in (real, ghost):
            seen = [_login(client, name, "wrong-one") for _ in range(4)]
            # The seconds to wait differ with the clock; nothing else may.
            answers[name] = [
                (r.status_code, re.sub(r"\d+", "N", r.text))  # type: ignore[attr-defined]
                for r in seen
            ]
        assert [s for s, _ in answers[real]] == [403, 403, 403, 429]
        assert answers[real] == answers[ghost]

    def test_the_address_is_limited_across_usernames(
        self, client: TestClient, database: Database
    ) -> None:
        names = [f"spray-{secrets.token_hex(4)}" for _ in range(6)]
        for name in names:
            assert_error(_login(client, name, "wrong-one"), 403, "permission_denied")
        fresh = _user(database)
        assert_error(_login(client, fresh, "right-password"), 429, "rate_limited")

    def test_a_right_password_clears_the_username_count(
        self, client: TestClient, database: Database
    ) -> None:
        name = _user(database)
        for _ in range(2):
            _login(client, name, "wrong-one")
        ok = _login(client, name, "right-password")
        assert ok.status_code == 200  # type: ignore[attr-defined]
        for _ in range(2):
            assert_error(_login(client, name, "wrong-one"), 403, "permission_denied")


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_counts_per_window(backend: str) -> None:
    if backend == "redis" and not _redis_up():
        pytest.skip("no Redis at FOLD_TEST_REDIS")
    counter = MemoryCounter() if backend == "memory" else RedisCounter(REDIS_URL, 60)
    throttle = LoginThrottle(
        counter, ThrottleLimits(per_user=2, per_address=100, window_seconds=60)
    )
    user = f"w-{secrets.token_hex(4)}"
    throttle.check(username=user, address="10.0.0.1")
    throttle.failed(username=user, address="10.0.0.1")
    throttle.failed(username=user.upper(), address="10.0.0.2")
    with pytest.raises(RateLimited) as caught:
        throttle.check(username=user, address="10.0.0.3")
    assert caught.value.headers["Retry-After"].isdigit()
    throttle.succeeded(username=user, address="10.0.0.1")
    throttle.check(username=user, address="10.0.0.1")


def test_redis_counts_are_shared_between_throttles() -> None:
    if not _redis_up():
        pytest.skip("no Redis at FOLD_TEST_REDIS")
    limits = ThrottleLimits(per_user=1, per_address=100, window_seconds=60)
    one = LoginThrottle(RedisCounter(REDIS_URL, 60), limits)
    two = LoginThrottle(RedisCounter(REDIS_URL, 60), limits)
    user = f"shared-{secrets.token_hex(4)}"
    one.failed(username=user, address="10.0.0.9")
    with pytest.raises(RateLimited):
        two.check(username=user, address="10.0.0.9")
