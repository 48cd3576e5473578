"""What names a remote: its spec (name, URL, endpoint, region) as spell.yaml's ``remotes:``
section gives it, and the URLs spellfs accepts for one (``s3://``, ``gs://``, ``az://``,
``https://``, ``file://``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["FROM_URL", "RemoteSpec", "parse_remote_url"]


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    endpoint_url: str | None = None
    region: str | None = None


#: Schemes handed to ``obstore.store.from_url`` whole (Google Cloud Storage, Azure, HTTP/WebDAV).
FROM_URL = ("gs", "az", "https")


def parse_remote_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix`` → ("s3", bucket, prefix); ``file:///abs`` → ("file", "/abs", "");
    ``gs://bucket/prefix``, ``az://container/prefix`` (the account from
    ``AZURE_STORAGE_ACCOUNT_NAME``), ``https://host/path`` → (scheme, url, "") for obstore's
    ``from_url``."""
    m = re.fullmatch(r"(gs|az|https)://[^/\s]+(/\S*)?", url or "")
    if m:
        return m.group(1), url.rstrip("/"), ""
    m = re.fullmatch(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(?:/(.*))?", url or "")
    if m:
        return "s3", m.group(1), (m.group(2) or "").strip("/")
    if (
        isinstance(url, str)
        and url.startswith("file://")
        and url[7:].startswith("/")
        and not url.startswith("file:////")
    ):
        return "file", os.path.normpath(url[7:]), ""
    raise UsageError(
        f"not a remote URL: {url!r} (use s3://bucket/prefix, gs://bucket/prefix, "
        "az://container/prefix, https://host/path or file:///absolute/path)"
    )
