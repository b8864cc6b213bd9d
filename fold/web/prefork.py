"""`fold serve --workers N`: one parent makes the application, then forks the processes
that answer on its socket.

Forked after the application is made and `gc.freeze()`, the serving processes share the
parent's interpreter, libraries and modules page for page until one of them writes to a
page; spawned, each would load its own copy (about 100 MB each). The parent serves nothing
and runs no thread: it binds the socket, forks, replaces a process that dies, and on
SIGTERM, SIGINT or SIGHUP stops them all. A forked process that finds its parent gone
stops itself, so a killed parent leaves nothing serving.

Nothing here opens a connection before forking: a database or Redis connection must not
be shared between processes. Each process opens its own on first use.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import mmap
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("fold.serve")

STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
SIGNALS = {signal.SIGCHLD, *STOPS}
# A process that dies this soon after it started, this many times in a row, is not
# started again: the parent stops the others and exits with an error.
EARLY = 10.0
EARLY_DEATHS = 5


class Board:
    """How many connections each serving process holds, in memory the processes share:
    made before forking, one slot per process (`slot`, set in each forked process).

    A client keeps its connection open between requests, and the kernel hands each new
    connection to whichever process takes it first, so twenty clients can end up fourteen
    on one process and six on the other: the fourteen then wait for one interpreter while
    the other idles (measured: a p95 of 123 ms on such a split against 90 ms on an even
    one, docs/columns.md). A process holding two or more connections above its share asks
    the client of the response it is sending to reconnect (`Connection: close`, which
    every HTTP/1.1 client honours); the new connection goes to whichever process accepts
    it first, most often an idle one."""

    def __init__(self, slots: int) -> None:
        self._shared = mmap.mmap(-1, 8 * slots)  # anonymous and shared: seen across forks
        self.counts = memoryview(self._shared).cast("q")
        self.slot: int | None = None
        self.open_connections: Callable[[], int] | None = None

    def crowded(self) -> bool:
        """Notes this process's open connections; True when they are two or more above
        its share of all the processes' (rounded up)."""
        if self.slot is None or self.open_connections is None:
            return False
        mine = self.open_connections()
        self.counts[self.slot] = mine
        share = -(-sum(self.counts) // len(self.counts))
        return mine >= share + 2

    def clear(self, slot: int) -> None:
        """A process is gone: its connections with it."""
        self.counts[slot] = 0


class Spread:
    """ASGI wrapper: `Connection: close` on a response while this process is crowded
    (`Board.crowded`)."""

    def __init__(self, app: ASGIApp, board: Board) -> None:
        self.app = app
        self.board = board

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_spread(message: Message) -> None:
            if message["type"] == "http.response.start" and self.board.crowded():
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"
                ]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_spread)


@dataclass
class Role:
    """One kind of forked process: `run()` does its work and returns when it should stop
    (it is called with the default signal dispositions restored). Each process of a role
    with a `board` takes one of its slots, and a process started again in place of one
    that died takes the dead one's."""

    name: str
    run: Callable[[], None]
    count: int = 1
    board: Board | None = None


@dataclass
class _Child:
    role: Role
    slot: int
    started: float = field(default_factory=time.monotonic)


# glibc's mallopt parameter (malloc.h).
_M_ARENA_MAX = -8
ARENAS = 1


def tune_malloc() -> bool:
    """Keep a server's heap near what it holds (glibc only; MALLOC_ARENA_MAX set by hand
    wins): one arena, not eight per core. Each thread that answered a request would
    otherwise keep an arena of its own, holding the arrays of the counts it answered after
    they were freed; under the GIL threads seldom allocate at once, and Python's own small
    objects do not come from malloc. Measured at a million records (docs/columns.md)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    return bool(mallopt(_M_ARENA_MAX, ARENAS))


def heap_trimmer() -> Callable[[], None] | None:
    """glibc's `malloc_trim(0)`, which gives the free pages inside the heap back to the
    system (None elsewhere). With one arena a count's freed arrays stay in the heap for the
    next one; a process that has gone quiet keeps none of them."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def uvicorn_role(app: Any, sock: socket.socket, *, count: int, log_level: str = "info") -> Role:
    """`count` processes each running uvicorn for `app` on the parent's bound socket, with
    their connections spread evenly (`Board`)."""
    board = Board(count)
    spread = Spread(app, board)

    def run() -> None:
        import uvicorn

        config = uvicorn.Config(spread, log_level=log_level, lifespan="on")
        server = uvicorn.Server(config)
        board.open_connections = lambda: len(server.server_state.connections)
        server.run(sockets=[sock])

    return Role("server", run, count, board)


def supervise(roles: list[Role]) -> int:
    """Fork each role's processes and keep them running until a stop signal; answers the
    exit status. Call from the main thread of a process that has started no thread."""
    if threading.active_count() > 1:
        raise RuntimeError("prefork: the parent must not run threads before forking")
    gc.collect()
    gc.freeze()  # what the parent made stays in pages no collection in a child rewrites
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    children: dict[int, _Child] = {}
    for role in roles:
        for slot in range(role.count):
            _start(role, slot, children)
    stopping = False
    early_deaths = 0
    status = 0
    while children:
        info = signal.sigwaitinfo(SIGNALS)
        if info.si_signo != signal.SIGCHLD:
            if not stopping:
                log.info("prefork: %s, stopping %d processes", _name(info.si_signo), len(children))
            stopping = True
            for pid in children:
                _signal(pid, signal.SIGTERM)
            continue
        for pid, code in _reaped():
            child = children.pop(pid, None)
            if child is None or stopping:
                continue
            if child.role.board is not None:
                child.role.board.clear(child.slot)
            lived = time.monotonic() - child.started
            log.warning("prefork: %s process %d exited (%s)",
                        child.role.name, pid, _describe(code))  # fmt: skip
            early_deaths = early_deaths + 1 if lived < EARLY else 0
            if early_deaths >= EARLY_DEATHS:
                log.error("prefork: %d processes died at start in a row; stopping", early_deaths)
                stopping, status = True, 1
                for other in children:
                    _signal(other, signal.SIGTERM)
                continue
            _start(child.role, child.slot, children)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    return status


def _start(role: Role, slot: int, children: dict[int, _Child]) -> None:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        children[pid] = _Child(role, slot)
        return
    code = 0
    try:
        if role.board is not None:
            role.board.slot = slot
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _stop_when_orphaned(parent)  # its thread keeps the signals blocked: main takes them
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        role.run()
    except BaseException:  # a child never returns into the parent's loop
        log.exception("prefork: %s process failed", role.name)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def wait_for_stop() -> int:
    """In a role's `run`: block until SIGTERM, SIGINT or SIGHUP; answers which. Threads the
    role starts after calling `block_stops()` leave the signal to this wait."""
    return signal.sigwait(STOPS)


def block_stops() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)


def _stop_when_orphaned(parent: int) -> None:
    """A SIGTERM to this process once its parent is gone (a SIGKILL gives the parent no
    chance to stop it)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="fold-prefork-parent", daemon=True).start()


def _reaped() -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, code))


def _signal(pid: int, signo: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signo)


def _name(signo: int) -> str:
    return signal.Signals(signo).name


def _describe(code: int) -> str:
    if os.WIFSIGNALED(code):
        return _name(os.WTERMSIG(code))
    return f"status {os.waitstatus_to_exitcode(code)}"
