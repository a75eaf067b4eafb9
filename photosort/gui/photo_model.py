"""The grid's model: photo ids, paths, probabilities and labels in numpy arrays, one row per visible photo.

Nothing here sorts with Python comparisons per row: grouping, filtering and
ordering are numpy operations over the whole library (a few ms at 50,000
photos), and the view is told with one layout change, so the selection and
the scroll position survive a re-sort. Probabilities arrive from the worker
(zero-shot for typed categories, or the active classifier's predictions);
the unsure threshold is applied here because re-assigning from cached
probabilities is an argmax, cheaper than a round trip to the worker thread.

Labels (the user's clicks, by photo id) win over predictions: a labelled
photo is grouped, filtered and exported under its label. "Label these next"
shows the unlabelled photos the classifier is least sure about.

Positions hold still while the user labels: a label, the retraining it
triggers and photos indexed meanwhile change what tiles *show* (badge,
colour, group counts) but never where they *are*, so the photo under the
pointer and the selection stay put and the next key lands where the user
looks. The new order waits (:attr:`PhotoModel.regroup_pending`) until the
user asks (:meth:`PhotoModel.regroup`) or changes the view (filter, sort,
threshold, classifier, "Label these next").

Python code reads tiles with :meth:`PhotoModel.tile`, not ``index.data()``:
PySide6 6.12 drops a reference to ``None`` each time ``index.data()`` hands
an empty value to Python, which crashes Python 3.11 after a few thousand
calls, so the custom roles below never answer ``None`` either.
"""

from __future__ import annotations

import bisect
import logging
import os
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QPixmap

from ..core.capture import seconds_of
from ..core.paths import display_path
from ..core.sorting import DEFAULT_THRESHOLD, NO_LABEL, UNSURE, decide, least_sure
from ..core.wording import natural_key
from ..core.zeroshot import Category
from .section_layout import FolderRuns
from .thumbnail_cache import ThumbnailCache

log = logging.getLogger(__name__)

PhotoIdRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
CategoryRole = Qt.ItemDataRole.UserRole + 3  # str; "" when unsure or without categories
ScoreRole = Qt.ItemDataRole.UserRole + 4  # float in [0, 1]: probability of the best category
GroupRole = Qt.ItemDataRole.UserRole + 5  # category index, or UNSURE
BestGuessRole = Qt.ItemDataRole.UserRole + 6  # name of the best category even when unsure ("" if none)

NOT_ANALYSED = -2  # the group of photos shown before the model has looked at them (never guessed into another)
REBUILD_NAME_ORDER_ABOVE = 512  # photos added at once; fewer are inserted into the name order one by one
LEAST_SURE_COUNT = 48  # photos shown by "Label these next": a few screens of clicks, then the head retrains
SORT_KEYS = ("name", "folder", "confidence", "date")

# Tableau 10: distinct in both light and dark palettes, and friendly to colour-blind eyes.
CATEGORY_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
UNSURE_COLOUR = "#8a8a8a"


def group_colour(group: int) -> QColor:
    if group < 0:
        return QColor(UNSURE_COLOUR)
    colour = QColor(CATEGORY_COLOURS[group % len(CATEGORY_COLOURS)])
    turns = group // len(CATEGORY_COLOURS)
    return colour.darker(100 + 25 * turns) if turns else colour


@dataclass(frozen=True)
class Tile:
    """What a grid tile shows, read in one call."""

    photo_id: int
    name: str
    category: str | None  # the prediction; None: unsure, or no categories typed
    group: int  # where the photo is grouped: its label if it has one, else the prediction (or UNSURE)
    score: float  # confidence of the prediction
    label: str | None = None  # the user's label, which wins over the prediction
    match: float | None = None  # how well it matches the search shown (cosine), None outside a search


@dataclass(frozen=True)
class Group:
    """One entry of the side panel's group list. ``key`` None means all photos."""

    key: int | None
    label: str
    count: int


Key = int | None
Filter = int | None  # None: all photos; UNSURE; or a category index


LANDSCAPE_LIBRARY = 0.6  # of the photos shown landscape: thumbnail boxes become 4:3 (fewer blank bands)


class PhotoModel(QAbstractListModel):
    """Photos as rows, grouped by category (Unsure last) and filtered to one group on request."""

    groupsChanged = Signal()
    boxRatioChanged = Signal(float)  # height / width of the thumbnail box that suits the photos shown
    regroupPending = Signal(bool)  # labels or predictions would move photos; they wait for regroup()

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._ids = np.zeros(0, np.int64)
        self._paths: list[str] = []
        self._names: list[str] = []
        self._index_of: dict[int, int] = {}
        self._categories: tuple[Category, ...] = ()
        self._probs = np.zeros((0, 0), np.float32)
        self._threshold = DEFAULT_THRESHOLD
        self._predicted = np.zeros(0, np.int64)  # best class per photo, or UNSURE
        self._best = np.zeros(0, np.int64)  # the group: label if labelled, else predicted
        self._score = np.zeros(0, np.float32)
        self._labels = np.zeros(0, np.int64)  # class index per photo, or NO_LABEL
        self._analysed = np.zeros(0, bool)  # per photo: the model has looked at it (else: shown, not sorted)
        self._landscape = np.zeros(0, np.int8)  # per photo: 1 wider than tall, 0 not, -1 not known
        self._box_ratio = 1.0
        self._label_of_id: dict[int, int] = {}  # every label of the active classifier, shown or not
        self._least_sure: np.ndarray | None = None  # photo indexes shown by "Label these next"
        self._ranking: np.ndarray | None = None  # photo indexes of a search, best match first
        self._match: dict[int, float] = {}  # photo index -> its match with the search
        self._name_keys: list[tuple] = []  # sorted name keys: file name in natural order, then the folder
        self._by_name: list[int] = []  # photo indexes in name order, parallel to _name_keys
        self._name_rank: np.ndarray | None = None
        self._folder_rank: np.ndarray | None = None  # per photo: its folder's place in natural order
        self._folders: list[str] = []  # the folders of _folder_rank, in that order
        self._runs: FolderRuns | None = None  # the folder runs of the current order (folder headers), when known
        self._when = np.zeros(0, np.float64)  # per photo: when taken (capture, else file time), s; NaN: not known yet
        self._order = np.zeros(0, np.int64)  # row -> photo index
        self._order_groups = np.zeros(0, np.int64)  # per row: its group's place when the row was placed (headers)
        self._filter: Filter = None
        self._sort = "name"
        self._grouped = True
        self._holding = False  # positions hold still (the user is labelling)
        self._pending = False  # the order they would have otherwise differs

    # ---- Qt model API ----------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._order)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._order):
            return None
        i = int(self._order[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            return self._names[i]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnails.pixmap(int(self._ids[i])) if self._thumbnails is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(i)
        return self._custom_data(i, role)

    def _custom_data(self, i: int, role: int) -> object:
        if role == PhotoIdRole:
            return int(self._ids[i])
        if role == PathRole:
            return self._paths[i]
        if role == CategoryRole:
            return self._category_of(i) or ""
        if role == ScoreRole:
            return self._score_of(i)
        if role == GroupRole:
            return int(self._best[i])
        if role == BestGuessRole:
            return self._best_guess(i) or ""
        return None

    # ---- reading -----------------------------------------------------------------------
    @property
    def categories(self) -> tuple[Category, ...]:
        return self._categories

    @property
    def threshold(self) -> float | np.ndarray:
        """The unsure threshold: one for every class, or one per class (a target accuracy's)."""
        return self._threshold

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        """Every photo's probabilities (N x C, NaN where not scored) and label (class index or NO_LABEL)."""
        return self._probs, self._labels

    @property
    def filter(self) -> Filter:
        return self._filter

    @property
    def sort_key(self) -> str:
        return self._sort

    @property
    def grouped(self) -> bool:
        return self._grouped

    def photo_count(self) -> int:
        """Photos in the library, whatever the filter shows."""
        return len(self._ids)

    @property
    def box_ratio(self) -> float:
        """Height / width of the thumbnail box: 3/4 when most photos are landscape (their thumbnails then fill it),
        else square (portraits and mixed libraries)."""
        return self._box_ratio

    def unanalysed_count(self) -> int:
        """Photos shown that the model has not looked at yet (downloading, or not available)."""
        return int(len(self._analysed) - np.count_nonzero(self._analysed))

    def tile(self, row: int) -> Tile:
        i = int(self._order[row])
        return Tile(int(self._ids[i]), self._names[i], self._category_of(i), int(self._best[i]), self._score_of(i),
                    self._label_name(i), self._match.get(i))

    def thumbnail(self, row: int) -> QPixmap | None:
        """The tile's thumbnail if loaded; otherwise None, and it is queued for loading."""
        if self._thumbnails is None:
            return None
        return self._thumbnails.pixmap(int(self._ids[self._order[row]]))

    def photo_id(self, row: int) -> int:
        return int(self._ids[self._order[row]])

    def path(self, row: int) -> str:
        return self._paths[int(self._order[row])]

    def row_of_photo(self, photo_id: int) -> int | None:
        i = self._index_of.get(photo_id)
        if i is None:
            return None
        rows = np.flatnonzero(self._order == i)
        return int(rows[0]) if len(rows) else None

    def label_of(self, photo_id: int) -> int | None:
        """The class index the user gave this photo, or None."""
        return self._label_of_id.get(photo_id)

    def labels(self) -> dict[int, int]:
        """Every label of the active classifier (photo id -> class index), including photos not shown."""
        return dict(self._label_of_id)

    def label_counts(self) -> list[int]:
        """Labels per class, for the classifier panel."""
        counts = [0] * len(self._categories)
        for label in self._label_of_id.values():
            if 0 <= label < len(counts):
                counts[label] += 1
        return counts

    @property
    def regroup_pending(self) -> bool:
        return self._pending

    def folder_runs(self) -> FolderRuns | None:
        """The runs of rows from one folder (and, grouped by category, one group), for folder headers: only while
        sorted by folder (not a search or "Label these next", which rank photos). Runs follow the rows as they
        were placed, so labelling, which holds positions still, never moves a header."""
        if self._sort != "folder" or self._ranking is not None or self._least_sure is not None:
            return None
        if self._runs is None or self._runs.rows != len(self._order):
            self._runs = self._compute_runs()
        return self._runs

    def _compute_runs(self) -> FolderRuns:
        rank = self._folders_rank()[self._order]
        groups = self._order_groups
        if not len(rank):
            return FolderRuns(np.zeros(0, np.int64), (), 0)
        changes = (np.diff(rank) != 0) | (np.diff(groups) != 0)
        starts = np.concatenate([[0], np.flatnonzero(changes) + 1]).astype(np.int64)
        folders = tuple(display_path(self._folders[int(rank[s])]) for s in starts)
        named = self._grouped and self._categories and self._filter is None  # one group shown: no need to say
        names = tuple(self._group_name(int(groups[s])) for s in starts) if named else ()
        colours = tuple(self._group_of_key(int(groups[s])) for s in starts) if named else ()
        return FolderRuns(starts, folders, len(rank), names, colours)

    def _group_of_key(self, key: int) -> int:
        """The group (category index, UNSURE or NOT_ANALYSED) of a group key from :meth:`_group_keys`."""
        n = len(self._categories)
        return key if key < n else (UNSURE if key == n else NOT_ANALYSED)

    def _group_name(self, key: int) -> str:
        return self.group_label(self._group_of_key(key))

    @property
    def search_mode(self) -> bool:
        return self._ranking is not None

    def set_ranking(self, ids: np.ndarray, matches: np.ndarray) -> None:
        """Show only these photos, best match first (a search, or Find Similar), until :meth:`clear_ranking`."""
        pairs = [(self._index_of[int(pid)], float(m)) for pid, m in zip(ids, matches, strict=True)
                 if int(pid) in self._index_of]
        self._ranking = np.array([i for i, _m in pairs], dtype=np.int64)
        self._match = dict(pairs)
        self._holding = False
        self._refresh_order()

    def clear_ranking(self) -> None:
        """Back to the view before the search."""
        if self._ranking is None:
            return
        self._ranking, self._match = None, {}
        self._holding = False
        self._refresh_order()

    @property
    def least_sure_mode(self) -> bool:
        return self._least_sure is not None

    def groups(self) -> list[Group]:
        """All photos, each category with its count, then Unsure (only when there are categories), then the photos
        not analysed yet (only while there are some)."""
        out = [Group(None, "All photos", len(self._ids))]
        if self._categories:
            counts = np.bincount(np.maximum(self._best, UNSURE) + 1, minlength=len(self._categories) + 1)
            out += [Group(k, c.name, int(counts[k + 1])) for k, c in enumerate(self._categories)]
            out.append(Group(UNSURE, "Unsure", int(np.count_nonzero(self._best == UNSURE))))
        waiting = self.unanalysed_count()
        if waiting:
            out.append(Group(NOT_ANALYSED, self.group_label(NOT_ANALYSED), waiting))
        return out

    def group_label(self, key: Filter) -> str:
        if key is None:
            return "All photos"
        if key == NOT_ANALYSED:
            return "Not analysed yet"
        return "Unsure" if key == UNSURE else self._categories[key].name

    # ---- changing ----------------------------------------------------------------------
    def clear(self) -> None:
        self.beginResetModel()
        self._holding = False
        self._set_pending(False)
        self._ids = np.zeros(0, np.int64)
        self._paths, self._names, self._index_of = [], [], {}
        self._probs = np.zeros((0, len(self._categories)), np.float32)
        self._predicted, self._best = np.zeros(0, np.int64), np.zeros(0, np.int64)
        self._score, self._labels = np.zeros(0, np.float32), np.zeros(0, np.int64)
        self._analysed = np.zeros(0, bool)
        self._landscape = np.zeros(0, np.int8)
        self._name_keys, self._by_name, self._name_rank, self._folder_rank = [], [], None, None
        self._when = np.zeros(0, np.float64)
        if self._least_sure is not None:
            self._least_sure = np.zeros(0, np.int64)
        self._ranking, self._match = None, {}
        self._set_order(np.zeros(0, np.int64))
        self.endResetModel()
        self.groupsChanged.emit()

    def add_photos(self, ids: np.ndarray, paths: list[str], categories: tuple[Category, ...],
                   probabilities: np.ndarray, labels: dict[int, int] | None = None,
                   dates: dict[int, str] | None = None, analysed: np.ndarray | None = None,
                   shapes: dict[int, tuple[int, int]] | None = None) -> None:
        """Add photos (or refresh ones already shown, e.g. a changed file, or one the model has now analysed) with
        their probabilities, labels, when they were taken (photo id -> ISO time), whether the model has looked
        at each (None: it has at all) and their upright (width, height)."""
        if len(ids) == 0:
            return
        if labels and tuple(categories) == self._categories:
            self._label_of_id.update(labels)
        probs = self._aligned_probabilities(categories, probabilities, len(ids))
        analysed = np.ones(len(ids), bool) if analysed is None else np.asarray(analysed, bool)
        known = np.array([int(i) in self._index_of for i in ids], dtype=bool)
        for photo_id, path, row, seen in zip(ids[known], np.array(paths, dtype=object)[known], probs[known],
                                             analysed[known], strict=True):
            i = self._index_of[int(photo_id)]
            if path != self._paths[i]:
                self._paths[i], self._names[i] = path, display_path(os.path.basename(path))
                self._name_keys = []  # a renamed photo moves: rebuild the name order
            self._probs[i] = row
            self._analysed[i] = seen
        fresh = ~known
        start = len(self._ids)
        new_paths = [p for p, f in zip(paths, fresh, strict=True) if f]
        self._ids = np.concatenate([self._ids, ids[fresh].astype(np.int64)])
        self._paths += new_paths
        self._names += [display_path(os.path.basename(p)) for p in new_paths]
        self._index_of.update({int(pid): start + k for k, pid in enumerate(ids[fresh])})
        self._probs = np.concatenate([self._probs, probs[fresh]]) if fresh.any() else self._probs
        self._labels = np.concatenate([self._labels, self._labels_for(ids[fresh])])
        self._analysed = np.concatenate([self._analysed, analysed[fresh]])
        self._landscape = np.concatenate([self._landscape, np.full(int(fresh.sum()), -1, np.int8)])
        self._when = np.concatenate([self._when, np.full(int(fresh.sum()), np.nan)])
        self._store_dates(dates)
        self._store_shapes(shapes)
        self._extend_name_order(range(start, len(self._ids)))
        self._assign()
        self._insert_visible(np.arange(start, len(self._ids)))
        self._refresh_order()

    def replace_photos(self, ids: np.ndarray, paths: list[str], categories: tuple[Category, ...],
                       probabilities: np.ndarray, labels: dict[int, int] | None = None,
                       dates: dict[int, str] | None = None, analysed: np.ndarray | None = None,
                       shapes: dict[int, tuple[int, int]] | None = None) -> None:
        """Show exactly these photos (after renames or removals on disk)."""
        if labels and tuple(categories) == self._categories:
            self._label_of_id.update(labels)
        self.beginResetModel()
        self._holding = False
        self._set_pending(False)
        self._ids = ids.astype(np.int64)
        self._paths = list(paths)
        self._names = [display_path(os.path.basename(p)) for p in paths]
        self._index_of = {int(pid): k for k, pid in enumerate(self._ids)}
        self._ranking, self._match = None, {}  # the rows it named are gone
        self._probs = self._aligned_probabilities(categories, probabilities, len(ids))
        self._labels = self._labels_for(self._ids)
        self._analysed = np.ones(len(self._ids), bool) if analysed is None else np.asarray(analysed, bool)
        self._landscape = np.full(len(self._ids), -1, np.int8)
        self._when = np.full(len(self._ids), np.nan)
        self._store_dates(dates)
        self._store_shapes(shapes)
        self._name_keys, self._by_name = [], []
        self._extend_name_order(range(len(self._ids)))
        self._assign()
        if self._least_sure is not None:
            self._least_sure = self._rank_least_sure()
        self._set_order(self._compute_order())
        self.endResetModel()
        self.groupsChanged.emit()

    def set_scores(self, categories: tuple[Category, ...], ids: np.ndarray, probabilities: np.ndarray,
                   labels: dict[int, int] | None = None, keep_positions: bool = False) -> None:
        """New categories, a new classifier or its new predictions: probabilities for the photos listed, by id.

        ``labels`` (photo id -> class index) replaces the labels when given (another
        classifier, or typed categories: ``{}``); None keeps them (new predictions).
        ``keep_positions``: predictions retrained from the user's labels, which must not
        move photos under the pointer while the user is labelling.
        """
        if not keep_positions:
            self._holding = False
        if labels is not None:
            self._label_of_id = dict(labels)
        self._labels = self._labels_for(self._ids)
        self._categories = tuple(categories)
        self._probs = np.full((len(self._ids), len(self._categories)), np.nan, np.float32)
        rows = np.array([self._index_of.get(int(i), -1) for i in ids], dtype=np.int64)
        present = rows >= 0
        if len(rows):
            self._probs[rows[present]] = probabilities[present]
        if self._filter is not None and self._filter >= len(self._categories):
            self._filter = None
        self._assign()
        if self._least_sure is not None:
            self._least_sure = self._rank_least_sure()
        self._refresh_order()

    def set_labels(self, changes: dict[int, int | None]) -> None:
        """Label photos (photo id -> class index) or remove their labels (None); positions hold still from now on."""
        self._holding = True
        for photo_id, label in changes.items():
            if label is None:
                self._label_of_id.pop(photo_id, None)
            elif 0 <= label < len(self._categories):
                self._label_of_id[photo_id] = label
        rows = [self._index_of[i] for i in changes if i in self._index_of]
        if not rows:
            return
        self._labels[rows] = [self._label_of_id.get(int(self._ids[r]), NO_LABEL) for r in rows]
        self._assign()
        self._refresh_order()

    def set_dates(self, dates: dict[int, str]) -> None:
        """When photos were taken (photo id -> ISO time), read after their photos arrived."""
        if self._store_dates(dates) and self._sort == "date":
            self._refresh_order()

    def _store_dates(self, dates: dict[int, str] | None) -> bool:
        """Keep the dates of photos shown as seconds (one conversion here, none per sort); True if any changed."""
        changed = False
        for photo_id, when in (dates or {}).items():
            i = self._index_of.get(photo_id)
            if i is None:
                continue
            try:
                seconds = seconds_of(when)
            except (TypeError, ValueError):
                continue
            changed = changed or self._when[i] != seconds
            self._when[i] = seconds
        return changed

    def _store_shapes(self, shapes: dict[int, tuple[int, int]] | None) -> None:
        """Keep which photos are landscape; the thumbnail box follows the majority."""
        for photo_id, (width, height) in (shapes or {}).items():
            i = self._index_of.get(photo_id)
            if i is not None:
                self._landscape[i] = int(width > height)
        known = self._landscape[self._landscape >= 0]
        ratio = 0.75 if len(known) and np.count_nonzero(known) >= LANDSCAPE_LIBRARY * len(known) else 1.0
        if ratio != self._box_ratio:
            self._box_ratio = ratio
            self.boxRatioChanged.emit(ratio)

    def set_least_sure(self, enabled: bool) -> None:
        """Show only the unlabelled photos the classifier is least sure about, least sure first (or go back)."""
        if enabled == self.least_sure_mode:
            return
        self._holding = False
        self._least_sure = self._rank_least_sure() if enabled else None
        self._refresh_order()

    def set_threshold(self, threshold: float | np.ndarray, keep_positions: bool = False) -> None:
        """One threshold for every class, or one per class (from :mod:`photosort.core.calibration`).

        ``keep_positions``: new thresholds that came with a retraining while the user labels.
        """
        if not keep_positions:
            self._holding = False
        self._threshold = float(threshold) if np.ndim(threshold) == 0 else np.array(threshold, np.float64)
        self._assign()
        self._refresh_order()

    def set_filter(self, key: Filter) -> None:
        if key is not None and key not in (UNSURE, NOT_ANALYSED) and not 0 <= key < len(self._categories):
            key = None
        if key == self._filter:
            return
        self._holding = False
        self._filter = key
        self._refresh_order()

    def set_sort(self, key: str, grouped: bool | None = None) -> None:
        if key not in SORT_KEYS:
            raise ValueError(f"unknown sort key {key!r}")
        self._holding = False
        self._sort = key
        if grouped is not None:
            self._grouped = grouped
        self._refresh_order()

    # ---- internals -----------------------------------------------------------------------
    def _aligned_probabilities(self, categories: tuple[Category, ...], probabilities: np.ndarray, n: int) -> np.ndarray:
        """Probabilities for our categories; rows scored against other categories are unknown (NaN).

        The worker sends new scores before any batch scored with new categories,
        so a mismatch only happens for a batch already in flight.
        """
        if tuple(categories) == self._categories and probabilities.shape == (n, len(self._categories)):
            return probabilities.astype(np.float32, copy=False)
        log.debug("batch scored for other categories; shown unsure until re-scored")
        return np.full((n, len(self._categories)), np.nan, np.float32)

    def _assign(self) -> None:
        """The core's rules (threshold, labels win), applied here so dragging the threshold needs no round trip.

        Per-class thresholds made for other classes (the classifier changed; its own
        follow at once) file nothing meanwhile.
        """
        threshold = self._threshold
        if np.ndim(threshold) and len(threshold) != len(self._categories):
            threshold = np.full(len(self._categories), np.inf)
        decision = decide(self._probs, threshold, self._labels)
        self._predicted, self._score, self._best = decision.predicted, decision.confidence, decision.best
        waiting = ~self._analysed
        if waiting.any():  # shown, never guessed into a group: the model has not looked at them (a label still wins)
            self._predicted = np.where(waiting, NOT_ANALYSED, self._predicted)
            self._best = np.where(waiting & (self._labels < 0), NOT_ANALYSED, self._best)

    def _labels_for(self, ids: np.ndarray) -> np.ndarray:
        if not self._label_of_id:
            return np.full(len(ids), NO_LABEL, np.int64)
        return np.fromiter((self._label_of_id.get(int(i), NO_LABEL) for i in ids), np.int64, len(ids))

    def _rank_least_sure(self) -> np.ndarray:
        """Unlabelled, scored photos by the margin between their two likeliest classes (the core's ranking)."""
        return least_sure(self._probs, self._labels, LEAST_SURE_COUNT)

    def _label_name(self, i: int) -> str | None:
        label = int(self._labels[i])
        return self._categories[label].name if 0 <= label < len(self._categories) else None

    def _category_of(self, i: int) -> str | None:
        best = int(self._predicted[i])
        return self._categories[best].name if best >= 0 else None

    def _score_of(self, i: int) -> float:
        score = float(self._score[i]) if len(self._categories) else 0.0
        return score if np.isfinite(score) else 0.0

    def _best_guess(self, i: int) -> str | None:
        if not self._categories or not np.isfinite(self._score[i]):
            return None
        return self._categories[int(np.argmax(self._probs[i]))].name

    def _tooltip(self, i: int) -> str:
        if not self._analysed[i]:
            return f"{display_path(self._paths[i])}\nNot analysed yet: the model has not looked at it"
        if not self._categories:
            return display_path(self._paths[i])
        guess = self._best_guess(i)
        best = int(self._predicted[i])
        predicted = self._categories[best].name if best >= 0 else (f"Unsure (maybe {guess})" if guess else "Unsure")
        label = self._label_name(i)
        if label is not None:
            return f"{display_path(self._paths[i])}\nLabelled {label} · predicted {predicted} {self._score_of(i):.0%}"
        return f"{display_path(self._paths[i])}\n{predicted} · {self._score_of(i):.0%}"

    def _passes_filter(self, indexes: np.ndarray) -> np.ndarray:
        if self._filter is None:
            return indexes
        return indexes[self._best[indexes] == self._filter]

    def _compute_order(self) -> np.ndarray:
        if self._ranking is not None:
            return self._ranking
        if self._least_sure is not None:
            return self._passes_filter(self._least_sure)
        shown = self._passes_filter(np.arange(len(self._ids)))
        if self._sort == "confidence" and self._categories:
            certainty = np.where(self._labels[shown] >= 0, 2.0, np.nan_to_num(self._score[shown], nan=-1.0))
            secondary = -certainty  # labelled photos first, then the surest predictions
        elif self._sort == "folder":
            secondary = self._folders_rank()[shown]
        elif self._sort == "date":
            secondary = np.nan_to_num(self._when[shown], nan=np.inf)  # oldest first; not known yet: last
        else:
            secondary = self._names_rank()[shown]
        if self._grouped and self._categories:
            return shown[np.lexsort((self._names_rank()[shown], secondary, self._group_keys(shown)))]
        return shown[np.lexsort((self._names_rank()[shown], secondary))]

    def _group_keys(self, indexes: np.ndarray) -> np.ndarray:
        """Where each photo's group comes when grouped: the categories in order, then Unsure, then not analysed
        (0 for every photo when not grouped)."""
        if not (self._grouped and self._categories):
            return np.zeros(len(indexes), np.int64)
        best = self._best[indexes]
        return np.where(best == NOT_ANALYSED, len(self._categories) + 1,
                        np.where(best < 0, len(self._categories), best)).astype(np.int64)

    def _set_order(self, order: np.ndarray) -> None:
        """The rows, with each row's group as it is now: folder headers split where the group changes, and keep
        those splits while positions hold still (labels change groups, not rows)."""
        self._order = order
        self._order_groups = self._group_keys(order)
        self._runs = None

    def _name_key(self, i: int) -> tuple:
        """File names as people read them (IMG_2 before IMG_10); the same name in two folders: by folder."""
        return natural_key(self._names[i]), natural_key(self._paths[i])

    def _folders_rank(self) -> np.ndarray:
        """Each photo's folder's position among the folders, in natural order (within one: by name).

        Kept until the paths change, like the name order: every refresh of a folder-sorted grid needs it.
        """
        if self._folder_rank is None or len(self._folder_rank) != len(self._paths):
            folders = [os.path.dirname(p) for p in self._paths]
            self._folders = sorted(set(folders), key=natural_key)
            order = {folder: k for k, folder in enumerate(self._folders)}
            self._folder_rank = np.fromiter((order[f] for f in folders), np.int64, len(folders))
            self._runs = None
        return self._folder_rank

    def _extend_name_order(self, new: range) -> None:
        """Keep photos sorted by path: insert a batch (cheap), or re-sort when many arrive or one moved."""
        if not self._name_keys or len(new) > REBUILD_NAME_ORDER_ABOVE:
            self._by_name = sorted(range(len(self._paths)), key=self._name_key)
            self._name_keys = [self._name_key(i) for i in self._by_name]
        else:
            for i in new:
                key = self._name_key(i)
                at = bisect.bisect(self._name_keys, key)
                self._name_keys.insert(at, key)
                self._by_name.insert(at, i)
        self._name_rank = self._folder_rank = self._runs = None

    def _names_rank(self) -> np.ndarray:
        """Each photo's position in path order."""
        if self._name_rank is None or len(self._name_rank) != len(self._paths):
            if len(self._by_name) != len(self._paths):
                self._name_keys = []
                self._extend_name_order(range(len(self._paths)))
            rank = np.empty(len(self._by_name), np.int64)
            rank[np.asarray(self._by_name, dtype=np.int64)] = np.arange(len(self._by_name))
            self._name_rank = rank
        return self._name_rank

    def _insert_visible(self, new_indexes: np.ndarray) -> None:
        """Append newly added photos that pass the filter as rows at the end (re-sorted right after)."""
        if self._least_sure is not None or self._ranking is not None:
            return  # new photos join "Label these next" when the next predictions re-rank it
        shown = self._passes_filter(new_indexes)
        if not len(shown):
            return
        first = len(self._order)
        self.beginInsertRows(QModelIndex(), first, first + len(shown) - 1)
        self._order = np.concatenate([self._order, shown])
        self._order_groups = np.concatenate([self._order_groups, self._group_keys(shown)])
        self._runs = None
        self.endInsertRows()

    def regroup(self) -> None:
        """Put photos where their labels and the latest predictions say (the user asked, or looked elsewhere)."""
        self._holding = False
        self._refresh_order()

    def _set_pending(self, pending: bool) -> None:
        if pending != self._pending:
            self._pending = pending
            self.regroupPending.emit(pending)

    def _refresh_order(self) -> None:
        """Re-sort in place when the same photos stay visible (keeps selection); otherwise reset.

        While positions hold, nothing moves: the tiles repaint and the new order waits.
        """
        new = self._compute_order()
        old = self._order
        if self._holding and len(old):
            self.dataChanged.emit(self.index(0), self.index(len(old) - 1))
            self._set_pending(not np.array_equal(new, old))
            self.groupsChanged.emit()
            return
        self._set_pending(False)
        if len(new) == len(old) and np.array_equal(np.sort(new), np.sort(old)):
            if not np.array_equal(new, old):
                self._move_rows(new)
            elif not np.array_equal(self._group_keys(new), self._order_groups):  # same rows, other groups: headers
                self.layoutAboutToBeChanged.emit()
                self._set_order(new)
                self.layoutChanged.emit()
            self._runs = None  # what headers say (the group shown, or not) may have changed
            if len(new):
                self.dataChanged.emit(self.index(0), self.index(len(new) - 1))
        else:
            self.beginResetModel()
            self._set_order(new)
            self.endResetModel()
        self.groupsChanged.emit()

    def _move_rows(self, new: np.ndarray) -> None:
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        photos = [int(self._order[p.row()]) for p in persistent]
        self._set_order(new)
        row_of = np.empty(len(self._ids), np.int64)
        row_of[new] = np.arange(len(new))
        self.changePersistentIndexList(persistent, [self.index(int(row_of[i])) for i in photos])
        self.layoutChanged.emit()
