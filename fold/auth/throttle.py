"""Slowing down password guessing: failed logins are counted per username and per client
address in fixed windows, in memory or in Redis when set (so every process shares them).

Past the limit every attempt for that username or from that address answers 429 with
`Retry-After` until the window ends, before the password is even checked, so the answer
says nothing about whether the user exists or the password was right."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

from fold.errors import RateLimited


@dataclass(frozen=True)
class ThrottleLimits:
    per_user: int = 5
    per_address: int = 20
    window_seconds: int = 300


class Counter(Protocol):
    def get(self, name: str, window: int) -> int: ...

    def incr(self, name: str, window: int) -> int: ...

    def clear(self, name: str, window: int) -> None: ...


class MemoryCounter:
    """Counts in this process; enough for one `fold serve`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def _drop_old(self, window: int) -> None:
        for key in [k for k in self._counts if k[1] < window]:
            del self._counts[key]

    def get(self, name: str, window: int) -> int:
        with self._lock:
            return self._counts.get((name, window), 0)

    def incr(self, name: str, window: int) -> int:
        with self._lock:
            self._drop_old(window)
            value = self._counts.get((name, window), 0) + 1
            self._counts[(name, window)] = value
            return value

    def clear(self, name: str, window: int) -> None:
        with self._lock:
            self._counts.pop((name, window), None)


class RedisCounter:
    """Counts shared by every process that reaches the same Redis."""

    def __init__(self, url: str, ttl: int) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._ttl = ttl

    @staticmethod
    def _key(name: str, window: int) -> str:
        return f"fold:login:{name}:{window}"

    def get(self, name: str, window: int) -> int:
        value = self._redis.get(self._key(name, window))
        return int(value) if value is not None else 0

    def incr(self, name: str, window: int) -> int:
        pipe = self._redis.pipeline()
        pipe.incr(self._key(name, window))
        pipe.expire(self._key(name, window), self._ttl * 2)
        return int(pipe.execute()[0])

    def clear(self, name: str, window: int) -> None:
        self._redis.delete(self._key(name, window))


class LoginThrottle:
    """Checked before a password is verified; told of every failure and success."""

    def __init__(self, counter: Counter, limits: ThrottleLimits) -> None:
        self.counter = counter
        self.limits = limits

    def _window(self) -> tuple[int, int]:
        now = time.time()
        size = self.limits.window_seconds
        start = int(now // size) * size
        return start, max(1, start + size - int(now))

    @staticmethod
    def _names(username: str, address: str) -> tuple[str, str]:
        # Usernames are case-sensitive, but guesses at "Ada" and "ada" count together.
        return f"user:{username.strip().lower()[:150]}", f"addr:{address}"

    def check(self, *, username: str, address: str) -> None:
        """429 while the username or the address has used up its failures this window."""
        start, reset = self._window()
        user, addr = self._names(username, address)
        if (
            self.counter.get(user, start) >= self.limits.per_user
            or self.counter.get(addr, start) >= self.limits.per_address
        ):
            raise RateLimited(
                f"Too many failed sign-ins; try again in {reset} s.",
                error="Too many failed sign-ins",
                headers={"Retry-After": str(reset)},
            )

    def failed(self, *, username: str, address: str) -> None:
        start, _ = self._window()
        for name in self._names(username, address):
            self.counter.incr(name, start)

    def succeeded(self, *, username: str, address: str) -> None:
        """A right password clears the username's count (the address keeps its own)."""
        start, _ = self._window()
        self.counter.clear(self._names(username, address)[0], start)


def make_login_throttle(limits: ThrottleLimits, redis_url: str | None) -> LoginThrottle:
    if redis_url:
        return LoginThrottle(RedisCounter(redis_url, limits.window_seconds), limits)
    return LoginThrottle(MemoryCounter(), limits)
