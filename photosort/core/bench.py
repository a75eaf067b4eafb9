"""``photosort bench``: how fast indexing is on this machine, and how faithful, measured.

For each available device and precision mode it measures

* decode rate: photos/s of the decode step alone (all decode threads);
* model rate: photos/s of the model alone, fed ready batches;
* indexing rate: photos/s of the real indexer (decode, embed and SQLite
  writes overlapping) into a throw-away cache, model loaded and warm, over at
  least 10 batches (photos are repeated to reach that), so it is the steady
  state less the filling and draining of the pipeline;
* the naive pipeline's rate: the tutorial way, one photo at a time, fp32:
  ``Image.open`` -> ``CLIPProcessor(images=...)`` -> ``vision_model`` ->
  ``visual_projection``, with a full decode;
* the speed-up (indexing rate / naive rate) and the fidelity: cosine between
  each photo's cached vector (as stored, float16) and the naive pipeline's.

The naive pipeline, like the tutorials, ignores EXIF orientation while the
indexer embeds photos upright; for rotated photos the fidelity reference is
the naive pipeline run on the upright photo (outside its timing, so the
naive rate is the tutorial's own).

Without a folder it generates camera-like 12 MP JPEGs (EXIF, some rotated,
sensor noise) into a temporary folder. ``--scale N`` instead fills a
throw-away cache with N synthetic photos and times what the app does with a
big library. Benchmarks are measurements, not tests: CI runs ``--quick``
with a tiny model to check that the machinery works.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from .config import Settings
from .decode import decode_photo, orientation_of
from .errors import Cancelled, FolderError
from .progress import CancelFn, check_cancel
from .scan import scan_folder
from .torch_threads import torch_threads

log = logging.getLogger(__name__)

KINDS = ("beach", "forest", "night", "document", "sunset")
CPU_MODES = ("fp32", "auto", "fast")
MIN_BATCHES = 10  # the indexing rate is measured over at least this many batches
QUICK_MODES = ("fp32", "auto")


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
class BenchReport:
    machine: dict
    photos: dict
    rows: list[ModeResult] = field(default_factory=list)
    scale: dict | None = None

    def to_json(self) -> dict:
        return {"machine": self.machine, "photos": self.photos, "results": [asdict(r) for r in self.rows],
                "scale": self.scale}


# ---- entry point ----------------------------------------------------------------------------
def run_cli(args, engine, cancel: CancelFn | None) -> int:
    """``photosort bench [FOLDER] [--count N] [--quick] [--scale N]``: print a table, or ``--json``."""
    settings: Settings = engine.settings
    say = _say(args.json)
    try:
        if getattr(args, "scale", None):
            scale = run_scale(settings.model, int(args.scale), args.folder, say)
            report = BenchReport(machine_info(), {}, [], scale)
        else:
            report = run_bench(settings, args.folder, count=args.count, quick=args.quick,
                               devices=_devices(settings.device), modes=_modes(args), say=say, cancel=cancel)
    except Cancelled:
        print("photosort: benchmark cancelled.", file=sys.stderr)
        return 130
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return 0


def _say(quiet: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)
    return say


def _devices(requested: str) -> list[str]:
    if requested != "auto":
        return [requested]
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _modes(args) -> tuple[str, ...]:
    if getattr(args, "precision", None):
        return (args.precision,)
    return QUICK_MODES if args.quick else CPU_MODES


# ---- the indexing benchmark -------------------------------------------------------------------
def run_bench(settings: Settings, folder: str | None, *, count: int = 64, quick: bool = False,
              devices: list[str] | None = None, modes: tuple[str, ...] = CPU_MODES,
              say: Callable[[str], None] = lambda _: None, cancel: CancelFn | None = None) -> BenchReport:
    """Measure every device x mode on ``count`` photos of ``folder`` (or generated ones)."""
    from .model import model_identity

    model_identity(settings)  # a model that cannot be loaded fails here, in one line, before any work
    with tempfile.TemporaryDirectory(prefix="photosort-bench-") as tmp:
        work = Path(tmp)
        photos_dir, photo_info = _bench_photos(folder, work / "photos", count, quick, say)
        paths = [f.path for f in scan_folder(photos_dir)]
        report = BenchReport(machine_info(), photo_info)
        for device in devices or ["cpu"]:
            check_cancel(cancel)
            naive_device = device if device != "cuda" or _cuda_works() else "cpu"
            say(f"naive pipeline on {naive_device} ({len(paths)} photos, one at a time)…")
            naive_rate, naive = naive_pipeline(settings.model, paths, naive_device)
            decode_rates: dict[str, float] = {}
            for mode, gpu_decode in _configurations(device, modes):
                check_cancel(cancel)
                say(f"{device} / {mode}: loading, then model, decode and indexing rates…")
                row = _measure_mode(settings, device, mode, gpu_decode, photos_dir,
                                    work / f"cache-{device}-{mode}-{gpu_decode}", naive, decode_rates, quick, cancel)
                row.naive_rate = naive_rate
                row.speedup = row.index_rate / naive_rate if naive_rate else 0.0
                report.rows.append(row)
                gc.collect()  # the last mode's model goes before the next one loads
                say(_row_text(row))
    return report


def _cuda_works() -> bool:
    import torch

    return torch.cuda.is_available()


def _configurations(device: str, modes: tuple[str, ...]) -> list[tuple[str, bool | None]]:
    """(mode, gpu_decode) pairs to measure: every CPU mode; on CUDA fp16, with each JPEG decoder there is."""
    if device != "cuda":
        return [(mode, None) for mode in modes]
    import torch

    from . import gpudecode

    nvjpeg = _cuda_works() and gpudecode.available(torch.device("cuda"))
    return [("auto", None), ("auto", False)] if nvjpeg else [("auto", False)]


def _bench_photos(folder: str | None, target: Path, count: int, quick: bool,
                  say: Callable[[str], None]) -> tuple[Path, dict]:
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


def _measure_mode(settings: Settings, device: str, mode: str, gpu_decode: bool | None, photos_dir: Path,
                  cache_dir: Path, naive: dict[str, np.ndarray], decode_rates: dict[str, float], quick: bool,
                  cancel: CancelFn | None) -> ModeResult:
    from .cache import Cache
    from .indexer import PipelineOptions, index_folder, resolve_run
    from .model import load_encoder

    chosen = settings.with_changes(device=device, mode=mode, cache_dir=cache_dir)
    started = time.perf_counter()
    encoder = load_encoder(chosen)
    row = ModeResult(device=encoder.device.type, mode=mode, precision=encoder.precision.name,
                     load_seconds=round(time.perf_counter() - started, 2), notices=list(encoder.notices))
    options = PipelineOptions(gpu_decode=gpu_decode)
    run = resolve_run(options, encoder)
    row.batch_size, row.torch_threads, row.decode_threads = run.batch_size, run.torch_threads or 0, run.decode_threads
    row.decoder = "nvjpeg" if run.gpu_device is not None else "pillow"
    paths = sorted(naive)
    if row.decoder not in decode_rates:
        decode_rates[row.decoder] = decode_only_rate(paths, encoder, run)
    row.decode_rate = decode_rates[row.decoder]
    row.model_rate = model_only_rate(encoder, paths, seconds=1.0 if quick else 6.0)  # also warms the model up
    check_cancel(cancel)
    source_of = _replicated(photos_dir, photos_dir.parent / f"index-{row.device}", MIN_BATCHES * run.batch_size)
    finished: list[float] = []
    with Cache(chosen.cache_path) as cache:
        started = time.perf_counter()
        report = index_folder(photos_dir.parent / f"index-{row.device}", cache, encoder.model_key, encoder.dim,
                              lambda: encoder, options=options, cancel=cancel,
                              on_batch=lambda ids: finished.append(time.perf_counter()))
        if report.cancelled:
            raise Cancelled()
        row.index_rate = report.indexed / max((finished[-1] if finished else time.perf_counter()) - started, 1e-9)
        stored = cache.load_embeddings(report.folder, cache.model_id(encoder.model_key, encoder.dim), encoder.dim)
    cosines = {source_of[p]: float(v @ naive[source_of[p]]) / float(np.linalg.norm(v))  # float16: unit to ~1e-4
               for p, v in zip(stored.paths, stored.vectors, strict=True) if source_of.get(p) in naive}
    cosines = list(cosines.values())
    if cosines:
        row.cosine_mean, row.cosine_worst = float(np.mean(cosines)), float(np.min(cosines))
    return row


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


def decode_only_rate(paths: list[str], encoder, run) -> float:
    """Photos/s of the decode step alone, in the pipeline's decode threads (GPU decode where it is used)."""
    started = time.perf_counter()
    if run.gpu_device is None:
        with ThreadPoolExecutor(max_workers=run.decode_threads) as pool:
            list(pool.map(lambda p: decode_photo(p, encoder.prep, run.max_pixels), paths))
        return len(paths) / (time.perf_counter() - started)
    from .gpudecode import EncodedPhoto, decode_on_gpu, read_encoded

    with ThreadPoolExecutor(max_workers=run.decode_threads) as pool:
        read = list(pool.map(lambda p: read_encoded(p, encoder.prep, run.max_pixels), paths))
    encoded = [r for r in read if isinstance(r, EncodedPhoto)]
    for i in range(0, len(encoded), run.batch_size):
        decode_on_gpu(encoded[i : i + run.batch_size], encoder.prep, run.gpu_device, run.max_pixels)
    _synchronise(encoder.device)
    return len(paths) / (time.perf_counter() - started)


def model_only_rate(encoder, paths: list[str], seconds: float) -> float:
    """Photos/s of the model alone on ready uint8 batches, with every core for torch."""
    pixels = [decode_photo(p, encoder.prep).pixels for p in paths[: encoder.batch_size]]
    while len(pixels) < encoder.batch_size:
        pixels.append(pixels[len(pixels) % len(pixels)])
    batch = np.stack(pixels)
    with torch_threads((os.cpu_count() or 1) if encoder.device.type == "cpu" else None):
        encoder.embed_pixels(batch)  # warm-up
        done = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds or done == 0:
            encoder.embed_pixels(batch)
            done += len(batch)
        _synchronise(encoder.device)
        return done / (time.perf_counter() - started)


def _synchronise(device) -> None:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)


def naive_pipeline(model_name: str, paths: list[str], device: str = "cpu") -> tuple[float, dict[str, np.ndarray]]:
    """The tutorial pipeline's rate (photos/s) and its unit vectors (of the upright photo) per path."""
    import torch
    from transformers import CLIPModel, CLIPProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    processor = CLIPProcessor.from_pretrained(model_name)
    model = CLIPModel.from_pretrained(model_name, dtype=torch.float32).eval().to(device)

    def embed(image: Image.Image) -> np.ndarray:
        inputs = processor(images=image, return_tensors="pt").to(device)
        with torch.no_grad():
            features = model.visual_projection(model.vision_model(**inputs).pooler_output)
        vector = features[0].float().cpu().numpy()
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    embed(Image.open(paths[0]))  # warm-up, as a tutorial's second photo would be
    vectors: dict[str, np.ndarray] = {}
    timed = 0.0
    for path in paths:
        started = time.perf_counter()
        image = Image.open(path)
        vector = embed(image)
        timed += time.perf_counter() - started
        if orientation_of(image) != 1:
            vector = embed(ImageOps.exif_transpose(image))  # the upright reference, not timed
        vectors[os.path.realpath(path)] = vector
    return len(paths) / timed, vectors


# ---- camera-like photos -----------------------------------------------------------------------
def generate_photos(folder: Path, count: int, megapixels: float = 12.0, seed: int = 1) -> list[Path]:
    """Write ``count`` camera-like JPEGs: drawn scenes of 5 kinds, sensor noise, EXIF, some rotated.

    Sensor noise matters: it is what makes a camera JPEG big (3-4 MB at 12 MP)
    and its decode slow, so a smooth synthetic image would flatter decoding.
    """
    folder.mkdir(parents=True, exist_ok=True)
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5) // 16 * 16
    height = width * 3 // 4
    noise = np.random.default_rng(seed).normal(0.0, 5.0, (height + 64, width + 64, 3)).astype(np.int16)
    jobs = [(folder / f"{KINDS[i % len(KINDS)]}" / f"IMG_{i:05d}.JPG", KINDS[i % len(KINDS)], seed * 100_003 + i)
            for i in range(count)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda job: _write_photo(*job, width, height, noise), jobs))


def _write_photo(path: Path, kind: str, seed: int, width: int, height: int, noise: np.ndarray) -> Path:
    rng = random.Random(seed)
    scene = _draw_scene(kind, rng).resize((width, height), Image.Resampling.BICUBIC)
    dy, dx = rng.randrange(64), rng.randrange(64)
    pixels = np.asarray(scene, dtype=np.int16) + noise[dy : dy + height, dx : dx + width]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    orientation = rng.choice((1, 1, 1, 3, 6, 8))
    inverse = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    if orientation in inverse:
        image = image.transpose(inverse[orientation])  # stored as a camera held that way would store it
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "photosort", "bench camera", orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=rng.choice((90, 92, 95)), exif=exif)
    return path


def _draw_scene(kind: str, rng: random.Random, size: tuple[int, int] = (640, 480)) -> Image.Image:
    w, h = size
    colours = {"beach": ((70, 130, 220), (235, 210, 150)), "forest": ((120, 160, 110), (20, 60, 25)),
               "night": ((5, 5, 20), (20, 20, 45)), "document": ((240, 240, 240), (225, 225, 225)),
               "sunset": ((250, 120, 40), (90, 20, 60))}
    top, bottom = colours[kind]
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    gradient = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    image = Image.fromarray(np.broadcast_to(gradient, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(10, 40)):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randint(2, 40)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if kind == "document":
            draw.rectangle([x, y, x + rng.randint(40, 300), y + 6], fill=(30, 30, 30))
        else:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return image


# ---- at scale ----------------------------------------------------------------------------------
def run_scale(model_name: str, photos: int, thumbs_from: str | None = None,
              say: Callable[[str], None] = lambda _: None, labels: int = 500) -> dict:
    """Fill a throw-away cache with ``photos`` synthetic photos and time what the app does at that size.

    Thumbnails are real ones, made from ``thumbs_from``'s photos (or from
    generated camera-like photos) and reused round-robin, so the cache size
    per photo is what a library of such photos would cost.
    """
    from .engine import Engine
    from .heads import untrained_head
    from .model import model_identity
    from .zeroshot import assign, zero_shot_probabilities

    with tempfile.TemporaryDirectory(prefix="photosort-scale-") as tmp:
        work = Path(tmp)
        settings = Settings(model=model_name, device="cpu", cache_dir=work / "cache")
        key, dim = model_identity(settings)
        thumbs = _sample_thumbnails(thumbs_from, work / "thumb-photos", say)
        root = work / "library"
        root.mkdir()
        say(f"writing {photos} synthetic photos into a throw-away cache…")
        started = time.perf_counter()
        _fill_cache(settings, key, dim, root, photos, thumbs)
        fill_s = time.perf_counter() - started
        db = settings.cache_path
        cache_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        engine = Engine(settings)
        try:
            rng = np.random.default_rng(0)
            classes = [f"class {i}" for i in range(5)]
            class_vectors = _unit(rng.normal(size=(len(classes), dim)).astype(np.float32))
            results: dict[str, float] = {}
            library, results["open_library_s"] = _timed(lambda: engine.embeddings(root))
            probs_assign = lambda: assign(zero_shot_probabilities(library.vectors, class_vectors, 100.0), 0.5)  # noqa: E731
            _, results["rescore_categories_s"] = _timed(probs_assign, repeat=5)
            query = class_vectors[0]
            _, results["text_search_s"] = _timed(lambda: _top_k(library.vectors @ query, 50), repeat=5)
            targets = np.arange(labels) % len(classes)
            head = untrained_head("bench", classes, key, dim, class_vectors, 100.0)
            # Best of two: the first training in a process also pays torch's one-off start-up (~1 s).
            _, results["train_head_s"] = _timed(lambda: _train_like_the_app(head, library.vectors[:labels], targets),
                                                repeat=2)
        finally:
            engine.close()
    return {
        "photos": photos,
        "labels": labels,
        "fill_seconds": round(fill_s, 1),
        "cache_bytes_per_photo": round(cache_bytes / photos),
        "thumbnail_bytes_mean": round(float(np.mean([len(t) for t in thumbs]))),
        **{k: float(f"{v:.3g}") for k, v in results.items()},  # 3 significant figures, never rounded to 0
    }


def _train_like_the_app(head, vectors: np.ndarray, targets: np.ndarray) -> None:
    """What ``Engine.train_head`` does with the vectors: cross-validate the penalty (and accuracy), then fit."""
    from .heads import train

    train(head, vectors, targets)


def _sample_thumbnails(folder: str | None, scratch: Path, say: Callable[[str], None], count: int = 20) -> list[bytes]:
    if folder is not None:
        paths = [f.path for f in scan_folder(folder)[:count]]
    else:
        say(f"generating {count} camera-like photos for real thumbnails…")
        paths = [str(p) for p in generate_photos(scratch, count, megapixels=2.0)]
    from .decode import Preprocess

    thumbs = []
    for path in paths:
        try:
            thumbs.append(decode_photo(path, Preprocess()).thumb)
        except Exception as exc:  # a broken file in the user's folder just gives no thumbnail sample
            log.debug("no thumbnail from %s: %s", path, exc)
    if not thumbs:
        raise FolderError(f"No readable photos in {folder} to make thumbnails from.")
    return thumbs


def _fill_cache(settings: Settings, key: str, dim: int, root: Path, photos: int, thumbs: list[bytes]) -> None:
    from .cache import Cache, NewPhoto

    rng = np.random.default_rng(1)
    with Cache(settings.cache_path) as cache:
        model_id = cache.model_id(key, dim)
        for start in range(0, photos, 1000):
            n = min(1000, photos - start)
            vectors = _unit(rng.normal(size=(n, dim)).astype(np.float32))
            batch = [
                NewPhoto(str(root / f"{(start + i) // 500:04d}" / f"IMG_{start + i:07d}.JPG"), 3_500_000 + i,
                         1_700_000_000_000_000_000 + start + i, f"{start + i:032x}", 4000, 3000,
                         thumbs[(start + i) % len(thumbs)], vectors[i])
                for i in range(n)
            ]
            cache.write_indexed(model_id, batch, [])
    # Closing the last connection checkpoints the write-ahead log into the database file.


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _timed(fn: Callable[[], object], repeat: int = 1) -> tuple[object, float]:
    """The result of ``fn`` and its best time over ``repeat`` calls (seconds)."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


# ---- reporting ---------------------------------------------------------------------------------
def machine_info() -> dict:
    """What the figures depend on: CPU, cores, load, torch, GPU."""
    import torch

    from .model import cpu_has_fast_bf16

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


def _row_text(r: ModeResult) -> str:
    return (f"{r.device:5} {r.mode:5} {r.precision:13} {r.decoder:7} {r.decode_rate:8.1f} {r.model_rate:8.1f} "
            f"{r.index_rate:9.1f} {r.naive_rate:7.2f} {r.speedup:7.1f}x {r.cosine_mean:8.5f} {r.cosine_worst:8.5f}")


def format_report(report: BenchReport) -> str:
    """The human table (photos/s), with the machine it was measured on."""
    m = report.machine
    out = io.StringIO()
    out.write(f"{m['cpu']}, {m['cores']} cores, load {m.get('load_average')}, torch {m['torch']}"
              + (f", {m['gpu']}" if "gpu" in m else "") + "\n")
    if report.rows:
        p = report.photos
        out.write(f"photos: {p.get('count')} from {p.get('source')}"
                  + (f" ({p['megapixels']:g} MP)" if "megapixels" in p else "") + "\n")
        out.write("dev   mode  precision     decoder   decode    model  indexing   naive speed-up  cos mean cos worst\n")
        for r in report.rows:
            out.write(_row_text(r) + "\n")
            for notice in r.notices:
                out.write(f"      note: {notice}\n")
        out.write("rates in photos/s; indexing: the real indexer, model warm, over 10+ batches; "
                  "speed-up: indexing / naive; cosine: cached vectors vs the naive pipeline's\n")
    if report.scale:
        s = report.scale
        out.write(f"at scale ({s['photos']} cached photos): open library {s['open_library_s'] * 1000:.0f} ms, "
                  f"re-score categories {s['rescore_categories_s'] * 1000:.0f} ms, "
                  f"text search {s['text_search_s'] * 1000:.0f} ms, "
                  f"train head on {s['labels']} labels {s['train_head_s']:.2f} s, "
                  f"cache {s['cache_bytes_per_photo'] / 1024:.1f} KB/photo "
                  f"(thumbnails {s['thumbnail_bytes_mean'] / 1024:.1f} KB)\n")
    return out.getvalue().rstrip("\n")
