"""What a scan of one session's ``files/`` found that its records do not say
(:meth:`spellfs.model.worktree.Worktree.scan`): ``spell status``'s answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["WorkingCopy"]


@dataclass
class WorkingCopy:
    """One session's hand changes: name → BLAKE3 of the file now (modified, added), names
    (deleted)."""

    dir: str
    modified: dict[str, str] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    #: copies of interrupted stores put back to their records by this scan
    phantoms: list[str] = field(default_factory=list)
    #: live artifacts with no copy whose object is not local (on a remote): not hand changes
    not_local: list[str] = field(default_factory=list)
    #: copies kept out of git, never written here, that this scan wrote from their objects
    written: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.modified or self.added or self.deleted)

    def names(self) -> list[str]:
        return sorted([*self.modified, *self.added, *self.deleted])

    def copy(self) -> "WorkingCopy":
        out = WorkingCopy(self.dir, dict(self.modified), dict(self.added), list(self.deleted))
        out.not_local = list(self.not_local)
        return out

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "modified": sorted(self.modified),
            "added": sorted(self.added),
            "deleted": sorted(self.deleted),
        }
        if self.not_local:  # (only then: the three keys are what older readers know)
            out["not_local"] = sorted(self.not_local)
        return out
