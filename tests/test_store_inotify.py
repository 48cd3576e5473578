"""The kernel's change queue (store/inotify.py): what changed under a folder, without a stat
per entry. Real directories, real writes (from this process and from another)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spellfs.store.inotify import DirWatch, EntryWatch, fs_type, mount_type

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    b = tmp_path / "sessions"
    for name in ("a", "b"):
        (b / name).mkdir(parents=True)
        (b / name / "session.yaml").write_text("status: active\n")
    return b


@pytest.fixture
def watch(base: Path):
    w = DirWatch(str(base))
    assert w.start(["a", "b"])
    yield w
    w.close()


def test_nothing_changed_is_an_empty_answer(watch: DirWatch) -> None:
    assert watch.changed() == set()
    assert watch.changed() == set()


def test_an_in_place_write_from_another_process_is_seen(base: Path, watch: DirWatch) -> None:
    path = base / "a" / "session.yaml"
    before = path.stat()
    # same size, mtime put back: a stat cannot tell; the kernel queued the write all the same
    code = (
        "import os,sys; p=sys.argv[1]; f=open(p,'r+b'); f.write(b'STATUS'); f.close(); "
        f"os.utime(p, ns=({before.st_atime_ns}, {before.st_mtime_ns}))"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert watch.changed() == {"a"}
    assert watch.changed() == set()


def test_new_removed_and_renamed_subdirectories(base: Path, watch: DirWatch) -> None:
    (base / "c").mkdir()
    assert watch.changed() == {"c"}
    assert watch.watching("c")
    (base / "c" / "session.yaml").write_text("x\n")  # the new one is watched from then on
    assert watch.changed() == {"c"}
    shutil.rmtree(base / "b")
    assert "b" in watch.changed()
    assert not watch.watching("b")
    os.rename(base / "a", base / "a2")
    assert watch.changed() >= {"a", "a2"}
    assert watch.watching("a2") and not watch.watching("a")  # the watch went with the inode
    (base / "a2" / "session.yaml").write_text("y\n")
    assert "a2" in watch.changed()


def test_an_overflowing_queue_says_unknown_then_vouches_again(base: Path, watch: DirWatch) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for i in range(limit + 10):  # an IN_CREATE of a new name each, unread: the queue overflows
        os.close(os.open(base / "a" / f"f{i}", os.O_CREAT | os.O_RDONLY))
    assert watch.changed() is None  # the caller checks everything now
    (base / "b" / "session.yaml").write_text("later\n")
    assert watch.changed() == {"b"}


def test_the_folder_itself_moving_ends_the_watch(base: Path, watch: DirWatch) -> None:
    os.rename(base, base.parent / "elsewhere")
    assert watch.changed() is None
    assert watch.changed() is None and not watch.watching("a")


def test_only_local_file_systems_are_trusted(base: Path) -> None:
    assert fs_type(str(base)) is not None
    assert DirWatch.usable(str(base)) == (fs_type(str(base)) in DirWatch.LOCAL_FS)
    assert DirWatch.usable("/proc") is False  # proc: changes no write of ours ever queues


def _ask_in_a_child(watch) -> bytes:
    """What a forked child is told when it asks ``watch`` what changed ("none": unknown), and
    whether it closed a descriptor of its own on the way (stdout, 1)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        answer = b"none" if watch.changed() is None else b"drained"
        try:
            os.fstat(1)
        except OSError:
            answer = b"closed stdout"
        os.write(w, answer)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    answer = os.read(r, 16)
    os.close(r)
    return answer


def test_a_forked_child_never_drains_its_parents_queue(base: Path, watch: DirWatch) -> None:
    (base / "a" / "session.yaml").write_text("changed\n")  # queued before the fork
    assert _ask_in_a_child(watch) == b"none"
    assert watch.changed() == {"a"}  # the parent still has every event


def test_a_link_or_file_among_the_subdirectories_is_left_to_stat(
    base: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (base / "link").symlink_to(tmp_path / "outside")
    (base / "file").write_text("not a dir\n")
    w = DirWatch(str(base))
    assert w.start(["a", "b", "link", "file", "gone"])
    assert w.watching("a") and not w.watching("link") and not w.watching("file")
    (tmp_path / "outside" / "session.yaml").write_text("never followed\n")
    assert w.changed() == set()
    w.close()


def test_a_watched_file_is_seen_changing_through_a_hard_link_elsewhere(
    base: Path, watch: DirWatch, tmp_path: Path
) -> None:
    """A directory's watch hears of writes made through its own entries only; the file's
    inode watch hears of every write, whatever name it came through."""
    os.link(base / "a" / "session.yaml", tmp_path / "alias.yaml")
    assert watch.changed() == set()  # the directory hears nothing of a link made elsewhere
    assert watch.watch_file("a", "session.yaml") and not watch.watch_file("zz", "session.yaml")
    assert watch.changed() == set()
    with open(tmp_path / "alias.yaml", "r+b") as f:
        f.write(b"status: failed\n")
    assert watch.changed() == {"a"}


# -- EntryWatch: the entries of one directory (a session's files/) ---------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    d = tmp_path / "files"
    d.mkdir()
    for name in ("a.txt", "b.txt"):
        (d / name).write_text(f"{name}\n")
    return d


@pytest.fixture
def entries(files: Path):
    w = EntryWatch(str(files))
    assert w.start()
    assert w.follow("a.txt") and w.follow("b.txt")
    yield w
    w.close()


def test_entries_written_created_removed_and_renamed_are_named(
    files: Path, entries: EntryWatch
) -> None:
    assert entries.changed() == set()
    with open(files / "a.txt", "r+b") as f:  # in place, the mtime put back after
        f.write(b"A")
    st = os.stat(files / "a.txt")
    os.utime(files / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    assert entries.changed() == {"a.txt"}
    (files / "c.txt").write_text("new\n")
    os.rename(files / "b.txt", files / "d.txt")
    assert entries.changed() == {"c.txt", "b.txt", "d.txt"}
    os.unlink(files / "c.txt")
    assert entries.changed() == {"c.txt"}
    assert entries.changed() == set()


def test_an_entry_written_through_a_hard_link_made_later_is_named(
    files: Path, entries: EntryWatch, tmp_path: Path
) -> None:
    """The directory's watch hears nothing of a link made elsewhere, nor of writes through it;
    the entry's inode watch hears both."""
    os.link(files / "a.txt", tmp_path / "alias")
    assert entries.changed() == {"a.txt"}  # the link count changed
    subprocess.run([sys.executable, "-c", f"open({str(tmp_path / 'alias')!r}, 'a').write('x')"])
    assert entries.changed() == {"a.txt"}
    assert entries.watched == 2


def test_an_entry_not_followed_is_named_only_for_changes_through_its_own_name(
    files: Path, tmp_path: Path
) -> None:
    w = EntryWatch(str(files))
    assert w.start()
    os.link(files / "a.txt", tmp_path / "alias")
    with open(tmp_path / "alias", "a") as f:
        f.write("unseen")
    assert w.changed() == set()  # why every entry is followed by inode
    assert not w.follow("missing.txt") and w.follow("a.txt")
    w.close()


def test_the_entries_watch_says_unknown_after_an_overflow_or_a_move(
    files: Path, entries: EntryWatch, tmp_path: Path
) -> None:
    limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for _ in range(limit + 10):
        os.utime(files / "a.txt")
    assert entries.changed() is None and entries.fd == -1  # closed: the caller starts again
    assert entries.start() and entries.changed() == set()
    os.rename(files, tmp_path / "moved")
    assert entries.changed() is None
    assert entries.changed() is None


def test_a_forked_child_never_drains_the_entries_queue(files: Path, entries: EntryWatch) -> None:
    (files / "a.txt").write_text("changed\n")
    assert _ask_in_a_child(entries) == b"none"
    assert entries.changed() == {"a.txt"}


# -- what mutation testing found untested ------------------------------------------------------

MOUNTS = [
    "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n",
    "25 22 0:23 / /proc rw,nosuid shared:12 - proc proc rw\n",
    "short line without the separator\n",
    "26 22 0:24 / /mnt/my\\040disk rw shared:13 - xfs /dev/vdb rw\n",
    "27 26 0:25 / /mnt/my\\040disk/inner rw shared:14 - tmpfs tmpfs rw\n",
    "28 22 0:26 / /srv rw shared:15 - nfs4 server:/srv rw\n",
    "29 22 0:27 / /srv rw shared:16 - btrfs /dev/vdc rw\n",  # mounted over the nfs one
    "30 22 0:28 / /mnt/myd rw shared:17 - zfs pool rw\n",
]


@pytest.mark.parametrize(
    "path, kind",
    [
        ("/", "ext4"),
        ("/home/user/ws", "ext4"),
        ("/proc", "proc"),
        ("/proc/self/fd", "proc"),
        ("/procs", "ext4"),  # a longer name beside a mount point is not under it
        ("/mnt/my disk/ws", "xfs"),  # \040 in mountinfo is a space
        ("/mnt/my disk/inner/ws", "tmpfs"),  # the longest mount point above the path
        ("/mnt/myd/ws", "zfs"),
        ("/srv/ws", "btrfs"),  # the later of two mounts at one point hides the earlier
    ],
)
def test_the_mount_holding_a_path_is_read_from_mountinfo(path: str, kind: str) -> None:
    assert mount_type(path, MOUNTS) == kind


def test_a_mountinfo_without_a_usable_line_names_no_type() -> None:
    assert mount_type("/x", ["garbage\n", "1 2 3 4 - ext4\n", "1 2 3 4 /x rw\n"]) is None


def test_a_watch_that_cannot_start_says_so(tmp_path: Path) -> None:
    missing = EntryWatch(str(tmp_path / "missing"))
    assert missing.start() is False and missing.fd == -1 and missing.ident is None
    assert EntryWatch("/proc/self").start() is False  # changes there queue nothing
    assert DirWatch(str(tmp_path / "missing")).start([]) is False


def test_the_entries_watch_knows_its_directory_and_forgets_all_when_closed(
    files: Path, entries: EntryWatch
) -> None:
    st = os.stat(files)
    assert entries.ident == (st.st_dev, st.st_ino)
    entries.close()
    assert entries.ident is None and entries.watched == 0
    assert entries.follow("a.txt") is False and entries.changed() is None


def test_an_entry_whose_last_link_goes_is_no_longer_watched(
    files: Path, entries: EntryWatch
) -> None:
    assert entries.watched == 2
    (files / "b.txt").unlink()
    assert entries.changed() == {"b.txt"}
    assert entries.watched == 1  # the kernel dropped that inode's watch; so did we


def test_names_ending_in_any_character_come_back_whole(files: Path, entries: EntryWatch) -> None:
    for name in ("endsX", "ends0", "ends\\x00"):
        (files / name).write_text("x")
    assert entries.changed() == {"endsX", "ends0", "ends\\x00"}


def test_a_plain_file_beside_the_session_dirs_is_named_and_the_watch_keeps_vouching(
    base: Path, watch: DirWatch
) -> None:
    (base / "stray.txt").write_text("not a session\n")
    assert watch.changed() == {"stray.txt"}
    assert not watch.watching("stray.txt")
    assert watch.changed() == set()  # still vouching: nothing was lost


def test_every_write_through_a_hard_link_is_seen_not_only_the_first(
    base: Path, watch: DirWatch, tmp_path: Path
) -> None:
    os.link(base / "a" / "session.yaml", tmp_path / "alias.yaml")
    assert watch.watch_file("a", "session.yaml")
    for text in ("status: failed\n", "status: active\n", "status: completed\n"):
        with open(tmp_path / "alias.yaml", "r+b") as f:
            f.write(text.encode())
        assert watch.changed() == {"a"}


def test_a_file_watch_refuses_what_is_not_a_file_there(base: Path, watch: DirWatch) -> None:
    assert watch.watch_file("a", "missing.yaml") is False
    assert watch.watch_file("a", ".") is False  # the directory itself: already watched as one
    watch.close()
    assert watch.watch_file("a", "session.yaml") is False and not watch.watching("a")


def test_a_renamed_subdirectory_is_watched_under_its_new_name_only(
    base: Path, watch: DirWatch
) -> None:
    os.rename(base / "a", base / "c")
    assert watch.changed() >= {"a", "c"}
    assert watch.watching("c") and not watch.watching("a") and watch.watching("b")
    os.rename(base / "c", base / "a")
    assert watch.changed() >= {"a", "c"}
    assert watch.watching("a") and not watch.watching("c")


def test_a_queue_that_cannot_be_read_says_unknown(
    files: Path, entries: EntryWatch, base: Path, watch: DirWatch
) -> None:
    """A descriptor replaced behind the watch's back (here by a directory's, which cannot be
    read): the read fails, and the answer is "look at everything", never "nothing changed"."""
    for w, changed in ((entries, files / "a.txt"), (watch, base / "a" / "session.yaml")):
        changed.write_text("changed\n")
        other = os.open(files, os.O_RDONLY | os.O_DIRECTORY)
        os.dup2(other, w.fd)
        os.close(other)
        assert w.changed() is None


@pytest.mark.parametrize("name", ["filesX", "files ", "files0"])
def test_a_folder_whose_name_ends_in_any_character_is_watched(tmp_path: Path, name: str) -> None:
    d = tmp_path / name
    (d / "sub").mkdir(parents=True)
    entries = EntryWatch(str(d) + "/")
    assert entries.start() and entries.path == str(d)
    (d / "a.txt").write_text("x")
    assert entries.changed() == {"a.txt"}
    entries.close()
    watch = DirWatch(str(d) + "/")
    assert watch.start(["sub"]) and watch.base == str(d)
    (d / "sub" / "session.yaml").write_text("x")
    assert watch.changed() == {"sub"}
    watch.close()


def test_a_process_without_stdin_watches_on_descriptor_0(base: Path, files: Path) -> None:
    """A daemon may run with its stdin closed; the next descriptor the kernel hands out, the
    inotify queue's included, is then 0, a descriptor like any other (only negative means
    none)."""
    saved = os.dup(0)
    os.close(0)
    try:
        watch = DirWatch(str(base))
        assert watch.start(["a", "b"]) and watch.fd == 0
        assert watch.watching("a")
        (base / "a" / "session.yaml").write_text("changed\n")
        assert watch.changed() == {"a"}
        watch.close()
        with pytest.raises(OSError):
            os.fstat(0)  # the queue's descriptor closed with the watch, not leaked
        entries = EntryWatch(str(files))
        assert entries.start() and entries.fd == 0
        assert entries.follow("a.txt")
        (files / "a.txt").write_text("changed\n")
        assert entries.changed() == {"a.txt"}
        entries.close()
        with pytest.raises(OSError):
            os.fstat(0)
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_a_libc_without_inotify_means_no_watch(
    base: Path, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A C library without ``inotify_init1`` (not glibc, or too old): neither watch starts, and
    the callers stat everything as before."""
    from spellfs.store import inotify

    monkeypatch.setattr(inotify, "_libc", object())
    watch, entries = DirWatch(str(base)), EntryWatch(str(files))
    assert watch.start(["a"]) is False and watch.changed() is None
    assert entries.start() is False and entries.changed() is None


def test_an_entries_watch_on_a_plain_file_does_not_start(files: Path) -> None:
    """The path exists (a stat succeeds) but is no directory: nothing to watch entries of."""
    entries = EntryWatch(str(files / "a.txt"))
    assert entries.start() is False
    assert entries.fd == -1 and entries.ident is None and entries.changed() is None


def test_closing_a_watch_whose_descriptor_was_closed_elsewhere_does_not_raise(
    base: Path, watch: DirWatch, files: Path, entries: EntryWatch
) -> None:
    for w in (watch, entries):
        os.close(w.fd)
        w.close()
        assert w.fd == -1 and w.changed() is None


def test_a_folder_moved_out_replaced_and_moved_back_renamed_is_watched_under_both_names(
    base: Path, watch: DirWatch, tmp_path: Path
) -> None:
    """The old folder keeps its watch (one per inode) and comes back as ``c``; the new ``a``
    has its own watch, so ``a`` is still watched though the old one no longer bears the name."""
    os.rename(base / "a", tmp_path / "away")
    (base / "a").mkdir()
    os.rename(tmp_path / "away", base / "c")
    assert watch.changed() >= {"a", "c"}
    assert watch.watching("a") and watch.watching("c")
    (base / "a" / "session.yaml").write_text("new\n")
    assert watch.changed() == {"a"}
    (base / "c" / "session.yaml").write_text("old\n")
    assert watch.changed() == {"c"}


def test_a_mount_point_ending_in_x_holds_only_its_own_paths() -> None:
    lines = [*MOUNTS, "31 22 0:29 / /mnt/dataX rw shared:18 - tmpfs tmpfs rw\n"]
    assert mount_type("/mnt/data/ws", lines) == "ext4"
    assert mount_type("/mnt/dataX/ws", lines) == "tmpfs"


def test_a_watch_the_kernel_refuses_means_no_answer_rather_than_a_partial_one(
    base: Path, refused: set[str]
) -> None:
    """Past the watch limit a subdirectory, the base or a new subdirectory cannot be watched:
    the watch does not start, or says "unknown" once (the caller stats everything) and then
    vouches again for what it does watch."""
    refused.add("b")
    w = DirWatch(str(base))
    assert w.start(["a", "b"]) is False and w.fd == -1 and w.changed() is None
    refused.add("sessions")
    assert w.start(["a"]) is False and w.fd == -1
    refused.discard("sessions")
    assert w.start(["a"])
    refused.add("c")
    (base / "c").mkdir()
    assert w.changed() is None
    assert not w.watching("c") and w.watching("a")
    (base / "a" / "session.yaml").write_text("changed\n")
    assert w.changed() == {"a"}
    # room again: a folder gone since it was listed is left to stat, whatever errno the last
    # refusal left behind (each failure is judged by its own errno)
    refused.clear()
    assert w.start(["a", "gone"]) and w.watching("a") and not w.watching("gone")
    w.close()


def _mount_tmpfs(point: Path) -> None:
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "spellfs-test", point], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {done.stderr.decode().strip()}")


def test_an_unmounted_folder_ends_both_watches(tmp_path: Path) -> None:
    """Unmounting queues IN_UNMOUNT then IN_IGNORED for every watch on that file system, with
    no DELETE_SELF: the answer is "unknown", never "nothing changed"."""
    point = tmp_path / "mnt"
    _mount_tmpfs(point)
    try:
        (point / "sessions" / "a").mkdir(parents=True)
        (point / "files").mkdir()
        watch, entries = DirWatch(str(point / "sessions")), EntryWatch(str(point / "files"))
        assert watch.start(["a"]) and entries.start()
    finally:
        subprocess.run(["umount", "-l", point], check=True)
    assert watch.changed() is None and entries.changed() is None


def test_a_mount_point_whose_name_is_not_utf8_is_found(tmp_path: Path) -> None:
    """Mount points are bytes: one whose name is not UTF-8 still holds the paths under it (a
    workspace on an NFS mount there must not be taken for the local disk above it)."""
    point = tmp_path / os.fsdecode(b"caf\xe9")
    _mount_tmpfs(point)
    try:
        (point / "ws").mkdir()
        assert fs_type(str(point / "ws")) == "tmpfs"
    finally:
        subprocess.run(["umount", "-l", point], check=True)
