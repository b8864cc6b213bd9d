"""Job life cycle: recorded with the request, queued after commit, cancelled between
batches, refused when nothing can be done."""

from __future__ import annotations

from typing import Any

import pytest

from fold.jobs import runner, setwise
from fold.jobs.queue import Queue
from tests.conftest import Tenant, assert_error
from tests.jobs.conftest import everyone, job, start


def test_cancel_stops_between_batches(
    tenant: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = tenant.admin
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(Queue, "send", lambda self, bucket, uid: sent.append((bucket, uid)))
    # A set-based batch is CHUNK_FACTOR times the batch size; here one record, as a
    # per-record batch of 1 (tests/jobs/test_chunks.py cancels between larger ones).
    monkeypatch.setattr(setwise, "CHUNK_FACTOR", 1)
    receipt = start(api, everyone(api)["uid"], action="add_tag", value="x", batch_size=1)
    uid = receipt["sheep_event"].split("/")[-2]
    assert sent == [(api.bucket, uid)] and job(api, receipt["sheep_event"])["status"] == "created"

    original = runner._batch
    calls = []

    def batch_then_cancel(*args: Any) -> str:
        status = original(*args)
        calls.append(status)
        if len(calls) == 1:
            assert api.post(f"/sheep_event/{uid}/cancel").json()["status"] == "cancelling"
        return status

    monkeypatch.setattr(runner, "_batch", batch_then_cancel)
    queue = api.client.app.state.queue  # type: ignore[attr-defined]
    assert runner.run_job(queue.sessions, queue.settings, api.bucket, uid) == "cancelled"
    result = job(api, receipt["sheep_event"])
    assert (result["status"], result["total"], result["processed"], result["succeeded"]) == (
        "cancelled",
        4,
        1,
        1,
    )
    assert result["finished"]
    assert_error(api.post(f"/sheep_event/{uid}/cancel"), 409, "conflict")
    # Undo reverts what the cancelled job did do: the one record it tagged.
    assert api.get("/person/", params={"tags": "x"}).json()["total"] == 1
    undone = api.post(f"/sheep_event/{uid}/undo")
    assert undone.status_code == 200, undone.text
    assert runner.run_job(queue.sessions, queue.settings, api.bucket, undone.json()["uid"])
    assert job(api, undone.json()["uri"])["status"] == "completed"
    assert api.get("/person/", params={"tags": "x"}).json()["total"] == 0


def test_cancel_before_start(
    tenant: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = tenant.admin
    monkeypatch.setattr(Queue, "send", lambda self, bucket, uid: None)
    receipt = start(api, everyone(api)["uid"], action="debug")
    uid = receipt["sheep_event"].split("/")[-2]
    assert api.post(f"/sheep_event/{uid}/cancel").json()["status"] == "cancelled"
    queue = api.client.app.state.queue  # type: ignore[attr-defined]
    assert runner.run_job(queue.sessions, queue.settings, api.bucket, uid) == "not mine"


def test_a_queue_outage_leaves_the_job_for_recovery(
    tenant: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = tenant.admin

    def down(self: Queue, bucket: str, uid: str) -> None:
        raise ConnectionError("queue down")

    monkeypatch.setattr(Queue, "send", down)
    receipt = start(api, everyone(api)["uid"], action="add_tag", value="later")
    assert job(api, receipt["sheep_event"])["status"] == "created"
    monkeypatch.undo()
    from fold.jobs import queue as queue_module

    monkeypatch.setattr(queue_module, "STALE_CREATED", queue_module.timedelta(seconds=-1))
    queue = api.client.app.state.queue  # type: ignore[attr-defined]
    assert queue.recover() >= 1
    assert job(api, receipt["sheep_event"])["status"] == "completed"


def test_a_failed_request_queues_nothing(
    tenant: Tenant, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = tenant.admin
    sent: list[Any] = []
    monkeypatch.setattr(Queue, "send", lambda self, bucket, uid: sent.append(uid))
    seg = everyone(api)["uid"]
    response = api.post(
        f"/segments/v2/{api.bucket}/segment/{seg}/action",
        json={"action": "add_tag", "value": "", "description": "d"},
    )
    assert_error(response, 400, "validation_error", "value")
    assert sent == [] and api.get("/sheep_event/").json()["total"] == 0


def test_other_buckets_cannot_see_jobs(
    tenant: Tenant, other_tenant: Tenant, people: dict[str, Any]
) -> None:
    receipt = start(tenant.admin, everyone(tenant.admin)["uid"], action="debug")
    uid = receipt["sheep_event"].split("/")[-2]
    assert_error(
        other_tenant.admin.get(f"/api/v2/{tenant.bucket}/sheep_event/{uid}/"),
        403,
        "permission_denied",
    )
    assert_error(other_tenant.admin.get(f"/sheep_event/{uid}/"), 404, "not_found")


def test_the_embedded_worker_runs_jobs_in_the_serving_process(database: Any, tmp_path: Any) -> None:
    """`fold serve` without Redis: Huey on SQLite, worker threads started with the app.

    The server gets a database of its own: at start its periodic tasks take up every
    unfinished job they find, and the shared test database holds other tests' on purpose."""
    import time

    from fastapi.testclient import TestClient

    from fold.web.app import create_app
    from tests.conftest import fresh_database, make_tenant, settings_for

    with fresh_database(database.name, tmp_path) as own:
        settings = settings_for(own, queue="auto", data_dir=str(tmp_path))
        app = create_app(settings, own.engine, embedded_worker=True)
        with TestClient(app) as client:
            api = make_tenant(client, own).admin
            for n in range(3):
                api.post("/person/", json={"first_name": f"E{n}"})
            receipt = start(api, everyone(api)["uid"], action="add_tag", value="embedded")
            assert (tmp_path / "queue.db").exists()
            deadline = time.monotonic() + 30
            while job(api, receipt["sheep_event"])["status"] != "completed":
                assert time.monotonic() < deadline, job(api, receipt["sheep_event"])
                time.sleep(0.05)
            tagged = api.get("/person/", params={"tags": "embedded"}).json()["total"]
            assert tagged == 3


def test_the_embedded_queue_is_polled_often(tmp_path: Any) -> None:
    """A job queued on the SQLite queue starts within a fraction of a second: the consumer
    looks for work at least every 0.2 s (Huey's default backs off to 10 s)."""
    from sqlalchemy import create_engine

    from fold.config import Settings

    settings = Settings(database_url="sqlite://", queue="auto", data_dir=str(tmp_path))
    consumer = Queue(settings, create_engine("sqlite://")).consumer(workers=1, embedded=True)
    assert consumer.max_delay <= 0.2 and consumer.default_delay <= 0.2
