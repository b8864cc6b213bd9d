"""What every bulk action is made of: its check, its batch work and what it says it did
to each record. The actions themselves are in `actions.py` and `messaging.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session

from fold.config import Settings
from fold.db.models import Record
from fold.fields.schema import TypeSchema
from fold.ids import make_uri
from fold.records.bulk import Rewrite, update_records


@dataclass(slots=True)
class Loaded:
    """A record as a batch of a record-only action reads it: its columns, without the
    ORM's per-object bookkeeping (what `Action.light` actions are given)."""

    bucket: str
    resource_type: str
    uid: str
    data: dict[str, Any]
    record_state: str
    display_value: str
    search_text: str
    unique_key: str | None


AnyRecord = Record | Loaded


class LeaseLost(Exception):
    """Another worker took the job over while this one worked on a batch."""


@dataclass
class Outcome:
    """What an action did to one record: `done`, `failed` or `skipped`."""

    state: str
    reason: str = ""
    undo: dict[str, Any] | None = None


def _no_checkpoint() -> None:
    return None


@dataclass
class Run:
    """What an action needs while it runs one batch."""

    session: Session
    bucket: str
    user_uri: str
    description: str
    params: dict[str, Any]
    settings: Settings
    schemas: dict[str, TypeSchema]
    job_uid: str
    http_client: httpx.Client | None = None
    rewrites: list[Rewrite] = field(default_factory=list)
    undo_infos: list[dict[str, Any] | None] = field(default_factory=list)
    # Commits what the batch wrote so far, after renewing the job's lease (LeaseLost when
    # another worker holds it): for actions whose outside effects cannot be rolled back.
    checkpoint: Callable[[], None] = _no_checkpoint
    # Merged into the job's params when the batch commits (what `debug` reports).
    notes: dict[str, Any] = field(default_factory=dict)

    def record_uri(self, row: AnyRecord) -> str:
        return make_uri(self.bucket, row.resource_type, row.uid)

    def save(self) -> None:
        update_records(
            self.session,
            bucket=self.bucket,
            user_uri=self.user_uri,
            message=self.description,
            schemas=self.schemas,
            rewrites=self.rewrites,
        )
        self.rewrites = []


Check = Callable[[Session, str, str, TypeSchema, dict[str, Any], Settings], dict[str, Any]]
# Each action takes the batch's records (None: gone), `Loaded` ones when it is light.
Apply = Callable[[Run, Any], list[Outcome]]


@dataclass(frozen=True)
class Action:
    name: str
    check: Check
    apply: Apply
    undoable: bool = True
    contacts_only: bool = False
    # Acts for a contact: a segment of records that link to one (memberships, payments)
    # is acted on for the contact each names (`records.contacts`); others are refused.
    for_contacts: bool = False
    # Whether the batch rewrites its records: then it locks them while it works, so a
    # change made meanwhile is not written over. Webhooks only read (and call out).
    writes_records: bool = True
    # Run once after the last batch, in the transaction that completes the job (again,
    # if the worker died in it): for work on the whole set, such as a sync's removals.
    finish: Callable[[Run], None] | None = None
    # Reads and rewrites only the records it is given (through `Run.save`): its batch
    # loads them as `Loaded` columns rather than ORM objects.
    light: bool = False
    # What `finish` raises when the job must fail; its message is the job's error.
    failure: type[Exception] | None = None
    # The largest batch: an action whose records each wait on an outside service (Xero's
    # 60 calls a minute) keeps batches short, so a cancel is seen soon.
    max_batch: int | None = None
