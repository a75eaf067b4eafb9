"""Carrying a photo's XMP sidecar files along with it: same operation, same folder, renamed as the photo is.

An export copies, links or moves each sidecar of a photo (planned in
:mod:`.plan`, see :mod:`photosort.core.sidecar_names`) right after the photo
itself, by the same operation and the same rules: created exclusively, a copy
verified, a move journaled (its records are a photo's, marked ``sidecar_of``),
so it is finished and undone with its photo. A sidecar's name follows its
photo's final name (``IMG_1 (2).CR2`` -> ``IMG_1 (2).CR2.xmp``), so a sidecar
never takes a `` (n)`` name of its own: when its name is taken by another file
it is not carried, and that is reported (``result.sidecars_failed``), never
fatal, and never silent. Sidecars are never counted as photos.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from photosort.core.sidecar_names import renamed_sidecar

from .fileops import Content, FileProblem, blame, copy_verified, link_or_symlink, relocate, same_file
from .journal import Journal, move_record, moving_record
from .results import ExportResult

log = logging.getLogger(__name__)


def sidecar_target(photo: Path, sidecar: Path, final: Path) -> Path:
    """Where ``sidecar`` of ``photo`` goes when the photo went to ``final``."""
    return final.parent / renamed_sidecar(sidecar.name, photo.name, final.name)


def carry_sidecars(mode: str, journal: Journal | None, result: ExportResult, photo: Path,
                   sidecars: Sequence[Path], final: Path, already: bool = False) -> None:
    """Carry each sidecar to its place beside ``final``; one that cannot be carried is reported and the rest go on.
    ``already``: the photo was already there (a re-run), so a sidecar already under its name is its own."""
    for sidecar in sidecars:
        target = sidecar_target(photo, sidecar, final)
        try:
            carry_one(mode, journal, result, sidecar, target, already)
        except FileProblem as problem:
            if problem.fatal:  # a full disk or a lost journal stops the export; finishing the move carries it later
                result.sidecars_failed.append((sidecar, f"not carried along with {photo.name}: {problem.reason}"))
                raise
            record_sidecar_failure(journal, result, photo, sidecar, target, problem.reason)


def record_sidecar_failure(journal: Journal | None, result: ExportResult, photo: Path, sidecar: Path,
                           target: Path, reason: str) -> None:
    log.warning("The sidecar %s was not carried along with %s: %s", sidecar, photo, reason)
    result.sidecars_failed.append((sidecar, f"not carried along with {photo.name}: {reason}"))
    if journal is not None:
        journal.write(move_record(sidecar, target, "failed", reason=reason))


def carry_one(mode: str, journal: Journal | None, result: ExportResult, sidecar: Path, target: Path,
              already: bool) -> None:
    _check_plain_file(sidecar)
    if os.path.lexists(target):
        if mode != "move" and (already or same_file(sidecar, target) or same_bytes(sidecar, target)):
            log.info("%s is already there as %s", sidecar, target)
            return
        refuse_rename(target)
    if mode == "copy":
        copy_verified(sidecar, target, on_retarget=lambda _c: refuse_rename(target))
    elif mode == "link":
        link_or_symlink(sidecar, target, on_retarget=lambda _c: refuse_rename(target))
    else:
        _journaled_move(journal, sidecar, target)
    result.sidecars += 1


def _journaled_move(journal: Journal | None, sidecar: Path, target: Path) -> None:
    assert journal is not None, "moves are always journaled"
    with blame("source"):
        content = Content.of(sidecar)
    journal.write(move_record(sidecar, target, "retarget"), moving_record(sidecar, target, content))

    def temp(path: Path) -> None:
        journal.write({"op": "move", "src": str(sidecar), "tmp": str(path), "state": "copying"})

    final, method = relocate(sidecar, target, on_retarget=lambda _c: refuse_rename(target), on_temp=temp,
                             expect=content)
    journal.write(move_record(sidecar, final, "done", method=method))


def refuse_rename(target: Path) -> NoReturn:
    """A sidecar never takes a `` (n)`` name of its own: its photo manager would not find it there."""
    raise FileProblem("destination", OSError(errno.EEXIST, "name taken"),
                      reason=f"another file named {target.name} is already in {target.parent}; it was left alone")


def _check_plain_file(sidecar: Path) -> None:
    try:
        info = os.lstat(sidecar)
    except FileNotFoundError as exc:
        raise FileProblem("source", exc, reason="the sidecar disappeared (moved or deleted meanwhile)") from exc
    except OSError as exc:
        raise FileProblem("source", exc, reason=f"the sidecar cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise FileProblem("source", OSError(errno.EINVAL, "not a plain file"),
                          reason="the sidecar is a symbolic link or not a plain file, so it was left where it is")


def same_bytes(a: Path, b: Path) -> bool:
    """Two files hold the same bytes (False when either cannot be read)."""
    try:
        return Content.of(a).is_at(b)
    except OSError:
        return False
