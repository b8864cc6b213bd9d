"""A local stand-in for Mailchimp's Marketing API v3, for tests and `fold bench mailchimp`.

It behaves as Mailchimp's documentation says for the calls Fold makes: basic auth with
any user name and the API key; at most 10 requests at once (an eleventh answers 429);
batch upserts of at most 500 members, with refused addresses in the answer's `errors`;
members named by the MD5 of the lower-cased address; static segments (tags) found by
listing and made by POST; segment members read page by page (`count` at most 1000);
members added to and removed from a segment, at most 500 each a call. It can also be told
to answer 429 to the next N requests. Everything lives in memory."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fold.bench.standin import JsonHandler

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_CONNECTIONS = 10
TOO_MANY = "You have exceeded the limit of 10 simultaneous connections."
NOT_MEMBER = "Email address is not a list member"


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


@dataclass
class Audience:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash -> member
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id -> name, members


@dataclass
class State:
    key: str
    audiences: dict[str, Audience] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    most_in_flight: int = 0
    refuse_next: int = 0  # answer 429 to this many coming requests
    retry_after: str = "1"
    refused: int = 0  # 429s answered, both kinds
    changes: int = 0  # members made or changed, segment memberships added or removed
    requests: int = 0
    delay: float = 0.0  # seconds each request takes
    seen: set[str] = field(default_factory=set)  # every address any call carried
    methods: set[str] = field(default_factory=set)
    next_segment: int = 1000

    def audience(self, audience_id: str) -> Audience:
        return self.audiences.setdefault(audience_id, Audience())

    def member(self, audience_id: str, email: str) -> dict[str, Any] | None:
        return self.audience(audience_id).members.get(subscriber_hash(email))

    def segment_emails(self, audience_id: str, name: str) -> set[str]:
        for segment in self.audience(audience_id).segments.values():
            if segment["name"] == name:
                members = self.audience(audience_id).members
                return {members[h]["email_address"].lower() for h in segment["members"]}
        return set()

    def add_member(self, audience_id: str, email: str, status: str = "subscribed") -> None:
        self.audience(audience_id).members[subscriber_hash(email)] = {
            "id": subscriber_hash(email),
            "email_address": email,
            "status": status,
            "merge_fields": {},
        }

    def add_segment(self, audience_id: str, name: str, emails: list[str]) -> int:
        self.next_segment += 1
        self.audience(audience_id).segments[self.next_segment] = {
            "name": name,
            "members": [subscriber_hash(e) for e in emails],
        }
        return self.next_segment


def _problem(status: int, title: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"type": "about:blank", "title": title, "status": status, "detail": detail}


def _fake(email: str) -> bool:
    return not EMAIL_RE.match(email) or email.lower().endswith(".invalid")


class Handler(JsonHandler):
    state: State

    def _handle(self, method: str) -> None:
        state = self.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with state.lock:
            state.requests += 1
            state.methods.add(method)
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
            crowded = state.in_flight > MAX_CONNECTIONS
            told = state.refuse_next > 0
            if told:
                state.refuse_next -= 1
            if crowded or told:
                state.refused += 1
        try:
            if state.delay:
                time.sleep(state.delay)
            if crowded or told:
                status, body = _problem(
                    429,
                    "Too Many Requests",
                    "You have exceeded the limit of 10 simultaneous connections.",
                )
                self._answer(status, body, {"Retry-After": state.retry_after})
                return
            if not self._authorised():
                self._answer(*_problem(401, "API Key Invalid", "Your API key may be invalid."))
                return
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                self._answer(*_problem(400, "Invalid Resource", "The body is not JSON."))
                return
            with state.lock:
                status, body = route(state, method, parts.path, query, payload)
            self._answer(status, body)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization") or ""
        if not header.startswith("Basic "):
            return False
        try:
            _, _, key = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return key == self.state.key

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def _page(query: dict[str, str]) -> tuple[int, int] | None:
    try:
        count, offset = int(query.get("count", 10)), int(query.get("offset", 0))
    except ValueError:
        return None
    if not 1 <= count <= 1000 or offset < 0:
        return None
    return count, offset


def route(
    state: State, method: str, path: str, query: dict[str, str], body: Any
) -> tuple[int, Any]:
    bits = [b for b in path.split("/") if b]
    if bits[:1] != ["3.0"] or len(bits) < 3 or bits[1] != "lists":
        return _problem(404, "Resource Not Found", "The requested resource could not be found.")
    audience = state.audience(bits[2])
    rest = bits[3:]
    if method == "POST" and not rest:
        return _batch(state, audience, body)
    if method == "GET" and rest[:1] == ["members"] and len(rest) == 2:
        member = audience.members.get(rest[1])
        if member is None:
            return _problem(404, "Resource Not Found", "The requested resource could not be found.")
        return 200, member
    if rest[:1] == ["segments"] and len(rest) == 1:
        if method == "GET":
            page = _page(query)
            if page is None:
                return _problem(400, "Invalid Resource", "count is at most 1000.")
            wanted = query.get("type")
            found = [
                {"id": sid, "name": s["name"], "member_count": len(s["members"]), "type": "static"}
                for sid, s in audience.segments.items()
                if wanted in (None, "static")
            ]
            return 200, {
                "segments": found[page[1] : page[1] + page[0]],
                "total_items": len(found),
            }
        if method == "POST":
            name = str(body.get("name") or "")
            if not name or any(s["name"] == name for s in audience.segments.values()):
                return _problem(400, "Invalid Resource", "Sorry, that tag already exists.")
            state.next_segment += 1
            members = [subscriber_hash(e) for e in body.get("static_segment") or []]
            audience.segments[state.next_segment] = {"name": name, "members": members}
            return 200, {"id": state.next_segment, "name": name, "type": "static"}
    if len(rest) >= 2 and rest[0] == "segments":
        try:
            segment = audience.segments.get(int(rest[1]))
        except ValueError:
            segment = None
        if segment is None:
            return _problem(404, "Resource Not Found", "The requested resource could not be found.")
        if method == "GET" and rest[2:] == ["members"]:
            page = _page(query)
            if page is None:
                return _problem(400, "Invalid Resource", "count is at most 1000.")
            chosen = segment["members"][page[1] : page[1] + page[0]]
            return 200, {
                "members": [
                    {"email_address": audience.members[h]["email_address"]} for h in chosen
                ],
                "total_items": len(segment["members"]),
            }
        if method == "POST" and len(rest) == 2:
            return _segment_change(state, audience, segment, body)
    return _problem(405, "Method Not Allowed", f"{method} {path} is not supported here.")


def _batch(state: State, audience: Audience, body: Any) -> tuple[int, Any]:
    members = body.get("members") or []
    if len(members) > 500:
        return _problem(400, "Invalid Resource", "You can add at most 500 members at a time.")
    update = bool(body.get("update_existing"))
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for member in members:
        email = str(member.get("email_address") or "")
        state.seen.add(email.lower())
        if _fake(email):
            errors.append({
                "email_address": email,
                "error": f"{email} looks fake or invalid, please enter a real email address.",
                "error_code": "ERROR_GENERIC",
            })  # fmt: skip
            continue
        key = subscriber_hash(email)
        current = audience.members.get(key)
        status = member.get("status") or "subscribed"
        merge = member.get("merge_fields") or {}
        if current is None:
            audience.members[key] = {
                "id": key, "email_address": email, "status": status, "merge_fields": merge
            }  # fmt: skip
            state.changes += 1
            created.append(audience.members[key])
            continue
        if not update:
            errors.append({
                "email_address": email, "error": f"{email} is already a list member.",
                "error_code": "ERROR_CONTACT_EXISTS",
            })  # fmt: skip
            continue
        if current["status"] in ("unsubscribed", "cleaned") and status == "subscribed":
            errors.append({
                "email_address": email,
                "error": f"{email} is in a compliance state due to unsubscribe, bounce, or "
                "compliance review and cannot be subscribed.",
                "error_code": "ERROR_CONTACT_EXISTS",
            })  # fmt: skip
            continue
        after = {**current, "status": status, "merge_fields": {**current["merge_fields"], **merge}}
        if after != current:
            state.changes += 1
            audience.members[key] = after
        updated.append(after)
    return 200, {
        "new_members": created,
        "updated_members": updated,
        "errors": errors,
        "total_created": len(created),
        "total_updated": len(updated),
        "error_count": len(errors),
    }


def _segment_change(
    state: State, audience: Audience, segment: dict[str, Any], body: Any
) -> tuple[int, Any]:
    add = body.get("members_to_add") or []
    remove = body.get("members_to_remove") or []
    if len(add) > 500 or len(remove) > 500:
        return _problem(400, "Invalid Resource", "At most 500 members to add or remove a call.")
    errors: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    current = segment["members"]
    inside = set(current)
    for email in add:
        state.seen.add(str(email).lower())
        key = subscriber_hash(str(email))
        if key not in audience.members:
            errors.append(
                {"email_addresses": [email], "error": "Email address is not a list member"}
            )
            continue
        if key not in inside:
            inside.add(key)
            current.append(key)
            state.changes += 1
            added.append(audience.members[key])
    gone = set()
    for email in remove:
        key = subscriber_hash(str(email))
        if key in inside:
            inside.discard(key)
            gone.add(key)
            state.changes += 1
            removed.append(audience.members[key])
    if gone:
        segment["members"] = [k for k in current if k not in gone]
    return 200, {
        "members_added": added,
        "members_removed": removed,
        "errors": errors,
        "total_added": len(added),
        "total_removed": len(removed),
        "error_count": len(errors),
    }


class StandIn:
    """The server on 127.0.0.1 in a thread; `base_url` is what Fold's settings take."""

    def __init__(self, key: str, port: int = 0) -> None:
        self.state = State(key=key)
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/3.0"

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
