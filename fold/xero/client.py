"""Xero's Accounting API over httpx, for one organisation (tenant) of a custom connection.

Tokens come from the client credentials grant and are kept, per process, until a minute
before they expire (a 401 gets a new one once). Xero's limits per tenant are kept per
process — at most 5 calls at once and `calls_per_minute` in any 60 seconds — and a 429 is
waited out for as long as its Retry-After says (the daily limit, hours away, is not).

User text (names, email addresses) never becomes part of a `where` expression when it could
end the expression's string: such a contact is looked for with `searchTerm` instead."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

IDENTITY_URL = "https://identity.xero.com"
API_URL = "https://api.xero.com/api.xro/2.0"
APP_URL = "https://go.xero.com"  # where a person opens an invoice in Xero
MAX_CONCURRENT = 5  # Xero: calls in progress at one time, per tenant
PAGE = 100  # Xero's page of contacts
MAX_WAIT = 120.0  # the longest Retry-After waited; beyond it (the daily limit) calls fail
MAX_PACED = 60  # 429s one call waits out before it gives up
RETRY = {429, 500, 502, 503, 504}
LOOKUP = 20  # contacts looked for in one `where` expression
SCOPES = "accounting.transactions accounting.contacts"


class XeroError(Exception):
    """Xero could not be used for this call; the message says why (Xero's words)."""


class LimitReached(XeroError):
    """Xero's daily limit for the tenant is used up."""


@dataclass
class _Tenant:
    """One tenant's limits in this process, shared by every client and thread."""

    gate: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(MAX_CONCURRENT)
    )
    calls: deque[float] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_turn(self, per_minute: int) -> None:
        """Block until a call fits in the last 60 seconds' allowance, then count it."""
        while True:
            with self.lock:
                now = time.monotonic()
                while self.calls and now - self.calls[0] >= 60:
                    self.calls.popleft()
                if len(self.calls) < per_minute:
                    self.calls.append(now)
                    return
                wait = 60 - (now - self.calls[0])
            time.sleep(min(max(wait, 0.01), 5.0))


@dataclass
class _Token:
    value: str
    expires: float


# Per process, like the connections they describe: the worker's threads and batches share
# one token and one count of calls per tenant.
_tenants: dict[str, _Tenant] = {}
_tokens: dict[tuple[str, str, str], _Token] = {}
_state_lock = threading.Lock()


def _tenant(key: str) -> _Tenant:
    with _state_lock:
        return _tenants.setdefault(key, _Tenant())


def invoice_link(invoice_id: str, status: str) -> str:
    page = "Edit" if status == "DRAFT" else "View"
    return f"{APP_URL}/AccountsReceivable/{page}.aspx?InvoiceID={invoice_id}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


class Client:
    """One tenant of one custom connection."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        tenant_id: str,
        identity_url: str | None = None,
        api_url: str | None = None,
        calls_per_minute: int = 60,
        backoff: float = 1.0,
        attempts: int = 8,
        timeout: float = 30.0,
    ) -> None:
        self.client_id, self.secret, self.tenant_id = client_id, client_secret, tenant_id
        self.identity = (identity_url or IDENTITY_URL).rstrip("/")
        self.api = (api_url or API_URL).rstrip("/")
        self.per_minute = max(1, calls_per_minute)
        self.backoff, self.attempts = backoff, attempts
        self.limits = _tenant(f"{self.api} {tenant_id}")
        self.http = httpx.Client(
            timeout=timeout,
            limits=httpx.Limits(max_connections=MAX_CONCURRENT),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the token ----------------------------------------------------------------------

    def _token_key(self) -> tuple[str, str, str]:
        import hashlib

        return (self.identity, self.client_id, hashlib.sha256(self.secret.encode()).hexdigest())

    def token(self, *, renew: bool = False) -> str:
        key = self._token_key()
        with _state_lock:
            held = _tokens.get(key)
            if held is not None and not renew and held.expires > time.monotonic():
                return held.value
        for attempt in range(self.attempts):
            try:
                response = self.http.post(
                    f"{self.identity}/connect/token",
                    auth=(self.client_id, self.secret),
                    data={"grant_type": "client_credentials", "scope": SCOPES},
                )
            except httpx.TransportError as exc:
                problem = f"cannot reach Xero's identity service: {type(exc).__name__}"
                if attempt + 1 == self.attempts:
                    raise XeroError(problem) from None
                time.sleep(self.backoff * 2**attempt)
                continue
            if response.status_code in RETRY and attempt + 1 < self.attempts:
                time.sleep(_wait(response, self.backoff * 2**attempt))
                continue
            if response.status_code != 200:
                raise XeroError(f"Xero refused a token: {_oauth_problem(response)}")
            body = response.json()
            # A minute early, so a token never runs out between check and call.
            lifetime = max(float(body.get("expires_in") or 1800) - 60, 1.0)
            token = _Token(str(body["access_token"]), time.monotonic() + lifetime)
            with _state_lock:
                _tokens[key] = token
            return token.value
        raise XeroError("Xero's identity service did not answer")

    # --- calls --------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        key: str | None = None,
    ) -> Answer:
        """A call's answer: 2xx, or a 400 (Xero's validation errors) for the caller to read.
        Waits out 429 and 5xx; XeroError for anything else."""
        renewed = False
        last = ""
        attempt = paced = 0
        while attempt < self.attempts:
            headers = {
                "Authorization": f"Bearer {self.token()}",
                "xero-tenant-id": self.tenant_id,
                "Accept": "application/json",
            }
            if key:
                headers["Idempotency-Key"] = key
            self.limits.wait_turn(self.per_minute)
            with self.limits.gate:
                try:
                    response: httpx.Response | None = self.http.request(
                        method, f"{self.api}{path}", params=params, json=json, headers=headers
                    )
                except httpx.TransportError as exc:
                    response, last = None, f"{type(exc).__name__}: {exc}"
            attempt += 1
            if response is not None:
                if response.status_code < 300 or response.status_code == 400:
                    return Answer(response.status_code, _json(response))
                last = _problem(response)
                if response.status_code == 401 and not renewed:
                    self.token(renew=True)
                    renewed, attempt = True, attempt - 1
                    continue
                if response.status_code not in RETRY:
                    raise XeroError(last)
                if response.status_code == 429:
                    wait = _wait(response, self.backoff * 2 ** (attempt - 1))
                    if wait > MAX_WAIT:
                        raise LimitReached(
                            f"Xero's {response.headers.get('X-Rate-Limit-Problem') or 'daily'} "
                            f"limit is reached; Xero says to wait {wait:,.0f} seconds"
                        )
                    # A 429 is Xero pacing us, not a failure: it does not use up a try
                    # (up to a point: a tenant kept busy by others fails the call).
                    paced += 1
                    if paced > MAX_PACED:
                        raise XeroError(f"Xero kept answering 429 ({paced} times): {last}")
                    attempt -= 1
                    time.sleep(wait)
                    continue
            if attempt < self.attempts:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
        raise XeroError(f"gave up after {self.attempts} tries: {last}")

    # --- contacts -----------------------------------------------------------------------

    def _contacts(self, params: dict[str, Any]) -> Iterable[dict[str, Any]]:
        page = 1
        while True:
            answer = self.call("GET", "/Contacts", params={**params, "page": page})
            if answer.status != 200:
                raise XeroError(validation_message(answer.body))
            found = list(answer.body.get("Contacts") or [])
            yield from found
            pages = (answer.body.get("pagination") or {}).get("pageCount")
            if len(found) < PAGE or (pages is not None and page >= int(pages)):
                return
            page += 1

    def find_contacts(self, field_name: str, values: list[str]) -> dict[str, dict[str, Any]]:
        """Active contacts whose `field_name` (EmailAddress, Name) is one of `values`,
        compared without case: {lower-cased value: contact}."""
        wanted = {v.lower() for v in values if v}
        found: dict[str, dict[str, Any]] = {}
        safe = sorted(v for v in wanted if '"' not in v and "\\" not in v)
        for start in range(0, len(safe), LOOKUP):
            chunk = safe[start : start + LOOKUP]
            where = " OR ".join(f'{field_name}=="{v}"' for v in chunk)
            for contact in self._contacts({"where": where}):
                _keep(found, contact, field_name, wanted)
        for value in sorted(wanted - set(safe)):
            for contact in self._contacts({"searchTerm": value}):
                _keep(found, contact, field_name, wanted)
        return found

    def create_contacts(
        self, contacts: list[dict[str, Any]], *, key: str
    ) -> list[tuple[str | None, str]]:
        """Create contacts in one call; for each, (ContactID, "") or (None, Xero's message)."""
        answer = self.call(
            "PUT",
            "/Contacts",
            params={"summarizeErrors": "false"},
            json={"Contacts": contacts},
            key=key,
        )
        if answer.status != 200:
            message = validation_message(answer.body)
            return [(None, message) for _ in contacts]
        made = list(answer.body.get("Contacts") or [])
        out: list[tuple[str | None, str]] = []
        for index in range(len(contacts)):
            got = made[index] if index < len(made) else {}
            errors = _messages(got)
            if errors or not got.get("ContactID"):
                out.append((None, errors or "Xero did not return the contact"))
            else:
                out.append((str(got["ContactID"]), ""))
        return out

    # --- invoices -----------------------------------------------------------------------

    def create_invoice(
        self, invoice: dict[str, Any], *, key: str
    ) -> tuple[dict[str, Any] | None, str]:
        """(the invoice as Xero answers it, "") or (None, Xero's validation message)."""
        answer = self.call("PUT", "/Invoices", json={"Invoices": [invoice]}, key=key)
        if answer.status != 200:
            return None, validation_message(answer.body)
        made = list(answer.body.get("Invoices") or [])
        if not made:
            return None, "Xero did not return the invoice"
        errors = _messages(made[0])
        if errors:
            return None, errors
        return made[0], ""


def _keep(
    found: dict[str, dict[str, Any]], contact: dict[str, Any], field_name: str, wanted: set[str]
) -> None:
    value = str(contact.get(field_name) or "").lower()
    if value in wanted and contact.get("ContactStatus", "ACTIVE") == "ACTIVE":
        found.setdefault(value, contact)


def _messages(element: dict[str, Any]) -> str:
    return "; ".join(
        str(e.get("Message")) for e in element.get("ValidationErrors") or [] if e.get("Message")
    )


def validation_message(body: Any) -> str:
    """Xero's validation messages from a 400 answer, joined; its Message when it has none."""
    if not isinstance(body, dict):
        return "Xero refused the request"
    messages = [
        m for el in body.get("Elements") or [] if isinstance(el, dict) for m in [_messages(el)] if m
    ]
    if messages:
        return "; ".join(messages)[:1000]
    return str(body.get("Message") or body.get("Detail") or "Xero refused the request")[:1000]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else {}
    except ValueError:
        return {"Message": f"HTTP {response.status_code}: the answer is not JSON"}


def _problem(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, dict):
        text = body.get("Detail") or body.get("Message") or body.get("Title") or ""
        return f"HTTP {response.status_code} {text}".strip()[:500]
    return f"HTTP {response.status_code}"


def _oauth_problem(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:200]
    return f"HTTP {response.status_code}"


def _wait(response: httpx.Response, default: float) -> float:
    raw = response.headers.get("Retry-After")
    if raw:
        try:
            return max(float(raw), 0.0)
        except ValueError:
            pass
    return min(default, 30.0)
