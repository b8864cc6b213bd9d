"""Built-in field schemas: the fields a membership CRM keeps, per resource type."""

from __future__ import annotations

from fold.fields.schema import FieldDef, TypeSchema, f
from fold.ids import STORED_TYPES

ADDRESS = (
    f("address.line1", "string", "Address line 1"),
    f("address.line2", "string", "Address line 2"),
    f("address.locality", "string", "Town or city"),
    f("address.region", "string", "County or region"),
    f("address.postal_code", "string", "Postcode"),
    f("address.country", "string", "Country"),
    f("geo", "geo", "Location"),
)
OPT_OUTS = (
    f("email_opt_out", "boolean", "Opted out of email"),
    f("sms_opt_out", "boolean", "Opted out of SMS"),
    f("post_opt_out", "boolean", "Opted out of post"),
)
MEMBERSHIP_STATUSES = ("active", "pending", "lapsed", "cancelled", "expired")
PAYMENT_STATUSES = ("paid", "pending", "failed", "refunded")
BOOKING_STATUSES = ("booked", "attended", "cancelled", "no_show", "waitlisted")
# `sending` marks a message handed to the server; one still `sending` when its job resumes
# is `unknown` (it may have gone), never sent again. `outbox`: written to the local outbox.
MESSAGE_STATUSES = ("draft", "sending", "sent", "outbox", "failed", "skipped", "unknown")
JOB_STATUSES = ("created", "running", "completed", "failed", "cancelled")
# The Xero invoice a raise-*-xero-invoice job put on the record (fold.jobs.xero).
INVOICE = (
    f("invoice.number", "string", "Xero invoice number"),
    f("invoice.status", "string", "Xero invoice status", ("DRAFT", "SUBMITTED", "AUTHORISED")),
    f("invoice.total", "number", "Xero invoice total"),
    f("invoice.due_date", "date", "Xero invoice due date"),
    f("invoice.raised", "datetime", "Xero invoice raised"),
    f("invoice.id", "string", "Xero invoice id"),
    f("invoice.url", "string", "Xero invoice link"),
)


def _fields(*defs: FieldDef) -> dict[str, FieldDef]:
    return {d.name: d for d in defs}


PERSON = TypeSchema(
    resource_type="person",
    name="People",
    name_singular="Person",
    prefix="per",
    fields=_fields(
        f("title", "string"),
        f("first_name", "string", "First name"),
        f("last_name", "string", "Last name"),
        f("preferred_name", "string", "Preferred name"),
        f("email", "string", "Email"),
        f("telephone", "string", "Telephone"),
        f("mobile", "string", "Mobile"),
        f("date_of_birth", "date", "Date of birth"),
        f("gender", "string"),
        *ADDRESS,
        f("organisation", "uri", "Organisation"),
        f("membership_status", "string", "Membership status", MEMBERSHIP_STATUSES),
        f("joined", "date", "Joined"),
        f("source", "string"),
        f("tags", "list", "Tags"),
        *OPT_OUTS,
        f("notes", "string"),
        f("mailchimp_last_sync", "datetime", "Last Mailchimp sync"),
        *INVOICE,
    ),
    search_fields=("first_name", "last_name", "email", "address.postal_code"),
    sort_by=("last_name", "first_name"),
    list_fields=("email", "address.locality", "address.postal_code", "membership_status"),
    unique_field="email",
    status_field="membership_status",
    search_placeholder="Search by name, email or postcode",
)

ORGANISATION = TypeSchema(
    resource_type="organisation",
    name="Organisations",
    name_singular="Organisation",
    prefix="org",
    fields=_fields(
        f("name", "string"),
        f("org_type", "string", "Organisation type"),
        f("email", "string", "Email"),
        f("telephone", "string", "Telephone"),
        f("website", "string"),
        f("registered_number", "string", "Registered number"),
        *ADDRESS,
        f("membership_status", "string", "Membership status", MEMBERSHIP_STATUSES),
        f("tags", "list", "Tags"),
        *OPT_OUTS,
        f("notes", "string"),
        f("mailchimp_last_sync", "datetime", "Last Mailchimp sync"),
        *INVOICE,
    ),
    search_fields=("name", "email", "address.postal_code"),
    sort_by=("name",),
    list_fields=("email", "address.locality", "org_type"),
    status_field="membership_status",
    search_placeholder="Search by name, email or postcode",
)

MEMBERSHIP = TypeSchema(
    resource_type="membership",
    name="Memberships",
    name_singular="Membership",
    prefix="mem",
    fields=_fields(
        f("contact", "uri", "Member"),
        f("membership_number", "string", "Membership number"),
        f("membership_type", "string", "Membership type"),
        f("status", "string", "Status", MEMBERSHIP_STATUSES),
        f("start_date", "date", "Start date"),
        f("end_date", "date", "End date"),
        f("amount", "number", "Amount"),
        f("currency", "string"),
        f("payment_method", "string", "Payment method"),
        f("auto_renew", "boolean", "Renews automatically"),
        f("tags", "list", "Tags"),
        f("notes", "string"),
        *INVOICE,
    ),
    search_fields=("membership_number", "membership_type"),
    sort_by=("-start_date",),
    list_fields=("membership_type", "status", "start_date", "end_date"),
    unique_field="membership_number",
    contact_field="contact",
    status_field="status",
)

PAYMENT = TypeSchema(
    resource_type="payment",
    name="Payments",
    name_singular="Payment",
    prefix="pay",
    fields=_fields(
        f("contact", "uri", "Paid by"),
        f("membership", "uri", "Membership"),
        f("amount", "number", "Amount"),
        f("currency", "string"),
        f("date", "date", "Date"),
        f("method", "string", "Method"),
        f("status", "string", "Status", PAYMENT_STATUSES),
        f("reference", "string"),
        f("fund", "string"),
        f("gift_aid", "boolean", "Gift Aid"),
        f("tags", "list", "Tags"),
        f("notes", "string"),
    ),
    search_fields=("reference", "fund"),
    sort_by=("-date",),
    list_fields=("amount", "date", "method", "status"),
    unique_field="reference",
    contact_field="contact",
    status_field="status",
)

BOOKING = TypeSchema(
    resource_type="booking",
    name="Bookings",
    name_singular="Booking",
    prefix="boo",
    fields=_fields(
        f("contact", "uri", "Booked by"),
        f("event_name", "string", "Event"),
        f("event_date", "date", "Event date"),
        f("status", "string", "Status", BOOKING_STATUSES),
        f("tickets", "number", "Tickets"),
        f("amount", "number", "Amount"),
        f("tags", "list", "Tags"),
        f("notes", "string"),
    ),
    search_fields=("event_name",),
    sort_by=("-event_date",),
    list_fields=("event_name", "event_date", "status", "tickets"),
    contact_field="contact",
    status_field="status",
)

GROUP = TypeSchema(
    resource_type="group",
    name="Groups",
    name_singular="Group",
    prefix="grp",
    fields=_fields(
        f("name", "string"),
        f("description", "string"),
        f("group_type", "string", "Group type"),
        f("tags", "list", "Tags"),
    ),
    search_fields=("name",),
    sort_by=("name",),
    list_fields=("name", "group_type"),
    unique_field="name",
)

GROUP_MEMBER = TypeSchema(
    resource_type="group_member",
    name="Group members",
    name_singular="Group member",
    prefix="gm",
    fields=_fields(
        f("group", "uri", "Group"),
        f("contact", "uri", "Member"),
        f("role", "string"),
        f("joined", "date", "Joined"),
    ),
    search_fields=("role",),
    sort_by=("-joined",),
    list_fields=("group", "contact", "role", "joined"),
    contact_field="contact",
)

MESSAGE = TypeSchema(
    resource_type="message",
    name="Messages",
    name_singular="Message",
    prefix="msg",
    fields=_fields(
        f("contact", "uri", "Recipient"),
        f("about", "uri", "About"),
        f("channel", "string", "Channel", ("email", "sms", "in_app")),
        f("to", "string", "To"),
        f("subject", "string"),
        f("body", "string"),
        f("html", "string", "HTML body"),
        f("template", "string"),
        f("status", "string", "Status", MESSAGE_STATUSES),
        f("sent", "datetime", "Sent"),
        f("request_acknowledgement", "boolean", "Asks for acknowledgement"),
        f("acknowledged", "datetime", "Acknowledged"),
        f("job", "uri", "Job"),
        f("provider_id", "string", "Message id"),
        f("sms_segments", "number", "SMS segments"),
        f("error", "string", "Error"),
    ),
    search_fields=("subject", "to"),
    sort_by=("-sent",),
    list_fields=("channel", "to", "subject", "status", "sent"),
    contact_field="contact",
    status_field="status",
)

JOURNAL = TypeSchema(
    resource_type="journal",
    name="Journal",
    name_singular="Journal entry",
    prefix="jnl",
    fields=_fields(
        f("title", "string"),
        f("body", "string"),
        f("date", "datetime", "Date"),
        f("contact", "uri", "Contact"),
        f("file_name", "string", "File name"),
        f("content_type", "string", "Content type"),
        f("size", "number", "Size in bytes"),
    ),
    search_fields=("title",),
    sort_by=("-date",),
    list_fields=("title", "date", "file_name"),
    contact_field="contact",
)

SHEEP_EVENT = TypeSchema(
    resource_type="sheep_event",
    name="Jobs",
    name_singular="Job",
    prefix="job",
    fields=_fields(
        f("description", "string"),
        f("action", "string"),
        f("status", "string", "Status", JOB_STATUSES),
        f("segment", "uri", "Segment"),
        f("user", "string", "Started by"),
        f("total", "number"),
        f("processed", "number"),
        f("succeeded", "number"),
        f("failed", "number"),
        f("skipped", "number"),
        f("errors", "object"),
        f("started", "datetime"),
        f("finished", "datetime"),
    ),
    search_fields=("description",),
    sort_by=("-started",),
    list_fields=("description", "status", "total", "processed"),
    status_field="status",
)


def _generic(resource_type: str, name: str, *extra: FieldDef) -> TypeSchema:
    """A plain schema for the types a membership CRM keeps with few fixed fields."""
    fields = _fields(f("name", "string"), f("contact", "uri", "Contact"), *extra)
    fields["tags"] = f("tags", "list", "Tags")
    return TypeSchema(
        resource_type=resource_type,
        name=name,
        name_singular=name.rstrip("s"),
        prefix=resource_type[:3],
        fields=fields,
        search_fields=("name",),
        sort_by=("name",),
        list_fields=("name",),
        contact_field="contact",
    )


BUILTIN: dict[str, TypeSchema] = {
    s.resource_type: s
    for s in (
        PERSON,
        ORGANISATION,
        MEMBERSHIP,
        PAYMENT,
        BOOKING,
        GROUP,
        GROUP_MEMBER,
        MESSAGE,
        JOURNAL,
        SHEEP_EVENT,
        _generic("achievement", "Achievements", f("awarded", "date", "Awarded")),
        _generic("comment", "Comments", f("body", "string"), f("date", "datetime", "Date")),
        _generic("duplicates", "Duplicates", f("records", "list", "Records")),
        _generic("form_response", "Form responses", f("form", "string"), f("answers", "object")),
        _generic("page_document", "Documents", f("body", "string")),
        _generic(
            "reservation",
            "Reservations",
            f("start", "datetime", "Starts"),
            f("end", "datetime", "Ends"),
            f("status", "string"),
        ),
        _generic("vehicle", "Vehicles", f("registration", "string"), f("make", "string")),
    )
}
assert set(BUILTIN) == set(STORED_TYPES), "every stored resource type needs a schema"
