"""Where an S3 remote's credentials come from: obstore's boto3-backed provider (the whole
AWS chain, profiles included) when boto3 is installed, else the ``AWS_*`` variables obstore
reads itself; never written anywhere.
"""

from __future__ import annotations

import os

from ..errors import RemoteError

__all__ = ["s3_credentials"]


def s3_credentials(name: str) -> tuple[object | None, str | None]:
    """obstore's boto3-backed credential provider and the profile's region, or (None, None)
    when boto3 is not installed and obstore reads the ``AWS_*`` variables itself.

    boto3 brings the whole AWS chain: environment, ``AWS_PROFILE`` in ~/.aws/credentials
    and ~/.aws/config (SSO, assume-role, ``credential_process``, the profile's region),
    web identity, containers and instance metadata.
    """
    try:
        import boto3
    except ImportError:
        if os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE"):
            raise RemoteError(
                f"remote {name}: AWS_PROFILE needs boto3 (pip install 'spellfs[aws]'), "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        if not _ambient_credentials():
            # Without this obstore would ask the cloud instance-metadata address, off this
            # machine, and fail minutes later with a confusing 403.
            raise RemoteError(
                f"remote {name}: no credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with boto3 installed)"
            ) from None
        return None, None
    import botocore.exceptions
    from obstore.auth.boto3 import Boto3CredentialProvider

    try:
        session = boto3.Session()
        return Boto3CredentialProvider(session), session.region_name
    except ValueError:  # the chain found nothing
        raise RemoteError(
            f"remote {name}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE naming a profile in ~/.aws/credentials or ~/.aws/config)"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise RemoteError(f"remote {name}: AWS credentials: {exc}") from None


def _ambient_credentials() -> bool:
    """Credentials obstore finds by itself: environment keys, web identity, a container endpoint."""
    env = os.environ
    return bool(
        env.get("AWS_ACCESS_KEY_ID")
        or env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        or env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        or env.get("SPELL_AWS_INSTANCE_CREDENTIALS")
    )
