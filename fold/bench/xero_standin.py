"""A local stand-in for Xero's identity service and Accounting API, for tests and
`fold bench xero`.

It behaves as Xero's documentation and published OpenAPI description say for the calls
Fold makes. Tokens come from POST /connect/token by the client credentials grant (basic
auth with the custom connection's client id and secret) and expire (`expires_in`); every
API call needs a live bearer token and the `xero-tenant-id` header. Limits per tenant: 5
calls in progress at once, `per_minute` calls in any `window` seconds (60 in 60 by
default), `per_day` a day — beyond them a 429 with Retry-After and X-Rate-Limit-Problem;
it can also be told to answer 429 to the next N calls. GET /Contacts reads `where`
(`Field=="value"` joined by OR / AND, `!= null`, `.Contains()`, `.StartsWith()`, string
comparisons without case as Xero's database makes them), `searchTerm` and pages of 100
(`page`, `pageSize`). PUT and POST /Contacts and /Invoices create, with `summarizeErrors`;
validation errors (a name already used, an unknown account code or tax type, a missing
contact, a line without a description, a negative total) come back as a 400 with the
`ValidationErrors` of each element in `Elements`. Invoices get a number and their totals
(SubTotal, TotalTax, Total) computed here from the lines, the tax rates and
LineAmountTypes. An Idempotency-Key (at most 128 characters) makes a repeated request
answer exactly what the first did. Everything lives in memory."""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fold.bench.standin import JsonHandler

API = "/api.xro/2.0"
MAX_CONCURRENT = 5
PAGE = 100
CENT = Decimal("0.01")
# A UK organisation's sales accounts and output tax rates (Xero's demo company).
ACCOUNTS = {
    "200": {"Name": "Sales", "Type": "REVENUE", "TaxType": "OUTPUT2"},
    "260": {"Name": "Other Revenue", "Type": "REVENUE", "TaxType": "OUTPUT2"},
    "270": {"Name": "Interest Income", "Type": "REVENUE", "TaxType": "NONE"},
    "280": {"Name": "Membership Subscriptions", "Type": "REVENUE", "TaxType": "EXEMPTOUTPUT"},
}
TAX_RATES = {
    "OUTPUT2": Decimal("20"),
    "RROUTPUT": Decimal("5"),
    "ZERORATEDOUTPUT": Decimal("0"),
    "EXEMPTOUTPUT": Decimal("0"),
    "NONE": Decimal("0"),
}
CREATABLE = ("DRAFT", "SUBMITTED", "AUTHORISED")
WHERE_TERM = re.compile(
    r"""^\s*(?P<field>[A-Za-z]+)
        (?:
          (?P<lower>\.ToLower\(\))?\s*(?P<op>==|!=|=)\s*(?:"(?P<value>[^"]*)"|(?P<null>null))
        | \.(?P<method>Contains|StartsWith)\("(?P<arg>[^"]*)"\)
        )\s*$""",
    re.VERBOSE,
)


def xero_date(day: date) -> str:
    """Xero's JSON date: milliseconds since 1970 in a /Date()/ wrapper."""
    ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return f"/Date({ms}+0000)/"


def _now_stamp() -> str:
    return f"/Date({int(time.time() * 1000)}+0000)/"


@dataclass
class State:
    client_id: str
    client_secret: str
    tenant_id: str
    token_seconds: int = 1800
    per_minute: int = 60
    window: float = 60.0
    per_day: int = 5000
    refuse_next: int = 0  # answer 429 to this many coming API calls
    retry_after: int = 1  # what a told-to 429 says to wait
    delay: float = 0.0  # seconds each API call takes
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # ContactID -> contact
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)  # InvoiceID -> invoice
    replies: dict[tuple[str, str, str], tuple[int, Any]] = field(default_factory=dict)
    calls: deque[float] = field(default_factory=deque)
    day_calls: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    refused: int = 0  # 429s answered
    replayed: int = 0  # answers repeated for an Idempotency-Key
    token_grants: int = 0
    requests: int = 0
    next_number: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoices_for(self, contact_id: str) -> list[dict[str, Any]]:
        return [i for i in self.invoices.values() if i["Contact"]["ContactID"] == contact_id]

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        for contact in self.contacts.values():
            if str(contact.get("EmailAddress") or "").lower() == email.lower():
                return contact
        return None

    def add_contact(self, name: str, email: str | None = None) -> dict[str, Any]:
        contact = _contact({"Name": name, **({"EmailAddress": email} if email else {})})
        self.contacts[contact["ContactID"]] = contact
        return contact


def _contact(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "ContactID": str(uuid.uuid4()),
        "ContactStatus": "ACTIVE",
        "Name": str(body.get("Name") or "").strip(),
        "FirstName": body.get("FirstName") or "",
        "LastName": body.get("LastName") or "",
        "EmailAddress": body.get("EmailAddress") or "",
        "Addresses": [],
        "Phones": [],
        "UpdatedDateUTC": _now_stamp(),
        "ContactGroups": [],
        "IsSupplier": False,
        "IsCustomer": False,
        "HasValidationErrors": False,
    }


def _envelope(**items: Any) -> dict[str, Any]:
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Fold stand-in",
        "DateTimeUTC": _now_stamp(),
        **items,
    }


def _validation(elements: list[dict[str, Any]]) -> tuple[int, Any]:
    return 400, {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def _problem(status: int, title: str, detail: str) -> tuple[int, Any]:
    return status, {"Type": None, "Title": title, "Status": status, "Detail": detail}


# --- where --------------------------------------------------------------------------------


def parse_where(text: str) -> list[list[Any]] | None:
    """`where` as OR-groups of AND-terms; None when it cannot be read."""
    groups = []
    for group in re.split(r"\s+OR\s+|\s*\|\|\s*", text.strip()):
        terms = []
        for term in re.split(r"\s+AND\s+|\s*&&\s*", group):
            found = WHERE_TERM.match(term)
            if not found:
                return None
            terms.append(found.groupdict())
        groups.append(terms)
    return groups


def _holds(term: dict[str, Any], item: dict[str, Any]) -> bool:
    value = item.get(term["field"])
    text = "" if value is None else str(value).lower()
    if term["method"] == "Contains":
        return term["arg"].lower() in text
    if term["method"] == "StartsWith":
        return text.startswith(term["arg"].lower())
    if term["null"]:
        empty = value in (None, "")
        return empty if term["op"] in ("==", "=") else not empty
    same = text == term["value"].lower()
    return same if term["op"] in ("==", "=") else not same


def matches(groups: list[list[Any]], item: dict[str, Any]) -> bool:
    return any(all(_holds(t, item) for t in group) for group in groups)


# --- the API --------------------------------------------------------------------------------


def _pages(items: list[dict[str, Any]], query: dict[str, str], name: str) -> tuple[int, Any]:
    if "page" not in query:
        return 200, _envelope(**{name: items})
    try:
        page = int(query["page"])
        size = int(query.get("pageSize") or PAGE)
    except ValueError:
        return _validation([{"ValidationErrors": [{"Message": "page must be a number"}]}])
    page, size = max(page, 1), min(max(size, 1), 1000)
    chosen = items[(page - 1) * size : page * size]
    pagination = {
        "page": page,
        "pageSize": size,
        "pageCount": max(math.ceil(len(items) / size), 1),
        "itemCount": len(items),
    }
    return 200, _envelope(pagination=pagination, **{name: chosen})


def _get_contacts(state: State, query: dict[str, str]) -> tuple[int, Any]:
    found = [c for c in state.contacts.values() if c["ContactStatus"] == "ACTIVE"]
    if query.get("where"):
        groups = parse_where(query["where"])
        if groups is None:
            return 400, {
                "ErrorNumber": 16,
                "Type": "QueryParseException",
                "Message": f"The where clause could not be read: {query['where'][:200]}",
            }
        found = [c for c in found if matches(groups, c)]
    if query.get("searchTerm"):
        term = query["searchTerm"].lower()
        fields = ("Name", "FirstName", "LastName", "EmailAddress")
        found = [c for c in found if any(term in str(c.get(f) or "").lower() for f in fields)]
    found.sort(key=lambda c: c["Name"].lower())
    return _pages(found, query, "Contacts")


def _check_contact(state: State, body: dict[str, Any], names: set[str]) -> list[str]:
    errors = []
    name = str(body.get("Name") or "").strip()
    if not name:
        errors.append("The contact name must be specified.")
    elif len(name) > 255:
        errors.append("The contact name must be 255 characters or fewer.")
    elif name.lower() in names:
        errors.append(
            f"The contact name {name} is already assigned to another contact. The contact "
            "name must be unique across all active contacts."
        )
    email = body.get("EmailAddress")
    if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", str(email)):
        errors.append("Email address must be valid.")
    return errors


def _put_contacts(state: State, query: dict[str, str], body: Any) -> tuple[int, Any]:
    items = body.get("Contacts") if isinstance(body, dict) else None
    if not isinstance(items, list):
        items = [body] if isinstance(body, dict) and body.get("Name") else None
    if not items:
        return _validation([{"ValidationErrors": [{"Message": "No contacts were given."}]}])
    names = {c["Name"].lower() for c in state.contacts.values() if c["ContactStatus"] == "ACTIVE"}
    checked = []
    for item in items:
        errors = _check_contact(state, item, names) if isinstance(item, dict) else ["Not an object"]
        checked.append((item, errors))
        if not errors:
            names.add(str(item["Name"]).strip().lower())
    summarize = query.get("summarizeErrors", "true").lower() != "false"
    if summarize and any(errors for _, errors in checked):
        return _validation(
            [
                {
                    **item,
                    "HasValidationErrors": bool(e),
                    "ValidationErrors": [{"Message": m} for m in e],
                }
                for item, e in checked
            ]
        )
    out = []
    for item, errors in checked:
        if errors:
            out.append(
                {
                    **item,
                    "HasValidationErrors": True,
                    "StatusAttributeString": "ERROR",
                    "ValidationErrors": [{"Message": m} for m in errors],
                }
            )
            continue
        contact = _contact(item)
        state.contacts[contact["ContactID"]] = contact
        out.append(contact)
    return 200, _envelope(Contacts=out)


def _amount(raw: Any, default: Decimal) -> Decimal | None:
    if raw is None:
        return default
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _build_invoice(
    state: State, body: dict[str, Any], numbers: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """The invoice Xero would store for `body`, and its validation errors."""
    errors: list[str] = []
    kind = body.get("Type")
    if kind not in ("ACCREC", "ACCPAY"):
        errors.append("Invoice Type must be ACCREC or ACCPAY.")
    status = body.get("Status") or "DRAFT"
    if status not in CREATABLE:
        errors.append("Invoice not of valid status for creation")
    contact_ref = body.get("Contact") or {}
    contact = None
    if not isinstance(contact_ref, dict) or not (
        contact_ref.get("ContactID") or contact_ref.get("Name")
    ):
        errors.append("A Contact must be specified for this type of transaction")
    else:
        contact = state.contacts.get(str(contact_ref.get("ContactID") or ""))
        if contact is None and contact_ref.get("Name"):
            contact = next(
                (
                    c
                    for c in state.contacts.values()
                    if c["Name"].lower() == str(contact_ref["Name"]).lower()
                ),
                None,
            )
        if contact is None:
            errors.append("The contact with the specified ContactID could not be found.")
    amounts = body.get("LineAmountTypes") or "Exclusive"
    if amounts not in ("Exclusive", "Inclusive", "NoTax"):
        errors.append("LineAmountTypes must be Exclusive, Inclusive or NoTax.")
    try:
        day = date.fromisoformat(str(body.get("Date") or date.today().isoformat())[:10])
    except ValueError:
        errors.append("Date is not a valid date.")
        day = date.today()
    due = None
    if body.get("DueDate"):
        try:
            due = date.fromisoformat(str(body["DueDate"])[:10])
        except ValueError:
            errors.append("DueDate is not a valid date.")
    elif status != "DRAFT":
        errors.append("Due Date is required for invoices that are not drafts.")
    lines_in = body.get("LineItems") or []
    if not isinstance(lines_in, list):
        lines_in = []
        errors.append("LineItems must be a list.")
    if not lines_in and status != "DRAFT":
        errors.append("Invoices must have at least one line item.")
    lines: list[dict[str, Any]] = []
    sub, tax_total = Decimal(0), Decimal(0)
    for raw in lines_in:
        line = raw if isinstance(raw, dict) else {}
        description = str(line.get("Description") or "").strip()
        if not description:
            errors.append("The description field is mandatory for each line item.")
        quantity = _amount(line.get("Quantity"), Decimal(1))
        unit = _amount(line.get("UnitAmount"), Decimal(0))
        if quantity is None or unit is None:
            errors.append("Quantity and UnitAmount must be numbers.")
            quantity, unit = Decimal(0), Decimal(0)
        code = line.get("AccountCode")
        account = ACCOUNTS.get(str(code)) if code is not None else None
        if code is not None and account is None:
            errors.append(f"Account code '{code}' is not a valid code for this document.")
        elif code is None and status != "DRAFT":
            errors.append("An account code must be specified for each line item.")
        tax_type = line.get("TaxType") or (account or {}).get("TaxType") or "NONE"
        if amounts == "NoTax":
            tax_type = "NONE"
        rate = TAX_RATES.get(str(tax_type))
        if rate is None:
            errors.append(
                f"The TaxType code '{tax_type}' does not exist or cannot be used for this "
                "type of transaction."
            )
            rate = Decimal(0)
        amount = (quantity * unit).quantize(CENT, ROUND_HALF_UP)
        if amounts == "Inclusive":
            tax = (amount - amount / (1 + rate / 100)).quantize(CENT, ROUND_HALF_UP)
            sub += amount - tax
        else:
            tax = (amount * rate / 100).quantize(CENT, ROUND_HALF_UP)
            sub += amount
        tax_total += tax
        lines.append(
            {
                "LineItemID": str(uuid.uuid4()),
                "Description": description,
                "Quantity": float(quantity),
                "UnitAmount": float(unit),
                "AccountCode": code,
                "TaxType": tax_type,
                "TaxAmount": float(tax),
                "LineAmount": float(amount),
                "Tracking": [],
                "ValidationErrors": [],
            }
        )
    total = sub + tax_total
    if total < 0:
        errors.append("The document total cannot be negative.")
    number = body.get("InvoiceNumber")
    if number and str(number).lower() in numbers:
        errors.append("Invoice # must be unique.")
    invoice = {
        "Type": kind,
        "InvoiceID": str(uuid.uuid4()),
        "InvoiceNumber": number,
        "Reference": body.get("Reference") or "",
        "Contact": contact or contact_ref,
        "DateString": f"{day.isoformat()}T00:00:00",
        "Date": xero_date(day),
        "DueDateString": f"{due.isoformat()}T00:00:00" if due else None,
        "DueDate": xero_date(due) if due else None,
        "Status": status,
        "LineAmountTypes": amounts,
        "LineItems": lines,
        "SubTotal": float(sub),
        "TotalTax": float(tax_total),
        "Total": float(total),
        "AmountDue": float(total),
        "AmountPaid": 0.0,
        "AmountCredited": 0.0,
        "CurrencyCode": body.get("CurrencyCode") or "GBP",
        "CurrencyRate": 1.0,
        "SentToContact": False,
        "HasErrors": bool(errors),
        "UpdatedDateUTC": _now_stamp(),
        "StatusAttributeString": "ERROR" if errors else "OK",
    }
    return invoice, errors


def _put_invoices(state: State, query: dict[str, str], body: Any) -> tuple[int, Any]:
    items = body.get("Invoices") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return _validation([{"ValidationErrors": [{"Message": "No invoices were given."}]}])
    numbers = {str(i["InvoiceNumber"]).lower() for i in state.invoices.values()}
    built = []
    for item in items:
        invoice, errors = _build_invoice(state, item if isinstance(item, dict) else {}, numbers)
        built.append((invoice, errors))
        if invoice["InvoiceNumber"] and not errors:
            numbers.add(str(invoice["InvoiceNumber"]).lower())
    summarize = query.get("summarizeErrors", "true").lower() != "false"
    if summarize and any(errors for _, errors in built):
        return _validation(
            [
                {**invoice, "ValidationErrors": [{"Message": m} for m in errors]}
                for invoice, errors in built
            ]
        )
    out = []
    for invoice, errors in built:
        if errors:
            out.append({**invoice, "ValidationErrors": [{"Message": m} for m in errors]})
            continue
        if not invoice["InvoiceNumber"]:
            while f"inv-{state.next_number:04d}" in numbers:
                state.next_number += 1
            invoice["InvoiceNumber"] = f"INV-{state.next_number:04d}"
            numbers.add(invoice["InvoiceNumber"].lower())
            state.next_number += 1
        state.invoices[invoice["InvoiceID"]] = invoice
        out.append(invoice)
    return 200, _envelope(Invoices=out)


def route(
    state: State, method: str, path: str, query: dict[str, str], body: Any
) -> tuple[int, Any]:
    rest = path[len(API) :].strip("/").split("/") if path.startswith(API) else []
    if rest == ["Contacts"]:
        if method == "GET":
            return _get_contacts(state, query)
        if method in ("PUT", "POST"):
            return _put_contacts(state, query, body)
    if rest[:1] == ["Contacts"] and len(rest) == 2 and method == "GET":
        contact = state.contacts.get(rest[1])
        if contact is None:
            return _problem(404, "Not Found", "The resource you're looking for cannot be found")
        return 200, _envelope(Contacts=[contact])
    if rest == ["Invoices"]:
        if method == "GET":
            items = sorted(state.invoices.values(), key=lambda i: str(i["InvoiceNumber"]))
            return _pages(items, query, "Invoices")
        if method in ("PUT", "POST"):
            return _put_invoices(state, query, body)
    if rest[:1] == ["Invoices"] and len(rest) == 2 and method == "GET":
        invoice = state.invoices.get(rest[1])
        if invoice is None:
            return _problem(404, "Not Found", "The resource you're looking for cannot be found")
        return 200, _envelope(Invoices=[invoice])
    return _problem(404, "Not Found", "The resource you're looking for cannot be found")


# --- the server -----------------------------------------------------------------------------


class Handler(JsonHandler):
    content_type = "application/json; charset=utf-8"
    state: State

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self, raw: bytes) -> None:
        state = self.state
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = self.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                client_id = secret = None
        if form.get("grant_type") != "client_credentials":
            self._answer(400, {"error": "unsupported_grant_type"})
            return
        if client_id != state.client_id or secret != state.client_secret:
            self._answer(400, {"error": "invalid_client"})
            return
        token = secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = time.monotonic() + state.token_seconds
            state.token_grants += 1
        self._answer(
            200,
            {
                "access_token": token,
                "expires_in": state.token_seconds,
                "token_type": "Bearer",
                "scope": form.get("scope") or "accounting.transactions accounting.contacts",
            },
        )

    def _limited(self) -> tuple[str, int] | None:
        """Which limit this call passes (and how long to wait), counting it when it fits."""
        state = self.state
        now = time.monotonic()
        if state.refuse_next > 0:
            state.refuse_next -= 1
            return "minute", state.retry_after
        if state.in_flight > MAX_CONCURRENT:
            return "concurrent", 1
        while state.calls and now - state.calls[0] >= state.window:
            state.calls.popleft()
        if state.day_calls >= state.per_day:
            return "day", 86_400
        if len(state.calls) >= state.per_minute:
            return "minute", max(math.ceil(state.window - (now - state.calls[0])), 1)
        state.calls.append(now)
        state.day_calls += 1
        return None

    def _handle(self, method: str) -> None:
        state = self.state
        raw = self._body()
        parts = urlsplit(self.path)
        if method == "POST" and parts.path == "/connect/token":
            self._token(raw)
            return
        with state.lock:
            state.requests += 1
            state.in_flight += 1
            state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            self._api(method, parts.path, parts.query, raw)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _api(self, method: str, path: str, raw_query: str, raw: bytes) -> None:
        state = self.state
        if state.delay:
            time.sleep(state.delay)
        header = self.headers.get("Authorization") or ""
        token = header[7:] if header.startswith("Bearer ") else ""
        with state.lock:
            expires = state.tokens.get(token)
        if expires is None:
            self._answer(*_problem(401, "Unauthorized", "AuthenticationUnsuccessful"))
            return
        if expires <= time.monotonic():
            self._answer(
                *_problem(401, "Unauthorized", "TokenExpired: token expired"),
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
            return
        if (self.headers.get("xero-tenant-id") or "") != state.tenant_id:
            self._answer(*_problem(403, "Forbidden", "AuthorizationUnsuccessful"))
            return
        with state.lock:
            limited = self._limited()
            if limited is not None:
                state.refused += 1
        if limited is not None:
            problem, wait = limited
            self._answer(
                *_problem(429, "Too Many Requests", f"The {problem} rate limit was exceeded"),
                {"Retry-After": str(wait), "X-Rate-Limit-Problem": problem},
            )
            return
        key = self.headers.get("Idempotency-Key")
        if key is not None and len(key) > 128:
            self._answer(
                *_validation(
                    [
                        {
                            "ValidationErrors": [
                                {"Message": "Idempotency-Key must be 128 characters or fewer."}
                            ]
                        }
                    ]
                )
            )
            return
        query = {k: v[-1] for k, v in parse_qs(raw_query).items()}
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._answer(
                400,
                {
                    "ErrorNumber": 14,
                    "Type": "PostDataInvalidException",
                    "Message": "The body is not JSON.",
                },
            )
            return
        with state.lock:
            if key is not None and (key, method, path) in state.replies:
                state.replayed += 1
                status, answer = state.replies[(key, method, path)]
            else:
                status, answer = route(state, method, path, query, body)
                if key is not None and method in ("PUT", "POST") and status in (200, 400):
                    state.replies[(key, method, path)] = (status, answer)
            remaining = state.per_minute - len(state.calls)
        self._answer(
            status,
            answer,
            {
                "X-MinLimit-Remaining": str(max(remaining, 0)),
                "X-DayLimit-Remaining": str(state.per_day - state.day_calls),
            },
        )

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


class StandIn:
    """The server on 127.0.0.1 in a thread; `identity_url` and `api_url` go into Fold's
    Xero settings."""

    def __init__(
        self, client_id: str, client_secret: str, tenant_id: str, port: int = 0, **limits: Any
    ) -> None:
        self.state = State(
            client_id=client_id, client_secret=client_secret, tenant_id=tenant_id, **limits
        )
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def identity_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{API}"

    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
