"""Editing the ``remotes:`` section of spell.yaml (SPEC §7): list, add, remove.

What a caller may rely on: :func:`add_remote` / :func:`remove_remote` edit
``spell.yaml`` as a round trip (ruamel.yaml), so comments and the other keys
survive, under a lock and with an atomic replace; the new file is validated
before it is written. Only ``url``, ``endpoint_url`` and ``region`` are ever
written: credentials come from the standard ``AWS_*`` variables or profiles and
never reach the workspace. The first remote in ``spell.yaml`` is the default.
Using a remote (push, pull, fetch) is :mod:`spellfs.remote.sync`.
"""

from __future__ import annotations

import io
import os
import re
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ManifestError, NotFound, UsageError

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["add_remote", "list_remotes", "remove_remote"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def list_remotes(ws: "Workspace") -> list[dict]:
    """The configured remotes in spell.yaml order; the first is marked default."""
    return [
        {
            "name": name,
            "url": body["url"],
            "endpoint_url": body.get("endpoint_url"),
            "region": body.get("region"),
            "default": i == 0,
        }
        for i, (name, body) in enumerate(ws.config.remotes.items())
    ]


def _check_endpoint(url: str) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"not an endpoint URL: {url!r} (use http(s)://host[:port])")
    if parts.username or parts.password or parts.query:
        raise UsageError(
            "endpoint URL must not carry credentials or a query: "
            f"{parts.scheme}://{parts.hostname}… "
            "(credentials come from AWS_* variables or a profile)"
        )


def add_remote(
    ws: "Workspace", name: str, url: str, endpoint_url: str | None = None, region: str | None = None
) -> dict:
    """Add a remote to spell.yaml (the first one added becomes the default)."""
    from .transport import parse_remote_url

    if not isinstance(name, str) or not _NAME.match(name):
        raise UsageError(
            f"invalid remote name: {name!r} (letters, digits, '.', '_', '-'; at most 64)"
        )
    scheme = parse_remote_url(url)[0]
    if endpoint_url is not None:
        if scheme != "s3":
            raise UsageError(f"--endpoint-url applies to s3:// remotes only (got {url})")
        _check_endpoint(endpoint_url)
    if region is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", region):
        raise UsageError(f"invalid region: {region!r}")
    body: dict[str, Any] = {"url": url}
    if endpoint_url:
        body["endpoint_url"] = endpoint_url
    if region:
        body["region"] = region

    def change(doc) -> None:
        from ruamel.yaml.comments import CommentedMap

        remotes = doc.get("remotes")
        if remotes is None:
            remotes = doc["remotes"] = CommentedMap()
        if name in remotes:
            raise UsageError(
                f"remote already exists: {name} (remove it first with `spell remote remove {name}`)"
            )
        remotes[name] = CommentedMap(body)

    _edit_spell_yaml(ws, change)
    return {"name": name, **body, "default": next(iter(ws.config.remotes)) == name}


def remove_remote(ws: "Workspace", name: str) -> dict:
    """Remove a remote from spell.yaml; the next one (if any) becomes the default."""

    def change(doc) -> None:
        remotes = doc.get("remotes")
        if not remotes or name not in remotes:
            have = ", ".join(remotes or ()) or "none"
            raise NotFound(
                f"remote not found: {name} (configured: {have}; see `spell remote list`)"
            )
        del remotes[name]
        if not remotes:
            del doc["remotes"]

    _edit_spell_yaml(ws, change)
    return {"name": name, "removed": True}


def _rt_yaml():
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.width = 4096
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _edit_spell_yaml(ws: "Workspace", change: Callable[[Any], None]) -> None:
    """Load spell.yaml as a round trip, apply ``change``, validate, and replace it atomically."""
    from ruamel.yaml.comments import CommentedMap

    from ..config import Config, apply_mapping
    from ..store import atomic_write
    from ..store import load_yaml

    if ws.root is None:
        raise UsageError("remotes need a workspace on disk (this one is in memory)")
    path = ws.root / "spell.yaml"
    if path.is_symlink():  # (writing through could write outside the workspace: a clone's link)
        raise UsageError(
            f"spell.yaml is a link to {os.readlink(path)}: not rewritten (edit the file it "
            "points to, or replace the link with a copy)"
        )
    with ws.storage.lock("spell-yaml"):
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            text = ""
        except UnicodeDecodeError as exc:
            raise ManifestError(f"spell.yaml: not UTF-8 (byte {exc.start})") from None
        load_yaml(text, "spell.yaml")  # a broken file is reported with its line, never rewritten
        y = _rt_yaml()
        doc = y.load(text)
        only_comments = doc is None
        if only_comments:
            doc = CommentedMap()
        if not isinstance(doc, dict):
            raise ManifestError("spell.yaml: expected a mapping of sections")
        change(doc)
        if not doc:
            # Nothing but comments is left: keep every comment line as it was.
            new = "".join(
                line
                for line in text.splitlines(keepends=True)
                if not line.strip() or line.lstrip().startswith("#")
            )
        else:
            out = io.StringIO()
            y.dump(doc, out)
            new = out.getvalue()
            if only_comments and text.strip():
                new = text.rstrip("\n") + "\n" + new
        config = Config()
        apply_mapping(config, load_yaml(new, "spell.yaml"), "spell.yaml")
        atomic_write(path, new.encode("utf-8"), fsync=True)
    ws.config.remotes = config.remotes
