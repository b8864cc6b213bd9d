"""Which stores an application keeps, and counting and paging through them."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, literal, select
from sqlalchemy.orm import Session, sessionmaker

from fold.columns import catalogue
from fold.columns.persist import Snapshots, database_identity
from fold.columns.store import DISPLAY, Mask, Rank, Store
from fold.columns.vector import Lists, Unsupported, evaluate, paths
from fold.config import Settings
from fold.db.bulk import no_cycle_collection
from fold.db.engine import small_cache
from fold.db.models import Record
from fold.records import clock
from fold.rules.filter import SYSTEM_KINDS, Node
from fold.rules.nodes import related_paths, typed

log = logging.getLogger("fold.columns")

# A page further in than this, when rows written since its sort's order was read match,
# goes to SQL (the index would hand the database every candidate before it).
MAX_PAGE_END = 5_000
# Fewer rows than this are searched one by one; more use the store's word index.
FEW_ROWS = 20_000
# Rows written since a sort's order was read, beyond which the order is read again.
MAX_DIRTY = 5_000
# Rows one catch-up applies, from which the store is saved again (fold.columns.persist).
RESAVE_AFTER = 50_000
# Seconds between a store's attempts to share the rows it holds of its own (Saver.share).
SHARE_EVERY = 10.0
# Rows from which a store kept on disk gets a catalogue in the background. A smaller one
# reads a path no rule has used from SQL quickly (about 0.1 s at 50,000 rows), and making
# catalogues for hundreds of small tenants' stores took the cores their requests needed.
CATALOGUE_AT_LEAST = 50_000


@dataclass(frozen=True)
class Options:
    enabled: bool = True
    max_records: int = 5_000_000
    # Where stores are kept on disk (fold.columns.persist); None: in memory only.
    directory: Path | None = None
    # How stores kept on disk get their catalogue (Cataloguer): background, inline, off;
    # in the background, for stores of `catalogue_at_least` rows or more.
    catalogue: str = "background"
    catalogue_at_least: int = CATALOGUE_AT_LEAST

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        return cls(
            enabled=settings.columns,
            max_records=settings.columns_max_records,
            directory=settings.columns_directory(),
        )


_INDEX = "fold_columns"  # the ColumnIndex a session's factory was attached to


class ColumnIndex:
    """The stores one application keeps, per engine (bounded by `max_records`). The
    application owns it (`app.state.columns`; the CLI and a job worker make their own) and
    attaches it to the session factories whose sessions may use it."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self._stores: weakref.WeakKeyDictionary[Engine, OrderedDict[tuple[str, str], Store]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        directory = self.options.directory
        self.snapshots = None if directory is None else Snapshots(directory)
        self._identities: weakref.WeakKeyDictionary[Engine, str | None] = (
            weakref.WeakKeyDictionary()
        )
        self.cataloguer = Cataloguer(self.options.catalogue, self.options.catalogue_at_least)

    def attach(self, factory: sessionmaker[Session]) -> sessionmaker[Session]:
        """Let sessions from `factory` be answered from this index. Their flushes must stamp
        the change clock (`records.clock.install`), or this could answer from before a
        write of their own."""
        if not factory.kw.get("info", {}).get(clock.INSTALLED):
            raise ValueError("install the change clock on a session factory before attaching")
        factory.kw["info"] = {**factory.kw["info"], _INDEX: self}
        return factory

    def holds(self, engine: Engine, bucket: str, resource_type: str) -> bool:
        """Whether a store of this bucket and type is kept."""
        with self._lock:
            return (bucket, resource_type) in self._stores.get(engine, {})

    def seen(self, engine: Engine, bucket: str, resource_type: str) -> clock.Reading | None:
        """The clock value the kept store of this bucket and type has applied; None when
        none is kept."""
        with self._lock:
            stores = self._stores.get(engine)
            store = None if stores is None else stores.get((bucket, resource_type))
            return store.seen if store is not None and store.loaded else None

    def opened(self, session: Session, bucket: str, stored: Sequence[str]) -> clock.Reading | None:
        """`seen` of the store of these types, opened from its snapshot on disk first when
        this process keeps none yet (which maps its files, and reads no row); None when
        there is no snapshot to open, or the index does not serve this session."""
        engine = self._usable(session, bucket, stored)
        if engine is None:
            return None
        store = self._store(engine, bucket, stored)
        connection = session.connection()
        saver = self._saver(engine, connection)
        with store.lock:
            if not store.loaded and saver is not None and saver.open(store, connection):
                gc.freeze()  # as `_catch_up` does: long-lived, cycle-free
            return store.seen if store.loaded else None

    def forget(self, engine: Engine) -> None:
        with self._lock:
            self._stores.pop(engine, None)

    def _usable(self, session: Session, bucket: str, stored: Sequence[str]) -> Engine | None:
        if not self.options.enabled or not stored or clock.wrote(session, bucket):
            return None
        engine = session.get_bind()
        if not isinstance(engine, Engine):
            return None
        if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
            return None
        return engine

    def _store(self, engine: Engine, bucket: str, types: Sequence[str]) -> Store:
        name = "+".join(sorted(types))
        with self._lock:
            stores = self._stores.setdefault(engine, OrderedDict())
            key = (bucket, name)
            store = stores.get(key)
            if store is None:
                store = Store(bucket, name, tuple(sorted(types)))
                stores[key] = store
            stores.move_to_end(key)
            held = sum(s.n for s in stores.values())
            for other in list(stores):
                if held <= self.options.max_records or other == key:
                    continue
                held -= stores.pop(other).n
            return store

    def _drop(self, engine: Engine, store: Store) -> None:
        with self._lock:
            stores = self._stores.get(engine, OrderedDict())
            if stores.get((store.bucket, store.resource_type)) is store:
                del stores[(store.bucket, store.resource_type)]

    @contextmanager
    def matching(
        self,
        session: Session,
        *,
        bucket: str,
        stored: Sequence[str],
        node: Node,
        q: str | None,
        lists: Lists,
        sort_paths: Sequence[str] = (),
    ) -> Iterator[Found | None]:
        """The rows a filter selects (active ones, `q` applied), with the store locked; None
        when the index does not answer this and the caller should ask SQL."""
        engine = self._usable(session, bucket, stored)
        if engine is None:
            yield None
            return
        store = self._store(engine, bucket, stored)
        own = store.resource_type
        # Related-record rules read other types' stores: every store this filter needs is
        # locked in one order (by name), so two requests never wait on each other.
        related = related_paths(typed(node))
        others = {t: self._store(engine, bucket, [t]) for t in related if t != own}
        held = sorted([(own, store), *others.items()], key=lambda pair: pair[0])
        # The request's own connection: a second one per request could run the pool dry
        # while requests wait for this store's lock.
        connection = session.connection()
        saver = self._saver(engine, connection)
        with ExitStack() as locks:
            for _, each in held:
                locks.enter_context(each.lock)
            try:
                # A sort by display value needs no column of it: a written row counts as
                # moved (Store.apply), which the database orders again.
                wanted = _columns_for(paths(node)) | (set(sort_paths) - set(SYSTEM_KINDS))
                _catch_up(store, connection, wanted, saver)
                for kind, other in others.items():
                    _catch_up(other, connection, _columns_for(related[kind]), saver)
                if own in related:
                    _catch_up(store, connection, _columns_for(related[own]), saver)
            except BaseException:
                # Half-read is not a state to answer from: the next use starts again.
                for _, each in held:
                    self._drop(engine, each)
                raise
            stores = {own: store, **others}
            try:
                mask = evaluate(store, node, lists, stores.__getitem__) & store.active
            except Unsupported:
                yield None
                return
            yield Found(store, _search(store, mask, q), connection, saver)

    def _saver(self, engine: Engine, connection: Connection) -> Saver | None:
        if self.snapshots is None:
            return None
        if engine not in self._identities:
            self._identities[engine] = database_identity(connection)
        identity = self._identities[engine]
        return None if identity is None else Saver(self.snapshots, identity, self.cataloguer)


class Cataloguer:
    """Makes the catalogue of stores kept on disk (fold.columns.catalogue): in a thread of
    its own beside requests (`background`, what servers do), or at once in the request
    that read the store (`inline`), or never (`off`). One process makes a store's
    catalogue at a time; the others open it with the store's next snapshot."""

    IDLE = 1.0  # at most half of the time spent making it (Builder.read)

    def __init__(self, mode: str = "background", at_least: int = CATALOGUE_AT_LEAST) -> None:
        if mode not in ("background", "inline", "off"):
            raise ValueError(f"catalogue mode {mode!r}")
        self.mode = mode
        # In the background, stores of fewer rows get none (`CATALOGUE_AT_LEAST`).
        self.at_least = at_least
        self._making: dict[int, threading.Thread] = {}
        # Stores this process has begun a catalogue of (once each: when another process
        # is making it, this one opens it with the store's next snapshot).
        self._begun: weakref.WeakValueDictionary[int, Store] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        # One catalogue made at a time per process: its memory until saved, and a core.
        self._one_at_a_time = threading.Lock()

    def start(self, store: Store, connection: Connection, saver: Saver) -> None:
        """Called with the store's lock held."""
        if self.mode == "off" or store.dormant is not None or not store.loaded:
            return
        if self.mode == "background" and store.n < self.at_least:
            return
        if self.mode == "inline":
            builder = catalogue.Builder(store)
            with small_cache(connection):
                builder.read(connection)
            store.dormant = builder.finish()
            saver.save(store)
            return
        with self._lock:
            if self._begun.get(id(store)) is store:
                return
            self._begun[id(store)] = store
            builder = catalogue.Builder(store)
            thread = threading.Thread(
                target=self._make,
                args=(store, connection.engine, builder, saver),
                name=f"catalogue {store.bucket}/{store.resource_type}",
                daemon=True,
            )
            self._making[id(store)] = thread
        thread.start()

    def _make(self, store: Store, engine: Engine, builder: catalogue.Builder, saver: Saver) -> None:
        try:
            with self._one_at_a_time, saver.snapshots.claim(saver.identity, store) as mine:
                started = time.perf_counter()
                if not mine:
                    return  # another process is making it
                with engine.connect() as connection, small_cache(connection):
                    builder.read(connection, idle=self.IDLE)
                made = builder.finish()
                with store.lock:
                    # Filled afresh meanwhile (Saver.share): its rows may not be the made ones.
                    if store.dormant is None and store.generation == builder.generation:
                        store.dormant = made
                        saver.save(store)
            log.info(
                "column index: catalogue of %s/%s (%d paths) made in %.1f s",
                store.bucket, store.resource_type, len(made.columns),
                time.perf_counter() - started,
            )  # fmt: skip
        except Exception:  # the store answers as before, its paths read from the documents
            log.exception(
                "column index: catalogue of %s/%s not made", store.bucket, store.resource_type
            )
        finally:
            with self._lock:
                self._making.pop(id(store), None)

    def wait(self, timeout: float) -> bool:
        """Wait for the catalogues being made; False if some are still being made."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._making.values())
            if not threads:
                return True
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                with self._lock:
                    return not self._making


@dataclass
class Saver:
    """Opens and saves one database's stores as snapshots (fold.columns.persist)."""

    snapshots: Snapshots
    identity: str
    cataloguer: Cataloguer = field(default_factory=lambda: Cataloguer("off"))

    def open(self, store: Store, connection: Connection) -> bool:
        started = time.perf_counter()
        with no_cycle_collection():
            now = clock.current(connection, store.bucket)
            opened = self.snapshots.open(store, self.identity, now)
        if opened:
            log.info(
                "column index: %s records of %s/%s opened from disk in %.2f s",
                f"{store.n:,}", store.bucket, store.resource_type, time.perf_counter() - started,
            )  # fmt: skip
        return opened

    def share(self, store: Store, connection: Connection) -> None:
        """A store holding rows of its own (past the room of the snapshot it maps, or never
        saved) maps them again: from the store's current snapshot when another process saved
        one since, else from one this process saves now; neither when another process is
        saving it (the next use looks again)."""
        try:
            with self.snapshots.saving(self.identity, store) as mine:
                if not mine:
                    return
                current = self.snapshots.current(self.identity, store)
                if current is None or current == store.snapshot:
                    self.save(store)
                    return
                fresh = Store(store.bucket, store.resource_type, store.types)
                if self.open(fresh, connection):
                    store.take(fresh)  # its refresh applies the rows written since
                else:
                    self.save(store)
        except OSError as exc:  # no lock file (a read-only disk): it stays its own
            log.warning("column index: %s/%s not shared: %s", store.bucket, store.resource_type,
                        exc)  # fmt: skip

    def save(self, store: Store) -> None:
        started = time.perf_counter()
        try:
            self.snapshots.save(store, self.identity)
        except OSError as exc:  # a full or read-only disk costs the next start its speed only
            log.warning("column index: %s/%s not saved: %s", store.bucket, store.resource_type, exc)
            return
        log.info(
            "column index: %s/%s saved in %.2f s",
            store.bucket, store.resource_type, time.perf_counter() - started,
        )  # fmt: skip


@dataclass
class Found:
    store: Store
    mask: Mask
    connection: Connection
    saver: Saver | None = None


@contextmanager
def matching(
    session: Session,
    *,
    bucket: str,
    stored: Sequence[str],
    node: Node,
    q: str | None,
    lists: Lists,
    sort_paths: Sequence[str] = (),
) -> Iterator[Found | None]:
    """`ColumnIndex.matching` on the index the session's factory was attached to; None
    (ask SQL) when it has none."""
    index: ColumnIndex | None = session.info.get(_INDEX)
    if index is None:
        yield None
        return
    with index.matching(
        session, bucket=bucket, stored=stored, node=node, q=q, lists=lists, sort_paths=sort_paths
    ) as found:
        yield found


def _columns_for(fields: set[str]) -> set[str]:
    """The columns reading `fields` takes: document paths, and the display value (Fold's
    other own fields are in every store)."""
    return {f for f in fields if f not in SYSTEM_KINDS or f == DISPLAY}


def _catch_up(
    store: Store, connection: Connection, wanted: set[str], saver: Saver | None = None
) -> None:
    """Open or load the store if new, build the columns `wanted` needs, apply what was
    written; save the store when any of it had to be read from the database."""
    built = False
    if not store.loaded and saver is not None and saver.open(store, connection):
        gc.freeze()
    elif (
        store.loaded
        and saver is not None
        and store.n > store.room
        and time.monotonic() >= store.share_after
    ):
        store.share_after = time.monotonic() + SHARE_EVERY
        saver.share(store, connection)
    if not store.loaded:
        built = True
        started = time.perf_counter()
        with no_cycle_collection(), small_cache(connection):
            store.load(connection)
        log.info(
            "column index: %s records of %s/%s read in %.1f s",
            f"{store.n:,}", store.bucket, store.resource_type, time.perf_counter() - started,
        )  # fmt: skip
        gc.freeze()  # long-lived and cycle-free: later collections need not walk them
    if store.dormant is not None:
        started = time.perf_counter()
        woken = [p for p in wanted if p not in store.columns]
        left = catalogue.wake(store, connection, woken)
        if len(left) < len(woken):
            log.info(
                "column index: %s of %s/%s woken in %.2f s",
                ", ".join(sorted(set(woken) - set(left))), store.bucket, store.resource_type,
                time.perf_counter() - started,
            )  # fmt: skip
    missing = sorted(p for p in wanted if p not in store.columns)
    if missing:
        built = True
        started = time.perf_counter()
        with no_cycle_collection(), small_cache(connection):
            store.ensure_columns(connection, missing)
        log.info(
            "column index: %s of %s/%s built in %.1f s",
            ", ".join(missing), store.bucket, store.resource_type, time.perf_counter() - started,
        )  # fmt: skip
        gc.freeze()
    # Many rows read again (a snapshot long out of date, a job that rewrote the bucket):
    # saved too, so that the next start does not read them again.
    if store.refresh(connection) >= RESAVE_AFTER:
        built = True
    if built and saver is not None:
        saver.save(store)
    if saver is not None and store.dormant is None:
        saver.cataloguer.start(store, connection, saver)


def _search(store: Store, mask: Mask, q: str | None) -> Mask:
    """Every word of `q` in the row's search text, as members.search_condition has it."""
    if not q or not q.strip():
        return mask
    words = q.lower().split()[:8]
    rows = np.flatnonzero(mask)
    if len(rows) > FEW_ROWS:
        for word in words:
            mask = mask & store.word(word)
        return mask
    texts = store.search
    keep = [i for i in rows.tolist() if all(w in texts[i] for w in words)]
    out = np.zeros(store.n, dtype=bool)
    out[keep] = True
    return out


def count(found: Found) -> int:
    return int(np.count_nonzero(found.mask))


def page_uids(
    found: Found, *, sort: tuple[str, ...], order_by: list[Any], offset: int, limit: int
) -> tuple[list[str], bool] | None:
    """The uids that can be on the page, and whether they are already in page order (if
    not, the database orders these few). At any depth when no matching row has been
    written since the sort's order was read (the clean rows are still in the database's
    order); None when such rows match and the page ends beyond MAX_PAGE_END, where the
    database would have to order too many candidates."""
    end = offset + limit
    store, mask = found.store, found.mask
    rank = store.ranks.get(sort)
    if rank is None or rank.dirty_count > MAX_DIRTY:
        started = time.perf_counter()
        with small_cache(found.connection):
            rank = _read_rank(found.connection, store, order_by)
        store.ranks[sort] = rank
        if found.saver is not None:
            found.saver.save(store)
        log.info(
            "column index: order by %s of %s/%s read in %.1f s",
            ", ".join(sort), store.bucket, store.resource_type, time.perf_counter() - started,
        )  # fmt: skip
    if rank.dirty_count:
        clean = mask & ~rank.dirty
        fresh = np.flatnonzero(mask & rank.dirty)
    else:
        clean, fresh = mask, np.zeros(0, dtype=np.int64)
    if len(fresh) and end > MAX_PAGE_END:
        return None
    ordered = _first_in_order(rank.order, clean, end)
    uids = store.uids
    if not len(fresh):
        return uids.take(ordered[offset:end]), True
    return uids.take(np.concatenate([ordered, fresh])), False


def _first_in_order(order: Any, mask: Mask, wanted: int) -> Any:
    """The first `wanted` rows of `order` that `mask` holds, reading as little of the order
    as it takes (a growing window: a common match stops after a few thousand rows)."""
    found: list[Any] = []
    have, start, window = 0, 0, 4096
    while have < wanted and start < len(order):
        part = order[start : start + window]
        hits = part[mask[part]]
        found.append(hits)
        have += len(hits)
        start += window
        window *= 4
    return np.concatenate([np.zeros(0, dtype=np.int64), *found])[:wanted]


def _read_rank(connection: Connection, store: Store, order_by: list[Any]) -> Rank:
    """Every row of the store in the database's own order for this sort."""
    stmt = select(Record.uid).where(store.of_types()).order_by(*order_by)
    found = store.uids.locate(list(connection.scalars(stmt)))
    order = found[found >= 0]
    dirty = np.ones(store.n, dtype=bool)
    dirty[order] = False
    return Rank(order, dirty, int(np.count_nonzero(dirty)))


def lag(
    session: Session,
    *,
    bucket: str,
    resource_type: str,
    open_from_disk: bool = False,
    up_to: int | None = None,
) -> int | None:
    """How many records of the type (a type records are stored as) were written since the
    store this session's index keeps last looked (what its next use would read again);
    None when it keeps none. `open_from_disk`: when it keeps none yet, open the store from
    its snapshot first, if there is one. `up_to`: stop counting past it (a count of a
    million rows a job rewrote took two seconds), answering `up_to + 1`."""
    index: ColumnIndex | None = session.info.get(_INDEX)
    engine = session.get_bind()
    if index is None or not isinstance(engine, Engine):
        return None
    seen = index.seen(engine, bucket, resource_type)
    if seen is None and open_from_disk:
        seen = index.opened(session, bucket, [resource_type])
    if seen is None:
        return None
    changed = select(literal(1)).where(
        Record.bucket == bucket,
        Record.resource_type == resource_type,
        clock.changed_since(engine.dialect.name, seen),
    )
    if up_to is not None:
        changed = changed.limit(up_to + 1)
    return int(session.scalar(select(func.count()).select_from(changed.subquery())) or 0)
