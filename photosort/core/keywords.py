"""Keywords a photo manager already wrote, read back as labels: ``photosort train --from-keywords "trip/*"``.

A photo's keywords are gathered from everywhere a photo manager puts them:
its XMP sidecars (``IMG_1.JPG.xmp`` and ``IMG_1.xmp``), the XMP packet embedded
in the photo (JPEG, HEIC, PNG, TIFF, WebP: read from the header, the pixels are
never decoded) and its IPTC keywords (dataset 2:25). Flat keywords are
``dc:subject`` and IPTC's; hierarchical ones are ``lr:hierarchicalSubject``
(``trip|italy``), ``digiKam:TagsList`` and ``MicrosoftPhoto:LastKeywordXMP``
(``trip/italy``) -- ``|`` and ``/`` mean the same.

A pattern (:class:`KeywordPattern`) is a glob. One with a level separator is
matched against the hierarchical keywords and each of their ancestors, a level
at a time (``*`` never crosses a ``/``), so ``trip/*`` matches ``trip/italy``
and ``trip/italy/rome`` alike; the label is what the wildcards matched
(``italy``; with several wildcards, from the first one's match to the last
one's end). One without a separator is matched against the flat keywords
(``trip-*`` on ``trip-italy`` gives ``italy``); with no wildcard at all the
label is the keyword's last level. Case is ignored. A photo whose keywords give
two different labels is left out and reported: guessing would teach the
classifier a wrong label.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, IptcImagePlugin

from .decode import HEIF_EXTENSIONS, heif_available
from .errors import LabelsError, SidecarError, UsageError
from .export.fileops import open_regular
from .labels_csv import MAX_LABEL_CHARS
from .paths import display_path, printable
from .progress import CancelToken, ProgressFn, Reporter, check_cancel
from .sidecars import Listings, read_sidecar, sidecars_to_read
from .wording import natural_key, plural
from .xmp import Keywords, XmpPacket

if TYPE_CHECKING:
    from .classifiers import TrainReport
    from .library import Library

log = logging.getLogger(__name__)

_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
_IPTC_KEYWORDS = (2, 25)
_IPTC_UTF8 = b"\x1b%G"  # dataset 1:90, "coded character set": UTF-8


# ---- reading a photo's keywords -----------------------------------------------------------------
@dataclass(frozen=True)
class PhotoKeywords:
    """Every keyword found for one photo, and what could not be read (each with its reason)."""

    keywords: Keywords = field(default_factory=Keywords)
    problems: tuple[str, ...] = ()


def read_keywords(photo: str, listings: Listings | None = None) -> PhotoKeywords:
    """The keywords of one photo: its sidecars, its embedded XMP and its IPTC keywords together."""
    listings = listings or Listings()
    found, problems = Keywords(), []
    for sidecar in sidecars_to_read(photo, listings):
        try:
            data = read_sidecar(sidecar)
            if data is not None:
                found = found | XmpPacket.parse(data).keywords()
        except SidecarError as exc:
            problems.append(f"{os.path.basename(sidecar)}: {exc}")
    embedded, problem = _embedded_keywords(photo)
    if problem:
        problems.append(f"embedded XMP: {problem}")
    return PhotoKeywords(found | embedded, tuple(problems))


def _embedded_keywords(photo: str) -> tuple[Keywords, str]:
    """The keywords inside the photo file (its header only), and a problem with its XMP, if any."""
    if photo.lower().endswith(HEIF_EXTENSIONS) and not heif_available():
        return Keywords(), ""
    try:
        with open_regular(Path(photo)) as handle, Image.open(handle) as image:
            packet, iptc = _xmp_packet(image), _iptc_keywords(image)
    except Exception as exc:  # a photo whose header cannot be read simply has no keywords here
        log.debug("no embedded keywords in %s: %s", photo, exc)
        return Keywords(), ""
    found = Keywords(tuple(iptc))
    if packet:
        try:
            found = found | XmpPacket.parse(packet.strip(b"\x00 \r\n\t")).keywords()
        except SidecarError as exc:
            return found, str(exc)
    return found, ""


def _xmp_packet(image: Image.Image) -> bytes | None:
    """The XMP packet Pillow found in the header (JPEG APP1, PNG iTXt, TIFF tag 700, WebP, HEIC)."""
    info = image.info
    packet = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if packet is None and hasattr(image, "tag_v2"):
        packet = image.tag_v2.get(700)
    if packet is None:  # older Pillow: the JPEG segments themselves
        packet = next((data[len(_XMP_APP1):] for marker, data in getattr(image, "applist", [])
                       if marker == "APP1" and data.startswith(_XMP_APP1)), None)
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return packet if isinstance(packet, bytes) else None


def _iptc_keywords(image: Image.Image) -> list[str]:
    """IPTC keywords (2:25), UTF-8 where the record says so or where the bytes are UTF-8, else Latin-1."""
    info = IptcImagePlugin.getiptcinfo(image) or {}
    raw = info.get(_IPTC_KEYWORDS) or []
    values = raw if isinstance(raw, list) else [raw]
    utf8 = info.get((1, 90)) == _IPTC_UTF8
    out = []
    for value in values:
        if isinstance(value, bytes):
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                text = value.decode("utf-8", "replace") if utf8 else value.decode("latin-1")
            if text.strip():
                out.append(text.strip())
    return out


# ---- patterns -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeywordPattern:
    """A glob over keywords (see the module's docstring) and the label each match gives."""

    text: str
    hierarchical: bool
    regex: re.Pattern[str]
    wildcards: bool

    @classmethod
    def parse(cls, text: str) -> KeywordPattern:
        if re.search("[\ud800-\udfff]", text):
            raise UsageError(f"--from-keywords '{printable(text)}' is not UTF-8 text: set the terminal to UTF-8 "
                             "(LANG=en_US.UTF-8, for example) and type it again.")
        normal = "/".join(part.strip() for part in text.replace("|", "/").strip().strip("/").split("/"))
        if not normal or any(not part for part in normal.split("/")):
            raise UsageError(f"--from-keywords '{text}' is not a keyword pattern; try, e.g., \"trip/*\".")
        hierarchical = "/" in normal
        regex, wildcards = _glob_regex(normal, hierarchical)
        return cls(text, hierarchical, regex, wildcards)

    def labels(self, keywords: Keywords) -> set[str]:
        """The labels these keywords give under this pattern (more than one: the photo is ambiguous)."""
        out: set[str] = set()
        if self.hierarchical:
            for levels in keywords.hierarchical:
                for k in range(1, len(levels) + 1):
                    label = self._label("/".join(levels[:k]), levels[k - 1])
                    if label:
                        out.add(label)
        else:
            for keyword in keywords.flat:
                label = self._label(keyword, keyword)
                if label:
                    out.add(label)
        return out

    def _label(self, candidate: str, last: str) -> str | None:
        match = self.regex.fullmatch(candidate)
        if match is None:
            return None
        # The part the wildcards matched: from where the first begins to where the last ends.
        label = candidate[match.start(1):match.end(len(match.groups()))] if self.wildcards else last
        return " ".join(label.split()) or None


def _glob_regex(pattern: str, hierarchical: bool) -> tuple[re.Pattern[str], bool]:
    """``*``, ``?`` and ``[...]`` as capturing groups (not crossing a level when hierarchical)."""
    any_char = "[^/]" if hierarchical else "."
    out, i, wildcards = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(f"({any_char}*)")
            wildcards = True
        elif ch == "?":
            out.append(f"({any_char})")
            wildcards = True
        elif ch == "[" and pattern.find("]", i + 2) > 0:
            end = pattern.find("]", i + 2)
            body = pattern[i + 1:end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append(f"([{body.replace(chr(92), chr(92) * 2)}])")
            wildcards = True
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.IGNORECASE), wildcards
    except re.error as exc:
        raise UsageError(f"--from-keywords '{pattern}' is not a valid pattern ({exc}).") from None


# ---- labels for a set of photos -----------------------------------------------------------------
@dataclass
class KeywordLabels:
    """The label each photo's keywords give, the photos left out and why."""

    patterns: list[str]
    photos: int = 0  # photos looked at
    labels: dict[str, str] = field(default_factory=dict)  # photo -> label
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)  # photo, the labels it matched
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # photo, what could not be read

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for label in self.labels.values():
            counts[label] = counts.get(label, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: natural_key(item[0])))

    def rows(self) -> list[tuple[str, str]]:
        """(photo, label) rows, labels in natural order, for :meth:`Library.train_from_labels`."""
        return sorted(self.labels.items(), key=lambda row: (natural_key(row[1]), row[0]))

    def to_json(self) -> dict:
        return {"patterns": self.patterns, "photos": self.photos, "labelled": len(self.labels),
                "labels_per_class": self.counts(),
                "ambiguous": [{"path": p, "labels": labels} for p, labels in self.ambiguous],
                "unreadable": [{"path": p, "reason": r} for p, r in self.unreadable]}

    def describe(self) -> str:
        lines = [f"Keywords matching {', '.join(self.patterns)}: {plural(len(self.labels), 'photo')} labelled "
                 f"of {self.photos:,}."]
        lines += [f"{count:>7}  {label}" for label, count in self.counts().items()]
        if self.ambiguous:
            lines.append(f"{plural(len(self.ambiguous), 'photo')} left out: their keywords match more than one label:")
            lines += [f"  {display_path(p)}: {', '.join(labels)}" for p, labels in self.ambiguous[:20]]
        if self.unreadable:
            lines.append(f"{plural(len(self.unreadable), 'photo')} with metadata that could not be read:")
            lines += [f"  {display_path(p)}: {printable(r)}" for p, r in self.unreadable[:20]]
        return "\n".join(lines)


def labels_from_keywords(photos: Sequence[str], patterns: Sequence[str], progress: ProgressFn | None = None,
                         cancel: CancelToken | None = None) -> KeywordLabels:
    """Read every photo's keywords and give each the one label its matching keywords agree on."""
    parsed = [KeywordPattern.parse(p) for p in patterns]
    if not parsed:
        raise UsageError('Say which keywords to learn from, e.g. --from-keywords "trip/*".')
    result = KeywordLabels([p.text for p in parsed], len(photos))
    spelling: dict[str, str] = {}  # casefolded -> the first spelling met: "Italy" and "italy" are one class
    listings = Listings()
    reporter = Reporter("reading", len(photos), progress)
    for done, photo in enumerate(photos):
        check_cancel(cancel)
        found = read_keywords(photo, listings)
        if found.problems:
            result.unreadable.append((photo, "; ".join(found.problems)))
        labels = {label for pattern in parsed for label in pattern.labels(found.keywords)
                  if len(label) <= MAX_LABEL_CHARS}
        names = sorted({spelling.setdefault(label.casefold(), label) for label in sorted(labels)}, key=natural_key)
        if len(names) == 1:
            result.labels[photo] = names[0]
        elif names:
            result.ambiguous.append((photo, names))
        reporter.update(done + 1)
    return result


@dataclass(frozen=True)
class KeywordTraining:
    """What ``train --from-keywords`` found and what training made of it."""

    found: KeywordLabels
    trained: TrainReport

    def to_json(self) -> dict:
        return {**self.trained.to_json(), "from_keywords": self.found.to_json()}


def train_from_keywords(library: Library, classifier: str, patterns: Sequence[str],
                        progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> KeywordTraining:
    """Label the library's photos from their keywords and train ``classifier`` on them, as a labels CSV would."""
    found = labels_from_keywords(library.photos.paths, patterns, progress, cancel)
    if not found.labels:
        where = ", ".join(display_path(r) for r in library.roots)
        extra = f" ({plural(len(found.ambiguous), 'photo')} matched more than one label)" if found.ambiguous else ""
        raise LabelsError(f"No photo in {where} has a keyword matching {', '.join(found.patterns)}{extra}; "
                          "photosort looked in XMP sidecars, embedded XMP and IPTC keywords.")
    return KeywordTraining(found, library.train_from_labels(classifier, found.rows()))
