"""One cached session of the query index (:mod:`.index`): what a listing filters on (status,
tags, counts) without decoding any JSON, and the manifest decoded only when a row is chosen."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["UNREAD", "Row"]

UNREAD = object()  # (a row loaded without its manifest: see Index.rows)


class Row:
    """One cached session. The manifest is kept as JSON text and decoded only when asked for,
    so filtering thousands of sessions by status and tags touches no JSON at all."""

    __slots__ = (
        "dir",
        "id",
        "_manifest",
        "_json",
        "error",
        "msig",
        "rsig",
        "artifact_count",
        "last_at",
        "status",
        "tags",
        "_tagset",
        "loader",
    )

    def __init__(
        self,
        dir: str,
        id: str | None = None,
        manifest_json: str | None = None,
        error: str | None = None,
        msig: Any = None,
        rsig: Any = None,
        artifact_count: int = 0,
        last_at: str = "",
        status: str | None = None,
        tags: str = "[]",
    ) -> None:
        self.dir, self.id, self._json, self._manifest, self.error = (
            dir,
            id,
            manifest_json,
            None,
            error,
        )
        self.msig, self.rsig, self.artifact_count, self.last_at = (
            msig,
            rsig,
            artifact_count,
            last_at,
        )
        self.status, self.tags, self._tagset = status, tags, None
        self.loader = None

    def _json_text(self) -> str | None:
        if self._json is UNREAD:  # rows are loaded without their manifests (see Index.rows)
            self._json = self.loader(self.dir)
        return self._json

    json_text = property(_json_text)

    def _get_manifest(self) -> dict | None:
        if self._manifest is None and self.json_text:
            self._manifest = json.loads(self._json)
        return self._manifest

    def _set_manifest(self, m: dict) -> None:
        """A manifest just read and checked (``load_manifest``: never empty)."""
        self._manifest = m
        self._json = json.dumps(m)
        self.status = m["status"]
        self.tags = json.dumps(m["tags"])
        self._tagset = None

    manifest = property(_get_manifest, _set_manifest)

    def _get_unread(self) -> bool:
        return self._json is UNREAD

    unread = property(_get_unread)

    def set_json(self, text: str | None) -> None:
        """The manifest as JSON text, read for many rows in one query (``Index.load_manifests``)."""
        self._json = text

    def has_tags(self, tags: list[str], needles: list[str] | None = None) -> bool:
        """``needles`` are the tags as JSON strings, made once per query by the caller."""
        for n in needles if needles is not None else map(json.dumps, tags):
            if n not in self.tags:  # a substring test rules most rows out without parsing anything
                return False
        if self._tagset is None:
            self._tagset = frozenset(json.loads(self.tags))
        return self._tagset.issuperset(tags)
