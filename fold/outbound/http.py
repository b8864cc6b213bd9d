"""The one HTTP client for outbound calls: timeouts, retries with back-off, a concurrency
limit per process, and a refusal of private and loopback addresses unless allowed."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class Refused(Exception):
    """The URL may not be called; the message says why."""


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False
    timeout: float = 10.0
    attempts: int = 3
    backoff: float = 0.5
    concurrency: int = 8


_limits: dict[int, threading.BoundedSemaphore] = {}
_limits_lock = threading.Lock()


def _semaphore(size: int) -> threading.BoundedSemaphore:
    with _limits_lock:
        if size not in _limits:
            _limits[size] = threading.BoundedSemaphore(size)
        return _limits[size]


def check_url(url: str, *, allow_private: bool) -> str:
    """`url` if it is an http(s) URL whose host resolves only to public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("the URL must start with http:// or https:// and name a host")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise Refused(f"the host {parts.hostname} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise Refused(
                f"{parts.hostname} resolves to a private or loopback address ({address}); "
                "an operator can allow these with FOLD_ALLOW_PRIVATE_WEBHOOKS=1"
            )
    return url


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    attempts: int
    error: str = ""
    text: str = ""  # the start of the answer's body, for callers that read it


def post(
    url: str,
    *,
    policy: Policy,
    content: bytes | None = None,
    data: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    client: httpx.Client | None = None,
) -> Outcome:
    """POST with retries on network errors and retryable statuses; never raises for them."""
    try:
        check_url(url, allow_private=policy.allow_private)
    except Refused as exc:
        return Outcome(False, None, 0, str(exc))
    own = client is None
    http = client or httpx.Client(timeout=policy.timeout, follow_redirects=False)
    last = Outcome(False, None, 0, "not sent")
    try:
        for attempt in range(1, policy.attempts + 1):
            with _semaphore(policy.concurrency):
                try:
                    response = http.post(url, content=content, data=data, headers=headers)
                except httpx.HTTPError as exc:
                    last = Outcome(False, None, attempt, f"{type(exc).__name__}: {exc}"[:300])
                else:
                    text = response.text[:2000]
                    if response.status_code < 300:
                        return Outcome(True, response.status_code, attempt, text=text)
                    last = Outcome(
                        False, response.status_code, attempt, f"HTTP {response.status_code}", text
                    )
                    if response.status_code not in RETRY_STATUSES:
                        return last
            if attempt < policy.attempts:
                time.sleep(policy.backoff * 2 ** (attempt - 1))
    finally:
        if own:
            http.close()
    return last
