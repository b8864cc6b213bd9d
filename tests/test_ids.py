"""uids: ObjectId-shaped, and never the same in two processes, forked ones included."""

from __future__ import annotations

import os

from fold.ids import is_uid, new_uid


def test_a_uid_is_24_hex_and_each_is_new() -> None:
    made = {new_uid() for _ in range(1000)}
    assert len(made) == 1000
    assert all(is_uid(uid) for uid in made)


def test_a_forked_process_makes_other_uids_than_its_parent() -> None:
    """`fold serve --workers N` forks its serving processes: each must make its own uids,
    or two of them would create records with the same uid in the same second."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, ",".join(new_uid() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        theirs = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    ours = {new_uid() for _ in range(100)}
    assert len(theirs) == 100 and not theirs & ours
    # The random middle (bytes 5-9) is the process's own.
    assert {uid[8:18] for uid in theirs}.isdisjoint({uid[8:18] for uid in ours})
