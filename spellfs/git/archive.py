"""The session archive format `spell export` writes and `spell import` reads: its layout,
its version, its manifest's name, and the error an archive that cannot be imported raises.

Layout of an archive (a tar stream compressed with zstd)::

    spellfs-export.yaml          format, session id and directory, object count
    sessions/<dir>/...           the session directory as it is on disk
    objects/ab/cdef...           stored object bytes, exactly as in .spell/objects

The objects are those the session reaches: every content hash in
``artifacts.yaml``, everything its checkpoints' trees reach (``ws.history.trees``:
parents, manifest, state, table pages, artifact contents), and every object id
named by ``checkpoints.yaml``, ``runs.yaml`` (scripts) and ``calls.yaml``.

Writing one is :mod:`.archive_export`; reading one is :mod:`.archive_import`, which
trusts nothing in it and checks each member as it streams (:mod:`.archive_members`).
"""

from __future__ import annotations

from ..errors import SpellError

__all__ = ["ArchiveError", "FORMAT", "MANIFEST", "MAX_MEMBERS"]

FORMAT = 1
MANIFEST = "spellfs-export.yaml"
#: An archive with more members than this is refused.
MAX_MEMBERS = 200_000


class ArchiveError(SpellError):
    """An archive that cannot be imported (malformed, hostile, or clashing with the workspace)."""
