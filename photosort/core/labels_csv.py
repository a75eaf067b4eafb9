"""Read a labels CSV (``path,label``) safely: it may come from anywhere.

Paths may be absolute or relative to the library folder but must point inside
it, and not to the folder itself or to any folder in it; the file size, row
count and cell lengths are bounded; the encoding must be UTF-8 (a BOM is fine). Anything else is refused with a LabelsError that
names the line.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .errors import LabelsError

MAX_BYTES = 50_000_000
MAX_ROWS = 1_000_000
MAX_LABEL_CHARS = 200
MAX_PATH_CHARS = 4096


def read_labels_csv(csv_path: str | os.PathLike[str], root: str) -> list[tuple[str, str]]:
    """``(real absolute path, label)`` rows of a labels CSV, paths checked to be inside ``root``."""
    path = Path(csv_path).expanduser()
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise LabelsError(f"The labels file {path} is too large ({size // 1_000_000} MB, limit 50 MB).")
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LabelsError(f"Labels file not found: {path}.") from None
    except UnicodeDecodeError:
        raise LabelsError(f"The labels file {path} is not UTF-8 text; save it as UTF-8 CSV.") from None
    except OSError as exc:
        raise LabelsError(f"Cannot read the labels file {path}: {exc.strerror}.") from None
    return parse_labels(text, root, source=str(path))


def parse_labels(text: str, root: str, source: str = "labels") -> list[tuple[str, str]]:
    if "\x00" in text:
        raise LabelsError(f"{source} is not a text CSV file (it holds NUL bytes).")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise LabelsError(f"{source} is not a valid CSV file: {exc}.") from None
    if len(rows) > MAX_ROWS:
        raise LabelsError(f"{source} has too many rows ({len(rows)}, limit {MAX_ROWS}).")
    out: list[tuple[str, str]] = []
    for number, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] in (["path", "label"], ["path", "kind"],
                                                                     ["file", "label"], ["path", "category"]):
            continue
        out.append(_parse_row(row, number, root, source))
    if not out:
        raise LabelsError(f"{source} holds no labels; expected rows of: path,label.")
    return out


def _parse_row(row: list[str], number: int, root: str, source: str) -> tuple[str, str]:
    if len(row) < 2:
        raise LabelsError(f"{source}, line {number}: expected path,label.")
    raw_path, label = row[0].strip(), row[1].strip()
    if not raw_path or not label:
        raise LabelsError(f"{source}, line {number}: the path and the label must both be given.")
    if len(raw_path) > MAX_PATH_CHARS or len(label) > MAX_LABEL_CHARS or any(ord(c) < 32 for c in label):
        raise LabelsError(f"{source}, line {number}: the path or label is too long or has control characters.")
    candidate = Path(raw_path)
    if not candidate.is_absolute():
        candidate = Path(root) / candidate
    real = os.path.realpath(candidate)
    if not (real == root or real.startswith(root.rstrip(os.sep) + os.sep)):
        raise LabelsError(f"{source}, line {number}: {raw_path} is outside the folder {root}.")
    # A path that resolves to the folder itself (".", "sub/..") or to any folder in it labels no photo.
    if real == root or os.path.isdir(real):
        raise LabelsError(f"{source}, line {number}: {raw_path} is a folder, not a photo.")
    return real, label
