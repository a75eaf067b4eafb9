"""The engine of one thread: its two database connections, the model (loaded when needed), and the long work.

An :class:`Engine` owns a connection to the cache (derived data) and one to the
user's library (classifiers, labels, category sets), so it belongs to the
thread that made it: the CLI's main thread, or the window's one worker thread.
What an open set of folders answers (sorting, labels winning, search, export
plans) is :class:`~photosort.core.library.Library`; the user's classifiers are
:class:`~photosort.core.classifiers.Classifiers`. Text prompts are embedded
once per model and remembered in the cache.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from .cache import Cache, EmbeddingSet, PhotoList, Rewritten, photo_identity
from .classifiers import Classifiers
from .config import Settings
from .errors import ModelLoadError, ModelNotReadyError, os_error
from .export import ExportPlan, ExportResult, ExportStopped, Placed, UndoResult, resume_or_recover, run_export, undo_move
from .indexer import IndexReport, ModelAccess, PipelineOptions, index_folder
from .legacy import split_legacy_database
from .library import Library
from .progress import CancelToken, ProgressFn
from .scan import resolve_root
from .userdata import UserStore
from .zeroshot import Category, category_vectors

log = logging.getLogger(__name__)


class Engine:
    """Databases + lazily loaded model for one thread, with the long work users ask for."""

    def __init__(self, settings: Settings, options: PipelineOptions | None = None,
                 on_model_load: Callable[[bool], None] | None = None) -> None:
        self.settings = settings
        self.options = options or PipelineOptions()
        self._on_model_load = on_model_load
        self._cache: Cache | None = None
        self._user: UserStore | None = None
        self._encoder = None
        self._identity: tuple[str, int] | None = None
        # Why the model could not be had, until the next indexing run tries again (so that asking for it per batch
        # does not retry a download, or a name look-up that fails slowly, each time).
        self._model_problem: ModelLoadError | None = None
        self._loading = threading.Lock()  # held while the model loads (on indexing's loader thread, first runs)
        self.classifiers = Classifiers(self)

    # ---- resources ---------------------------------------------------------------
    @property
    def user(self) -> UserStore:
        """The user's library database (opened first: it receives a 0.1 database's classifiers)."""
        if self._user is None:
            self._user = UserStore(self.settings.library_path)
            if not self._user.read_only:
                split_legacy_database(self.settings.folder, self._user)
        return self._user

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            self.user  # noqa: B018 - the user's data is moved out of a 0.1 database before the cache opens it
            self._cache = Cache(self.settings.cache_path)
        return self._cache

    def encoder(self, progress: ProgressFn | None = None, cancel: CancelToken | None = None):  # -> ClipEncoder
        """The model, loaded on first use (imported lazily so start-up stays fast).

        A hub model not yet downloaded is downloaded first: ``progress`` gets its
        ``Progress("downloading", bytes, total)``, ``cancel`` stops it (kept, resumed next time).
        While indexing loads it on its own thread (a first run's download), asking for it
        here is answered at once with :class:`ModelNotReadyError` rather than a wait.
        """
        if self._encoder is not None:
            return self._encoder
        if self._model_problem is not None:
            raise self._model_problem
        if not self._loading.acquire(blocking=False):
            raise ModelNotReadyError("The CLIP model is still being downloaded or loaded; try again once it is ready.")
        try:
            if self._encoder is None:
                self._encoder = self._load_encoder(progress, cancel)
                self._identity = (self._encoder.model_key, self._encoder.dim)
        finally:
            self._loading.release()
        return self._encoder

    def _load_encoder(self, progress: ProgressFn | None, cancel: CancelToken | None):  # -> ClipEncoder
        from .model import load_encoder

        if self._on_model_load:
            self._on_model_load(True)
        try:
            return load_encoder(self.settings, reserve_cores=self.options.reserve_cores, progress=progress,
                                cancel=cancel)
        except ModelLoadError as exc:
            self._model_problem = exc
            raise
        finally:
            if self._on_model_load:
                self._on_model_load(False)

    @property
    def identity(self) -> tuple[str, int]:
        """(model key, vector size), without loading the model when possible."""
        if self._identity is None:
            from .model import model_identity

            if self._model_problem is not None:
                raise self._model_problem
            try:
                self._identity = model_identity(self.settings)
            except ModelLoadError as exc:
                self._model_problem = exc
                raise
        return self._identity

    def model_problem(self) -> ModelLoadError | None:
        """Why the model cannot be used now (offline before its first download, a wrong id or folder), or None.

        Photos can still be shown without it; sorting, search and training need it.
        """
        try:
            self.identity  # noqa: B018 - reads the model's config, or says why it cannot
        except ModelLoadError as exc:
            return exc
        return None

    def model_on_disk(self) -> bool:
        """Whether loading the model needs no download (a local folder, or a hub model already in the cache)."""
        from .download import on_this_computer

        return self._encoder is not None or on_this_computer(self.settings.model)

    @property
    def model_key(self) -> str:
        return self.identity[0]

    def model_id(self) -> int:
        key, dim = self.identity
        return self.cache.model_id(key, dim)

    def notices(self) -> list[str]:
        out = [n for store in (self._user, self._cache) if store is not None for n in store.notices]
        if self._encoder is not None:
            out += self._encoder.notices
        return out

    def close(self) -> None:
        for store in (self._cache, self._user):
            if store is not None:
                store.close()
        self._cache = self._user = None

    # ---- indexing ------------------------------------------------------------------
    def index(self, folder: str | os.PathLike[str], progress: ProgressFn | None = None,
              cancel: CancelToken | None = None, on_batch: Callable[[list[int]], None] | None = None, *,
              browse_without_model: bool = False) -> IndexReport:
        """Bring the cache up to date with ``folder`` (see :func:`index_folder`; ``browse_without_model``: the
        window's photos get thumbnails while the model downloads, or when it cannot be had)."""
        self._model_problem = None  # each run asks again: the connection may be back, the folder chosen again
        try:
            identity, problem = self.identity, None
        except ModelLoadError as exc:
            if not browse_without_model:
                raise
            identity, problem = None, exc
        model = ModelAccess(lambda: self.encoder(progress, cancel), identity, problem,
                            needs_download=identity is not None and not self.model_on_disk())
        report = index_folder(folder, self.cache, model, progress=progress, cancel=cancel, on_batch=on_batch,
                              on_replaced=self._keep_labels_of_rewritten, options=self.options,
                              browse_without_model=browse_without_model)
        report.model = self.settings.model
        if self._encoder is not None:
            report.device, report.precision = self._encoder.device.type, self._encoder.precision.name
        return report

    def _keep_labels_of_rewritten(self, replaced: list[Rewritten]) -> None:
        """A photo saved over in place (edited, or metadata written into it by another app) keeps its labels.

        Labels are keyed by content so that they follow moves; without this, every
        photo a photo manager writes a keyword into would silently lose its labels.
        """
        if not self.user.read_only:
            carried = self.user.carry_labels(replaced)
            if carried:
                log.info("%d labels kept by photos rewritten in place", carried)

    def open_library(self, folders: Sequence[str | os.PathLike[str]]) -> Library:
        """The photos of these folders as indexed so far (index them first for an up-to-date answer)."""
        return Library(self, [resolve_root(f) for f in folders])

    def embeddings(self, folder: str | os.PathLike[str]) -> EmbeddingSet:
        _, dim = self.identity
        return self.cache.load_embeddings(resolve_root(folder), self.model_id(), dim)

    def unanalysed(self, folder: str | os.PathLike[str]) -> PhotoList:
        """Photos of ``folder`` that can be shown but have no vector for this model (every one, when the model
        cannot be had)."""
        model_id = self.model_id() if self.model_problem() is None else None
        return self.cache.unanalysed_under(resolve_root(folder), model_id)

    def embeddings_for_ids(self, ids: Iterable[int]) -> EmbeddingSet:
        """Photos by id (a batch just indexed), those that have a vector for this model."""
        _, dim = self.identity
        ids = list(ids)
        vectors = self.cache.vectors_for_ids(self.model_id(), ids, dim)
        paths = self.cache.paths_for_ids(ids)
        keys = self.cache.keys_for_ids(ids)
        found = [i for i in ids if i in vectors and i in paths]
        matrix = np.stack([vectors[i] for i in found]) if found else np.zeros((0, dim), np.float32)
        return EmbeddingSet(np.asarray(found, np.int64), [paths[i] for i in found], matrix,
                            [photo_identity(keys.get(i), paths[i]) for i in found])

    def vectors_for_keys(self, keys: list[str]) -> dict[str, np.ndarray]:
        _, dim = self.identity
        return self.cache.vectors_for_keys(self.model_id(), keys, dim)

    def failures(self, folder: str | os.PathLike[str]) -> list[tuple[str, str]]:
        return self.cache.failures_under(resolve_root(folder))

    # ---- text --------------------------------------------------------------------
    def text_vectors(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for prompts, from the cache when seen before (no model load), else embedded once."""
        _, dim = self.identity
        model_id = self.model_id()
        known = self.cache.text_vectors(model_id, texts, dim)
        missing = sorted({t for t in texts if t not in known})
        if missing:
            fresh = dict(zip(missing, self.encoder().embed_texts(missing), strict=True))
            self.cache.store_text_vectors(model_id, fresh)
            known.update(fresh)
        return np.stack([known[t] for t in texts]).astype(np.float32)

    def logit_scale(self) -> float:
        key = f"logit_scale:{self.model_key}"
        cached = self.cache.get_setting(key)
        if cached is None:
            cached = repr(self.encoder().logit_scale)
            self.cache.set_setting(key, cached)
        return float(cached)

    def class_vectors(self, categories: list[Category]) -> np.ndarray:
        return category_vectors(categories, self.text_vectors)

    # ---- export ------------------------------------------------------------------
    def run_export(self, plan: ExportPlan, progress: ProgressFn | None = None,
                   cancel: CancelToken | None = None) -> ExportResult:
        """Carry out a plan; moved photos keep their vectors at their new place."""
        try:
            result = run_export(plan, journal_dir=self.settings.journal_dir, progress=progress, cancel=cancel)
        except ExportStopped as stopped:
            self._record_moves(stopped.result.placed)
            raise
        self._record_moves(result.placed)
        return result

    def finish_move(self, journal: str | os.PathLike[str], progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> ExportResult:
        """Finish an interrupted move export from its journal."""
        result = resume_or_recover(Path(journal), progress=progress, cancel=cancel)
        self._record_moves(result.placed)
        return result

    def undo_move(self, journal: str | os.PathLike[str], progress: ProgressFn | None = None,
                  cancel: CancelToken | None = None) -> UndoResult:
        """Put back the photos of a move export; they keep their vectors (and labels) at their old place."""
        result = undo_move(Path(journal), progress=progress, cancel=cancel)
        if result.moved_back:
            self.cache.repoint([(str(new), str(old)) for new, old in result.moved_back])
        return result

    def _record_moves(self, placed: list[Placed]) -> None:
        moved = [(str(p.source), str(p.destination)) for p in placed if p.method in ("move", "copy+delete")]
        if moved:
            self.cache.repoint(moved)

    # ---- derived data --------------------------------------------------------------
    def clear_cache(self) -> list[Path]:
        """Delete the cache (``cache.db`` and its companions) and nothing else: the user's library stays."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        target = self.settings.cache_path
        deleted = []
        try:
            for path in sorted(target.parent.glob(target.name + "*")):
                if path.is_file() and (path.name == target.name or path.name[len(target.name):] in ("-wal", "-shm")):
                    path.unlink()
                    deleted.append(path)
        except OSError as exc:
            raise os_error(exc, "delete the cache", target) from None
        return deleted
