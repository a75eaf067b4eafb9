"""When and with what a photo was taken: its EXIF capture time and camera, read once at indexing.

The capture time is what people sort by and what bursts and export folders
(``{year}/{month}``) are made of. EXIF stores it as local wall-clock time
without a zone (``DateTimeOriginal``, with ``SubSecTimeOriginal`` for the
fraction of a second), so it is kept exactly so, as an ISO 8601 string
(``2019-07-14T18:03:21.250``): a photo taken at 6 pm in Tokyo stays 6 pm,
whatever zone the computer is in later. A photo without one (a screenshot, a
scan, a stripped copy) has no capture time; :func:`taken_or_file_time` then
falls back to the file's modification time, also as local wall-clock time.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

from PIL import Image

log = logging.getLogger(__name__)

EXIF_IFD = 0x8769
DATE_TIME_ORIGINAL = 0x9003
DATE_TIME_DIGITIZED = 0x9004
SUBSEC_TIME_ORIGINAL = 0x9291
DATE_TIME = 0x0132  # IFD0: when the file was last written; a camera writes the capture time here too
MAKE = 0x010F
MODEL = 0x0110

# "2019:07:14 18:03:21"; cameras and phone apps also write "-" or "/" between date parts, "T" before the time.
_EXIF_TIME = re.compile(r"^\s*(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EARLIEST_YEAR = 1826  # the oldest surviving photograph; "0000:00:00 00:00:00" and the like are "unknown"


@dataclass(frozen=True)
class CaptureFacts:
    """What a photo's metadata says about its taking; ``None`` where it says nothing (usable)."""

    taken: str | None = None  # ISO 8601 local wall-clock time, e.g. "2019-07-14T18:03:21.250"
    camera: str | None = None  # "Canon EOS 80D", "Apple iPhone 12"


@dataclass(frozen=True)
class PhotoDate:
    """A cached photo's capture facts with its file time, for when the facts say nothing."""

    facts: CaptureFacts
    mtime_ns: int

    @property
    def when(self) -> str:
        return taken_or_file_time(self.facts.taken, self.mtime_ns)


NO_FACTS = CaptureFacts()  # a photo whose metadata says nothing (immutable, so one instance serves all)


def capture_facts(image: Image.Image) -> CaptureFacts:
    """The capture time and camera of an opened image (header only: no pixel is decoded).

    A damaged EXIF block is a photo without facts, never a failed photo.
    """
    try:
        exif = image.getexif()
        details = exif.get_ifd(EXIF_IFD)
    except Exception:  # Pillow raises many kinds for broken EXIF; the photo itself may be fine
        log.debug("unreadable EXIF in %s", getattr(image, "filename", "?"), exc_info=True)
        return CaptureFacts()
    taken = None
    for tag, source in ((DATE_TIME_ORIGINAL, details), (DATE_TIME_DIGITIZED, details), (DATE_TIME, exif)):
        taken = parse_exif_time(source.get(tag), details.get(SUBSEC_TIME_ORIGINAL) if tag == DATE_TIME_ORIGINAL else None)
        if taken:
            break
    return CaptureFacts(taken, camera_name(exif.get(MAKE), exif.get(MODEL)))


def parse_exif_time(value: object, subsec: object = None) -> str | None:
    """An EXIF date-time as ISO 8601 (local, no zone), or None when it is missing or not a real time."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    match = _EXIF_TIME.match(str(value)) if value else None
    if not match:
        return None
    try:
        when = dt.datetime(*(int(part) for part in match.groups()))
    except ValueError:  # month 13, day 0, ...
        return None
    if when.year < _EARLIEST_YEAR:
        return None
    text = when.isoformat()
    fraction = "".join(ch for ch in str(subsec or "").strip() if ch.isdigit())[:3]
    return f"{text}.{fraction.ljust(3, '0')}" if fraction else text


def camera_name(make: object, model: object) -> str | None:
    """The camera as people say it: "Canon EOS 80D", not "Canon Canon EOS 80D" (the model often repeats the make)."""
    make_text, model_text = (_clean(v) for v in (make, model))
    if not model_text:
        return make_text or None
    if not make_text or model_text.casefold().startswith(make_text.split()[0].casefold()):
        return model_text
    return f"{make_text} {model_text}"


def _clean(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value or "").replace("\x00", " ")
    return " ".join("".join(ch for ch in text if ch.isprintable()).split())[:80]


def file_time(mtime_ns: int) -> str:
    """A file's modification time as local wall-clock ISO 8601 (seconds), comparable with capture times."""
    try:
        return dt.datetime.fromtimestamp(mtime_ns / 1e9).replace(microsecond=0).isoformat()
    except (OverflowError, OSError, ValueError):  # a nonsense timestamp from a broken copy tool
        return "1970-01-01T00:00:00"


def taken_or_file_time(taken: str | None, mtime_ns: int) -> str:
    """When the photo was taken as far as anyone can tell: EXIF if it says, else when the file was written."""
    return taken or file_time(mtime_ns)


def seconds_of(iso: str) -> float:
    """Seconds since an arbitrary fixed origin, for measuring the time between two shots (bursts)."""
    return (dt.datetime.fromisoformat(iso) - dt.datetime(1970, 1, 1)).total_seconds()
