"""Mailchimp's Marketing API v3 over httpx: basic auth with the API key, at most 10
connections at once per audience (Mailchimp's own limit), 429 and 5xx waited out with
back-off (Retry-After when Mailchimp sends one)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

MAX_CONNECTIONS = 10  # Mailchimp refuses an eleventh simultaneous connection with 429
MAX_MEMBERS = 500  # members per batch call and per segment add/remove list
PAGE = 1000  # Mailchimp's largest `count`
RETRY = {429, 500, 502, 503, 504}
KEY_RE = re.compile(r"^[0-9a-f]{32}-([a-z]+[0-9]+)$", re.IGNORECASE)

_gates: dict[str, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


class MailchimpError(Exception):
    """Mailchimp refused a call that is not about one member; the message is Mailchimp's."""


def base_url_for(api_key: str) -> str:
    """The API's base URL from the key's data-centre suffix (`...-us6`)."""
    found = KEY_RE.match(api_key.strip())
    if not found:
        raise ValueError("is not a Mailchimp API key (32 hex digits, a dash, the data centre)")
    return f"https://{found.group(1).lower()}.api.mailchimp.com/3.0"


def subscriber_hash(email: str) -> str:
    """How Mailchimp names a member: the MD5 of the lower-cased address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def _gate(name: str) -> threading.BoundedSemaphore:
    with _gates_lock:
        if name not in _gates:
            _gates[name] = threading.BoundedSemaphore(MAX_CONNECTIONS)
        return _gates[name]


class Client:
    """One audience of one Mailchimp account."""

    def __init__(
        self,
        *,
        api_key: str,
        audience_id: str,
        base_url: str | None = None,
        timeout: float = 30.0,
        attempts: int = 8,
        backoff: float = 0.5,
    ) -> None:
        self.audience = audience_id
        self.base = (base_url or base_url_for(api_key)).rstrip("/")
        self.attempts, self.backoff = attempts, backoff
        self.gate = _gate(f"{self.base} {audience_id}")
        self.http = httpx.Client(
            base_url=self.base,
            auth=("fold", api_key),
            timeout=timeout,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON; waits out 429 and 5xx; MailchimpError on any other refusal."""
        last = ""
        for attempt in range(self.attempts):
            with self.gate:
                try:
                    response = self.http.request(method, path, **kwargs)
                except httpx.TransportError as exc:
                    response, last = None, f"{type(exc).__name__}: {exc}"
            if response is not None:
                if response.status_code < 300:
                    return response.json() if response.content else {}
                last = _problem(response)
                if response.status_code not in RETRY:
                    raise MailchimpError(last)
            if attempt + 1 < self.attempts:
                time.sleep(_wait(response, self.backoff * 2**attempt))
        raise MailchimpError(f"gave up after {self.attempts} tries: {last}")

    # --- what the sync uses --------------------------------------------------------------

    def find_or_create_segment(self, name: str) -> int:
        """The id of the audience's static segment called `name`, made if missing."""
        path = f"/lists/{self.audience}/segments"
        offset = 0
        while True:
            page = self.call(
                "GET", path, params={"type": "static", "count": PAGE, "offset": offset}
            )
            for segment in page.get("segments", []):
                if segment.get("name") == name:
                    return int(segment["id"])
            offset += PAGE
            if offset >= int(page.get("total_items", 0)):
                break
        made = self.call("POST", path, json={"name": name, "static_segment": []})
        return int(made["id"])

    def upsert(self, members: list[dict[str, Any]]) -> dict[str, str]:
        """Add or update up to 500 members; answers {lower-cased email: Mailchimp's reason}
        for those it refused."""
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"at most {MAX_MEMBERS} members a call")
        answer = self.call(
            "POST", f"/lists/{self.audience}", json={"members": members, "update_existing": True}
        )
        return {
            str(e.get("email_address", "")).lower(): str(e.get("error") or e.get("error_code"))
            for e in answer.get("errors", [])
        }

    def segment_members(self, segment_id: int) -> Iterator[str]:
        """Every member's lower-cased email in the segment, page by page."""
        path = f"/lists/{self.audience}/segments/{segment_id}/members"
        offset = 0
        while True:
            page = self.call(
                "GET",
                path,
                params={
                    "count": PAGE,
                    "offset": offset,
                    "fields": "members.email_address,total_items",
                },
            )
            members = page.get("members", [])
            for member in members:
                yield str(member["email_address"]).lower()
            offset += PAGE
            if not members or offset >= int(page.get("total_items", 0)):
                return

    def change_segment(
        self, segment_id: int, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """Add and remove up to 500 members each; (added, removed, Mailchimp's errors)."""
        answer = self.call(
            "POST",
            f"/lists/{self.audience}/segments/{segment_id}",
            json={"members_to_add": list(add), "members_to_remove": list(remove)},
        )
        return (
            int(answer.get("total_added", 0)),
            int(answer.get("total_removed", 0)),
            list(answer.get("errors", [])),
        )


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        title, detail = body.get("title"), body.get("detail")
        text = ": ".join(str(p) for p in (title, detail) if p)
        return f"HTTP {response.status_code} {text}".strip()[:500]
    return f"HTTP {response.status_code}"


def _wait(response: httpx.Response | None, default: float) -> float:
    if response is not None:
        raw = response.headers.get("Retry-After")
        if raw:
            try:
                return min(max(float(raw), 0.0), 120.0)
            except ValueError:
                pass
    return min(default, 30.0)
