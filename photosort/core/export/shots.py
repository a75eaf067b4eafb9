"""A RAW and the JPEG a camera wrote beside it are one shot: an export puts both in one folder.

Cameras in RAW+JPEG mode write ``IMG_0042.CR2`` and ``IMG_0042.JPG`` side by
side. Both are indexed (both are photos) and the classifier nearly always
agrees on them, but near a threshold one could land in ``Beach`` and its twin
in ``Unsure``, splitting the shot. Here the member the sorting is surest of
(a label counts as sure; the RAW wins a tie) decides the category of both.
Only a RAW and JPEGs of the same name in the same folder pair up.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from photosort.core.raw import is_raw_name

if TYPE_CHECKING:
    from .plan import ExportItem

log = logging.getLogger(__name__)

JPEG_TWIN_EXTENSIONS = (".jpg", ".jpeg")


def one_folder_per_shot(items: list[ExportItem]) -> list[ExportItem]:
    """``items`` with each RAW+JPEG pair's category made the same (the surer member's), in the same order."""
    shots: dict[tuple[str, str], list[int]] = {}
    for index, item in enumerate(items):
        path = Path(item.source)
        if is_raw_name(path) or path.suffix.lower() in JPEG_TWIN_EXTENSIONS:
            shots.setdefault((os.path.abspath(path.parent), path.stem.casefold()), []).append(index)
    paired = list(items)
    for members in shots.values():
        raws = [i for i in members if is_raw_name(items[i].source)]
        if len(raws) != 1 or len(members) < 2:
            continue
        decider = max(members, key=lambda i: (items[i].score, i in raws))
        for i in members:
            if items[i].category != items[decider].category:
                log.debug("%s follows its twin %s into %r", items[i].source, items[decider].source,
                          items[decider].category)
                paired[i] = replace(items[i], category=items[decider].category)
    return paired
