"""Mailchimp sync throughput: N contacts synced to the local Mailchimp stand-in (started
here in its own process), timed end to end: upserts of 500, `mailchimp_last_sync` stamped
and audited, the segment's members read and the differences sent. Then an unchanged re-run."""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.bench.jobs import NoQueue
from fold.bench.messages import _fill, _wait_for
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import Job
from fold.ids import new_uid, uid_of
from fold.jobs.runner import run_job
from fold.mailchimp import service as mailchimp
from fold.segments import service as segments
from fold.settings import service as bucket_settings

KEY = "0123456789abcdef0123456789abcdef-us1"
AUDIENCE = "bench"


def serve(port: int, stop: Any) -> None:
    """The stand-in, in its own process so it does not share the job's GIL."""
    from fold.bench.mailchimp_standin import StandIn

    server = StandIn(KEY, port=port).start()
    stop.wait()
    server.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    contacts: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    # The stand-in listens on loopback, which outside calls may reach only when allowed.
    settings = dataclasses.replace(settings, allow_private_webhooks=True)
    port = _free_port()
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    server = spawn.Process(target=serve, args=(port, stop), daemon=True)
    server.start()
    _wait_for(port)
    base = f"http://127.0.0.1:{port}/3.0"
    runs: list[dict[str, Any]] = []
    try:
        bucket = f"bench-mc-{new_uid()[-8:]}"
        say(f"adding {contacts:,} contacts to {bucket}")
        _fill(factory, bucket, contacts)
        caller = Caller(bucket=bucket, policy="admin", user_uri="/system/user/bench/")
        with unit_of_work(factory) as session:
            bucket_settings.put(
                session,
                settings,
                caller=caller,
                section="mailchimp",
                params={"api_key": KEY, "audience_id": AUDIENCE, "base_url": base},
            )
            segment, _ = segments.create(
                session, caller=caller, params={"name": "Everyone", "resource_type": "person"}
            )
        for label in ("first sync", "unchanged re-run"):
            with unit_of_work(factory) as session:
                receipt = mailchimp.start_sync(
                    session,
                    caller=caller,
                    uid=segment["uid"],
                    params={},
                    queue=NoQueue(),
                    settings=settings,
                )
            uid = uid_of(receipt["journal_uri"])
            started = time.perf_counter()
            status = run_job(factory, settings, bucket, uid)
            seconds = time.perf_counter() - started
            with unit_of_work(factory) as session:
                job = session.get(Job, (bucket, uid))
                assert job is not None
                synced, failed, params = job.succeeded, job.failed, dict(job.params)
            tags = httpx.get(
                f"{base}/lists/{AUDIENCE}/segments", auth=("bench", KEY), params={"count": 1000}
            ).json()["segments"]
            in_tag = next((t["member_count"] for t in tags if t["name"] == "Everyone"), 0)
            runs.append({
                "run": label, "status": status, "synced": synced, "failed": failed,
                "added": params.get("mailchimp_added"), "removed": params.get("mailchimp_removed"),
                "in_mailchimp_segment": in_tag, "seconds": round(seconds, 2),
                "contacts_per_second": round(synced / seconds, 1),
            })  # fmt: skip
            say(
                f"{label}: {synced:,} contacts in {seconds:.1f} s = {synced / seconds:,.0f} "
                f"contacts/s ({status}; added {params.get('mailchimp_added')}, removed "
                f"{params.get('mailchimp_removed')}, {failed} failed; {in_tag:,} in the tag)"
            )
    finally:
        stop.set()
        server.join(10)
    return {"database": factory.kw["bind"].dialect.name, "contacts": contacts, "runs": runs}
