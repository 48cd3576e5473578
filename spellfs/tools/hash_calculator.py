"""``hash_calculator``: ``hash`` and ``verify`` with md5, sha1, sha256, sha384, sha512, blake2b.

``{operation, input (or data), algorithm = "sha256", format = "hex"|"base64"}`` ->
``{operation, algorithm, hash}``; ``verify`` takes ``expected_hash`` (or ``hash``) ->
``{valid}``. ``file`` hashes a workspace file (confined like file_operations).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from ..errors import UsageError
from .base import Tool, confine, text

__all__ = ["TOOL"]

ALGORITHMS = ("md5", "sha1", "sha256", "sha384", "sha512", "blake2b")


def _digest(params: dict, ctx: Any) -> tuple[str, str]:
    algorithm = text(params, "algorithm", default="sha256").lower().replace("-", "")
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm: {algorithm} (use {', '.join(ALGORITHMS)})")
    if isinstance(params.get("file"), str) or isinstance(params.get("path"), str):
        _, path, _ = confine(ctx, text(params, "file", "path"))
        data = path.read_bytes()
    else:
        data = text(params, "input", "data").encode("utf-8")
    raw = hashlib.new(algorithm, data).digest()
    fmt = text(params, "format", default="hex")
    return algorithm, base64.b64encode(raw).decode() if fmt == "base64" else raw.hex()


def _hash_calculator(params: dict, ctx: Any) -> dict:
    operation = text(params, "operation", default="hash")
    if operation not in ("hash", "verify"):
        raise UsageError(f"unknown operation: {operation} (use hash or verify)")
    algorithm, digest = _digest(params, ctx)
    if operation == "verify":
        expected = text(params, "expected_hash", "hash", "expected").lower()
        return {
            "operation": operation,
            "algorithm": algorithm,
            "hash": digest,
            "valid": hmac.compare_digest(expected, digest.lower()),
        }
    return {"operation": operation, "algorithm": algorithm, "hash": digest, "output": digest}


TOOL = Tool(
    "hash_calculator",
    "Hash text or a file and verify hashes",
    _hash_calculator,
    operations=("hash", "verify"),
    parameters={"input": "text to hash", "algorithm": ", ".join(ALGORITHMS)},
)
