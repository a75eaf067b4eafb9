"""How counts read, once for the CLI and the window: "1 photo", "2 photos", "1,204 labels"."""

from __future__ import annotations

import re


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun in the right number (``nouns`` for irregular plurals: "category", "categories")."""
    word = noun if count == 1 else (nouns if nouns is not None else noun + "s")
    return f"{count:,} {word}"


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[str | int, ...], str]:
    """Order names as people read them: ``IMG_2`` before ``IMG_10``, case ignored (the text itself breaks ties).

    Splitting on runs of digits alternates text and number, so the tuples of two
    names compare text with text and number with number at every position.
    """
    parts = _DIGITS.split(text.casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text


def byte_size(count: float) -> str:
    """A size in decimal units, as download tools show it: "830 KB", "12.3 MB", "605 MB", "1.2 GB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            value = count / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{int(count)} B"
