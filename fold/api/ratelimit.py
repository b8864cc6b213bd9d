"""Per-key rate limiting in fixed one-minute windows: in memory, or in Redis when set,
so that every API process behind a load balancer shares one count."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        out = {
            "x-rate-limit-limit": str(self.limit),
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(self.reset),
        }
        if not self.allowed:
            out["Retry-After"] = str(self.reset)
        return out


class RateLimiter(Protocol):
    def hit(self, key_id: str) -> Verdict: ...


def _window(now: float) -> tuple[int, int]:
    start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    return start, max(1, start + WINDOW_SECONDS - int(now))


class MemoryRateLimiter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, key_id: str) -> Verdict:
        start, reset = _window(time.time())
        with self._lock:
            window, count = self._counts.get(key_id, (start, 0))
            if window != start:
                count = 0
            count += 1
            self._counts[key_id] = (start, count)
        return Verdict(count <= self.limit, self.limit, max(0, self.limit - count), reset)


class RedisRateLimiter:
    def __init__(self, limit: int, url: str) -> None:
        import redis

        self.limit = limit
        self._redis = redis.Redis.from_url(url)

    def hit(self, key_id: str) -> Verdict:
        start, reset = _window(time.time())
        name = f"fold:ratelimit:{key_id}:{start}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, WINDOW_SECONDS * 2)
        count = int(pipe.execute()[0])
        return Verdict(count <= self.limit, self.limit, max(0, self.limit - count), reset)


def make_rate_limiter(limit: int, redis_url: str | None) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(limit, redis_url)
    return MemoryRateLimiter(limit)
