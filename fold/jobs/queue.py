"""The task queue: Huey, with SQLite storage in the embedded default and Redis when
FOLD_REDIS_URL is set. The queue carries only (bucket, job uid); the job's state lives in
the database, so any worker on any machine can pick a job up or resume it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from fold.columns.index import ColumnIndex, Options
from fold.config import Settings
from fold.db.engine import after_commit, make_sessionmaker, unit_of_work
from fold.db.models import Job
from fold.exports.service import purge
from fold.jobs.runner import LIVE, holder_gone, run_job
from fold.records import clock
from fold.segments.tasks import run_snapshots
from fold.timefmt import utcnow

log = logging.getLogger("fold.jobs")


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """Worker threads inside `fold serve`. Huey's consumer would install its own SIGINT and
    SIGTERM handlers, taking shutdown away from the web server; here the server's lifespan
    stops the workers instead."""

    def _set_signal_handlers(self) -> None:
        return None


STALE_CREATED = timedelta(seconds=30)


def make_huey(settings: Settings) -> Huey:
    if settings.queue == "immediate":
        return MemoryHuey("fold", immediate=True)
    if settings.redis_url:
        return RedisHuey("fold", url=settings.redis_url)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return SqliteHuey("fold", filename=str(Path(settings.data_dir) / "queue.db"))


class Queue:
    """Where jobs are sent after the transaction that records them commits."""

    def __init__(
        self, settings: Settings, engine: Engine, *, columns: ColumnIndex | None = None
    ) -> None:
        self.settings = settings
        # A worker of its own keeps its own column index; one inside the app shares the app's.
        columns = columns or ColumnIndex(Options.from_settings(settings))
        self.sessions = columns.attach(clock.install(make_sessionmaker(engine, writes=True)))
        self.huey = make_huey(settings)
        sessions, huey = self.sessions, self.huey

        def run(bucket: str, uid: str) -> str:
            return run_job(sessions, settings, bucket, uid)

        self._run: Callable[..., Any] = huey.task(name="fold.run_job")(run)
        # Every minute, a worker sends again the jobs whose worker went away.
        huey.periodic_task(crontab(minute="*"), name="fold.recover_jobs")(self.recover)
        # Every minute, a worker takes the due scheduled snapshots and prunes old ones.
        huey.periodic_task(crontab(minute="*"), name="fold.segment_snapshots")(self.snapshots)
        # Every hour, export files older than FOLD_EXPORT_RETENTION_DAYS go.
        huey.periodic_task(crontab(minute="7"), name="fold.purge_exports")(self.purge_exports)
        # Every minute, segments with mailchimp_sync whose sync is due get one.
        huey.periodic_task(crontab(minute="*"), name="fold.mailchimp_syncs")(self.mailchimp_syncs)

    def send(self, bucket: str, uid: str) -> None:
        self._run(bucket, uid)

    def send_after_commit(self, session: Session, bucket: str, uid: str) -> None:
        """Queue the job once `session` commits; a rollback drops it."""
        after_commit(session, lambda: self.send(bucket, uid))

    def recover(self) -> int:
        """Send again every live job whose worker went away (lease ran out, or its process on
        this host is gone) or that was never picked up; the lease makes a duplicate
        harmless."""
        now = utcnow()
        with unit_of_work(self.sessions) as session:
            held = session.execute(
                select(Job.bucket, Job.uid, Job.worker).where(
                    Job.status.in_(LIVE), Job.lease_until >= now, Job.worker.is_not(None)
                )
            ).all()
            for bucket, uid, holder in held:
                if holder_gone(holder):
                    log.info("job %s/%s: its worker %s is gone", bucket, uid, holder)
                    session.execute(
                        update(Job)
                        .where(Job.bucket == bucket, Job.uid == uid, Job.worker == holder)
                        .values(lease_until=now - timedelta(seconds=1))
                    )
        with unit_of_work(self.sessions) as session:
            stale = session.execute(
                select(Job.bucket, Job.uid).where(
                    Job.status.in_(LIVE),
                    or_(
                        Job.lease_until < now,
                        (Job.lease_until.is_(None)) & (Job.created < now - STALE_CREATED),
                    ),
                )
            ).all()
        for bucket, uid in stale:
            log.info("resuming job %s/%s", bucket, uid)
            self.send(bucket, uid)
        return len(stale)

    def snapshots(self) -> int:
        """Take the segment snapshots whose schedule is due (fold.segments.tasks)."""
        return run_snapshots(self.sessions)

    def purge_exports(self) -> int:
        return purge(self.sessions, self.settings)

    def mailchimp_syncs(self) -> int:
        from fold.mailchimp.tasks import start_due_syncs  # the sync's modules import this one

        return start_due_syncs(self.sessions, self.settings, self)

    def consumer(self, workers: int = 2, *, embedded: bool = False) -> Any:
        """Huey's consumer; embedded in a server, it leaves signals to the server."""
        kind = EmbeddedConsumer if embedded else Consumer
        # Redis hands a task over at once (a blocking pop); the SQLite queue is polled, so
        # poll it often enough that a queued job starts within a fraction of a second.
        polling = {} if self.settings.redis_url else {"initial_delay": 0.05, "max_delay": 0.2}
        return kind(self.huey, workers=workers, worker_type="thread", periodic=True, **polling)
