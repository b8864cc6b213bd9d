"""Automatic syncs: a segment with mailchimp_sync is synced once its definition changed and
it has been quiet for the delay (several quick edits make one run), and on the operator's
schedule; never without the flag, without settings, or while a sync of it is live."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from fold.bench.mailchimp_standin import StandIn
from fold.db.engine import unit_of_work
from fold.db.models import Job, Segment
from fold.mailchimp.tasks import start_due_syncs
from fold.timefmt import utcnow
from tests.conftest import Api, Tenant
from tests.mailchimp.conftest import AUDIENCE, set_mailchimp, wait_job
from tests.messages.conftest import fill_contacts
from tests.segments.conftest import make_segment, seg_url


def due(api: Api, **overrides: Any) -> int:
    app: Any = api.client.app
    settings = dataclasses.replace(app.state.settings, **overrides)
    queue = app.state.queue
    return start_due_syncs(queue.sessions, settings, queue)


def last_sync(api: Api, uid: str) -> dict[str, Any]:
    shown: dict[str, Any] = api.get(seg_url(api, uid)).json()["mailchimp_last_sync"]
    return shown


def test_periodic_task_is_registered(mc: Tenant) -> None:
    app: Any = mc.admin.client.app
    names = [t.name for t in app.state.queue.huey._registry.periodic_tasks]
    assert "fold.mailchimp_syncs" in names


def test_changed_segments_sync_once_quiet(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    fill_contacts(
        mc.db,
        mc.bucket,
        [{"first_name": f"A{i}", "email": f"a{i}@example.org", "tags": ["x"]} for i in range(40)],
    )
    synced = make_segment(
        api,
        name="Auto",
        mailchimp_sync=True,
        rules=[{"field": "tags", "operator": "equals", "value": "x"}],
    )
    plain = make_segment(api, name="Not synced")
    assert due(api, mailchimp_sync_delay=0) == 0  # no Mailchimp settings yet
    set_mailchimp(api, standin)
    assert due(api, mailchimp_sync_delay=3600) == 0  # changed, but not quiet for long enough
    assert due(api, mailchimp_sync_delay=0) == 1
    shown = last_sync(api, synced["uid"])
    assert wait_job(api, shown["job"])["status"] == "completed"
    shown = last_sync(api, synced["uid"])
    assert (shown["status"], shown["added"], shown["removed"], shown["failed"]) == (
        "completed",
        40,
        0,
        0,
    )
    assert shown["when"]
    assert len(standin.state.segment_emails(AUDIENCE, "Auto")) == 40
    assert api.get(seg_url(api, plain["uid"])).json()["mailchimp_last_sync"] is None
    assert due(api, mailchimp_sync_delay=0) == 0  # nothing changed, no schedule

    # Three quick edits: one run.
    for n in range(3):
        response = api.patch(seg_url(api, synced["uid"]), json={"description": f"edit {n}"})
        assert response.status_code == 200, response.text
    assert due(api, mailchimp_sync_delay=0) == 1
    assert due(api, mailchimp_sync_delay=0) == 0
    assert wait_job(api, last_sync(api, synced["uid"])["job"])["status"] == "completed"


def test_schedule(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    fill_contacts(mc.db, mc.bucket, [{"first_name": "B", "email": "b@example.org"}])
    segment = make_segment(api, name="Scheduled", mailchimp_sync=True)
    assert due(api, mailchimp_sync_delay=0) == 1
    assert due(api, mailchimp_sync_delay=0, mailchimp_sync_interval=10) == 0
    with unit_of_work(mc.db.sessions) as session:
        session.execute(
            update(Job)
            .where(Job.bucket == mc.bucket, Job.segment_uid == segment["uid"])
            .values(created=utcnow() - timedelta(minutes=11))
        )
        session.execute(
            update(Segment)
            .where(Segment.bucket == mc.bucket, Segment.uid == segment["uid"])
            .values(last_updated=utcnow() - timedelta(minutes=12))
        )
    assert due(api, mailchimp_sync_delay=0, mailchimp_sync_interval=0) == 0
    assert due(api, mailchimp_sync_delay=0, mailchimp_sync_interval=10) == 1
    assert last_sync(api, segment["uid"])["status"] == "completed"
