"""Named locks (store/locks.py), as a storage hands them out: re-entrant, shared by threads
and processes, never left held."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from conftest import flocked
from spellfs.store.storage import FsStorage


def test_a_lock_taken_twice_is_held_until_its_outermost_exit(tmp_path: Path) -> None:
    """Re-entrant: a store's append takes the lock its store holds already; leaving the inner
    one must not let another process or thread in while the store goes on."""
    fs = FsStorage(tmp_path)
    lockfile = tmp_path / ".spell" / "locks" / "s-d.lock"
    took = threading.Event()

    def other() -> None:
        with fs.lock("s-d"):
            took.set()

    with fs.lock("s-d"):
        with fs.lock("s-d"):
            pass
        assert flocked(lockfile)
        waiter = threading.Thread(target=other)
        waiter.start()
        assert not took.wait(0.3)
    assert took.wait(60)
    waiter.join()
    assert not flocked(lockfile)
    fs.close()


def test_a_lock_whose_wait_is_interrupted_is_not_left_held(tmp_path: Path, monkeypatch) -> None:
    """Ctrl-C while waiting for another process's lock: the command stops, and the lock is not
    left taken by this thread (a web view's other threads would wait for ever)."""
    import fcntl

    fs = FsStorage(tmp_path)
    real = fcntl.flock

    def interrupted(fd: int, op: int) -> None:
        if op == fcntl.LOCK_EX:
            raise KeyboardInterrupt
        real(fd, op)

    monkeypatch.setattr(fcntl, "flock", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with fs.lock("s-d"):
            pass
    monkeypatch.setattr(fcntl, "flock", real)
    took = threading.Event()

    def other() -> None:
        with fs.lock("s-d"):
            took.set()

    waiter = threading.Thread(target=other, daemon=True)
    waiter.start()
    assert took.wait(60)
    waiter.join(60)
    fs.close()


def test_a_forked_child_s_lock_excludes_its_parent(tmp_path: Path) -> None:
    """``flock`` belongs to an open file: a child using the lock file it inherited would hold
    the lock while its parent holds it too, and their stores would interleave (a record read
    as another's torn tail, sequence numbers taken twice). A child opens its own."""
    import os

    fs = FsStorage(tmp_path)
    with fs.lock("s-d"):  # (the lock file is open from now on)
        pass
    held, release = os.pipe(), os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        with fs.lock("s-d"):
            os.write(held[1], b"x")
            os.read(release[0], 1)
        os._exit(0)
    os.read(held[0], 1)
    took = threading.Event()

    def parent_takes() -> None:
        with fs.lock("s-d"):
            took.set()

    waiter = threading.Thread(target=parent_takes)
    waiter.start()
    try:
        assert not took.wait(0.5)  # the child holds it: the parent waits
    finally:
        os.write(release[1], b"x")
    assert took.wait(10)
    waiter.join()
    os.waitpid(child, 0)
