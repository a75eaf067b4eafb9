"""Indexing speed per photo format (JPEG, HEIC, RAW, PNG), and how faithful each format's fast path is.

A library of iPhone HEICs or camera RAWs should index about as fast as one of
JPEGs: each format is decoded from the cheapest source that serves the
encoder (see :mod:`photosort.core.decode`). For each format this measures, in
the default precision mode on one device, with the model loaded once:

* the decode rate (photos/s of the decode step alone, in the pipeline's threads) and its cost in CPU
  milliseconds per photo (all threads; unlike a rate, barely moved by other work on the machine),
* the indexing rate (the real indexer into a throw-away cache, over at least
  three batches) and its ratio to JPEG's,
* which source served each photo (``jpeg-draft``, ``heif-thumbnail``,
  ``raw-preview``, ``raw-binned``, ``raw-half-size``, ``full``, ...), and
* each fast path's fidelity against a full decode (:mod:`.fidelity`).

Without a folder the photos are written per format (:mod:`.format_photos`);
with one, its photos are grouped by format. The user's folder is only read.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from photosort.core.config import Settings
from photosort.core.decode import HEIF_EXTENSIONS, decode_or_reason
from photosort.core.errors import Cancelled
from photosort.core.progress import CancelToken, check_cancel
from photosort.core.raw import is_raw_name

from .fidelity import fast_path_fidelity
from .format_photos import JPEG, available_formats, write_formats
from .report import FormatResult, Say, format_row_text

if TYPE_CHECKING:
    from photosort.core.indexer import PipelineOptions, RunPlan
    from photosort.core.model import ClipEncoder

log = logging.getLogger(__name__)

FIDELITY_PHOTOS = 8  # photos per format decoded in full for the fidelity check (a full RAW development is slow)
INDEX_BATCHES = 3  # the indexing rate is measured over at least this many batches per format
ROUNDS = 2


def measure_formats(settings: Settings, device: str, work: Path, *, folder_photos: list[str] | None = None,
                    count: int = 40, megapixels: float = 12.0, quick: bool = False, say: Say,
                    cancel: CancelToken | None = None) -> list[FormatResult]:
    """One :class:`FormatResult` per format: of ``folder_photos`` grouped by format, or of photos written here.

    The indexing rates are taken in :data:`ROUNDS` rounds over all formats, each format's best kept, so
    that a machine busy with other work for a while does not make one format look slow.
    """
    from photosort.core.indexer import PipelineOptions, resolve_run
    from photosort.core.model import load_encoder

    if folder_photos is None:
        say(f"writing the same {megapixels:g} MP scenes as {', '.join(available_formats())}…")
        sets = {fmt: [str(p) for p in paths]
                for fmt, paths in write_formats(work / "formats", available_formats(), count, megapixels).items()}
    else:
        sets = group_by_format(folder_photos)
    options = PipelineOptions()
    chosen = settings.with_changes(device=device, mode="auto", data_dir=work / "cache-formats")
    encoder = load_encoder(chosen, options.reserve_cores)
    run = resolve_run(options, encoder)
    results = []
    for fmt, paths in sets.items():
        check_cancel(cancel)
        say(f"{fmt}: decoding and checking the fast path on {max(count, len(paths))} photos…")
        results.append(_measure_format(fmt, paths, max(count, len(paths)), encoder, run, cancel))
    for round_number in range(1 if quick else ROUNDS):
        for row, paths in zip(results, sets.values(), strict=True):
            check_cancel(cancel)
            say(f"{row.format}: indexing (round {round_number + 1})…")
            rate = _index_rate(paths, max(row.measured, INDEX_BATCHES * run.batch_size), chosen, encoder, options,
                               work / f"index-formats-{round_number}-{len(os.listdir(work))}", cancel)
            row.index_rate = max(row.index_rate, rate)
    _relate_to_jpeg(results)
    for row in results:
        say(format_row_text(row))
    return results


def family(path: str) -> str:
    """The format a photo's extension names, as people call it."""
    ext = os.path.splitext(path)[1].lower()
    if is_raw_name(path):
        return "RAW"
    if ext in HEIF_EXTENSIONS:
        return "HEIC"
    if ext in (".jpg", ".jpeg", ".jpe", ".jfif", ".mpo"):
        return JPEG
    return ext.lstrip(".").upper() or "?"


def group_by_format(paths: list[str]) -> dict[str, list[str]]:
    """{format: its photos}, JPEG first, the others in name order."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(family(path), []).append(path)
    return dict(sorted(groups.items(), key=lambda item: (item[0] != JPEG, item[0])))


def _measure_format(fmt: str, paths: list[str], count: int, encoder: ClipEncoder, run: RunPlan,
                    cancel: CancelToken | None) -> FormatResult:
    """Sources, decode rate and cost, and fidelity of one format (its indexing rate is measured in rounds)."""
    from .measure import decode_only_rate

    cycled = [paths[i % len(paths)] for i in range(count)]
    row = FormatResult(format=fmt, distinct=len(paths), measured=count)
    decoded = [decode_or_reason(p, encoder.prep, run.max_pixels) for p in paths]
    row.sources = dict(Counter(d.source if not isinstance(d, str) else "unreadable" for d in decoded))
    row.megapixels = _mean_megapixels(decoded)
    cpu_started = time.process_time()
    row.decode_rate = decode_only_rate(cycled, encoder, run)
    row.decode_cpu_ms = (time.process_time() - cpu_started) * 1000 / count
    check_cancel(cancel)
    for fidelity in fast_path_fidelity(paths[:FIDELITY_PHOTOS], encoder.prep, encoder.embed_pixels,
                                       run.max_pixels).values():
        row.fidelity.append(fidelity)
    return row


def _mean_megapixels(decoded: list) -> float:
    sizes = [d.width * d.height / 1e6 for d in decoded if not isinstance(d, str)]
    return round(sum(sizes) / len(sizes), 1) if sizes else 0.0


def _index_rate(paths: list[str], at_least: int, chosen: Settings, encoder: ClipEncoder, options: PipelineOptions,
                folder: Path, cancel: CancelToken | None) -> float:
    """Photos/s of the real indexer on ``at_least`` photos (``paths`` repeated, as hard links) into a fresh cache."""
    from photosort.core.cache import Cache
    from photosort.core.indexer import ModelAccess, index_folder

    folder.mkdir(parents=True)
    for i in range(at_least):
        source = paths[i % len(paths)]
        link = folder / f"{i:06d}{Path(source).suffix}"
        try:
            os.link(source, link)
        except OSError:
            shutil.copyfile(source, link)
    finished: list[float] = []
    cache_path = folder.parent / f"{folder.name}.db"
    with Cache(cache_path) as cache:
        started = time.perf_counter()
        report = index_folder(folder, cache, ModelAccess.loaded(encoder), options=options,
                              cancel=cancel, on_batch=lambda ids: finished.append(time.perf_counter()))
        if report.cancelled:
            raise Cancelled()
    log.debug("indexed %d of %d photos of %s (%s)", report.indexed, at_least, folder, chosen.mode)
    return report.indexed / max((finished[-1] if finished else time.perf_counter()) - started, 1e-9)


def _relate_to_jpeg(results: list[FormatResult]) -> None:
    """Each format's indexing rate as a share of JPEG's (how much slower or faster a library of it indexes)."""
    jpeg = next((r for r in results if r.format == JPEG and r.index_rate > 0), None)
    for row in results:
        row.vs_jpeg = row.index_rate / jpeg.index_rate if jpeg else 0.0
