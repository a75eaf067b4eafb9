"""Which XMP sidecar files belong to a photo, and what a sidecar is called when its photo is renamed.

One rule for the whole program: ``photosort tag`` writes keywords into these
files (:mod:`photosort.core.sidecars`) and an export carries them along with
their photo (:mod:`photosort.core.export`). It imports nothing of either, so
both can use it.

darktable and digiKam (by default) name a sidecar ``IMG_1.JPG.xmp`` (the photo's
whole name plus ``.xmp``), Lightroom ``IMG_1.xmp``. ``IMG_1.xmp`` belongs to a
photo only when no other file in its folder has the stem ``IMG_1``; else it is
shared (a RAW beside its JPEG: both describe one shot). An upper-case ``.XMP``
counts too.
"""

from __future__ import annotations

import logging
import os
from collections import Counter

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".xmp"


def full_name(photo_name: str) -> str:
    """``IMG_1.JPG`` -> ``IMG_1.JPG.xmp`` (darktable's and digiKam's default; the one photosort creates)."""
    return photo_name + SIDECAR_SUFFIX


def stem_name(photo_name: str) -> str:
    """``IMG_1.JPG`` -> ``IMG_1.xmp`` (Lightroom's, and digiKam's "compatible" naming)."""
    return os.path.splitext(photo_name)[0] + SIDECAR_SUFFIX


def is_sidecar_name(name: str) -> bool:
    return name.lower().endswith(SIDECAR_SUFFIX)


class Listings:
    """Folder listings read once per run (thousands of photos in one folder: one listdir, not thousands)."""

    def __init__(self) -> None:
        self._names: dict[str, frozenset[str]] = {}
        self._stems: dict[str, Counter[str]] = {}

    def names(self, folder: str) -> frozenset[str]:
        if folder not in self._names:
            try:
                self._names[folder] = frozenset(os.listdir(folder))
            except OSError:  # a mirror folder not made yet, or one that cannot be listed: no sidecars there
                self._names[folder] = frozenset()
        return self._names[folder]

    def stem_count(self, folder: str, stem: str) -> int:
        """How many files (sidecars not counted) in ``folder`` have this stem: ``IMG_1`` for ``IMG_1.JPG``."""
        if folder not in self._stems:
            self._stems[folder] = Counter(os.path.splitext(n)[0] for n in self.names(folder)
                                          if not is_sidecar_name(n))
        return self._stems[folder][stem]


def existing_sidecars(photo: str, folder: str, listings: Listings) -> list[str]:
    """Sidecars of either naming that exist for ``photo`` in ``folder`` (its own folder or a mirror), full name first;
    a shared ``IMG_1.xmp`` is not among them (see :func:`shared_sidecars`)."""
    name = os.path.basename(photo)
    names = listings.names(folder)
    found = [n for n in _variants(full_name(name)) if n in names]
    if not stem_shared(photo, listings):
        found += [n for n in _variants(stem_name(name)) if n in names]
    return [os.path.join(folder, n) for n in found]


def shared_sidecars(photo: str, listings: Listings) -> list[str]:
    """The ``IMG_1.xmp`` beside ``photo`` that it shares with another file of its stem (its RAW or JPEG twin)."""
    if not stem_shared(photo, listings):
        return []
    folder, name = os.path.split(photo)
    names = listings.names(folder)
    return [os.path.join(folder, n) for n in _variants(stem_name(name)) if n in names]


def sidecars_beside(photo: str, listings: Listings) -> list[str]:
    """Every sidecar beside ``photo`` of either naming, shared or not."""
    folder, name = os.path.split(photo)
    names = listings.names(folder)
    return [os.path.join(folder, n) for n in (*_variants(full_name(name)), *_variants(stem_name(name))) if n in names]


def renamed_sidecar(sidecar_name: str, photo_name: str, new_photo_name: str) -> str:
    """What ``sidecar_name`` (a sidecar of ``photo_name``) is called beside the photo renamed ``new_photo_name``,
    in the same naming and the same case of ``.xmp``: ``IMG_1.CR2.xmp`` -> ``IMG_1 (2).CR2.xmp``,
    ``IMG_1.xmp`` -> ``IMG_1 (2).xmp``."""
    suffix = sidecar_name[-len(SIDECAR_SUFFIX):]
    if sidecar_name[: -len(SIDECAR_SUFFIX)] == photo_name:
        return new_photo_name + suffix
    return os.path.splitext(new_photo_name)[0] + suffix


def _variants(name: str) -> tuple[str, str]:
    base = name[: -len(SIDECAR_SUFFIX)]
    return base + SIDECAR_SUFFIX, base + SIDECAR_SUFFIX.upper()


def stem_shared(photo: str, listings: Listings) -> bool:
    """Another file beside the photo has its stem (``IMG_1.CR2`` beside ``IMG_1.JPG``): ``IMG_1.xmp`` is not its own."""
    folder, name = os.path.split(photo)
    return listings.stem_count(folder, os.path.splitext(name)[0]) > 1
