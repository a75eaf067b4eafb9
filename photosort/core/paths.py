"""How photosort holds, and shows, the paths of photos whose names are not text.

A path on Linux and macOS is bytes. Photos copied from old Samba shares, FAT
sticks or Windows machines often carry names in a legacy encoding
(``caf\\xe9.jpg``: Latin-1), which are not UTF-8. photosort keeps every path
as the ``str`` Python itself makes of it (:func:`os.fsdecode`: each
undecodable byte becomes a lone surrogate, ``\\udce9``), end to end, so
opening, moving and comparing a photo is always exact. Such a string cannot be
printed, written as UTF-8 or stored as SQLite text, so it is stored as its
bytes (:func:`photosort.core.database.sql_path`) and shown through
:func:`display_path`, the one place that makes it readable.
"""

from __future__ import annotations

import errno
import os

NAME_TOO_LONG = "name too long for this system"  # the reason shown for a photo the OS cannot open by its path

_ESCAPED_BYTES = range(0xDC80, 0xDD00)  # surrogateescape: byte 0x80-0xff that was not UTF-8


def display_path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """``path`` as a person can read it, on one line, printable and valid UTF-8 (not for opening the file).

    Each byte that is not UTF-8 is shown as ``\\xNN`` (``caf\\xe9.jpg``) and a
    control character (a newline in a name) as ``\\xNN``; everything else,
    accents and emoji included, is shown as it is.
    """
    return printable(os.fsdecode(path))


def printable(text: str) -> str:
    """Any text (a message, a reason naming a path) with undecodable bytes and controls escaped, as :func:`display_path`."""
    if text.isprintable():
        return text
    return "".join(_readable(ch) for ch in text)


def _readable(ch: str) -> str:
    code = ord(ch)
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:  # any other lone surrogate (possible in Windows names)
        return f"\\u{code:04x}"
    if code < 0x20 or 0x7F <= code < 0xA0:
        return f"\\x{code:02x}"
    return ch


def is_name_too_long(exc: BaseException) -> bool:
    """The OS refused a path because it, or one of its names, is longer than it allows."""
    return isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG
