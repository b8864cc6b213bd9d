"""Invoice templates: what a Xero invoice action raises for each record — its lines
(description, quantity, unit amount, account code, tax type), its due-date rule, its
reference — stored per bucket with their own API.

Every piece of a template is data: descriptions and references are sent to Xero as they
are, never rendered or evaluated. Every problem is answered at once, each naming its
`param` (`line_items[2].unit_amount`)."""

from __future__ import annotations

import calendar
import math
import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fold.auth.policies import Caller
from fold.db.models import InvoiceTemplate
from fold.errors import NotFound, Problem, ValidationFailed
from fold.ids import is_uid, make_uri, new_uid
from fold.paging import Paging
from fold.settings.sections import XERO_CODE_RE
from fold.timefmt import format_datetime, utcnow

RESOURCE = "invoice_template"
FIELDS = ("name", "line_items", "due", "reference", "line_amount_types", "currency_code")
ACCEPTS = (*FIELDS, "uid", "uri", "resource_type", "display_value", "created", "last_updated")
LINE_FIELDS = ("description", "quantity", "unit_amount", "account_code", "tax_type")
# Xero's own names, in the form its API takes them.
LINE_AMOUNT_TYPES = {"exclusive": "Exclusive", "inclusive": "Inclusive", "no_tax": "NoTax"}
DUE_RULES = {
    "days_after_invoice_date": "days",
    "day_of_current_month": "day",
    "day_of_following_month": "day",
    "fixed_date": "date",
}
MAX_LINES = 100
MAX_DESCRIPTION = 4000  # Xero's longest line description
MAX_REFERENCE = 255
MAX_NAME = 200
MAX_AMOUNT = Decimal("1000000000")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def template_out(row: InvoiceTemplate) -> dict[str, Any]:
    return {
        "uid": row.uid,
        "uri": make_uri(row.bucket, RESOURCE, row.uid),
        "resource_type": RESOURCE,
        "display_value": row.name,
        "name": row.name,
        "line_items": row.line_items,
        "due": row.due,
        "reference": row.reference,
        "line_amount_types": row.line_amount_types,
        "currency_code": row.currency_code,
        "created": format_datetime(row.created),
        "last_updated": format_datetime(row.last_updated),
    }


def find(session: Session, bucket: str, uid: Any) -> InvoiceTemplate | None:
    """The bucket's template `uid`, or None (another bucket's template is not found)."""
    if not isinstance(uid, str) or not is_uid(uid.strip()):
        return None
    return session.get(InvoiceTemplate, (bucket, uid.strip()))


def load(session: Session, caller: Caller, uid: str) -> InvoiceTemplate:
    caller.require("read")
    row = find(session, caller.bucket, uid)
    if row is None:
        raise NotFound(f"No invoice template {uid} in this bucket.", param="uid")
    return row


def _number(raw: Any, param: str, problems: list[Problem], *, low: Decimal) -> int | float | None:
    """A number of at most 4 decimal places, at least `low`: stored as JSON, it reads back
    exactly (`Decimal(repr(x))`) for the sums."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        problems.append(Problem(f"{param} must be a number.", param))
        return None
    if isinstance(raw, float) and not math.isfinite(raw):
        problems.append(Problem(f"{param} must be a finite number.", param))
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.append(Problem(f"{param} must be a number; got {raw!r}.", param))
        return None
    if not value.is_finite() or value < low or abs(value) >= MAX_AMOUNT:
        problems.append(Problem(f"{param} must be from {low} to under {MAX_AMOUNT:,}.", param))
        return None
    if value != value.quantize(Decimal("0.0001")):
        problems.append(Problem(f"{param} has at most 4 decimal places.", param))
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _text(raw: Any, param: str, problems: list[Problem], *, limit: int) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        problems.append(Problem(f"{param} must be text.", param))
        return ""
    text = raw.strip()
    if len(text) > limit:
        problems.append(Problem(f"{param} is at most {limit} characters.", param))
    if "\x00" in text:
        problems.append(Problem(f"{param} holds a NUL character.", param))
    return text


def _code(raw: Any, param: str, problems: list[Problem]) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not XERO_CODE_RE.match(raw.strip()):
        problems.append(
            Problem(f"{param} must be a Xero code (letters, digits, '_', '.', '-').", param)
        )
        return None
    return raw.strip()


def _lines(raw: Any, problems: list[Problem]) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        problems.append(
            Problem("A template needs line_items: a list of 1 or more lines.", "line_items")
        )
        return []
    if len(raw) > MAX_LINES:
        problems.append(Problem(f"A template has at most {MAX_LINES} lines.", "line_items"))
        return []
    lines = []
    for n, line in enumerate(raw):
        at = f"line_items[{n}]"
        if not isinstance(line, dict):
            problems.append(Problem(f"{at} must be an object.", at))
            continue
        for key in line:
            if key not in LINE_FIELDS:
                problems.append(
                    Problem(
                        f"{key!r} is not a field of a line; use {', '.join(LINE_FIELDS)}.",
                        f"{at}.{key}",
                    )
                )
        description = _text(
            line.get("description"), f"{at}.description", problems, limit=MAX_DESCRIPTION
        )
        if not description:
            problems.append(Problem(f"{at} needs a description.", f"{at}.description"))
        quantity = line.get("quantity", 1)
        out = {
            "description": description,
            "quantity": _number(quantity, f"{at}.quantity", problems, low=Decimal("0.0001")),
            "unit_amount": None,
            "account_code": _code(line.get("account_code"), f"{at}.account_code", problems),
            "tax_type": _code(line.get("tax_type"), f"{at}.tax_type", problems),
        }
        if "unit_amount" not in line:
            problems.append(Problem(f"{at} needs a unit_amount.", f"{at}.unit_amount"))
        else:
            # Negative lines are discounts; Xero refuses an invoice whose total is negative.
            out["unit_amount"] = _number(
                line["unit_amount"], f"{at}.unit_amount", problems, low=-MAX_AMOUNT + 1
            )
        lines.append(out)
    return lines


def _due(raw: Any, problems: list[Problem]) -> dict[str, Any]:
    if raw is None:
        raw = {"rule": "days_after_invoice_date", "days": 30}
    if not isinstance(raw, dict):
        problems.append(Problem("due must be an object with a rule.", "due"))
        return {}
    rule = raw.get("rule")
    if rule not in DUE_RULES:
        problems.append(Problem(f"due.rule must be one of {', '.join(DUE_RULES)}.", "due.rule"))
        return {}
    part = DUE_RULES[rule]
    for key in raw:
        if key not in ("rule", part):
            problems.append(Problem(f"A {rule} rule takes only '{part}'.", f"due.{key}"))
    value = raw.get(part)
    if part == "date":
        try:
            return {"rule": rule, "date": date.fromisoformat(str(value)).isoformat()}
        except ValueError:
            problems.append(Problem("due.date must be a date (YYYY-MM-DD).", "due.date"))
            return {}
    high = 365 if part == "days" else 31
    low = 0 if part == "days" else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(
            Problem(f"due.{part} must be a whole number from {low} to {high}.", f"due.{part}")
        )
        return {}
    return {"rule": rule, part: value}


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """A template's fields checked; ValidationFailed lists every problem."""
    known = {*ACCEPTS}
    problems = [
        Problem(f"{key!r} is not a field of an invoice template; use {', '.join(FIELDS)}.", key)
        for key in values
        if key not in known
    ]
    name = _text(values.get("name"), "name", problems, limit=MAX_NAME)
    if not name:
        problems.append(Problem("A template needs a name.", "name"))
    amounts = values.get("line_amount_types") or "exclusive"
    if amounts not in LINE_AMOUNT_TYPES:
        problems.append(
            Problem(
                f"line_amount_types must be one of {', '.join(LINE_AMOUNT_TYPES)}.",
                "line_amount_types",
            )
        )
    currency = values.get("currency_code")
    if currency in (None, ""):
        currency = None
    elif not isinstance(currency, str) or not CURRENCY_RE.match(currency.strip()):
        problems.append(Problem("currency_code must be 3 capital letters (GBP).", "currency_code"))
    else:
        currency = currency.strip()
    out = {
        "name": name,
        "line_items": _lines(values.get("line_items"), problems),
        "due": _due(values.get("due"), problems),
        "reference": _text(values.get("reference"), "reference", problems, limit=MAX_REFERENCE),
        "line_amount_types": amounts,
        "currency_code": currency,
    }
    if problems:
        raise ValidationFailed.collect(problems)
    return out


def due_date(rule: dict[str, Any], invoice_date: date) -> date:
    """The due date a rule gives for an invoice dated `invoice_date`; a day past the end of
    a month is that month's last day."""
    kind = rule["rule"]
    if kind == "fixed_date":
        return date.fromisoformat(rule["date"])
    if kind == "days_after_invoice_date":
        return invoice_date + timedelta(days=int(rule["days"]))
    year, month = invoice_date.year, invoice_date.month
    if kind == "day_of_following_month":
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(int(rule["day"]), last))


def create(session: Session, *, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("write_templates")
    fields = clean(params)
    now = utcnow()
    row = InvoiceTemplate(
        bucket=caller.bucket, uid=new_uid(), created=now, last_updated=now, **fields
    )
    session.add(row)
    session.flush()
    return template_out(row)


def change(
    session: Session, *, caller: Caller, uid: str, params: dict[str, Any], replace: bool
) -> dict[str, Any]:
    """PUT (`replace`) sets every field (those not sent to defaults); PATCH those sent."""
    caller.require("write_templates")
    row = load(session, caller, uid)
    current = {} if replace else {k: getattr(row, k) for k in FIELDS}
    fields = clean({**current, **params})
    for key, value in fields.items():
        setattr(row, key, value)
    row.last_updated = utcnow()
    session.flush()
    return template_out(row)


def delete(session: Session, *, caller: Caller, uid: str) -> dict[str, Any]:
    caller.require("write_templates")
    row = load(session, caller, uid)
    out = template_out(row)
    session.delete(row)
    session.flush()
    return out


def listing(session: Session, *, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    caller.require("read")
    paging = Paging.read(params)
    where = [InvoiceTemplate.bucket == caller.bucket]
    total = session.scalar(select(func.count()).select_from(InvoiceTemplate).where(*where)) or 0
    rows = session.scalars(
        select(InvoiceTemplate)
        .where(*where)
        .order_by(InvoiceTemplate.name, InvoiceTemplate.uid)
        .offset(paging.offset)
        .limit(paging.page_size)
    ).all()
    return {"templates": [template_out(r) for r in rows], **paging.envelope(total)}
