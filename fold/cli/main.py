"""`fold`: serve, migrate, demo, keys, users, import and export. Settings: FOLD_* variables."""

from __future__ import annotations

import functools
import getpass
import io
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fold.columns.index import ColumnIndex, Options
from fold.config import Settings
from fold.db import migrate as migrations
from fold.db.engine import make_engine, make_sessionmaker, server_limits, unit_of_work
from fold.errors import FoldError
from fold.records import clock, prepare
from fold.rules.sqlite import FUNCTIONS as SQLITE_FUNCTIONS

F = TypeVar("F", bound=Callable[..., Any])
CLI_USER = "/system/user/cli/"


def friendly_errors(func: F) -> F:
    """A FoldError becomes one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FoldError as exc:
            where = f" ({exc.param})" if exc.param else ""
            click.echo(f"error{where}: {exc.description}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


class Context:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._engine: Engine | None = None
        self.columns = ColumnIndex(Options.from_settings(self.settings))
        prepare.configure(workers=self.settings.import_workers)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(
                self.settings.database_url, sqlite_functions=SQLITE_FUNCTIONS
            )
        return self._engine

    def dispose(self) -> None:
        """Close the connections this context opened (before forking)."""
        if self._engine is not None:
            self._engine.dispose()

    def migrated(self, *, writes: bool = False) -> sessionmaker[Session]:
        """Sessions on the migrated database; `writes` for a command that reads and then
        writes (on SQLite BEGIN IMMEDIATE: a deferred transaction whose read a running
        server's commit overtook would fail its first write at once, "database is
        locked", where this one waits its turn)."""
        migrations.upgrade(self.engine)
        factory = make_sessionmaker(self.engine, writes=writes)
        return self.columns.attach(clock.install(factory))


pass_context = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Fold, a segments service for membership CRMs.

    Configure with FOLD_DATABASE_URL (default: SQLite under ./var) and FOLD_REDIS_URL."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--worker/--no-worker",
    default=None,
    help="Run jobs in this process (default: yes unless FOLD_REDIS_URL is set).",
)
@click.option(
    "--workers",
    "processes",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes answering HTTP on the port, forked from one that has made the "
    "application, so they share its memory. Each keeps its own column index over the shared "
    "snapshots and counts stay exact across them; without FOLD_REDIS_URL each keeps its own "
    "rate-limit and login-failure counts. Jobs (unless --no-worker) run in one more process.",
)
@pass_context
def serve(ctx: Context, host: str, port: int, worker: bool | None, processes: int) -> None:
    """Migrate the database, then serve the API and docs (and run jobs, embedded)."""
    import uvicorn

    from fold.web.app import create_app
    from fold.web.prefork import tune_malloc

    tune_malloc()
    ctx.migrated()
    embedded = worker if worker is not None else not ctx.settings.redis_url
    # The server's queries are bounded in time (FOLD_STATEMENT_TIMEOUT, FOLD_LOCK_TIMEOUT).
    engine = make_engine(
        ctx.settings.database_url, server_limits(ctx.settings), sqlite_functions=SQLITE_FUNCTIONS
    )
    if processes == 1:
        app = create_app(ctx.settings, engine, embedded_worker=embedded)
        click.echo(f"Fold on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    click.echo(f"Fold on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    if not ctx.settings.redis_url:
        click.echo(
            f"note: without FOLD_REDIS_URL each of the {processes} processes keeps its own "
            "rate-limit and login-failure counts"
        )
    serve_processes(ctx, engine, host=host, port=port, processes=processes, jobs=embedded)


def serve_processes(
    ctx: Context, engine: Engine, *, host: str, port: int, processes: int, jobs: bool
) -> None:
    """`processes` forked processes answering on one port, sharing the application this
    process makes (`fold.web.prefork`); jobs, when embedded, run in one more forked
    process, as `fold worker` would."""
    from fold.web.app import create_app
    from fold.web.prefork import Role, listening_socket, supervise, uvicorn_role

    settings = ctx.settings
    ctx.dispose()  # no connection crosses a fork
    # Should one have been opened all the same, a forked process leaves it to the parent.
    os.register_at_fork(after_in_child=functools.partial(engine.dispose, close=False))
    app = create_app(settings, engine)
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    roles = [uvicorn_role(app, sock, count=processes)]
    if jobs:
        roles.append(Role("jobs", functools.partial(run_jobs, settings)))
    status = supervise(roles)
    sock.close()
    if status:
        sys.exit(status)


def run_jobs(settings: Settings) -> None:
    """A forked process of `fold serve --workers N` running the embedded jobs until told to
    stop."""
    from fold.jobs.queue import Queue
    from fold.web.prefork import block_stops, wait_for_stop

    block_stops()  # before the consumer's threads start, so that they inherit it
    engine = make_engine(
        settings.database_url, server_limits(settings), sqlite_functions=SQLITE_FUNCTIONS
    )
    queue = Queue(settings, engine, columns=ColumnIndex(Options.from_settings(settings)))
    consumer = queue.consumer(workers=2, embedded=True)
    consumer.start()
    try:
        queue.recover()
        wait_for_stop()
    finally:
        consumer.stop(graceful=True)
        prepare.shutdown()
        engine.dispose()


@cli.command()
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@pass_context
def worker(ctx: Context, workers: int) -> None:
    """Run jobs from the queue (Redis when FOLD_REDIS_URL is set, else var/queue.db).

    Start as many as you like, on any machine that reaches the database and the queue."""
    from fold.jobs.queue import Queue

    ctx.migrated()
    engine = make_engine(
        ctx.settings.database_url, server_limits(ctx.settings), sqlite_functions=SQLITE_FUNCTIONS
    )
    queue = Queue(ctx.settings, engine, columns=ctx.columns)
    resumed = queue.recover()
    click.echo(f"worker: {workers} threads; resumed {resumed} unfinished job(s)")
    queue.consumer(workers=workers).run()


@cli.command()
@pass_context
def migrate(ctx: Context) -> None:
    """Bring the database schema up to date."""
    ctx.migrated()
    click.echo("database is up to date")


@cli.command()
@click.option("--bucket", default="demo", show_default=True)
@click.option("--people", default=10_000, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="Date the data counts back from.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the bucket already has records.")
@pass_context
@friendly_errors
def demo(ctx: Context, bucket: str, people: int, seed: int, today: Any, if_empty: bool) -> None:
    """Fill a bucket with realistic synthetic members, donors and groups."""
    from fold.demo.generate import DemoPlan
    from fold.demo.load import load_demo, record_count

    factory = ctx.migrated()
    if if_empty:
        with unit_of_work(factory) as session:
            if record_count(session, bucket):
                click.echo(f"bucket '{bucket}' already has data; leaving it as it is")
                return
    plan = DemoPlan(people=people, seed=seed, today=today.date() if today else date.today())
    started = time.monotonic()
    with click.progressbar(length=people, label=f"demo → {bucket}", file=sys.stderr) as bar:
        done = 0

        def progress(count: int, _total: int) -> None:
            nonlocal done
            bar.update(count - done)
            done = count

        counts = load_demo(factory, bucket=bucket, plan=plan, progress=progress)
    seconds = time.monotonic() - started
    postcodes = counts.pop("postcode", 0)
    total = sum(counts.values())
    summary = ", ".join(f"{n:,} {t}" for t, n in sorted(counts.items()))
    click.echo(f"made {total:,} records in {seconds:.1f} s ({total / seconds:,.0f}/s): {summary}")
    click.echo(f"loaded {postcodes:,} postcodes into the bucket's postcode table")


@cli.group()
def keys() -> None:
    """Create and revoke API keys."""


@keys.command("create")
@click.option("--bucket", required=True)
@click.option("--policy", required=True, type=click.Choice(["admin", "editor", "viewer"]))
@click.option("--name", default="", help="A note to recognise the key by.")
@pass_context
@friendly_errors
@click.option(
    "--save",
    "save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the key in this file (mode 600) and reuse it while it is live.",
)
def keys_create(ctx: Context, bucket: str, policy: str, name: str, save: Path | None) -> None:
    """Create a key; it is shown once, alone on the last line.

    With --save, a live key already in the file for this bucket and policy is shown again
    instead of making a new one (what `make run` does)."""
    from fold.auth.service import create_key, live_policy

    sessions = ctx.migrated(writes=True)
    if save is not None and save.is_file():
        kept = save.read_text().strip()
        with unit_of_work(sessions) as session:
            if live_policy(session, key=kept, bucket=bucket) == policy:
                click.echo(f"reusing the {policy} key on bucket {bucket} kept in {save}")
                click.echo(kept)
                return
    with unit_of_work(sessions) as session:
        new = create_key(session, bucket=bucket, policy=policy, name=name)
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        save.touch(mode=0o600)
        save.chmod(0o600)
        save.write_text(new.key + "\n")
        click.echo(f"key id {new.id}: {policy} on bucket {bucket}, kept in {save}.")
    else:
        click.echo(
            f"key id {new.id}: {policy} on bucket {bucket}. Keep the key; it is not shown again."
        )
    click.echo(new.key)


@keys.command("list")
@click.option("--bucket", help="Only keys with access to this bucket.")
@pass_context
@friendly_errors
def keys_list(ctx: Context, bucket: str | None) -> None:
    """List keys: id, name, grants, created and revoked (never the key itself)."""
    from fold.auth.service import list_keys

    with unit_of_work(ctx.migrated()) as session:
        found = list_keys(session, bucket=bucket)
    if not found:
        click.echo("no keys")
        return
    for key in found:
        grants = ", ".join(f"{b}:{p}" for b, p in key.grants) or "no buckets"
        owner = f" user {key.username}" if key.username else ""
        state = f"revoked {key.revoked}" if key.revoked else "live"
        click.echo(f"{key.id}  {key.name or '-'}{owner}  {grants}  created {key.created}  {state}")


@keys.command("revoke")
@click.argument("key_or_id")
@pass_context
@friendly_errors
def keys_revoke(ctx: Context, key_or_id: str) -> None:
    """Revoke a key, named by the key itself or by its id."""
    from fold.auth.service import revoke_key

    with unit_of_work(ctx.migrated(writes=True)) as session:
        key_id = revoke_key(session, key_or_id=key_or_id)
    click.echo(f"revoked key {key_id}")


@cli.group()
def users() -> None:
    """Manage users who sign in with a password."""


@users.command("add")
@click.argument("username")
@click.option("--bucket", required=True)
@click.option("--policy", required=True, type=click.Choice(["admin", "editor", "viewer"]))
@click.option("--password", help="Read from FOLD_PASSWORD or asked for when not given.")
@pass_context
@friendly_errors
def users_add(ctx: Context, username: str, bucket: str, policy: str, password: str | None) -> None:
    """Add a user (or change their password and policy on a bucket)."""
    from fold.auth.service import add_user

    secret = password or os.environ.get("FOLD_PASSWORD")
    if not secret:
        secret = getpass.getpass("Password: ")
    with unit_of_work(ctx.migrated(writes=True)) as session:
        add_user(session, username=username, password=secret, bucket=bucket, policy=policy)
    click.echo(f"user {username}: {policy} on bucket {bucket}")


@cli.command("import")
@click.argument("bucket")
@click.argument("resource_type")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv"]), help="Default: by suffix.")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@pass_context
@friendly_errors
def import_file(
    ctx: Context, bucket: str, resource_type: str, file: Path, fmt: str | None, batch_size: int
) -> None:
    """Upsert records from an NDJSON or CSV file; bad rows are listed, good rows kept."""
    from fold.buckets.service import ensure_bucket
    from fold.db.bulk import analyze
    from fold.fields.service import check_resource_type, schema_for
    from fold.records.bulk import ImportResult, csv_rows, import_rows, ndjson_rows

    check_resource_type(resource_type)
    fmt = fmt or ("csv" if file.suffix.lower() == ".csv" else "ndjson")
    factory = ctx.migrated()
    size = file.stat().st_size
    session = factory()
    started = time.monotonic()
    try:
        ensure_bucket(session, bucket)
        schema = schema_for(session, bucket=bucket, resource_type=resource_type)
        session.commit()
        with (
            file.open("rb") as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle,
            click.progressbar(length=size, label=f"import → {bucket}", file=sys.stderr) as bar,
        ):
            done = 0

            def after_batch(_result: ImportResult) -> None:
                nonlocal done
                session.commit()
                session.expunge_all()
                position = min(size, raw.tell())
                bar.update(position - done)
                done = position

            rows = csv_rows(handle) if fmt == "csv" else ndjson_rows(handle)
            result = import_rows(
                session,
                bucket=bucket,
                user_uri=CLI_USER,
                schema=schema,
                rows=rows,
                batch_size=batch_size,
                after_batch=after_batch,
            )
            bar.update(size - done)
        analyze(session, "records", "audit_entries")
        session.commit()
    finally:
        session.close()
    seconds = max(time.monotonic() - started, 1e-9)
    click.echo(
        f"{result.rows:,} rows in {seconds:.1f} s ({result.rows / seconds:,.0f} rows/s): "
        f"{result.created:,} created, {result.updated:,} updated, {result.failed:,} failed"
    )
    for error in result.errors[:50]:
        param = f" [{error['param']}]" if error["param"] else ""
        click.echo(f"  line {error['row']}{param}: {error['error']}")
    if result.failed > 50:
        click.echo(f"  … and {result.failed - 50:,} more")
    if result.failed:
        sys.exit(1)


@cli.command("export")
@click.argument("bucket")
@click.argument("segment")
@click.option("--format", "fmt", required=True, type=click.Choice(["csv", "xlsx", "pdf", "labels"]))
@click.option("--template", help="A fieldset (name or uid) for the columns.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Default: the segment's name and today's date, in this folder.",
)
@click.option(
    "--gdpr-channel",
    type=click.Choice(["email", "post", "sms", "all"]),
    help="Leave out who opted out of this channel (default: post for labels, else all).",
)
@click.option(
    "--gdpr-bypass-reason",
    help="Include contacts who opted out; the reason goes into the audit trail.",
)
@pass_context
@friendly_errors
def export(
    ctx: Context,
    bucket: str,
    segment: str,
    fmt: str,
    template: str | None,
    out: Path | None,
    gdpr_channel: str | None,
    gdpr_bypass_reason: str | None,
) -> None:
    """Export a segment (uid or exact name) to a file, with a progress bar; the same
    columns and GDPR rules as the API."""
    from fold.auth.policies import Caller
    from fold.exports.run import SUFFIXES, Counts
    from fold.exports.service import export_to_file, file_name

    caller = Caller(bucket, "admin", CLI_USER)
    params: dict[str, Any] = {"gdpr_channel": gdpr_channel}
    if gdpr_bypass_reason:
        params.update(gdpr_bypass=True, gdpr_bypass_reason=gdpr_bypass_reason)
    target = out or Path(file_name(segment, fmt, date.today()))
    if target.suffix.lower() != f".{SUFFIXES[fmt]}":
        click.echo(f"note: a {fmt} export is a .{SUFFIXES[fmt]} file", err=True)
    factory = ctx.migrated()
    started = time.monotonic()
    partial = target.with_name(target.name + ".part")
    with click.progressbar(length=1, label=f"export {fmt}", file=sys.stderr) as bar:
        done = 0

        def begin(total: int) -> None:
            bar.length = max(total, 1)

        def progress(counts: Counts) -> bool:
            nonlocal done
            bar.update(counts.read - done)
            done = counts.read
            return True

        try:
            with partial.open("wb") as handle:
                counts = export_to_file(
                    factory, caller=caller, segment_ref=segment, fmt=fmt, template=template,
                    params=params, out=handle, started=begin, progress=progress,
                )  # fmt: skip
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        bar.update(counts.read - done)
    partial.replace(target)
    seconds = max(time.monotonic() - started, 1e-9)
    channel = gdpr_channel or ("post" if fmt == "labels" else "all")
    click.echo(
        f"{counts.rows:,} rows to {target} in {seconds:.1f} s ({counts.rows / seconds:,.0f} "
        f"rows/s); left out: {counts.left_out_gdpr:,} who opted out of {channel}, "
        f"{counts.left_out_no_address:,} without a postal address; "
        f"{counts.bypassed:,} who opted out included by bypass"
    )


def _server_processes(section: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`fold bench`'s --writers-workers and --tenants-workers."""
    return click.option(
        f"--{section}-workers",
        default=1,
        show_default=True,
        type=click.IntRange(1, 16),
        help=f"Server processes for the {section} section (fold serve --workers).",
    )


@cli.group(invoke_without_command=True)
@click.option("--people", default=1_000_000, show_default=True, type=click.IntRange(100, 5_000_000))
@click.option(
    "--other-people",
    default=100_000,
    show_default=True,
    type=click.IntRange(100, 5_000_000),
    help="People in the second bucket.",
)
@click.option(
    "--runs",
    default=9,
    show_default=True,
    type=click.IntRange(3, 200),
    help="Timed runs per measure.",
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--bucket", help="Time this existing bucket's people instead (e.g. demo).")
@click.option(
    "--only",
    multiple=True,
    help="Time only the cases whose names contain this (repeatable); skips write costs, and "
    "the target sections unless --sections names them.",
)
@click.option(
    "--sections",
    default="pages,warm,processes,writers",
    show_default=True,
    help="Target sections to run besides the suite: pages, warm, processes, writers, jobs "
    "(or none).",
)
@click.option("--jobs", is_flag=True, help="Also run bulk jobs on every person (and undo them).")
@click.option("--writers-seconds", default=5.0, show_default=True, type=click.FloatRange(0.5, 600))
@_server_processes("writers")
@click.option(
    "--tenants",
    default=0,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Buckets for the many-tenants section (0: skip it).",
)
@click.option(
    "--tenant-people", default=4_000, show_default=True, type=click.IntRange(100, 1_000_000)
)
@click.option("--tenants-seconds", default=60.0, show_default=True, type=click.FloatRange(1, 3600))
@_server_processes("tenants")
@click.option(
    "--references/--no-references",
    default=True,
    show_default=True,
    help="Time the JSON-path scan and DuckDB beside each count (minutes at a million).",
)
@click.option(
    "--output",
    default="bench-results.json",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
@click.pass_context
def bench(
    click_ctx: click.Context,
    people: int,
    other_people: int,
    runs: int,
    seed: int,
    output: Path,
    bucket: str | None,
    only: tuple[str, ...],
    sections: str,
    jobs: bool,
    writers_seconds: float,
    writers_workers: int,
    tenants: int,
    tenant_people: int,
    tenants_seconds: float,
    tenants_workers: int,
    references: bool,
) -> None:
    """Time the segment suite on a bucket of N people (made by `fold demo`, or reused),
    beside the plain JSON-path scan and DuckDB over the same records; then write costs
    and each issue-18 target (warm start, processes, deep pages, contact segments, bulk
    jobs, writers, tenants) beside its measured figure. Results print as tables and are
    written as JSON."""
    if click_ctx.invoked_subcommand is not None:
        return
    import json

    from fold.bench.segments import ALL_SECTIONS, run

    chosen = {p.strip() for p in sections.split(",") if p.strip() and p.strip() != "none"}
    unknown = chosen - ALL_SECTIONS
    if unknown:
        raise click.BadParameter(
            f"{', '.join(sorted(unknown))}: not a section ({', '.join(sorted(ALL_SECTIONS))})",
            param_hint="--sections",
        )
    if only and click_ctx.get_parameter_source("sections") is ParameterSource.DEFAULT:
        chosen = set()  # just the cases asked for
    if jobs:
        chosen.add("jobs")

    ctx = click_ctx.ensure_object(Context)
    factory = ctx.migrated()
    results = run(
        factory,
        ctx.engine,
        ctx.settings,
        people=people,
        other_people=other_people,
        runs=runs,
        seed=seed,
        say=click.echo,
        bucket=bucket,
        only=only,
        sections=frozenset(chosen),
        writers_seconds=writers_seconds,
        writers_workers=writers_workers,
        tenants=tenants,
        tenant_people=tenant_people,
        tenants_seconds=tenants_seconds,
        tenants_workers=tenants_workers,
        references=references,
    )
    summary = results["summary"]
    click.echo("summary: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    if results["count_mismatches_with_duckdb"]:
        click.echo(f"counts that differ from DuckDB's: {results['count_mismatches_with_duckdb']}")
    output.write_text(json.dumps(results, indent=2))
    click.echo(f"wrote {output}")


@bench.command("jobs")
@click.option("--people", default=100_000, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 2500))
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write results as JSON."
)
@pass_context
@friendly_errors
def bench_jobs(ctx: Context, people: int, batch_size: int, output: Path | None) -> None:
    """Records per second for add_tag, set-single-field and remove_tag jobs."""
    import json

    from fold.bench.jobs import run

    factory = ctx.migrated()
    results = run(factory, ctx.settings, people=people, batch_size=batch_size, say=click.echo)
    if output is not None:
        output.write_text(
            json.dumps(
                {"database": ctx.engine.dialect.name, "people": people, "results": results},
                indent=2,
            )
        )


@bench.command("exports")
@click.option("--people", default=100_000, show_default=True, type=click.IntRange(1, 5_000_000))
@click.option("--bucket", help="Export this existing bucket's people (default: a demo bucket).")
@click.option(
    "--formats",
    default="csv,xlsx,pdf,labels",
    show_default=True,
    help="Comma-separated: csv, xlsx, pdf, labels.",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write results as JSON."
)
@pass_context
@friendly_errors
def bench_exports(
    ctx: Context, people: int, bucket: str | None, formats: str, output: Path | None
) -> None:
    """Rows per second and memory growth of each export format on N demo people."""
    import json

    from fold.bench.exports import run
    from fold.exports.run import FORMATS

    chosen = tuple(f.strip() for f in formats.split(",") if f.strip())
    for fmt in chosen:
        if fmt not in FORMATS:
            raise click.BadParameter(
                f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--formats"
            )
    factory = ctx.migrated()
    results = run(
        factory, ctx.settings.database_url, people=people, bucket=bucket, formats=chosen,
        say=click.echo,
    )  # fmt: skip
    if output is not None:
        output.write_text(
            json.dumps(
                {"database": ctx.engine.dialect.name, "people": people, "results": results},
                indent=2,
            )
        )


@cli.command("webhook-secret")
@click.argument("bucket")
@click.option("--secret", help="Use this secret (16 to 200 characters); default: a new random one.")
@pass_context
@friendly_errors
def webhook_secret(ctx: Context, bucket: str, secret: str | None) -> None:
    """Set the secret that signs a bucket's JSON webhooks (X-Fold-Signature: sha256=HMAC).

    The secret is alone on the last line; give it to the receiving system."""
    from fold.buckets.service import set_webhook_secret

    with unit_of_work(ctx.migrated(writes=True)) as session:
        value = set_webhook_secret(session, bucket, secret)
    click.echo(f"JSON webhooks from bucket {bucket} are now signed with this secret:")
    click.echo(value)


@cli.group()
def postcodes() -> None:
    """Postcode tables for `near` rules."""


@postcodes.command("load")
@click.argument("bucket")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
@friendly_errors
def postcodes_load(ctx: Context, bucket: str, file: Path) -> None:
    """Replace a bucket's postcode table from a CSV with a postcode,lat,lng header."""
    from fold.buckets.service import ensure_bucket
    from fold.segments.postcodes import load_postcodes

    factory = ctx.migrated(writes=True)
    with unit_of_work(factory) as session, file.open(encoding="utf-8-sig", newline="") as f:
        ensure_bucket(session, bucket)
        result = load_postcodes(session, bucket=bucket, lines=f)
    click.echo(f"loaded {result.loaded:,} postcodes into {bucket}; {result.failed:,} rows refused")
    for error in result.errors:
        click.echo(f"  {error}")
    if result.failed:
        sys.exit(1)


@bench.command("messages")
@click.option("--contacts", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(1, 2500))
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write results as JSON."
)
@pass_context
@friendly_errors
def bench_messages(ctx: Context, contacts: int, batch_size: int, output: Path | None) -> None:
    """Emails per second from a templated email job to a local SMTP server it starts."""
    import json

    from fold.bench.messages import run

    factory = ctx.migrated()
    result = run(factory, ctx.settings, contacts=contacts, batch_size=batch_size, say=click.echo)
    if output is not None:
        output.write_text(json.dumps(result, indent=2))


@cli.group("settings")
def settings_group() -> None:
    """A bucket's outside-service settings (smtp, sms, mailchimp, xero), encrypted at rest."""


def _option_values(section: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    from fold.settings.sections import SECTIONS

    secret = {o.name for o in SECTIONS.get(section, ()) if o.secret}
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: give options as name=value", param_hint="OPTIONS")
        if name in secret and value == "-":
            # Secrets typed in or piped, never on the command line (where `ps` shows them).
            value = (
                click.prompt(name, hide_input=True)
                if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\n")
            )
        values[name] = value
    return values


def _show(described: dict[str, Any]) -> None:
    state = "set" if described["configured"] else "not set (messages go to the local outbox)"
    click.echo(f"[{described['section']}] {state}")
    for name, value in described["values"].items():
        click.echo(f"  {name} = {value}")
    for name, is_set in described["secrets_set"].items():
        click.echo(f"  {name} = {'(set, hidden)' if is_set else '(not set)'}")


@settings_group.command("set")
@click.argument("bucket")
@click.argument("section")
@click.argument("options", nargs=-1)
@click.option("--replace", is_flag=True, help="Options not given go back to their defaults.")
@pass_context
@friendly_errors
def settings_set(
    ctx: Context, bucket: str, section: str, options: tuple[str, ...], replace: bool
) -> None:
    """Set options: `fold settings set demo smtp host=mail.example.org port=587
    username=fold password=- from_address=office@example.org` (a secret given as `-` is
    read from standard input, or asked for)."""
    from fold.auth.policies import Caller
    from fold.buckets.service import ensure_bucket
    from fold.settings import service

    caller = Caller(bucket=bucket, policy="admin", user_uri=CLI_USER)
    values = _option_values(section, options)
    with unit_of_work(ctx.migrated(writes=True)) as session:
        ensure_bucket(session, bucket)
        described = service.put(
            session, ctx.settings, caller=caller, section=section, params=values, replace=replace
        )
    _show(described)


@settings_group.command("show")
@click.argument("bucket")
@click.argument("section", required=False)
@pass_context
@friendly_errors
def settings_show(ctx: Context, bucket: str, section: str | None) -> None:
    """Show a bucket's settings; secrets only say whether they are set."""
    from fold.auth.policies import Caller
    from fold.settings import service

    caller = Caller(bucket=bucket, policy="admin", user_uri=CLI_USER)
    with unit_of_work(ctx.migrated()) as session:
        if section:
            _show(service.describe(session, ctx.settings, caller=caller, section=section))
        else:
            for described in service.describe_all(session, ctx.settings, caller=caller)["sections"]:
                _show(described)


@settings_group.command("clear")
@click.argument("bucket")
@click.argument("section")
@pass_context
@friendly_errors
def settings_clear(ctx: Context, bucket: str, section: str) -> None:
    """Forget a section's settings."""
    from fold.auth.policies import Caller
    from fold.settings import service

    caller = Caller(bucket=bucket, policy="admin", user_uri=CLI_USER)
    with unit_of_work(ctx.migrated(writes=True)) as session:
        _show(service.clear(session, ctx.settings, caller=caller, section=section))


@cli.group("mailchimp")
def mailchimp_group() -> None:
    """A bucket's Mailchimp connection (API key and audience), encrypted at rest."""


@mailchimp_group.command("set")
@click.argument("bucket")
@click.argument("options", nargs=-1)
@pass_context
@friendly_errors
def mailchimp_set(ctx: Context, bucket: str, options: tuple[str, ...]) -> None:
    """Set the Mailchimp settings: `fold mailchimp set demo api_key=- audience_id=abc123`
    (the key, with its data-centre suffix, read from standard input or asked for; add
    base_url=... for a stand-in server)."""
    from fold.auth.policies import Caller
    from fold.buckets.service import ensure_bucket
    from fold.settings import service

    caller = Caller(bucket=bucket, policy="admin", user_uri=CLI_USER)
    values = _option_values("mailchimp", options)
    with unit_of_work(ctx.migrated(writes=True)) as session:
        ensure_bucket(session, bucket)
        described = service.put(
            session, ctx.settings, caller=caller, section="mailchimp", params=values
        )
    _show(described)


@bench.command("mailchimp")
@click.option("--contacts", default=12_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write results as JSON."
)
@pass_context
@friendly_errors
def bench_mailchimp(ctx: Context, contacts: int, output: Path | None) -> None:
    """Contacts per second synced to a local Mailchimp stand-in it starts (first run and an
    unchanged re-run)."""
    import json

    from fold.bench.mailchimp import run

    factory = ctx.migrated()
    result = run(factory, ctx.settings, contacts=contacts, say=click.echo)
    if output is not None:
        output.write_text(json.dumps(result, indent=2))


@cli.group("xero")
def xero_group() -> None:
    """A bucket's Xero connection (a custom connection's client id and secret, the tenant
    and default codes), encrypted at rest."""


@xero_group.command("set")
@click.argument("bucket")
@click.argument("options", nargs=-1)
@pass_context
@friendly_errors
def xero_set(ctx: Context, bucket: str, options: tuple[str, ...]) -> None:
    """Set the Xero settings: `fold xero set demo client_id=ABC client_secret=-
    tenant_id=... default_account_code=200 default_tax_type=OUTPUT2` (the secret read from
    standard input or asked for; identity_url=... and api_url=... for a stand-in server).
    Options not given keep their values."""
    from fold.auth.policies import Caller
    from fold.buckets.service import ensure_bucket
    from fold.settings import service

    caller = Caller(bucket=bucket, policy="admin", user_uri=CLI_USER)
    values = _option_values("xero", options)
    with unit_of_work(ctx.migrated(writes=True)) as session:
        ensure_bucket(session, bucket)
        described = service.put(session, ctx.settings, caller=caller, section="xero", params=values)
    _show(described)


@bench.command("xero")
@click.option("--contacts", default=2_000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option(
    "--paced",
    default=100,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Contacts invoiced at Xero's real limit of 60 calls a minute (0: skip that run).",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write results as JSON."
)
@pass_context
@friendly_errors
def bench_xero(ctx: Context, contacts: int, paced: int, output: Path | None) -> None:
    """Invoices per second raised in a local Xero stand-in it starts: with the limits
    lifted, and at Xero's own limits."""
    import json

    from fold.bench.xero import run

    factory = ctx.migrated()
    result = run(factory, ctx.settings, contacts=contacts, paced=paced, say=click.echo)
    if output is not None:
        output.write_text(json.dumps(result, indent=2))


@cli.command("outbox")
@click.option("--bucket", help="Only this bucket's messages.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
@pass_context
def outbox_list(ctx: Context, bucket: str | None, limit: int) -> None:
    """List the messages written to the local outbox (no SMTP server or SMS provider set)."""
    from fold.messages.outbox import entries

    found = list(entries(ctx.settings.data_dir, bucket))
    if not found:
        click.echo(f"the outbox under {ctx.settings.data_dir}/outbox is empty")
        return
    for entry in found[-limit:]:
        click.echo(f"{entry.bucket}\t{entry.channel}\t{entry.to}\t{entry.subject}\t{entry.path}")
    click.echo(
        f"{len(found):,} messages in the outbox; the newest {min(limit, len(found)):,} shown"
    )


if __name__ == "__main__":
    cli()
