"""How fast indexing is on this machine, and how faithful, for each device and precision mode.

For each mode it measures

* decode rate: photos/s of the decode step alone (all decode threads);
* model rate: photos/s of the model alone, fed ready batches;
* indexing rate: photos/s of the real indexer (decode, embed and SQLite
  writes overlapping) into a throw-away cache, model loaded and warm, over at
  least :data:`MIN_BATCHES` batches (photos are repeated to reach that), so it
  is the steady state less the filling and draining of the pipeline;
* the naive pipeline's rate (:mod:`.naive`), the speed-up (indexing rate /
  naive rate) and the fidelity: cosine between each photo's cached vector (as
  stored, float16) and the naive pipeline's;

then, once, the rate per photo format and each fast path's fidelity (:mod:`.formats`).

Everything is written under a temporary folder: the user's cache and photos
are never touched (a given folder is only read). Benchmarks are measurements,
not tests: CI runs ``--quick`` with a tiny model to check the machinery.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from photosort.core.config import Settings
from photosort.core.decode import decode_photo
from photosort.core.errors import Cancelled, FolderError
from photosort.core.progress import CancelToken, check_cancel
from photosort.core.scan import scan_folder
from photosort.core.threads import cpu_cores, torch_threads

from .naive import naive_pipeline
from .photos import generate_photos
from .report import BenchReport, ModeResult, Say, row_text, silent

if TYPE_CHECKING:
    from photosort.core.indexer import PipelineOptions, RunPlan
    from photosort.core.model import ClipEncoder

log = logging.getLogger(__name__)

CPU_MODES = ("fp32", "auto", "fast")
QUICK_MODES = ("fp32", "auto")
MIN_BATCHES = 10  # the indexing rate is measured over at least this many batches


def run_bench(settings: Settings, folder: str | None, *, count: int = 64, quick: bool = False,
              devices: list[str] | None = None, modes: tuple[str, ...] = CPU_MODES, formats: bool = True,
              say: Say = silent, cancel: CancelToken | None = None) -> BenchReport:
    """Measure every device x mode on ``count`` photos of ``folder`` (or generated ones), then each format."""
    from photosort.core.model import model_identity

    model_identity(settings)  # a model that cannot be loaded fails here, in one line, before any work
    with tempfile.TemporaryDirectory(prefix="photosort-bench-") as tmp:
        work = Path(tmp)
        photos_dir, photo_info = _bench_photos(folder, work / "photos", count, quick, say)
        report = BenchReport(machine_info(), photo_info)
        for device in devices or ["cpu"]:
            check_cancel(cancel)
            report.rows += _measure_device(settings, device, modes, photos_dir, work, quick, say, cancel)
        if formats:
            check_cancel(cancel)
            report.formats = _measure_formats(settings, (devices or ["cpu"])[0], folder, photos_dir, work, count,
                                              quick, say, cancel)
    return report


def _measure_formats(settings: Settings, device: str, folder: str | None, photos_dir: Path, work: Path, count: int,
                     quick: bool, say: Say, cancel: CancelToken | None) -> list:
    """Per format: the given folder's photos grouped by format, or the same scenes written in each format."""
    from .formats import measure_formats

    chosen = None if folder is None else [f.path for f in scan_folder(photos_dir)]
    return measure_formats(settings, device, work, folder_photos=chosen, count=min(count, 2) if quick else count,
                           megapixels=0.3 if quick else 12.0, quick=quick, say=say, cancel=cancel)


def _measure_device(settings: Settings, device: str, modes: tuple[str, ...], photos_dir: Path, work: Path,
                    quick: bool, say: Say, cancel: CancelToken | None) -> list[ModeResult]:
    """The naive pipeline once on ``device``, then every mode there against it."""
    paths = [f.path for f in scan_folder(photos_dir)]
    naive_device = device if device != "cuda" or _cuda_works() else "cpu"
    say(f"naive pipeline on {naive_device} ({len(paths)} photos, one at a time)…")
    naive_rate, naive = naive_pipeline(settings.model, paths, naive_device)
    decode_rates: dict[str, float] = {}
    rows = []
    for mode, gpu_decode in _configurations(device, modes):
        check_cancel(cancel)
        say(f"{device} / {mode}: loading, then model, decode and indexing rates…")
        row = _measure_mode(settings.with_changes(device=device, mode=mode,
                                                  data_dir=work / f"cache-{device}-{mode}-{gpu_decode}"),
                            gpu_decode, photos_dir, naive, decode_rates, quick, cancel)
        row.naive_rate = naive_rate
        row.speedup = row.index_rate / naive_rate if naive_rate else 0.0
        rows.append(row)
        gc.collect()  # the last mode's model goes before the next one loads
        say(row_text(row))
    return rows


def _cuda_works() -> bool:
    import torch

    return torch.cuda.is_available()


def _configurations(device: str, modes: tuple[str, ...]) -> list[tuple[str, bool | None]]:
    """(mode, gpu_decode) pairs to measure: every CPU mode; on CUDA fp16, with each JPEG decoder there is."""
    if device != "cuda":
        return [(mode, None) for mode in modes]
    import torch

    from photosort.core import gpudecode

    nvjpeg = _cuda_works() and gpudecode.available(torch.device("cuda"))
    return [("auto", None), ("auto", False)] if nvjpeg else [("auto", False)]


def _bench_photos(folder: str | None, target: Path, count: int, quick: bool, say: Say) -> tuple[Path, dict]:
    """The photos to measure on: the first ``count`` of ``folder`` (copied), or generated ones."""
    if folder is None:
        megapixels = 0.3 if quick else 12.0
        count = min(count, 6) if quick else count
        say(f"generating {count} camera-like {megapixels:g} MP JPEGs…")
        generate_photos(target, count, megapixels)
        return target, {"source": "generated", "count": count, "megapixels": megapixels}
    found = scan_folder(folder)
    if not found:
        raise FolderError(f"No photos in {folder} to measure on.")
    chosen = found[:count]
    target.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(chosen):
        # Copied, so the indexer sees exactly these photos; the user's folder is only read.
        shutil.copyfile(f.path, target / f"{i:05d}{Path(f.path).suffix}")
    sizes = [f.size for f in chosen]
    return target, {"source": str(folder), "count": len(chosen), "mean_bytes": int(np.mean(sizes))}


def _measure_mode(chosen: Settings, gpu_decode: bool | None, photos_dir: Path, naive: dict[str, np.ndarray],
                  decode_rates: dict[str, float], quick: bool, cancel: CancelToken | None) -> ModeResult:
    """One row: load the model as ``chosen`` says, then its decode, model and indexing rates and fidelity."""
    from photosort.core.indexer import PipelineOptions, resolve_run
    from photosort.core.model import load_encoder

    options = PipelineOptions(gpu_decode=gpu_decode)
    started = time.perf_counter()
    encoder = load_encoder(chosen, options.reserve_cores)
    row = ModeResult(device=encoder.device.type, mode=chosen.mode, precision=encoder.precision.name,
                     load_seconds=round(time.perf_counter() - started, 2), notices=list(encoder.notices))
    run = resolve_run(options, encoder)
    row.batch_size, row.torch_threads, row.decode_threads = run.batch_size, run.torch_threads or 0, run.decode_threads
    row.decoder = "nvjpeg" if run.gpu_device is not None else "pillow"
    paths = sorted(naive)
    if row.decoder not in decode_rates:
        decode_rates[row.decoder] = decode_only_rate(paths, encoder, run)
    row.decode_rate = decode_rates[row.decoder]
    row.model_rate = model_only_rate(encoder, paths, seconds=1.0 if quick else 6.0)  # also warms the model up
    check_cancel(cancel)
    _index_and_compare(row, chosen, encoder, options, run, photos_dir, naive, cancel)
    return row


def _index_and_compare(row: ModeResult, chosen: Settings, encoder: ClipEncoder, options: PipelineOptions,
                       run: RunPlan, photos_dir: Path, naive: dict[str, np.ndarray], cancel: CancelToken | None) -> None:
    """The real indexer's steady rate into a throw-away cache, and its vectors' cosine to the naive ones."""
    from photosort.core.cache import Cache
    from photosort.core.indexer import ModelAccess, index_folder

    folder = photos_dir.parent / f"index-{row.device}"
    source_of = _replicated(photos_dir, folder, MIN_BATCHES * run.batch_size)
    finished: list[float] = []
    with Cache(chosen.cache_path) as cache:
        started = time.perf_counter()
        report = index_folder(folder, cache, ModelAccess.loaded(encoder), options=options,
                              cancel=cancel, on_batch=lambda ids: finished.append(time.perf_counter()))
        if report.cancelled:
            raise Cancelled()
        row.index_rate = report.indexed / max((finished[-1] if finished else time.perf_counter()) - started, 1e-9)
        stored = cache.load_embeddings(report.folder, cache.model_id(encoder.model_key, encoder.dim), encoder.dim)
    cosines = {source_of[p]: float(v @ naive[source_of[p]]) / float(np.linalg.norm(v))  # float16: unit to ~1e-4
               for p, v in zip(stored.paths, stored.vectors, strict=True) if source_of.get(p) in naive}
    if cosines:
        row.cosine_mean, row.cosine_worst = float(np.mean(list(cosines.values()))), float(min(cosines.values()))


def _replicated(photos_dir: Path, target: Path, at_least: int) -> dict[str, str]:
    """A folder of ``at_least`` photos (hard links to the measured ones, repeated): {its path: source path}.

    The indexing rate is measured over at least :data:`MIN_BATCHES` batches so
    that filling and draining the pipeline weigh little; repeating a photo
    costs the same as a new one (each is decoded and embedded again).
    """
    sources = [f.path for f in scan_folder(photos_dir)]
    mapping: dict[str, str] = {}
    target.mkdir(parents=True, exist_ok=True)
    for i in range(max(len(sources), at_least)):
        source = sources[i % len(sources)]
        link = target / f"{i:06d}{Path(source).suffix}"
        if not link.exists():
            try:
                os.link(source, link)
            except OSError:
                shutil.copyfile(source, link)
        mapping[os.path.realpath(link)] = source
    return mapping


def decode_only_rate(paths: list[str], encoder: ClipEncoder, run: RunPlan) -> float:
    """Photos/s of the decode step alone, in the pipeline's decode threads (GPU decode where it is used)."""
    started = time.perf_counter()
    if run.gpu_device is None:
        with ThreadPoolExecutor(max_workers=run.decode_threads) as pool:
            list(pool.map(lambda p: decode_photo(p, encoder.prep, run.max_pixels), paths))
        return len(paths) / (time.perf_counter() - started)
    from photosort.core.gpudecode import EncodedPhoto, decode_on_gpu, read_encoded

    with ThreadPoolExecutor(max_workers=run.decode_threads) as pool:
        read = list(pool.map(lambda p: read_encoded(p, encoder.prep, run.max_pixels), paths))
    encoded = [r for r in read if isinstance(r, EncodedPhoto)]
    for i in range(0, len(encoded), run.batch_size):
        decode_on_gpu(encoded[i : i + run.batch_size], encoder.prep, run.gpu_device, run.max_pixels)
    _synchronise(encoder.device)
    return len(paths) / (time.perf_counter() - started)


def model_only_rate(encoder: ClipEncoder, paths: list[str], seconds: float) -> float:
    """Photos/s of the model alone on ready uint8 batches, with every core for torch."""
    pixels = [decode_photo(p, encoder.prep).pixels for p in paths[: encoder.batch_size]]
    while len(pixels) < encoder.batch_size:
        pixels.append(pixels[len(pixels) % len(pixels)])
    batch = np.stack(pixels)
    with torch_threads(cpu_cores() if encoder.device.type == "cpu" else None):
        encoder.embed_pixels(batch)  # warm-up
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or done == 0:
            encoder.embed_pixels(batch)
            done += len(batch)
        _synchronise(encoder.device)
        return done / (time.perf_counter() - started)


def _synchronise(device: object) -> None:
    """Wait for queued GPU work, so a rate counts it (CUDA calls return before the work is done)."""
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)


def machine_info() -> dict:
    """What the figures depend on: CPU, cores, load, torch, GPU."""
    import torch

    from photosort.core.model import cpu_has_fast_bf16

    info = {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "native_bf16": cpu_has_fast_bf16(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pillow": Image.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
