"""Remotes (SPEC §7): one contract run against file:// and a real SeaweedFS on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
import socket
import threading

import pytest

from spellfs.remote import transport as remote_mod
from spellfs.errors import IntegrityError, RemoteError, UsageError
from spellfs.store.objects import FsObjectStore
from spellfs.remote.transport import Remote, RemoteSpec, parse_remote_url
from spellfs.remote.credentials import s3_credentials

from conftest import loose
from seaweed import start_seaweed, stop_seaweed  # the `seaweed` fixture comes from conftest.py

THRESHOLD = 4096
_names = itertools.count()


@pytest.fixture(params=["file", "s3"])
def make_remote(request, tmp_path, monkeypatch):
    """Build remotes of one kind, each on a fresh prefix (s3) or directory (file)."""
    if request.param == "s3":
        server = request.getfixturevalue("seaweed")
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        bucket = "spellfs-remote-test"
        if bucket not in server.buckets:
            server.create_bucket(bucket)

        def make(name="origin", url=None, endpoint=server.endpoint):
            url = url or f"s3://{bucket}/t{next(_names)}"
            return Remote(RemoteSpec(name, url, endpoint_url=endpoint))

        make.server = server
    else:

        def make(name="origin", url=None, endpoint=None):
            return Remote(RemoteSpec(name, url or (tmp_path / f"remote{next(_names)}").as_uri()))

        make.server = None
    make.kind = request.param
    return make


def new_store(path) -> FsObjectStore:
    return FsObjectStore(path, THRESHOLD)


def fill(store: FsObjectStore, n: int = 20, big: int = 0) -> list[str]:
    oids = [store.put_bytes(f"object {i}\n".encode() * (i + 1)) for i in range(n)]
    oids.append(store.put_bytes(os.urandom(THRESHOLD * 3)))  # zstd-framed
    oids.append(store.put_bytes(b"\x28\xb5\x2f\xfd not a frame"))  # framed because of the magic
    if big:
        with open(store.root.parent / "big.bin", "wb") as f:
            f.write(os.urandom(big))
        with open(store.root.parent / "big.bin", "rb") as f:
            oids.append(store.put_stream(f)[0])
    return oids


def overwrite_remote(remote: Remote, oid: str, data: bytes) -> None:
    import obstore

    obstore.put(remote.store, remote.key(oid), data)


def no_temp_files(store: FsObjectStore) -> bool:
    return not [p for p in store.root.rglob("*") if p.name.startswith(".tmp")]


def damaged_on_remote(make_remote, tmp_path, which: str):
    """Two stores, ``a`` pushed to a remote named backup, one object's remote copy then
    damaged by one flipped bit (``which``: a small one, or a large one sent in parts)."""
    a, b = new_store(tmp_path / "a"), new_store(tmp_path / "b")
    oids = fill(a, n=3, big=3 << 20 if which == "large" else 0)
    remote = make_remote(name="backup")
    remote.push(a, oids)
    loose(a)  # (the tests compare and damage the objects' own files)
    bad = oids[-1] if which == "large" else oids[0]
    good = a.path(bad).read_bytes()
    mid = len(good) // 2
    overwrite_remote(remote, bad, good[:mid] + bytes([good[mid] ^ 1]) + good[mid + 1 :])
    return a, b, oids, remote, bad


@pytest.fixture
def small_multipart(monkeypatch):
    monkeypatch.setattr(remote_mod, "MULTIPART_ABOVE", 1 << 20)


def test_push_then_pull_gives_identical_bytes(make_remote, tmp_path, small_multipart):
    a, b = new_store(tmp_path / "a"), new_store(tmp_path / "b")
    oids = fill(a, big=12 << 20)
    remote = make_remote()
    seen = []
    pushed = remote.push(a, oids, progress=lambda done, total: seen.append((done, total)))
    assert pushed["objects"] == len(oids) and pushed["skipped"] == 0
    assert pushed["bytes"] == sum(a.stored_size(o) for o in oids)
    assert seen[-1] == (len(oids), len(oids))
    pulled = remote.pull(b, oids)
    assert pulled["objects"] == len(oids) and pulled["bytes"] == pushed["bytes"]
    loose(a)  # (pushed from the journal; compared file to file)
    for oid in oids:
        assert b.path(oid).read_bytes() == a.path(oid).read_bytes()
        b.verify(oid)
    assert no_temp_files(b)
    assert remote.pull(b, oids)["objects"] == 0


@pytest.mark.parametrize("list_at", [1, 10_000])
def test_rerun_push_sends_nothing(make_remote, tmp_path, monkeypatch, list_at):
    monkeypatch.setattr(remote_mod, "LIST_AT", list_at)  # listing path and HEAD path
    a = new_store(tmp_path / "a")
    oids = fill(a)
    remote = make_remote()
    first = remote.push(a, oids[:5])
    assert first["objects"] == 5
    again = remote.push(a, oids)
    assert again["objects"] == len(oids) - 5 and again["skipped"] == 5
    last = remote.push(a, oids)
    assert last == {**last, "objects": 0, "bytes": 0, "skipped": len(oids)}


def test_concurrent_push_never_errors_or_overwrites(make_remote, tmp_path):
    a, b = new_store(tmp_path / "a"), new_store(tmp_path / "b")
    oids = fill(a, n=200)
    assert fill(b, n=200)[:200] == oids[:200]
    remote = make_remote()
    results, errors = [], []

    def go(store):
        try:
            results.append(remote_mod.Remote(remote.spec).push(store, oids[:200]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert sum(r["objects"] for r in results) == 200
    assert all(r["objects"] + r["skipped"] == 200 for r in results)
    c = new_store(tmp_path / "c")
    remote.pull(c, oids[:200])
    loose(a)
    assert all(c.path(o).read_bytes() == a.path(o).read_bytes() for o in oids[:200])


@pytest.mark.parametrize("which", ["small", "large"])
def test_corrupt_remote_object_is_refused(make_remote, tmp_path, small_multipart, which):
    a, b, oids, remote, bad = damaged_on_remote(make_remote, tmp_path, which)
    with pytest.raises(IntegrityError) as info:
        remote.pull(b, oids)
    assert bad in str(info.value) and "backup" in str(info.value)
    assert not b.has(bad)
    assert no_temp_files(b)
    with pytest.raises(IntegrityError):
        remote.fetch(b, bad)
    assert not b.has(bad) and no_temp_files(b)


def test_fetch_and_exists_many(make_remote, tmp_path):
    a, b = new_store(tmp_path / "a"), new_store(tmp_path / "b")
    oids = fill(a, n=4)
    remote = make_remote()
    absent = "0" * 64
    assert remote.exists_many(oids + [absent]) == set()
    remote.push(a, oids[:3])
    assert remote.exists_many(oids + [absent]) == set(oids[:3])
    assert remote.fetch(b, absent) is False
    assert remote.fetch(b, oids[0]) is True
    assert b.get(oids[0]) == a.get(oids[0])
    assert remote.fetch(b, oids[3]) is False
    with pytest.raises(UsageError):
        remote.exists_many(["../etc/passwd"])


def test_pull_of_an_object_the_remote_lacks_names_it(make_remote, tmp_path):
    a = new_store(tmp_path / "a")
    oids = fill(a, n=2)
    with pytest.raises(RemoteError, match=oids[0]):
        make_remote().pull(new_store(tmp_path / "b"), oids[:1])


def _one_line_naming(exc: RemoteError, name: str, secret: str = "") -> None:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and len(text) < 300
    assert name in text
    if secret:
        assert secret not in text


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_remote_failures_are_one_line(make_remote, tmp_path, monkeypatch):
    a = new_store(tmp_path / "a")
    oids = fill(a, n=3)
    if make_remote.kind == "file":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        with pytest.raises(RemoteError) as info:
            make_remote(name="blocked", url=(blocker / "sub").as_uri()).push(a, oids)
        _one_line_naming(info.value, "blocked")
        return
    server = make_remote.server
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-xyz")
    for op in ("push", "pull", "exists"):
        with pytest.raises(RemoteError, match="access denied") as info:
            r = make_remote(name="badkey")
            r.push(a, oids) if op == "push" else r.pull(
                new_store(tmp_path / op), oids
            ) if op == "pull" else r.exists_many(oids)
        _one_line_naming(info.value, "badkey", "not-the-secret-xyz")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    with pytest.raises(RemoteError, match="bucket not found") as info:
        make_remote(name="nobucket", url="s3://spellfs-no-such-bucket/x").push(a, oids)
    _one_line_naming(info.value, "nobucket")
    with pytest.raises(RemoteError, match="bucket not found"):
        make_remote(name="nobucket", url="s3://spellfs-no-such-bucket/x").fetch(a, "0" * 64)
    with pytest.raises(RemoteError, match="cannot reach") as info:
        make_remote(name="down", endpoint=f"http://127.0.0.1:{closed_port()}").push(a, oids)
    _one_line_naming(info.value, "down")


def test_server_dying_mid_push_leaves_only_whole_objects(tmp_path, monkeypatch):
    """Kill a private server part-way through a push; a rerun on a restart sends the rest."""
    server = start_seaweed(tmp_path / "weed")
    try:
        for k, v in server.env().items():
            monkeypatch.setenv(k, v)
        server.create_bucket("spellfs-dying")
        a = new_store(tmp_path / "a")
        oids = [a.put_bytes(os.urandom(64 << 10)) for _ in range(600)]
        spec = RemoteSpec("dying", "s3://spellfs-dying/p", endpoint_url=server.endpoint)

        def on_progress(done, total):
            if done == 100 and not killer.is_alive():
                killer.start()

        killer = threading.Timer(0.0, lambda: stop_seaweed(server, grace=0.0))
        with pytest.raises(RemoteError) as info:
            Remote(spec).push(a, oids, progress=on_progress)
        _one_line_naming(info.value, "dying")
        killer.join()
    finally:
        stop_seaweed(server, grace=3.0)
    server = start_seaweed(tmp_path / "weed")
    try:
        spec = RemoteSpec("dying", "s3://spellfs-dying/p", endpoint_url=server.endpoint)
        again = Remote(spec).push(a, oids)
        assert again["skipped"] >= 100 and again["objects"] + again["skipped"] == len(oids)
        b = new_store(tmp_path / "b")
        Remote(spec).pull(b, oids)  # every object verifies by hash
        assert sorted(b) == sorted(oids)
    finally:
        stop_seaweed(server, grace=3.0)  # a private server whose data is thrown away


def test_parse_remote_url():
    assert parse_remote_url("s3://my-bucket/some/prefix/") == ("s3", "my-bucket", "some/prefix")
    assert parse_remote_url("s3://my-bucket") == ("s3", "my-bucket", "")
    assert parse_remote_url("file:///srv/spell") == ("file", "/srv/spell", "")
    assert parse_remote_url("gs://bkt/p/") == ("gs", "gs://bkt/p", "")
    assert parse_remote_url("az://container/p") == ("az", "az://container/p", "")
    assert parse_remote_url("https://dav.example.org/spell") == (
        "https",
        "https://dav.example.org/spell",
        "",
    )
    for bad in (
        "http://x/y",
        "s3://",
        "file://relative/path",
        "s3://UPPER/x",
        "",
        "az://",
        "gs://",
    ):
        with pytest.raises(UsageError, match="not a remote URL"):
            parse_remote_url(bad)


def test_push_of_an_object_missing_locally_names_it(make_remote, tmp_path):
    from spellfs.errors import ObjectNotFound

    with pytest.raises(ObjectNotFound, match="1" * 64):
        make_remote().push(new_store(tmp_path / "a"), ["1" * 64])


def test_credentials_from_a_profile(seaweed, tmp_path, monkeypatch):
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[bench]\naws_access_key_id = {seaweed.access_key}\n"
        f"aws_secret_access_key = {seaweed.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_PROFILE", "bench")
    bucket = "spellfs-profile-test"
    seaweed.create_bucket(bucket)
    a = new_store(tmp_path / "a")
    oids = fill(a, n=2)
    remote = Remote(RemoteSpec("prof", f"s3://{bucket}/p", endpoint_url=seaweed.endpoint))
    assert remote.push(a, oids)["objects"] == len(oids)
    assert remote.exists_many(oids) == set(oids)


def test_s3_remote_without_credentials_says_so_and_sends_nothing(tmp_path, monkeypatch) -> None:
    from spellfs.errors import RemoteError
    from spellfs.store.objects import FsObjectStore
    from spellfs.remote.transport import Remote, RemoteSpec

    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    store = FsObjectStore(tmp_path / "objects", 1024)
    oid = store.put_bytes(b"x")
    remote = Remote(RemoteSpec("origin", "s3://bucket/p", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(RemoteError, match="origin: no credentials"):
        remote.push(store, [oid])


def test_profile_secret_with_a_percent_sign_is_read_as_written(tmp_path, monkeypatch) -> None:
    """The credentials file is read raw, as the AWS CLI does ('%' is no interpolation)."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    creds = tmp_path / "credentials"
    creds.write_text(
        "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = ab%cd%(x)s\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    provider, _ = s3_credentials("origin")
    got = provider()
    assert (got["access_key_id"], got["secret_access_key"]) == ("AKIDEXAMPLE", "ab%cd%(x)s")


def test_credentials_from_a_credential_process_profile_in_aws_config(
    seaweed, tmp_path, monkeypatch
):
    """~/.aws/config profiles (credential_process, SSO, assume-role) work through boto3's chain;
    the old hand-written reader knew only static keys in ~/.aws/credentials."""
    import json
    import sys

    for k in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(k, raising=False)
    helper = tmp_path / "creds.py"
    helper.write_text(
        "import json\nprint(json.dumps(%s))\n"
        % json.dumps(
            {"Version": 1, "AccessKeyId": seaweed.access_key, "SecretAccessKey": seaweed.secret_key}
        )
    )
    config = tmp_path / "config"
    config.write_text(
        f"[profile proc]\ncredential_process = {sys.executable} {helper}\nregion = eu-west-3\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "proc")
    bucket = "spellfs-process-test"
    seaweed.create_bucket(bucket)
    a = new_store(tmp_path / "a")
    oids = fill(a, n=2)
    remote = Remote(RemoteSpec("proc", f"s3://{bucket}/p", endpoint_url=seaweed.endpoint))
    assert remote.push(a, oids)["objects"] == len(oids)
    assert remote.exists_many(oids) == set(oids)
    assert s3_credentials("proc")[1] == "eu-west-3"  # the profile's region is used


@pytest.mark.parametrize(
    "url,kind",
    [
        ("gs://bkt/p", "GCSStore"),
        ("az://cont/p", "AzureStore"),
        ("https://dav.example.org/spell", "HTTPStore"),
    ],
)
def test_other_clouds_go_through_obstore_from_url(url, kind, monkeypatch):
    monkeypatch.setenv(
        "AZURE_STORAGE_ACCOUNT_NAME", "acct"
    )  # obstore reads its providers' variables
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")
    store = Remote(RemoteSpec("o", url)).store
    assert type(store).__name__ == kind


@pytest.mark.parametrize("which", ["small", "large"])
def test_a_push_with_verify_replaces_a_damaged_remote_copy(
    make_remote, tmp_path, small_multipart, which
):
    """rt2 M1: a copy damaged on the remote stays damaged through plain pushes (create-only:
    it exists); a pull names it and says how to mend it; a push with verify reads every copy
    back and replaces the damaged one from the local object, after which a pull works."""
    a, b, oids, remote, bad = damaged_on_remote(make_remote, tmp_path, which)
    assert remote.push(a, oids)["skipped"] == len(oids)  # a plain push cannot see it
    with pytest.raises(IntegrityError, match="`spell push --verify` from a workspace that has"):
        remote.pull(b, oids)
    stats = remote.push(a, oids, verify=True)
    assert (stats["repaired"], stats["objects"], stats["skipped"]) == (1, 0, len(oids) - 1)
    remote.pull(b, oids)
    assert all(b.path(o).read_bytes() == a.path(o).read_bytes() for o in oids)
    assert remote.push(a, oids, verify=True)["repaired"] == 0
    assert no_temp_files(a) and no_temp_files(b)


def test_a_damaged_local_object_is_never_pushed_over_the_remote_copy(make_remote, tmp_path):
    a = new_store(tmp_path / "a")
    oids = fill(a, n=2)
    remote = make_remote(name="backup")
    remote.push(a, oids)
    loose(a)  # (its object's own file is damaged below)
    bad = oids[0]
    good = a.path(bad).read_bytes()
    overwrite_remote(remote, bad, b"damaged there")
    path = a.path(bad)
    os.chmod(path, 0o644)
    path.write_bytes(b"damaged here")
    with pytest.raises(IntegrityError, match=f"corrupt object {bad}"):
        remote.push(a, oids, verify=True)
    import obstore

    assert bytes(obstore.get(remote.store, remote.key(bad)).bytes()) == b"damaged there"
    path.write_bytes(good)
    assert remote.push(a, oids, verify=True)["repaired"] == 1


def pushed_to_a_file_remote_with_one_copy_gone(tmp_path):
    """A store pushed to a file:// remote named backup, the first object's file there removed
    (for a test to put something else in its place): the store, ids, remote and that path."""
    a = new_store(tmp_path / "a")
    oids = fill(a, n=2)
    remote = Remote(RemoteSpec("backup", (tmp_path / "remote").as_uri()))
    remote.push(a, oids)
    there = tmp_path / "remote" / "objects" / oids[0][:2] / oids[0][2:]
    there.unlink()
    return a, oids, remote, there


def test_push_verify_replaces_a_dangling_link_in_place_of_a_copy_on_a_file_remote(tmp_path):
    """red-team 3, P2: on a file:// remote a link to nowhere at an object's path is not listed,
    yet refuses a create-only upload, so it counted as "already there" for ever."""
    a, oids, remote, there = pushed_to_a_file_remote_with_one_copy_gone(tmp_path)
    there.symlink_to(tmp_path / "nowhere")
    assert remote.push(a, oids)["skipped"] == len(oids)  # create-only: refused, so skipped
    stats = remote.push(a, oids, verify=True)
    assert (stats["repaired"], stats["skipped"]) == (1, len(oids) - 1)
    loose(a)  # (repaired from the journal; compared file to file)
    assert not there.is_symlink() and there.read_bytes() == a.path(oids[0]).read_bytes()


def test_push_verify_names_a_damaged_copy_it_cannot_replace(tmp_path):
    """red-team 3, P2: a folder in place of an object on a file:// remote cannot be replaced
    by a file; the push fails naming the object and what to do, not with the store's words."""
    a, oids, remote, there = pushed_to_a_file_remote_with_one_copy_gone(tmp_path)
    (there / "inside").mkdir(parents=True)
    with pytest.raises(RemoteError) as info:
        remote.push(a, oids, verify=True)
    text = str(info.value)
    assert f"objects/{oids[0][:2]}/{oids[0][2:]}" in text and "remote backup" in text
    assert "the damaged copy there cannot be replaced" in text and "remove it there" in text
    assert len(text.splitlines()) == 1
