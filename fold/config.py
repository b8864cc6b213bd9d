"""Configuration read from FOLD_* environment variables, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = Path("var")
OFF = ("0", "off", "false", "no")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Everything an operator can set; see the README's configuration table."""

    database_url: str
    redis_url: str | None = None
    rate_limit_per_minute: int = 1200
    max_body_bytes: int = 1_048_576
    max_import_bytes: int = 256 * 1_048_576
    allow_private_webhooks: bool = False
    queue: str = "auto"  # "auto": Redis when redis_url is set, else SQLite; "immediate": inline
    data_dir: str = "var"
    job_lease_seconds: int = 60
    webhook_timeout: float = 10.0
    webhook_concurrency: int = 8
    columns: bool = True  # answer segment counts and pages from the in-memory column index
    columns_max_records: int = 5_000_000  # records the column index holds, all buckets
    # Where the column index keeps its stores on disk (fold.columns.persist); None: memory.
    columns_dir: str | None = None
    import_workers: int = 1  # processes that make import rows ready beside the writer
    # Encrypts the per-bucket settings store and signs unsubscribe and acknowledgement
    # links; unset, a key is made once in `data_dir/secret.key`.
    secret_key: str | None = field(default=None, repr=False)
    public_url: str = "http://127.0.0.1:8000"  # where message links point
    smtp_attempts: int = 4  # tries per email on temporary (4xx) refusals and lost connections
    smtp_backoff: float = 0.5  # seconds before the second try, doubling after
    export_retention_days: int = 30  # export files are removed this many days after
    statement_timeout: float = 30.0  # seconds one query of the server may run (503 after)
    lock_timeout: float = 10.0  # seconds a write waits for a lock (503 with Retry-After after)
    login_failures_per_user: int = 5  # failed sign-ins per username per window, then 429
    login_failures_per_address: int = 20  # failed sign-ins per client address per window
    login_window_seconds: int = 300
    mailchimp_backoff: float = 0.5  # seconds before retrying a 429 without Retry-After, doubling
    mailchimp_sync_interval: int = 0  # minutes between scheduled syncs; 0: no schedule
    mailchimp_sync_delay: int = 60  # seconds a changed segment stays quiet before it syncs
    xero_calls_per_minute: int = 60  # per tenant and process: Xero's own minute limit
    xero_backoff: float = 1.0  # seconds before retrying a 429 without Retry-After, doubling

    def columns_directory(self) -> Path | None:
        return Path(self.columns_dir) if self.columns_dir else None

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("FOLD_DATA_DIR", str(DEFAULT_DATA_DIR)))
        default_db = f"sqlite:///{data_dir / 'fold.db'}"
        return cls(
            database_url=os.environ.get("FOLD_DATABASE_URL") or default_db,
            redis_url=os.environ.get("FOLD_REDIS_URL") or None,
            rate_limit_per_minute=_int("FOLD_RATE_LIMIT_PER_MINUTE", 1200),
            max_body_bytes=_int("FOLD_MAX_BODY_BYTES", 1_048_576),
            max_import_bytes=_int("FOLD_MAX_IMPORT_BYTES", 256 * 1_048_576),
            allow_private_webhooks=os.environ.get("FOLD_ALLOW_PRIVATE_WEBHOOKS", "") == "1",
            queue=os.environ.get("FOLD_QUEUE", "auto"),
            data_dir=str(data_dir),
            job_lease_seconds=_int("FOLD_JOB_LEASE_SECONDS", 60),
            webhook_timeout=float(_int("FOLD_WEBHOOK_TIMEOUT", 10)),
            webhook_concurrency=_int("FOLD_WEBHOOK_CONCURRENCY", 8),
            columns=os.environ.get("FOLD_COLUMNS", "on").strip().lower() not in OFF,
            columns_max_records=_int("FOLD_COLUMNS_MAX_RECORDS", 5_000_000),
            columns_dir=_columns_dir(data_dir),
            import_workers=_int("FOLD_IMPORT_WORKERS", 1),
            secret_key=os.environ.get("FOLD_SECRET_KEY") or None,
            smtp_attempts=_int("FOLD_SMTP_ATTEMPTS", 4),
            smtp_backoff=_int("FOLD_SMTP_BACKOFF_MS", 500) / 1000,
            mailchimp_backoff=_int("FOLD_MAILCHIMP_BACKOFF_MS", 500) / 1000,
            mailchimp_sync_interval=_int("FOLD_MAILCHIMP_SYNC_INTERVAL", 0),
            mailchimp_sync_delay=_int("FOLD_MAILCHIMP_SYNC_DELAY", 60),
            xero_calls_per_minute=_int("FOLD_XERO_CALLS_PER_MINUTE", 60),
            xero_backoff=_int("FOLD_XERO_BACKOFF_MS", 1000) / 1000,
            public_url=(os.environ.get("FOLD_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            export_retention_days=_int("FOLD_EXPORT_RETENTION_DAYS", 30),
            statement_timeout=float(_int("FOLD_STATEMENT_TIMEOUT", 30)),
            lock_timeout=float(_int("FOLD_LOCK_TIMEOUT", 10)),
            login_failures_per_user=_int("FOLD_LOGIN_FAILURES_PER_USER", 5),
            login_failures_per_address=_int("FOLD_LOGIN_FAILURES_PER_ADDRESS", 20),
            login_window_seconds=_int("FOLD_LOGIN_WINDOW_SECONDS", 300),
        )


def _columns_dir(data_dir: Path) -> str | None:
    """FOLD_COLUMNS_DIR, `off` to keep the column index in memory only; default beside
    the data directory's database."""
    value = os.environ.get("FOLD_COLUMNS_DIR", "").strip()
    if value.lower() in OFF:
        return None
    return value or str(data_dir / "columns")
