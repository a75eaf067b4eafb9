"""Keep and reject: the user's word on near-duplicates, and moving rejected photos to the trash.

A decision is user data (``library.db``, :meth:`~photosort.core.userdata.UserStore.set_decisions`):
rejecting a photo says "I do not want this copy", which nothing derived may
forget. It is keyed like a label by the photo's identity (its content
fingerprint), with the path beside it in the key, because identical copies
share an identity and only the path tells which copy was rejected. A decision
follows its photo when it is moved or renamed (its recorded path is gone and
the open folders hold that content once), as labels do.

What a rejection does: the photo is left out of exports (unless asked,
:meth:`Library.plan_export`'s ``include_rejected``) and is offered to
:func:`trash_rejected`, which only an explicit action calls. Trashing never
deletes anything itself: it hands each photo to the operating system's trash
(``send2trash``), from where the user can put it back; it refuses a photo whose
content changed since it was rejected (its fingerprint differs: the user
rejected other bytes), and a photo that is not a plain file. One photo's failure
is recorded and the rest go on.
"""

from __future__ import annotations

import logging
import os
import stat
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

import send2trash

from .decode import fingerprint
from .paths import display_path
from .progress import CancelToken, ProgressFn, Reporter, is_cancelled

if TYPE_CHECKING:
    from .library import Library
    from .userdata import StoredDecision

log = logging.getLogger(__name__)

REJECTED_REASON = "rejected as a duplicate"  # how an export lists a rejected photo it left out


class Decision(str, Enum):
    """The user's word on one photo of a group."""

    KEEP = "keep"  # keep this one: the group's keeper, never rejected by "reject the others"
    REJECT = "reject"  # not wanted: left out of exports, offered to the trash


@dataclass(frozen=True)
class RejectedPhoto:
    """A photo of the open folders that the user rejected: where it is, and the content they rejected."""

    id: int
    path: str
    identity: str  # the fingerprint when it was rejected
    recorded_path: str  # where it was when it was rejected (its record's key)


def decisions(library: Library) -> dict[int, Decision]:
    """The decision on each photo of the open folders that has one (photo id -> decision)."""
    return {pid: Decision(stored.decision) for pid, stored in _resolved(library).items()}


def rejected(library: Library) -> list[RejectedPhoto]:
    """The photos of the open folders that the user rejected, in path order."""
    out = [RejectedPhoto(pid, library.path_of(pid) or stored.path, stored.photo, stored.path)
           for pid, stored in _resolved(library).items() if stored.decision == Decision.REJECT.value]
    return sorted(out, key=lambda r: r.path)


def rejected_ids(library: Library) -> set[int]:
    return {r.id for r in rejected(library)}


def set_decisions(library: Library, choices: dict[int, Decision | None]) -> int:
    """Record the user's word on photos of the open folders (photo id -> decision; None forgets it).

    Recording the same decision again changes nothing, so this is safe to
    repeat. Returns how many records changed.
    """
    keys = library.keys_for(choices)
    current = _resolved(library)
    records: dict[tuple[str, str], str | None] = {}
    for pid, choice in choices.items():
        path = library.path_of(pid)
        if pid not in keys or path is None:
            continue
        stored = current.get(pid)
        if stored is not None and (stored.photo, stored.path) != (keys[pid], path):
            records[(stored.photo, stored.path)] = None  # recorded where it was before a move: now kept here
        if choice is None:
            records[(keys[pid], path)] = None
        else:
            records[(keys[pid], path)] = Decision(choice).value
    return library.engine.user.set_decisions(records) if records else 0


def _resolved(library: Library) -> dict[int, StoredDecision]:
    """Which stored decision applies to which photo of the open folders.

    The record at a photo's own path (and identity) applies to it. A record
    whose path no longer exists follows its content, like a label, when the open
    folders hold that content once (the photo was moved or renamed). A record for
    a copy elsewhere that still exists never applies to another copy.
    """
    stored = library.engine.user.decisions()
    if not stored:
        return {}
    held = library.photos
    by_identity: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(held.keys):
        by_identity[key].append(i)
    out: dict[int, StoredDecision] = {}
    records_of: dict[str, list[StoredDecision]] = defaultdict(list)
    for record in stored:
        records_of[record.photo].append(record)
    for identity, records in records_of.items():
        rows = by_identity.get(identity, [])
        at_path = {r.path: r for r in records}
        for i in rows:
            if held.paths[i] in at_path:
                out[int(held.ids[i])] = at_path[held.paths[i]]
        undecided = [i for i in rows if int(held.ids[i]) not in out]
        if len(rows) == 1 and undecided:
            moved = [r for r in records if r.path not in set(held.paths) and not os.path.lexists(r.path)]
            if moved:
                out[int(held.ids[undecided[0]])] = max(moved, key=lambda r: r.decided)
    return out


# ---- trashing ------------------------------------------------------------------------------------------
@dataclass
class TrashReport:
    """What :func:`trash_rejected` did: photos moved to the trash, refused (with why), failed (with why)."""

    trashed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False

    def to_json(self) -> dict:
        return {"trashed": self.trashed, "refused": [{"path": p, "reason": r} for p, r in self.refused],
                "failed": [{"path": p, "reason": r} for p, r in self.failed], "cancelled": self.cancelled}


def trash_rejected(library: Library, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                   photos: Iterable[int] | None = None) -> TrashReport:
    """Move the rejected photos of the open folders (or those of ``photos`` that are rejected) to the trash.

    Only an explicit request by the user may call this. Each photo is checked
    first: still a plain file, and still the content that was rejected (same
    fingerprint); otherwise it is refused and stays. Each trashed photo is
    forgotten by the cache (it is gone from the folder) and its reject record
    dropped; a failure is recorded and the rest go on. Cancelling stops before
    the next photo; what was trashed stays trashed (the trash gives it back).
    """
    todo = rejected(library)
    if photos is not None:
        wanted = set(photos)
        todo = [r for r in todo if r.id in wanted]
    report = TrashReport()
    reporter = Reporter("trashing", len(todo), progress)
    gone: list[RejectedPhoto] = []
    try:
        for done, photo in enumerate(todo):
            if is_cancelled(cancel):
                report.cancelled = True
                break
            _trash_one(photo, report, gone)
            reporter.update(done + 1)
    finally:
        _forget(library, gone)
    log.info("trashed %d rejected photos, refused %d, %d failed", len(report.trashed), len(report.refused),
             len(report.failed))
    return report


def _trash_one(photo: RejectedPhoto, report: TrashReport, gone: list[RejectedPhoto]) -> None:
    reason = _refusal(photo)
    if reason is not None:
        report.refused.append((photo.path, reason))
        return
    try:
        send2trash.send2trash(photo.path)
    except Exception as exc:  # send2trash raises OSError and its own TrashPermissionError; one photo's failure
        report.failed.append((photo.path, _why(exc)))
        log.warning("could not move %s to the trash: %s", display_path(photo.path), exc)
        return
    report.trashed.append(photo.path)
    gone.append(photo)


def _refusal(photo: RejectedPhoto) -> str | None:
    """Why this photo must not go to the trash now, or None."""
    try:
        info = os.lstat(photo.path)
    except FileNotFoundError:
        return "it is no longer there"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "not a plain file (a link or a folder), so photosort leaves it"
    try:
        now = fingerprint(photo.path)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if now != photo.identity:
        return "its content changed since it was rejected; look at it again"
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _forget(library: Library, gone: list[RejectedPhoto]) -> None:
    """The cache forgets trashed photos (they left the folder); their reject records are dropped."""
    if not gone:
        return
    engine = library.engine
    engine.cache.delete_photos(p.id for p in gone)
    engine.user.set_decisions({(p.identity, p.recorded_path): None for p in gone})
    library.reload()
