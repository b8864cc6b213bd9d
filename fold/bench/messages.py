"""Email throughput: a templated email job to N contacts, received by a local SMTP server
(aiosmtpd, started here), timed end to end: render, send, and a message record each."""

from __future__ import annotations

import multiprocessing
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.bench.jobs import NoQueue
from fold.bench.tools import dev_tool
from fold.buckets.service import ensure_bucket
from fold.config import Settings
from fold.db.bulk import analyze
from fold.db.engine import unit_of_work
from fold.db.models import Job
from fold.fields.builtin import BUILTIN
from fold.ids import new_uid, uid_of
from fold.jobs import service as jobs
from fold.jobs.runner import run_job
from fold.messages import templates
from fold.records.bulk import insert_clean
from fold.segments import service as segments
from fold.settings import service as bucket_settings

HTML = (
    "<p>Dear {{ first_name }},</p><p>Your membership of {{ bucket }} renews on "
    "{{ renewal_date|date }}: {{ amount_due|amount }}.</p>"
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


class Counter:
    def __init__(self, received: Any) -> None:
        self.received = received

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.received.get_lock():
            self.received.value += len(envelope.rcpt_tos)
        return "250 Message accepted"


def serve_smtp(port: int, received: Any, stop: Any) -> None:
    """The local SMTP server, in its own process so it does not share the job's GIL."""
    controller = dev_tool("aiosmtpd.controller", "fold bench messages (its SMTP server)")
    server = controller.Controller(Counter(received), hostname="127.0.0.1", port=port)
    server.start()
    stop.wait()
    server.stop()


def _fill(factory: sessionmaker[Session], bucket: str, contacts: int) -> None:
    with unit_of_work(factory) as session:
        ensure_bucket(session, bucket)
    now = datetime(2026, 1, 1)
    for start in range(0, contacts, 10_000):
        rows = [
            ("person", new_uid(), {
                "first_name": f"Bench{i}", "last_name": "Person",
                "email": f"bench{i}@example.org", "renewal_date": "2026-03-31",
                "amount_due": 42.5,
            }, now)
            for i in range(start, min(contacts, start + 10_000))
        ]  # fmt: skip
        with unit_of_work(factory) as session:
            insert_clean(
                session,
                bucket=bucket,
                user_uri="/system/user/bench/",
                message="bench data",
                rows=rows,
                schemas={"person": BUILTIN["person"]},
            )
    with unit_of_work(factory) as session:
        analyze(session, "records", "audit_entries")


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    contacts: int,
    batch_size: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    dev_tool("aiosmtpd.controller", "fold bench messages (its SMTP server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    spawn = multiprocessing.get_context("spawn")
    received, stop = spawn.Value("i", 0), spawn.Event()
    server = spawn.Process(target=serve_smtp, args=(port, received, stop), daemon=True)
    server.start()
    _wait_for(port)
    try:
        bucket = f"bench-mail-{new_uid()[-8:]}"
        say(f"adding {contacts:,} contacts to {bucket}")
        _fill(factory, bucket, contacts)
        caller = Caller(bucket=bucket, policy="admin", user_uri="/system/user/bench/")
        with unit_of_work(factory) as session:
            bucket_settings.put(
                session,
                settings,
                caller=caller,
                section="smtp",
                params={"host": "127.0.0.1", "port": port, "security": "none",
                        "from_address": "bench@fold.example"},
            )  # fmt: skip
            template = templates.create(
                session,
                caller=caller,
                params={"name": "Bench", "channel": "email",
                        "subject": "Renewal for {{ first_name }}", "html_body": HTML},
            )  # fmt: skip
            segment, _ = segments.create(
                session, caller=caller, params={"name": "Everyone", "resource_type": "person"}
            )
            receipt = jobs.start_action(
                session,
                caller=caller,
                uid=segment["uid"],
                params={
                    "action": "send-templated-email",
                    "value": template["uid"],
                    "description": "bench email",
                    "batch_size": batch_size,
                },
                queue=NoQueue(),  # type: ignore[arg-type]
                settings=settings,
            )
        uid = uid_of(receipt["sheep_event"])
        started = time.perf_counter()
        status = run_job(factory, settings, bucket, uid)
        seconds = time.perf_counter() - started
        with unit_of_work(factory) as session:
            job = session.get(Job, (bucket, uid))
            assert job is not None
            sent, failed = job.succeeded, job.failed
    finally:
        stop.set()
        server.join(10)
    result = {
        "database": factory.kw["bind"].dialect.name,
        "contacts": contacts,
        "status": status,
        "sent": sent,
        "failed": failed,
        "received": received.value,
        "seconds": round(seconds, 2),
        "emails_per_second": round(sent / seconds, 1),
    }
    say(
        f"send-templated-email: {sent:,} emails in {seconds:.1f} s = "
        f"{sent / seconds:,.0f} emails/s; the SMTP server received {received.value:,} "
        f"({status}, {failed} failed)"
    )
    return result
