"""What the jobs API answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fold.schemas import Open, Page


class Job(Open):
    uid: str
    uri: str
    action: str
    status: str
    total: int | None
    processed: int
    succeeded: int
    failed: int
    skipped: int
    errors: list[Any]
    segment: str | None
    undo_of: str | None
    user: str | None
    params: dict[str, Any]
    created: str
    started: str | None
    finished: str | None


class JobPage(Page):
    results: list[Job]


class JobReceipt(Open):
    """The job just started: follow `sheep_event` (its URI) for progress."""

    action: str
    sheep_event: str
    status: str


class BulkReceipt(Open):
    """A replace-all or delete-all job just started: `notification_uri` is the job's URI."""

    notification_uri: str
    lambda_params: dict[str, Any]
