"""What a benchmark run found, and how it is shown: a table for people, a JSON document for scripts.

The measuring (:mod:`.measure`, :mod:`.scale`) fills these records and never
prints; everything written to the terminal goes through here, so ``--json``
output stays one clean document on stdout with the progress lines on stderr.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .fidelity import Fidelity

log = logging.getLogger(__name__)

Say = Callable[[str], None]  # one line of progress for people


@dataclass
class ModeResult:
    """One row of the table: a device and precision mode."""

    device: str
    mode: str
    precision: str = ""
    decoder: str = "pillow"  # pillow: CPU threads; nvjpeg: on the GPU
    decode_rate: float = 0.0
    model_rate: float = 0.0
    index_rate: float = 0.0
    naive_rate: float = 0.0
    speedup: float = 0.0
    cosine_mean: float = 0.0
    cosine_worst: float = 0.0
    load_seconds: float = 0.0
    batch_size: int = 0
    torch_threads: int = 0
    decode_threads: int = 0
    notices: list[str] = field(default_factory=list)


@dataclass
class FormatResult:
    """One photo format: its rates, which sources served its photos, and each fast path's fidelity."""

    format: str
    distinct: int = 0  # different photos of this format
    measured: int = 0  # photos decoded for the decode rate (the distinct ones repeated)
    megapixels: float = 0.0
    decode_rate: float = 0.0
    decode_cpu_ms: float = 0.0  # CPU time of the decode per photo, all threads
    index_rate: float = 0.0
    vs_jpeg: float = 0.0  # index_rate / JPEG's
    sources: dict[str, int] = field(default_factory=dict)  # decode source -> photos it served
    fidelity: list[Fidelity] = field(default_factory=list)


@dataclass
class BenchReport:
    """A whole run: the machine, the photos measured on, one row per mode and per format, the at-scale figures."""

    machine: dict
    photos: dict
    rows: list[ModeResult] = field(default_factory=list)
    scale: dict | None = None
    formats: list[FormatResult] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"machine": self.machine, "photos": self.photos, "results": [asdict(r) for r in self.rows],
                "formats": [asdict(f) for f in self.formats], "scale": self.scale}


def progress_printer(quiet: bool) -> Say:
    """Progress lines to stderr (flushed, so they show while the run works), or nothing with ``--json``."""
    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)
    return say


def silent(_: str) -> None:
    """A :data:`Say` for callers that want no progress lines."""


def print_report(report: BenchReport, as_json: bool) -> None:
    """The finished run on stdout: the JSON document, or the table."""
    if as_json:
        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_report(report))


HEADER = "dev   mode  precision     decoder   decode    model  indexing   naive speed-up  cos mean cos worst"
FOOTNOTE = ("rates in photos/s; indexing: the real indexer, model warm, over 10+ batches; "
            "speed-up: indexing / naive; cosine: cached vectors vs the naive pipeline's")


def row_text(r: ModeResult) -> str:
    """One row of the table, aligned under :data:`HEADER`."""
    return (f"{r.device:5} {r.mode:5} {r.precision:13} {r.decoder:7} {r.decode_rate:8.1f} {r.model_rate:8.1f} "
            f"{r.index_rate:9.1f} {r.naive_rate:7.2f} {r.speedup:7.1f}x {r.cosine_mean:8.5f} {r.cosine_worst:8.5f}")


def format_report(report: BenchReport) -> str:
    """The human table (photos/s), with the machine it was measured on."""
    m = report.machine
    out = io.StringIO()
    out.write(f"{m['cpu']}, {m['cores']} cores, load {m.get('load_average')}, torch {m['torch']}"
              + (f", {m['gpu']}" if "gpu" in m else "") + "\n")
    if report.rows:
        _write_rows(out, report)
    if report.formats:
        _write_formats(out, report.formats)
    if report.scale:
        out.write(_scale_text(report.scale) + "\n")
    return out.getvalue().rstrip("\n")


def _write_rows(out: io.StringIO, report: BenchReport) -> None:
    p = report.photos
    out.write(f"photos: {p.get('count')} from {p.get('source')}"
              + (f" ({p['megapixels']:g} MP)" if "megapixels" in p else "") + "\n")
    out.write(HEADER + "\n")
    for r in report.rows:
        out.write(row_text(r) + "\n")
        for notice in r.notices:
            out.write(f"      note: {notice}\n")
    out.write(FOOTNOTE + "\n")


FORMAT_HEADER = ("format               photos    MP   decode  cpu ms  indexing  vs JPEG  served by            "
                 "cos mean cos worst  pixel diff")
FORMAT_FOOTNOTE = ("per format, default mode, model loaded once; cpu ms: decode CPU time per photo; indexing: "
                   "best of the rounds; served by: the source that decoded each photo; "
                   "cosine and pixel diff (mean |difference| of the 224 px model input, 0-255): each fast path "
                   "against a full decode of the same photos")


def format_row_text(r: FormatResult) -> str:
    """One format's line(s): the rates, then one line per fast path with its fidelity."""
    served = ", ".join(f"{source} {n}" for source, n in sorted(r.sources.items()))
    head = (f"{r.format:20} {r.distinct:3}/{r.measured:<4} {r.megapixels:5.1f} {r.decode_rate:8.1f} "
            f"{r.decode_cpu_ms:7.1f} {r.index_rate:9.1f} {r.vs_jpeg:7.2f}x  {served}")
    lines = [head]
    for f in r.fidelity:
        lines.append(f"{'':20} {'':49} {f.source + ' (' + str(f.photos) + ')':20} {f.cosine_mean:8.5f} "
                     f"{f.cosine_worst:8.5f} {f.pixel_diff:10.2f}")
    return "\n".join(lines)


def _write_formats(out: io.StringIO, formats: list[FormatResult]) -> None:
    out.write(FORMAT_HEADER + "\n")
    for r in formats:
        out.write(format_row_text(r) + "\n")
    out.write(FORMAT_FOOTNOTE + "\n")


def _scale_text(s: dict) -> str:
    duplicates = (f"near-duplicates: signatures {s['duplicates_signatures_s']:.1f} s once, grouping "
                  f"{s['duplicates_group_s']:.1f} s ({s['duplicates_copies_found']:.0%} of planted copies found), "
                  if "duplicates_group_s" in s else "")
    return (f"at scale ({s['photos']} cached photos): open library {s['open_library_s'] * 1000:.0f} ms, "
            f"re-score categories {s['rescore_categories_s'] * 1000:.0f} ms, "
            f"text search {s['text_search_s'] * 1000:.0f} ms, "
            f"train head on {s['labels']} labels {s['train_head_s']:.2f} s, {duplicates}"
            f"cache {s['cache_bytes_per_photo'] / 1024:.1f} KB/photo "
            f"(thumbnails {s['thumbnail_bytes_mean'] / 1024:.1f} KB)")
