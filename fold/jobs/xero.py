"""The three invoice actions (SPEC 3.2): for each record, its contact found in Xero (by
email, then by name) or created, and an ACCREC invoice raised from the template in the
status the action names; the invoice's id, number and link kept on the record's `invoice`
field (audited, with the job's description).

The template, the invoice date and the due date are fixed when the job starts (in its
params), so a resumed job sends what the interrupted one sent. Each invoice goes with the
Idempotency-Key `fold-<job>-<type>-<record>`: when a batch is done again after its worker
died, Xero answers the invoice it already made instead of making a second one, and a
record whose `invoice` already names this job is not sent at all. No transaction is open
while Xero is called: the batch commits (and renews the job's lease) before each chunk,
and the chunk's records are locked only to write their `invoice`."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fold.config import Settings
from fold.db.models import Record
from fold.errors import ValidationFailed
from fold.fields.schema import TypeSchema
from fold.ids import make_uri
from fold.jobs.work import Action, Outcome, Run
from fold.messages import compose
from fold.outbound import http
from fold.records import contacts
from fold.records.bulk import Rewrite
from fold.records.clock import stamp
from fold.settings import service as bucket_settings
from fold.timefmt import format_datetime, utcnow
from fold.xero import templates
from fold.xero.client import MAX_CONCURRENT, Client, XeroError, invoice_link

STATUSES = {
    "raise-draft-xero-invoice": "DRAFT",
    "raise-submitted-xero-invoice": "SUBMITTED",
    "raise-authorised-xero-invoice": "AUTHORISED",
}
FIELD = "invoice"
CHUNK = 10  # records between commits: the most a killed worker leaves to be asked again
MAX_BATCH = 50  # records a batch (a cancel is seen between batches)


class NotSetUp(Exception):
    """The bucket has no (readable, allowed) Xero settings."""


def load_settings(session: Session, settings: Settings, bucket: str) -> dict[str, Any]:
    try:
        config = bucket_settings.load(session, settings, bucket=bucket, section="xero")
    except bucket_settings.Unreadable as exc:
        raise NotSetUp(str(exc)) from None
    if not config:
        raise NotSetUp(
            "Xero is not set up for this bucket: an administrator sets its custom connection "
            "(PUT /settings/v1/{bucket}/xero or `fold xero set`)"
        )
    for name in ("identity_url", "api_url"):
        if config.get(name):
            # An address an administrator set is called like a webhook's: private and
            # loopback addresses only when the operator allows them.
            try:
                http.check_url(str(config[name]), allow_private=settings.allow_private_webhooks)
            except http.Refused as exc:
                raise NotSetUp(f"{name}: {exc}") from None
    return config


def client_for(config: dict[str, Any], settings: Settings) -> Client:
    return Client(
        client_id=str(config["client_id"]),
        client_secret=str(config["client_secret"]),
        tenant_id=str(config["tenant_id"]),
        identity_url=config.get("identity_url") or None,
        api_url=config.get("api_url") or None,
        calls_per_minute=settings.xero_calls_per_minute,
        backoff=settings.xero_backoff,
    )


# --- checking the request ---------------------------------------------------------------


def _check(status: str) -> Any:
    def check(
        session: Session, bucket: str, rt: str, schema: TypeSchema, p: dict[str, Any], s: Settings
    ) -> dict[str, Any]:
        if not contacts.has_contacts(schema):
            raise ValidationFailed(
                f"Xero invoices are raised for contacts; {rt} records have no contact.",
                param="action",
            )
        row = templates.find(session, bucket, p.get("value"))
        if row is None:
            raise ValidationFailed(
                "The value must be the uid of an invoice template of this bucket "
                f"(/xero/v1/{bucket}/invoice_templates); {p.get('value')!r} is not.",
                param="value",
            )
        try:
            config = load_settings(session, s, bucket)
        except NotSetUp as exc:
            raise ValidationFailed(f"{exc}.", param="xero") from None
        account = config.get("default_account_code")
        tax = config.get("default_tax_type")
        lines = []
        for line in row.line_items:
            sent: dict[str, Any] = {
                "Description": line["description"],
                "Quantity": line["quantity"],
                "UnitAmount": line["unit_amount"],
            }
            if line.get("account_code") or account:
                sent["AccountCode"] = line.get("account_code") or account
            if line.get("tax_type") or tax:
                sent["TaxType"] = line.get("tax_type") or tax
            lines.append(sent)
        today = utcnow().date()
        return {
            "value": row.uid,
            "status": status,
            "template_name": row.name,
            "invoice": {
                "Type": "ACCREC",
                "Status": status,
                "LineAmountTypes": templates.LINE_AMOUNT_TYPES[row.line_amount_types],
                "LineItems": lines,
                "Date": today.isoformat(),
                "DueDate": templates.due_date(row.due, today).isoformat(),
                **({"Reference": row.reference} if row.reference else {}),
                **({"CurrencyCode": row.currency_code} if row.currency_code else {}),
            },
        }

    return check


# --- one batch --------------------------------------------------------------------------


@dataclass
class Planned:
    index: int
    row: Record
    contact: Record


def contact_name(contact: Record) -> str:
    data = contact.data
    if contact.resource_type == "person":
        parts = [data.get("first_name"), data.get("last_name")]
        name = " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip())
        return name or str(contact.display_value or "").strip()
    return str(data.get("name") or contact.display_value or "").strip()


def _key(*parts: str) -> str:
    return "fold-" + hashlib.sha256(":".join(parts).encode()).hexdigest()[:40]


def _xero_contacts(
    run: Run, client: Client, chunk: list[Planned]
) -> dict[str, tuple[str | None, str]]:
    """Each contact's ContactID in Xero, found by email, then by name, else created:
    {contact URI: (ContactID, "") or (None, why not)}."""
    people: dict[str, Record] = {}
    for plan in chunk:
        people.setdefault(
            make_uri(run.bucket, plan.contact.resource_type, plan.contact.uid), plan.contact
        )
    out: dict[str, tuple[str | None, str]] = {}
    emails = {uri: compose.address(c, "email") for uri, c in people.items()}
    names = {uri: contact_name(c)[:255] for uri, c in people.items()}
    by_email = client.find_contacts("EmailAddress", [e for e in emails.values() if e])
    rest = []
    for uri in people:
        email = emails[uri]
        if email and email.lower() in by_email:
            out[uri] = (str(by_email[email.lower()]["ContactID"]), "")
        elif not names[uri]:
            out[uri] = (None, "the contact has no name to give Xero")
        else:
            rest.append(uri)
    by_name = client.find_contacts("Name", [names[u] for u in rest])
    create = []
    for uri in rest:
        hit = by_name.get(names[uri].lower())
        if hit is not None:
            out[uri] = (str(hit["ContactID"]), "")
        else:
            create.append(uri)
    # Xero keeps a contact's name unique: a second contact of that name without an email
    # address is the first one (one with another address is sent, and Xero refuses it).
    same_as: dict[str, str] = {}
    first_of: dict[str, str] = {}
    for uri in list(create):
        name = names[uri].lower()
        if name in first_of and not emails[uri]:
            same_as[uri] = first_of[name]
            create.remove(uri)
        else:
            first_of.setdefault(name, uri)
    if create:
        bodies = []
        for uri in create:
            contact = people[uri]
            body: dict[str, Any] = {"Name": names[uri]}
            if emails[uri]:
                body["EmailAddress"] = emails[uri]
            if contact.resource_type == "person":
                for ours, theirs in (("first_name", "FirstName"), ("last_name", "LastName")):
                    value = contact.data.get(ours)
                    if isinstance(value, str) and value.strip():
                        body[theirs] = value.strip()[:255]
            bodies.append(body)
        made = client.create_contacts(bodies, key=_key(run.job_uid, "contacts", *sorted(create)))
        for uri, (contact_id, why) in zip(create, made, strict=True):
            out[uri] = (contact_id, f"Xero: {why}" if why else "")
    for uri, first in same_as.items():
        out[uri] = out[first]
    return out


def _raise(
    run: Run, client: Client, plan: Planned, contact_id: str
) -> tuple[dict[str, Any] | None, str]:
    invoice = {**run.params["invoice"], "Contact": {"ContactID": contact_id}}
    key = _key(run.job_uid, plan.row.resource_type, plan.row.uid)
    try:
        return client.create_invoice(invoice, key=key)
    except XeroError as exc:
        return None, str(exc)


def _kept(run: Run, made: dict[str, Any], contact_id: str) -> dict[str, Any]:
    """What the record keeps of its invoice."""
    status = str(made.get("Status") or run.params["status"])
    invoice_id = str(made.get("InvoiceID"))
    return {
        "id": invoice_id,
        "number": made.get("InvoiceNumber"),
        "url": invoice_link(invoice_id, status),
        "status": status,
        "total": made.get("Total"),
        "currency": made.get("CurrencyCode"),
        "date": run.params["invoice"]["Date"],
        "due_date": run.params["invoice"]["DueDate"],
        "contact_id": contact_id,
        "template": run.params["value"],
        "job": make_uri(run.bucket, "sheep_event", run.job_uid),
        "raised": format_datetime(utcnow()),
    }


def _write(run: Run, done: list[tuple[Planned, dict[str, Any]]]) -> None:
    """Put each invoice on its record, read afresh and locked: a change made to the record
    while Xero was called is kept."""
    if not done:
        return
    stamp(run.session, run.bucket)
    by_type: dict[str, list[str]] = {}
    for plan, _ in done:
        by_type.setdefault(plan.row.resource_type, []).append(plan.row.uid)
    fresh: dict[tuple[str, str], Record] = {}
    for resource_type, uids in by_type.items():
        for row in run.session.scalars(
            select(Record)
            .where(
                Record.bucket == run.bucket,
                Record.resource_type == resource_type,
                Record.uid.in_(uids),
            )
            .with_for_update()
            .execution_options(populate_existing=True)
        ):
            fresh[(row.resource_type, row.uid)] = row
    for plan, kept in done:
        now = fresh.get((plan.row.resource_type, plan.row.uid))
        if now is not None:
            run.rewrites.append(Rewrite(now, {**now.data, FIELD: kept}, now.record_state))
    run.save()


def raise_invoices(run: Run, rows: list[Record | None]) -> list[Outcome]:
    out = [Outcome("skipped", "the record was deleted") for _ in rows]
    job_uri = make_uri(run.bucket, "sheep_event", run.job_uid)
    linked = contacts.linked(run.session, run.bucket, run.schemas, rows)
    plans: list[Planned] = []
    for index, row in enumerate(rows):
        if row is None or row.record_state != "active":
            continue
        earlier = row.data.get(FIELD)
        if isinstance(earlier, dict) and earlier.get("job") == job_uri:
            out[index] = Outcome("done", undo={"invoice": earlier.get("id")})
            continue
        contact = contacts.contact_of(run.schemas, row, linked)
        if isinstance(contact, str):
            out[index] = Outcome("failed", contact)
            continue
        plans.append(Planned(index, row, contact))
    if not plans:
        return out
    try:
        config = load_settings(run.session, run.settings, run.bucket)
    except NotSetUp as exc:
        for plan in plans:
            out[plan.index] = Outcome("failed", f"Xero: {exc}")
        return out
    with client_for(config, run.settings) as client, ThreadPoolExecutor(MAX_CONCURRENT) as pool:
        for start in range(0, len(plans), CHUNK):
            chunk = plans[start : start + CHUNK]
            run.checkpoint()  # commit: no transaction is held while Xero is called
            try:
                ids = _xero_contacts(run, client, chunk)
            except XeroError as exc:
                for plan in chunk:
                    out[plan.index] = Outcome("failed", f"Xero: {exc}")
                continue
            ready = []
            for plan in chunk:
                uri = make_uri(run.bucket, plan.contact.resource_type, plan.contact.uid)
                contact_id, why = ids[uri]
                if contact_id is None:
                    out[plan.index] = Outcome("failed", why)
                else:
                    ready.append((plan, contact_id))
            answers = pool.map(lambda pair: _raise(run, client, pair[0], pair[1]), ready)
            done = []
            for (plan, contact_id), (made, why) in zip(ready, answers, strict=True):
                if made is None:
                    reason = why if why.startswith("Xero") else f"Xero: {why}"
                    out[plan.index] = Outcome("failed", reason)
                    continue
                kept = _kept(run, made, contact_id)
                done.append((plan, kept))
                out[plan.index] = Outcome("done", undo={"invoice": kept["id"]})
            _write(run, done)
    return out


ACTIONS = tuple(
    Action(
        name,
        _check(status),
        raise_invoices,
        # The invoices are in Xero: undoing the `invoice` field would only hide them.
        undoable=False,
        # The records are locked only while their invoice is written (see above).
        writes_records=False,
        max_batch=MAX_BATCH,
    )
    for name, status in STATUSES.items()
)
