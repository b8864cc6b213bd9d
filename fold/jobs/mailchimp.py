"""The sync job's work (SPEC 5), on the job machinery.

A contact segment's items are its contacts; a membership segment's are its memberships,
each standing for the contact it links to. Each batch upserts its contacts (those with an
email who have not opted out) with one batch call of at most 500 members and stamps
`mailchimp_last_sync` on those Mailchimp took; each done item keeps the lower-cased
address it sent. When every batch is done, the finishing step reads the Mailchimp
segment's members and sends the differences: the addresses of this job's done items that
are missing are added, the members that are no longer among them are removed (not in safe
mode). Both steps work from state, not from a log of what was sent, so a re-run or a
resumed job ends in the same place; nothing ever unsubscribes, archives or deletes a
Mailchimp member."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from fold.db.models import JobItem, Record
from fold.jobs.work import Outcome, Run
from fold.mailchimp.client import MAX_CONNECTIONS, MAX_MEMBERS, Client, MailchimpError
from fold.messages import compose
from fold.outbound import http
from fold.records import contacts
from fold.records.bulk import Rewrite
from fold.settings import service as bucket_settings
from fold.timefmt import format_datetime, utcnow

log = logging.getLogger("fold.mailchimp")
SEGMENT_ID = "mailchimp_segment_id"


class NotSetUp(Exception):
    """The bucket has no (readable) Mailchimp settings."""


def client_for(run: Run) -> Client:
    try:
        config = bucket_settings.load(
            run.session, run.settings, bucket=run.bucket, section="mailchimp"
        )
    except bucket_settings.Unreadable as exc:
        raise NotSetUp(str(exc)) from None
    if not config or not config.get("api_key") or not config.get("audience_id"):
        raise NotSetUp("Mailchimp is not set up for this bucket")
    if config.get("base_url"):
        # A base URL set by an administrator is an address like a webhook's: private and
        # loopback addresses only when the operator allows them.
        try:
            http.check_url(
                str(config["base_url"]), allow_private=run.settings.allow_private_webhooks
            )
        except http.Refused as exc:
            raise NotSetUp(f"base_url: {exc}") from None
    return Client(
        api_key=str(config["api_key"]),
        audience_id=str(config["audience_id"]),
        base_url=config.get("base_url") or None,
        backoff=run.settings.mailchimp_backoff,
    )


def segment_id(run: Run, client: Client) -> int:
    known = run.params.get(SEGMENT_ID) or run.notes.get(SEGMENT_ID)
    if known:
        return int(known)
    found = client.find_or_create_segment(str(run.params["segment_name"]))
    run.notes[SEGMENT_ID] = found
    return found


def merge_fields(row: Record) -> dict[str, str]:
    data = row.data
    first = data.get("first_name") or (data.get("name") if row.resource_type != "person" else "")
    fields = {"FNAME": str(first or ""), "LNAME": str(data.get("last_name") or "")}
    phone = data.get("mobile") or data.get("phone")
    if isinstance(phone, str | int) and str(phone).strip():
        fields["PHONE"] = str(phone).strip()
    return fields


def upsert(run: Run, rows: list[Record | None]) -> list[Outcome]:
    """One batch: its contacts upserted in Mailchimp, stamped when Mailchimp took them. A
    membership's item sends the contact it links to; a contact behind several of the
    batch's memberships is sent and stamped once."""
    out: list[Outcome | None] = []
    members: dict[str, dict[str, Any]] = {}
    wanted: list[tuple[int, Record, str]] = []
    linked = contacts.linked(run.session, run.bucket, run.schemas, rows, lock=True)
    for row in rows:
        if row is None or row.record_state != "active":
            out.append(Outcome("skipped", "the record was deleted"))
            continue
        contact = contacts.contact_of(run.schemas, row, linked)
        if isinstance(contact, str):
            out.append(Outcome("skipped", contact))
            continue
        if compose.opted_out(contact, "email"):
            out.append(Outcome("skipped", "the contact opted out of email"))
            continue
        email = compose.address(contact, "email")
        if email is None:
            out.append(Outcome("skipped", "the contact has no email address"))
            continue
        key = email.lower()
        members.setdefault(
            key,
            {"email_address": email, "status": "subscribed", "merge_fields": merge_fields(contact)},
        )
        wanted.append((len(out), contact, key))
        out.append(None)
    if members:
        try:
            with client_for(run) as client:
                segment_id(run, client)
                refused = client.upsert(list(members.values()))
        except (NotSetUp, MailchimpError) as exc:
            reason = f"Mailchimp: {exc}"
            for index, _, _ in wanted:
                out[index] = Outcome("failed", reason)
            return [o for o in out if o is not None]
        stamp = format_datetime(utcnow())
        stamped: set[tuple[str, str]] = set()
        for index, contact, key in wanted:
            if key in refused:
                out[index] = Outcome("failed", f"Mailchimp: {refused[key]}")
                continue
            if (contact.resource_type, contact.uid) not in stamped:
                stamped.add((contact.resource_type, contact.uid))
                data = {**contact.data, "mailchimp_last_sync": stamp}
                run.rewrites.append(Rewrite(contact, data, contact.record_state))
            out[index] = Outcome("done", undo={"email": key})
        run.save()
    return [o for o in out if o is not None]


def finish(run: Run) -> None:
    """Make the Mailchimp segment's membership match the job's synced contacts."""
    wanted: set[str] = set()
    for undo in run.session.scalars(
        select(JobItem.undo).where(
            JobItem.bucket == run.bucket, JobItem.job_uid == run.job_uid, JobItem.state == "done"
        )
    ):
        if undo and undo.get("email"):
            wanted.add(str(undo["email"]))
    try:
        with client_for(run) as client:
            seg = segment_id(run, client)
            present = set(client.segment_members(seg))
            add = sorted(wanted - present)
            remove = [] if run.params.get("safe_mode") else sorted(present - wanted)
            calls: list[tuple[list[str], list[str]]] = [
                (add[i : i + MAX_MEMBERS], []) for i in range(0, len(add), MAX_MEMBERS)
            ]
            calls += [([], remove[i : i + MAX_MEMBERS]) for i in range(0, len(remove), MAX_MEMBERS)]
            with ThreadPoolExecutor(max_workers=MAX_CONNECTIONS) as pool:
                answers = list(
                    pool.map(lambda c: client.change_segment(seg, add=c[0], remove=c[1]), calls)
                )
    except (NotSetUp, MailchimpError) as exc:
        run.notes["mailchimp_error"] = f"Mailchimp: {exc}"
        raise SyncFailed(f"Mailchimp: {exc}") from None
    errors = [e for _, _, errs in answers for e in errs]
    run.notes.update(
        mailchimp_added=sum(a for a, _, _ in answers),
        mailchimp_removed=sum(r for _, r, _ in answers),
        mailchimp_segment_errors=[
            {"email": e.get("email_address"), "reason": e.get("error")} for e in errors[:20]
        ],
    )
    log.info(
        "bucket %s: job %s: Mailchimp segment %s: %d added, %d removed",
        run.bucket,
        run.job_uid,
        seg,
        run.notes["mailchimp_added"],
        run.notes["mailchimp_removed"],
    )


def _chunks(emails: list[str]) -> list[list[str]]:
    return [emails[i : i + MAX_MEMBERS] for i in range(0, len(emails), MAX_MEMBERS)]


class SyncFailed(Exception):
    """The finishing step could not reach or use Mailchimp; the job fails with the reason."""
