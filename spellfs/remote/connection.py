"""Connecting to a remote: the obstore store for its URL, and its failures in one line.

S3 credentials come from :func:`~spellfs.remote.credentials.s3_credentials` (the boto3
chain when boto3 is installed); ``gs://``, ``az://`` and ``https://`` go through
``obstore.store.from_url`` and its providers' environment variables; a plain path is a
directory remote. Nothing here writes a credential anywhere.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import RemoteError
from .credentials import s3_credentials
from .spec import FROM_URL, RemoteSpec

__all__ = ["connect", "remote_error"]

_OPTIONS = {"timeout": "600s", "connect_timeout": "10s"}
_RETRIES = {"max_retries": 3}
_DENIED = ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "ExpiredToken")


def connect(spec: RemoteSpec, scheme: str, location: str, prefix: str) -> Any:
    """The obstore store of ``spec`` (``scheme``, ``location`` and ``prefix`` parsed from its
    URL); a configuration the store refuses is a :class:`RemoteError`."""
    options: dict[str, Any] = dict(_OPTIONS)
    if scheme == "s3":
        from obstore.store import S3Store

        endpoint = spec.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and endpoint.startswith("http://"):
            options["allow_http"] = True
        provider, profile_region = s3_credentials(spec.name)
        config = {
            "region": spec.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or profile_region
            or "us-east-1"
        }
        if endpoint:
            config["endpoint"] = endpoint
        return S3Store(
            location,
            prefix=prefix or None,
            client_options=options,
            retry_config=_RETRIES,
            credential_provider=provider,
            **config,
        )
    if scheme in FROM_URL:  # gs://, az://, https://: obstore's own credential chains
        from obstore.store import from_url

        try:
            return from_url(spec.url, client_options=options, retry_config=_RETRIES)
        except Exception as exc:  # noqa: BLE001 - obstore's config errors are plain exceptions
            raise remote_error(spec, location, exc) from None
    from obstore.store import LocalStore

    try:
        os.makedirs(location, exist_ok=True)
    except OSError as exc:
        raise remote_error(spec, location, exc) from None
    return LocalStore(location, mkdir=True)


def remote_error(spec: RemoteSpec, location: str, exc: BaseException) -> RemoteError:
    """A one-line error naming the remote and the cause, with no traceback or secrets."""
    text = str(exc)
    found = re.search(r"<Code>([^<]+)</Code>", text)
    code = found.group(1) if found else ""
    from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

    if code == "NoSuchBucket":
        cause = f"bucket not found: {location}"
    elif code in _DENIED or isinstance(exc, (PermissionDeniedError, UnauthenticatedError)):
        cause = (
            f"access denied ({code or 'forbidden'}); check "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    elif "error sending request" in text or "Connect" in text or "dns error" in text:
        cause = f"cannot reach {spec.endpoint_url or 'the S3 endpoint'}"
    elif isinstance(exc, OSError) and exc.strerror:
        cause = f"{exc.strerror}: {exc.filename or location}"
    elif code:
        cause = f"server said {code}"
    else:
        first = text.splitlines()[0] if text else type(exc).__name__
        cause = re.sub(r"\s+", " ", first)[:200]
    return RemoteError(f"remote {spec.name} ({spec.url}): {cause}")
