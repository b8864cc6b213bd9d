"""The forking supervisor of `fold serve --workers N`, on its own: its processes share the
parent's memory, a process that keeps dying at start is not started for ever, and the
server's malloc settings yield to the operator's. (tests/cli/test_serve.py runs the real
server: a killed process replaced, a killed parent leaving none.)"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import anyio
import pytest
from starlette.types import Message, Receive, Scope, Send

from fold.web import prefork


def run_script(body: str) -> subprocess.CompletedProcess[str]:
    # supervise() must run in a process with no threads: a fresh interpreter, not pytest's.
    script = "import sys\nfrom fold.web import prefork\n" + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


def test_processes_that_die_at_start_are_not_started_for_ever() -> None:
    done = run_script(
        """
        prefork.EARLY_DEATHS = 3
        roles = [prefork.Role("broken", lambda: sys.exit(3), count=2)]
        print("status", prefork.supervise(roles))
        """
    )
    assert "status 1" in done.stdout, done.stderr
    assert done.stderr.count("broken process") >= 3
    assert "died at start in a row; stopping" in done.stderr


def test_a_stop_signal_stops_every_process_and_the_parent_answers_0() -> None:
    done = run_script(
        """
        import os, signal
        from fold.web.prefork import block_stops, wait_for_stop

        def serve():
            block_stops()
            print("waiting", os.getpid(), flush=True)
            wait_for_stop()
            print("stopped", os.getpid(), flush=True)

        parent = os.getpid()
        roles = [prefork.Role("waiter", serve, count=3)]
        if os.fork() == 0:  # a helper that stops the parent once it has forked its three
            import time
            while len(open(f"/proc/{parent}/task/{parent}/children").read().split()) < 4:
                time.sleep(0.05)
            os.kill(parent, signal.SIGTERM)
            os._exit(0)
        print("status", prefork.supervise(roles))
        """
    )
    assert "status 0" in done.stdout, done.stderr
    assert done.stdout.count("stopped") == 3, done.stdout


def test_the_parent_refuses_to_fork_with_threads_running() -> None:
    done = run_script(
        """
        import threading
        threading.Thread(target=threading.Event().wait, daemon=True).start()
        try:
            prefork.supervise([prefork.Role("x", lambda: None)])
        except RuntimeError as exc:
            print("refused:", exc)
        """
    )
    assert "refused: prefork: the parent must not run threads" in done.stdout, done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_malloc_settings_yield_to_the_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert prefork.tune_malloc() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    try:
        glibc = bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        glibc = False
    assert prefork.tune_malloc() is glibc


def spread_headers(board: prefork.Board) -> list[tuple[bytes, bytes]]:
    """The headers a response goes out with through `Spread`."""
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})

    async def send(message: Message) -> None:
        sent.append(message)

    async def nothing() -> Message:
        return {}

    anyio.run(prefork.Spread(app, board), {"type": "http"}, nothing, send)
    return list(sent[0]["headers"])


def test_a_process_two_connections_over_its_share_asks_clients_to_reconnect() -> None:
    board = prefork.Board(2)
    board.slot = 0
    board.counts[1] = 4  # the other process's
    held = 7
    board.open_connections = lambda: held
    # 11 connections in all: a share is 6; 7 is within one of it.
    assert spread_headers(board) == [(b"x-a", b"1")]
    assert board.counts[0] == 7
    held = 8
    assert spread_headers(board) == [(b"x-a", b"1"), (b"connection", b"close")]
    board.clear(1)  # the other process died: its connections went with it
    held = 2
    assert spread_headers(board) == [(b"x-a", b"1")]


def test_the_board_is_shared_by_the_forked_processes() -> None:
    board = prefork.Board(3)
    pid = os.fork()
    if pid == 0:
        board.counts[2] = 41
        os._exit(0)
    os.waitpid(pid, 0)
    assert list(board.counts) == [0, 0, 41]
