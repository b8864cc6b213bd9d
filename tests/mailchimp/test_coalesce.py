"""One Mailchimp sync of a segment at a time: asking again while one waits answers its
receipt (other options: 409), the periodic task starts none beside it, and the periodic
tasks of several workers running at once start exactly one."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import func, select, update

from fold.auth.policies import Caller
from fold.bench.jobs import NoQueue
from fold.bench.mailchimp_standin import StandIn
from fold.db.engine import unit_of_work
from fold.db.models import Job
from fold.mailchimp import service as mailchimp
from fold.mailchimp.tasks import start_due_syncs
from fold.segments.syncs import ACTION, LIVE
from tests.conftest import Tenant, assert_error
from tests.mailchimp.conftest import set_mailchimp
from tests.messages.conftest import fill_contacts
from tests.segments.conftest import make_segment, seg_url


def live_syncs(mc: Tenant, segment_uid: str) -> int:
    with unit_of_work(mc.db.sessions) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(
                    Job.bucket == mc.bucket,
                    Job.segment_uid == segment_uid,
                    Job.action == ACTION,
                    Job.status.in_(LIVE),
                )
            )
            or 0
        )


def test_one_sync_of_a_segment_at_a_time(mc: Tenant, standin: StandIn) -> None:
    api = mc.admin
    set_mailchimp(api, standin)
    fill_contacts(mc.db, mc.bucket, [{"first_name": "C", "email": "c@example.org"}])
    segment = make_segment(api, name="Once", mailchimp_sync=True)
    app: Any = api.client.app
    settings = dataclasses.replace(
        app.state.settings, mailchimp_sync_delay=0, mailchimp_sync_interval=1
    )
    caller = Caller(bucket=mc.bucket, policy="admin", user_uri="/test/user/")
    queue: Any = NoQueue()  # the sync stays waiting: nothing runs it

    def ask(**params: Any) -> dict[str, Any]:
        with unit_of_work(app.state.queue.sessions) as session:
            return mailchimp.start_sync(
                session,
                caller=caller,
                uid=segment["uid"],
                params=params,
                queue=queue,
                settings=settings,
            )

    first = ask()
    assert ask()["journal_uri"] == first["journal_uri"]
    assert_error(
        api.post(seg_url(api, segment["uid"], "/all/sync_mailchimp"), params={"segment_name": "X"}),
        409,
        "conflict",
    )
    # Changed and scheduled, but its sync is still waiting: the periodic task leaves it.
    assert api.patch(seg_url(api, segment["uid"]), json={"description": "new"}).status_code == 200
    assert start_due_syncs(app.state.queue.sessions, settings, queue) == 0
    assert live_syncs(mc, segment["uid"]) == 1

    # That sync ends; four workers' periodic tasks run at once and start one sync.
    with unit_of_work(mc.db.sessions) as session:
        session.execute(
            update(Job)
            .where(Job.bucket == mc.bucket, Job.segment_uid == segment["uid"])
            .values(status="cancelled")
        )
    with ThreadPoolExecutor(4) as pool:
        started = list(
            pool.map(lambda _: start_due_syncs(app.state.queue.sessions, settings, queue), range(4))
        )
    assert sum(started) == 1
    assert live_syncs(mc, segment["uid"]) == 1
