"""Lazy thumbnails for the grid: an LRU of pixmaps in the GUI thread over a loader thread.

A tile that is painted before its thumbnail is loaded gets ``None`` (the
delegate paints a placeholder) and its photo id is queued. The loader thread
takes the *newest* requests first, so while the user scrolls the tiles on
screen win over those scrolled past (the approach of calibre's cover grid).
It reads the JPEG bytes the indexer stored in the cache through its own
``Cache`` connection, decodes them into ``QImage`` scaled to the tile, and
hands them over in batches; only the GUI thread turns them into ``QPixmap``.

On a HiDPI screen a large tile needs more pixels than the stored thumbnail
has (256 px; a 160 px tile at 200 % needs 320). Such tiles show the stored
thumbnail at once and are then sharpened from the photo itself (decoded small,
as the preview does: :func:`photosort.core.display.display_image`), the tiles
loaded last first, when nothing else waits. Other screens never open a photo.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from ..core.cache import Cache
from ..core.decode import THUMB_SIZE, DecodeError
from ..core.display import display_image
from ..core.errors import PhotosortError

log = logging.getLogger(__name__)

CHUNK = 32  # thumbnails per round trip to SQLite and per signal to the GUI
MAX_PENDING = 2048  # older requests are dropped; a tile still on screen asks again when painted
SHARPEN_CHUNK = 4  # photos decoded from their files per round (each ~30 ms for a 12 MP JPEG)
MAX_SHARPEN = 256  # tiles waiting to be sharpened: those loaded longest ago are dropped (scrolled past)
SHARPER_BY = 1.15  # a tile is sharpened from the photo when it needs this many times the stored pixels
DEFAULT_MAX_BYTES = 96 * 1024 * 1024


def needs_sharpening(image: QImage, size_px: int) -> bool:
    """Whether the stored thumbnail is visibly too small for a tile of ``size_px`` device pixels."""
    return size_px > THUMB_SIZE * SHARPER_BY and max(image.width(), image.height()) * SHARPER_BY < size_px


def image_from_photo(path: str, size_px: int) -> QImage | None:
    """The photo itself, upright and no larger than ``size_px``, as a QImage; None when it cannot be read now."""
    try:
        picture = display_image(path, size_px)
    except (DecodeError, OSError) as exc:
        log.debug("cannot sharpen the thumbnail of %s: %s", path, exc)
        return None
    data = picture.tobytes()
    return QImage(data, picture.width, picture.height, 3 * picture.width, QImage.Format.Format_RGB888).copy()


def decode_thumbnail(jpeg: bytes | None, size_px: int) -> QImage | None:
    """A thumbnail JPEG as a QImage no larger than ``size_px`` (safe outside the GUI thread)."""
    if not jpeg:
        return None
    image = QImage.fromData(jpeg, "JPG")
    if image.isNull():
        return None
    if image.width() > size_px or image.height() > size_px:
        image = image.scaled(size_px, size_px, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.SmoothTransformation)
    return image


class ThumbnailLoader(QObject):
    """Lives in its own thread; turns queued photo ids into QImages, newest requests first."""

    loaded = Signal(int, object)  # epoch, {photo id: QImage or None}
    _wake = Signal()

    def __init__(self, cache_path: Path, db_lock: threading.Lock, size_px: int) -> None:
        super().__init__()
        self._cache_path = cache_path
        self._db_lock = db_lock
        self._size_px = size_px
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, None] = OrderedDict()
        self._sharpen: OrderedDict[int, None] = OrderedDict()  # shown from a too small thumbnail: from the photo next
        self._scheduled = False
        self._epoch = 0
        self._wake.connect(self._drain)

    # ---- any thread ----------------------------------------------------------------
    def request(self, ids: list[int]) -> None:
        with self._lock:
            for photo_id in ids:
                self._pending[photo_id] = None
                self._pending.move_to_end(photo_id)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._wake.emit()

    def reset(self, epoch: int, size_px: int | None = None) -> None:
        """Forget queued requests; results of loads begun before carry the old epoch and are ignored."""
        with self._lock:
            self._pending.clear()
            self._sharpen.clear()
            self._epoch = epoch
            if size_px is not None:
                self._size_px = size_px

    # ---- loader thread ---------------------------------------------------------------
    @Slot()
    def _drain(self) -> None:
        # One connection per drain; the lock lets "Clear cache" delete the database files only
        # while no reader holds them open.
        with self._db_lock:
            cache = self._open()
            try:
                while self._load_next_chunk(cache):
                    pass
            finally:
                if cache is not None:
                    cache.close()

    def _open(self) -> Cache | None:
        """The cache, if the worker has made it (this thread never creates one: the engine decides where data goes)."""
        if not self._cache_path.exists():
            return None
        try:
            return Cache(self._cache_path)
        except PhotosortError as exc:
            log.warning("cannot read thumbnails: %s", exc)
            return None

    def _load_next_chunk(self, cache: Cache | None) -> bool:
        """Decode the newest queued thumbnails and send them, else sharpen a few; False when nothing waits."""
        with self._lock:
            if not self._pending and not self._sharpen:
                self._scheduled = False
                return False
            stored = bool(self._pending)
            queue, chunk = (self._pending, CHUNK) if stored else (self._sharpen, SHARPEN_CHUNK)
            ids = [queue.popitem(last=True)[0] for _ in range(min(chunk, len(queue)))]
            epoch, size_px = self._epoch, self._size_px
        if stored:
            images = self._stored_thumbnails(cache, ids, size_px)
            self._queue_sharpening([i for i, image in images.items() if image is not None
                                    and needs_sharpening(image, size_px)])
        else:
            images = self._from_photos(cache, ids, size_px)
        self.loaded.emit(epoch, images)
        return True

    @staticmethod
    def _stored_thumbnails(cache: Cache | None, ids: list[int], size_px: int) -> dict[int, QImage | None]:
        blobs: dict[int, bytes] = {}
        if cache is not None:
            try:
                blobs = cache.thumbnails(ids)
            except PhotosortError as exc:  # the cache translates SQLite's errors
                log.warning("cannot read thumbnails: %s", exc)
        return {i: decode_thumbnail(blobs.get(i), size_px) for i in ids}

    @staticmethod
    def _from_photos(cache: Cache | None, ids: list[int], size_px: int) -> dict[int, QImage | None]:
        """Sharper tiles decoded from the photos themselves; a photo that cannot be read keeps its thumbnail."""
        paths = cache.paths_for_ids(ids) if cache is not None else {}
        images = {i: image_from_photo(paths[i], size_px) for i in ids if i in paths}
        return {i: image for i, image in images.items() if image is not None}

    def _queue_sharpening(self, ids: list[int]) -> None:
        with self._lock:
            for photo_id in ids:
                self._sharpen[photo_id] = None
            while len(self._sharpen) > MAX_SHARPEN:
                self._sharpen.popitem(last=False)


class ThumbnailCache(QObject):
    """GUI-thread LRU of thumbnail pixmaps, bounded in bytes; misses are loaded in the background."""

    ready = Signal(list)  # photo ids whose thumbnails just arrived

    def __init__(self, cache_path: Path, db_lock: threading.Lock, tile_px: int, device_pixel_ratio: float = 1.0,
                 max_bytes: int = DEFAULT_MAX_BYTES, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._missing: set[int] = set()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._epoch = 0
        self._dpr = device_pixel_ratio
        self._tile_px = tile_px
        self._thread = QThread()
        self._thread.setObjectName("photosort-thumbnails")
        self._loader = ThumbnailLoader(cache_path, db_lock, self._pixels())
        self._loader.moveToThread(self._thread)
        self._loader.loaded.connect(self._on_loaded)
        self._thread.start()

    def pixmap(self, photo_id: int) -> QPixmap | None:
        """The thumbnail if decoded; otherwise None, and the photo is queued for loading."""
        pixmap = self._pixmaps.get(photo_id)
        if pixmap is not None:
            self._pixmaps.move_to_end(photo_id)
            return pixmap
        if photo_id not in self._missing:
            self._loader.request([photo_id])
        return None

    def has_no_thumbnail(self, photo_id: int) -> bool:
        return photo_id in self._missing

    def prefetch(self, ids: list[int]) -> None:
        """Queue photos about to be shown (oldest priority: visible tiles asked later win)."""
        self._loader.request([i for i in ids if i not in self._pixmaps and i not in self._missing])

    def set_tile_size(self, tile_px: int, device_pixel_ratio: float) -> None:
        if (tile_px, device_pixel_ratio) != (self._tile_px, self._dpr):
            self._tile_px, self._dpr = tile_px, device_pixel_ratio
            self.clear()

    def clear(self) -> None:
        """Drop every pixmap and queued request (after the cache was cleared, or a new tile size)."""
        self._epoch += 1
        self._loader.reset(self._epoch, self._pixels())
        self._pixmaps.clear()
        self._missing.clear()
        self._bytes = 0

    @property
    def memory_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._pixmaps)

    @property
    def running(self) -> bool:
        """Whether the loader thread still runs (it must not after shutdown)."""
        return self._thread.isRunning()

    def shutdown(self) -> None:
        self._loader.reset(self._epoch + 1)
        self._thread.quit()
        self._thread.wait()

    def _pixels(self) -> int:
        return max(16, round(self._tile_px * self._dpr))

    @Slot(int, object)
    def _on_loaded(self, epoch: int, images: dict[int, QImage | None]) -> None:
        if epoch != self._epoch:
            return
        for photo_id, image in images.items():
            if image is None:
                self._missing.add(photo_id)
                continue
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self._dpr)
            self._store(photo_id, pixmap)
        self.ready.emit(list(images))

    def _store(self, photo_id: int, pixmap: QPixmap) -> None:
        old = self._pixmaps.pop(photo_id, None)
        if old is not None:
            self._bytes -= _size(old)
        self._pixmaps[photo_id] = pixmap
        self._bytes += _size(pixmap)
        while self._bytes > self._max_bytes and len(self._pixmaps) > 1:
            _, evicted = self._pixmaps.popitem(last=False)
            self._bytes -= _size(evicted)


def _size(pixmap: QPixmap) -> int:
    return pixmap.width() * pixmap.height() * max(1, pixmap.depth() // 8)
