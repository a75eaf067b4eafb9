"""Safe folder and file names: what a category may be called on disk, and the `` (n)`` suffixes.

Category names come from users and may contain anything; :func:`safe_folder_name`
turns each into one folder name that is valid and harmless on Linux, macOS and
Windows. Names are compared as macOS and Windows compare them
(:func:`fold`: case- and normalisation-insensitive), and a taken name gets the
next `` (n)`` suffix (:func:`numbered_folder_name`, :func:`numbered_file_name`),
shortened so that it still fits 255 UTF-8 bytes. :func:`name_family` undoes the
suffix, so an export can find the ``IMG (2).JPG`` an earlier run wrote.
"""

from __future__ import annotations

import os
import re
import unicodedata

MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 255
MAX_SUFFIX = 10_000  # the highest `` (n)`` tried before giving up on a name

_FORBIDDEN_CHARS = frozenset('/\\:*?"<>|')
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)


def safe_folder_name(name: str) -> str:
    """Turn a user's category name into one folder name that is safe everywhere.

    Separators and characters Windows forbids become ``_``, control characters
    become spaces, runs of dots and spaces collapse, leading/trailing dots and
    spaces go, Windows device names (``CON``, ``com1.txt``...) get a ``_``,
    and the result is NFC, at most ~100 characters and 255 UTF-8 bytes, never
    empty (``Unnamed``). The steps interact (NFC after removing characters,
    trimming after truncating), so they are repeated until stable, which makes
    the function idempotent.
    """
    result = _sanitize_once(name)
    for _ in range(4):
        again = _sanitize_once(result)
        if again == result:
            break
        result = again
    return result


def is_blank_name(name: str) -> bool:
    """True when nothing of ``name`` survives :func:`safe_folder_name` (only dots, spaces,
    controls...), so a caller can say what is missing instead of writing ``Unnamed``."""
    return not _cleaned(name)


def _cleaned(name: str) -> str:
    text = unicodedata.normalize("NFC", name)
    text = unicodedata.normalize("NFC", "".join(_clean_char(ch) for ch in text))
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\.{2,}", ".", text)
    return _fit(text.strip(" ."), MAX_NAME_CHARS, MAX_NAME_BYTES)


def _sanitize_once(name: str) -> str:
    text = _cleaned(name)
    if not text:
        return "Unnamed"
    if _is_reserved(text):
        head, dot, tail = text.partition(".")
        text = _fit(f"{head}_{dot}{tail}", MAX_NAME_CHARS, MAX_NAME_BYTES)
    return text


def _clean_char(ch: str) -> str:
    """Forbidden characters become ``_``, controls a space; invisible tricks vanish."""
    if ch in _FORBIDDEN_CHARS:
        return "_"
    category = unicodedata.category(ch)
    if category == "Cc":
        return " "
    if category == "Cs" or ch in _BIDI_CONTROLS:
        return ""
    return ch


def _is_reserved(name: str) -> bool:
    """Windows refuses device names, even with an extension (``con.txt``)."""
    return name.partition(".")[0].rstrip(" ").upper() in _RESERVED_NAMES


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _fit(text: str, max_chars: int, max_bytes: int) -> str:
    """Cut ``text`` to the limits, then drop trailing dots/spaces Windows would eat."""
    text = text[:max_chars]
    while _utf8_len(text) > max_bytes:
        text = text[:-1]
    return text.rstrip(" .")


def fold(name: str) -> str:
    """Case- and normalisation-insensitive key, as macOS and Windows compare names."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def numbered_folder_name(base: str, number: int) -> str:
    """``Cats`` -> ``Cats (2)``, shortened to fit the folder name limits."""
    tag = f" ({number})"
    return _fit(base, MAX_NAME_CHARS - len(tag), MAX_NAME_BYTES - len(tag)) + tag


def _split_extension(name: str) -> tuple[str, str]:
    """(stem, extension); an "extension" longer than 16 characters is part of the stem."""
    stem, ext = os.path.splitext(name)
    return (name, "") if len(ext) > 16 else (stem, ext)


def numbered_file_name(name: str, number: int) -> str:
    """``IMG_0001.JPG`` -> ``IMG_0001 (2).JPG``, shortened to fit 255 bytes."""
    stem, ext = _split_extension(name)
    tag = f" ({number})"
    budget = MAX_NAME_BYTES - _utf8_len(tag + ext)
    while _utf8_len(stem) > budget:
        stem = stem[:-1]
    return f"{stem}{tag}{ext}"


_NUMBERED_STEM = re.compile(r"^(?P<stem>.*) \((?P<number>[0-9]+)\)$", re.DOTALL)


def name_family(name: str) -> str:
    """The key shared by ``IMG.JPG``, ``img (2).jpg``, ``IMG (3).JPG``...: the names
    :func:`numbered_file_name` makes from one name (unless it had to shorten it),
    compared as :func:`fold` compares them."""
    stem, ext = _split_extension(name)
    numbered = _NUMBERED_STEM.match(stem)
    if numbered is not None:
        stem = numbered["stem"]
    return fold(stem) + "\0" + fold(ext)
