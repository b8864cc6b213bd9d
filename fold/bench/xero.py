"""Xero invoice throughput: an invoice job for N contacts against the local Xero stand-in
(started here in its own process), timed end to end — token, contacts looked up and made,
one invoice call per contact with its Idempotency-Key, the `invoice` field written and
audited. Run twice: with Fold's pacing and the stand-in's limits lifted (what Fold itself
can do), and, unless skipped, at Xero's real limits (60 calls a minute per tenant) for a
small set, which is what an organisation will see."""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from fold.auth.policies import Caller
from fold.bench.jobs import NoQueue
from fold.bench.messages import _fill, _wait_for
from fold.config import Settings
from fold.db.engine import unit_of_work
from fold.db.models import Job
from fold.ids import new_uid
from fold.jobs import service as jobs
from fold.jobs.runner import run_job
from fold.segments import service as segments
from fold.settings import service as bucket_settings
from fold.xero import templates

CLIENT_ID = "BENCHCLIENT0000000000000000000000"
CLIENT_SECRET = "bench-secret"
TENANT = "00000000-0000-4000-8000-00000000b0b0"
LINES = [
    {"description": "Annual membership", "unit_amount": 60, "account_code": "200"},
    {"description": "Journal", "quantity": 2, "unit_amount": 7.5, "tax_type": "ZERORATEDOUTPUT"},
]


def serve(port: int, per_minute: int, stop: Any) -> None:
    """The stand-in, in its own process so it does not share the job's GIL."""
    from fold.bench.xero_standin import StandIn

    server = StandIn(CLIENT_ID, CLIENT_SECRET, TENANT, port=port, per_minute=per_minute).start()
    stop.wait()
    server.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _one(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    label: str,
    contacts: int,
    per_minute: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    port = _free_port()
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    server = spawn.Process(target=serve, args=(port, per_minute, stop), daemon=True)
    server.start()
    _wait_for(port)
    try:
        bucket = f"bench-xero-{new_uid()[-8:]}"
        say(f"{label}: adding {contacts:,} contacts to {bucket}")
        _fill(factory, bucket, contacts)
        caller = Caller(bucket=bucket, policy="admin", user_uri="/system/user/bench/")
        with unit_of_work(factory) as session:
            bucket_settings.put(
                session,
                settings,
                caller=caller,
                section="xero",
                params={
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "tenant_id": TENANT,
                    "default_tax_type": "OUTPUT2",
                    "identity_url": f"http://127.0.0.1:{port}",
                    "api_url": f"http://127.0.0.1:{port}/api.xro/2.0",
                },
            )
            template = templates.create(
                session, caller=caller, params={"name": "Bench", "line_items": LINES}
            )
            segment, _ = segments.create(
                session, caller=caller, params={"name": "Everyone", "resource_type": "person"}
            )
            receipt = jobs.start_action(
                session,
                caller=caller,
                uid=segment["uid"],
                params={
                    "action": "raise-authorised-xero-invoice",
                    "value": template["uid"],
                    "description": "Bench invoices",
                },
                queue=NoQueue(),  # type: ignore[arg-type]
                settings=settings,
            )
        uid = receipt["sheep_event"].split("/")[-2]
        started = time.perf_counter()
        status = run_job(factory, settings, bucket, uid)
        seconds = time.perf_counter() - started
        with unit_of_work(factory) as session:
            job = session.get(Job, (bucket, uid))
            assert job is not None
            raised, failed = job.succeeded, job.failed
        rate = raised / seconds if seconds else 0.0
        say(
            f"{label}: {raised:,} invoices in {seconds:.1f} s = {rate:,.1f} invoices/s "
            f"({status}; {failed} failed)"
        )
        return {
            "run": label,
            "status": status,
            "contacts": contacts,
            "invoices": raised,
            "failed": failed,
            "seconds": round(seconds, 2),
            "invoices_per_second": round(rate, 2),
        }
    finally:
        stop.set()
        server.join(10)


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    contacts: int,
    paced: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    # The stand-in listens on loopback, which outside calls may reach only when allowed.
    base = dataclasses.replace(settings, allow_private_webhooks=True, xero_backoff=0.2)
    runs = [
        _one(
            factory,
            dataclasses.replace(base, xero_calls_per_minute=1_000_000),
            label="limits lifted",
            contacts=contacts,
            per_minute=1_000_000,
            say=say,
        )
    ]
    if paced:
        runs.append(
            _one(
                factory,
                base,
                label="Xero's limits (60 calls a minute)",
                contacts=paced,
                per_minute=60,
                say=say,
            )
        )
    return {"database": factory.kw["bind"].dialect.name, "runs": runs}
