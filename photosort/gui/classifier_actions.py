"""The window's classifier actions: the Classifier menu, the label keys, and what each asks the worker.

The rules (which classifier sorts, that labels win, when to retrain) live in
the core; this module only turns menu items, keys and dialogs into worker
requests and puts the answers into the grid and the side panel. It is its
own module so that :mod:`.main_window` keeps composition only.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMainWindow, QMenu, QMessageBox

from ..core.classifiers import ClassifierSummary
from ..core.wording import plural
from .accuracy_dial import AccuracyDial
from .actions import add_action
from .classifier_panel import KEYED_CLASSES, NewClassifierDialog
from .grid_view import PhotoGridView
from .keyword_training import KeywordTrainer
from .labelling import Labeller
from .message_bar import MessageBar
from .photo_model import PhotoModel
from .preferences import Preferences
from .side_panel import SidePanel
from .worker import ClassifierState, ClassifierTrained, WorkerClient

log = logging.getLogger(__name__)

CLASSIFIER_FILE_FILTER = "photosort classifier (*.photosort-head)"
CLASSIFIER_SUFFIX = ".photosort-head"  # the file format's name since 0.1; files in the wild keep it


class ClassifierActions(QObject):
    """Everything the window does with classifiers and labels, wired to one worker, model and panel."""

    listed = Signal()  # the classifier list (combo, menus) is up to date
    applied = Signal(str)  # a classifier ("" : typed categories) now sorts the grid
    trained = Signal(object)  # ClassifierTrained, once its predictions are in the grid
    changed = Signal()  # what the status bar shows changed (classifier, labels, mode)

    def __init__(self, window: QMainWindow, worker: WorkerClient, model: PhotoModel, view: PhotoGridView,
                 panel: SidePanel, labeller: Labeller, message_bar: MessageBar, prefs: Preferences) -> None:
        super().__init__(window)
        self._window, self._worker, self._model, self._view = window, worker, model, view
        self._panel, self._labeller, self._message_bar, self._prefs = panel, labeller, message_bar, prefs
        self._summaries: list[ClassifierSummary] = []
        self._active = ""
        self._listed_once = False
        self._new_dialog: NewClassifierDialog | None = None
        self.dial = AccuracyDial(panel, model, prefs, self)  # the slider: a raw threshold, or a target accuracy
        self.keywords = KeywordTrainer(window, worker, message_bar)  # Train from Keywords…
        self._build_menu()
        self._build_label_keys()
        self._connect()
        self._update_actions()

    # ---- building --------------------------------------------------------------------------
    def _build_menu(self) -> None:
        """One menu for classifiers, in the menu bar and behind the panel's Manage button."""
        menu = self._window.menuBar().addMenu("&Classifier")
        self.new_action = add_action(menu, "&New Classifier…", self.new, "Ctrl+Shift+N")
        add_action(menu, "New From the &Current Categories…", lambda: self.new(from_categories=True))
        menu.addSeparator()
        self.rename_action = add_action(menu, "&Rename…", self.rename)
        self.delete_action = add_action(menu, "&Delete…", self.delete)
        menu.addSeparator()
        self.export_action = add_action(menu, "&Export to File…", self.export_file)
        add_action(menu, "&Import from File…", self.import_file)
        menu.addSeparator()
        self.train_action = add_action(menu, "&Train Now", self._labeller.train_now, "Ctrl+T")
        add_action(menu, "Train from &Keywords…", self.train_from_keywords)
        self.least_sure_action = add_action(menu, "&Label These Next", self.set_least_sure, "Ctrl+L")
        self.least_sure_action.setCheckable(True)
        self.menu = menu
        self._panel.classifier_bar.manage_button.setMenu(menu)

    def _build_label_keys(self) -> None:
        """1-9 label the selection with the Nth class, 0 or Backspace remove labels: keys of the grid only."""
        self.label_actions: list[QAction] = []
        for k in range(KEYED_CLASSES):
            action = QAction(f"Label as class {k + 1}", self._view)
            action.setShortcut(QKeySequence(str(k + 1)))
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(lambda _c=False, index=k: self.label_selection(index, advance=True))
            self._view.addAction(action)
            self.label_actions.append(action)
        self.unlabel_action = QAction("Remove Label", self._view)
        self.unlabel_action.setShortcuts([QKeySequence("0"), QKeySequence(Qt.Key.Key_Backspace)])
        self.unlabel_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.unlabel_action.triggered.connect(lambda: self.label_selection(None))
        self._view.addAction(self.unlabel_action)

    def _connect(self) -> None:
        worker = self._worker.worker
        worker.classifiersListed.connect(self._on_listed)
        worker.classifierActivated.connect(self._on_activated)
        worker.classifierTrained.connect(self._on_trained)
        worker.classifierNameTaken.connect(self._ask_import_name)
        self._panel.classifier_bar.classifierChosen.connect(self.choose)
        label_panel = self._panel.label_panel
        label_panel.labelRequested.connect(self.label_selection)
        label_panel.clearRequested.connect(lambda: self.label_selection(None))
        label_panel.trainRequested.connect(self._labeller.train_now)
        label_panel.leastSureToggled.connect(self.set_least_sure)
        self._labeller.labelsChanged.connect(self._on_labels_changed)
        self._labeller.trainingRequested.connect(lambda: label_panel.set_status("Learning from the labels…"))

    # ---- state -------------------------------------------------------------------------------
    @property
    def active(self) -> str:
        """The classifier sorting the grid ("" : the typed categories)."""
        return self._active

    def summaries(self) -> list[ClassifierSummary]:
        return list(self._summaries)

    @property
    def new_dialog(self) -> NewClassifierDialog | None:
        return self._new_dialog

    # ---- choosing ----------------------------------------------------------------------------
    def choose(self, name: str) -> None:
        """Sort the grid with this classifier ("" : the typed categories); one made for another model is retrained."""
        summary = next((s for s in self._summaries if s.name == name), None)
        if summary is not None and not summary.for_this_model:
            answer = QMessageBox.question(
                self._window, "Train again for this model?",
                f"The classifier '{name}' was made for another model ({summary.model_key}). Train it again for "
                f"this model from its {plural(summary.labels, 'label')}?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                self._panel.classifier_bar.set_current(self._active)
                return
            self._labeller.flush()
            self._worker.retrain_classifier(name)
            return
        self._labeller.flush()
        self._worker.activate_classifier(name)

    def _on_listed(self, summaries: list[ClassifierSummary]) -> None:
        self._summaries = list(summaries)
        self._panel.classifier_bar.set_classifiers(self._summaries, self._active)
        if not self._listed_once:  # start-up: bring back the classifier used last time
            self._listed_once = True
            saved = self._prefs.active_classifier()
            if any(s.name == saved and s.for_this_model for s in self._summaries):
                self._worker.activate_classifier(saved)
        self.listed.emit()

    def _on_activated(self, state: ClassifierState) -> None:
        self._active = state.name
        self._labeller.set_classifier(state.name)
        self._model.set_scores(state.categories, state.ids, state.probabilities, labels=state.labels)
        self.dial.set_classifier(state.name, state.calibration)
        self._view.set_show_categories(bool(state.categories))
        self._panel.show_classifier(state.name)
        if state.name:
            self._panel.label_panel.set_classes([c.name for c in state.categories], self._model.label_counts(),
                                                state.accuracy)
            self._panel.label_panel.set_status("")
        self.set_least_sure(bool(state.name) and self._model.least_sure_mode)  # set_scores re-ranked it
        self._prefs.set_active_classifier(state.name)
        self._update_actions()
        self.changed.emit()
        self.applied.emit(state.name)

    def _on_trained(self, trained: ClassifierTrained) -> None:
        if trained.name != self._active:
            return  # the user switched classifiers meanwhile
        self._model.set_scores(self._model.categories, trained.ids, trained.probabilities, keep_positions=True)
        self.dial.set_classifier(trained.name, trained.calibration, keep_positions=True)
        self._panel.label_panel.set_counts(self._model.label_counts(), trained.report.accuracy)
        took = f"{trained.seconds * 1000:.0f} ms" if trained.seconds < 1 else f"{trained.seconds:.1f} s"
        self._panel.label_panel.set_status(f"Learned from {plural(trained.report.labels, 'label')} in {took}.")
        self.changed.emit()
        self.trained.emit(trained)

    def _update_actions(self) -> None:
        for action in (self.rename_action, self.delete_action, self.export_action, self.train_action,
                       self.least_sure_action):
            action.setEnabled(bool(self._active))

    # ---- managing ----------------------------------------------------------------------------
    def new(self, from_categories: bool = False) -> None:
        dialog = NewClassifierDialog([s.name for s in self._summaries], self._panel.text(), self._window)
        if from_categories:
            dialog.use_current_categories()
        dialog.accepted.connect(lambda: self._worker.create_classifier(dialog.name(), dialog.categories()))
        dialog.finished.connect(self._forget_new_dialog)
        self._new_dialog = dialog
        dialog.open()

    def train_from_keywords(self) -> None:
        """Label photos from the keywords digiKam, darktable or Lightroom wrote, and train (the one in use, or new)."""
        self._labeller.flush()
        self.keywords.start(self._active)

    def _forget_new_dialog(self) -> None:
        if self._new_dialog is not None:
            self._new_dialog.deleteLater()
            self._new_dialog = None

    def rename(self) -> None:
        old = self._active
        if not old:
            return
        new, ok = QInputDialog.getText(self._window, "Rename Classifier", f"New name for '{old}':", text=old)
        if ok and new.strip() and new.strip() != old:
            self._labeller.flush()
            self._worker.rename_classifier(old, new.strip())

    def delete(self) -> None:
        name = self._active
        if not name:
            return
        answer = QMessageBox.question(
            self._window, "Delete classifier?",
            f"Delete the classifier '{name}' and its {plural(len(self._model.labels()), 'label')}? "
            "Your photos are not touched.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self._labeller.set_classifier("")
            self._worker.delete_classifier(name)

    def export_file(self) -> None:
        name = self._active
        if not name:
            return
        start = os.path.join(os.path.expanduser("~"), f"{name}{CLASSIFIER_SUFFIX}")
        path, _filter = QFileDialog.getSaveFileName(self._window, "Export Classifier", start, CLASSIFIER_FILE_FILTER)
        if path:
            if not path.endswith(CLASSIFIER_SUFFIX):
                path += CLASSIFIER_SUFFIX
            self._labeller.flush()
            self._worker.export_classifier(name, path)

    def import_file(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self._window, "Import Classifier", os.path.expanduser("~"),
                                                    f"{CLASSIFIER_FILE_FILTER};;All files (*)")
        if path:
            self._labeller.flush()
            self._worker.import_classifier(path)

    def _ask_import_name(self, path: str, taken: str, suggestion: str) -> None:
        """The name in the file is taken: ask for another, as ``photosort classifiers import --name`` needs one."""
        name, ok = QInputDialog.getText(
            self._window, "Import Classifier",
            f"A classifier named '{taken}' already exists. Import this one as:", text=suggestion)
        if ok and name.strip():
            self._worker.import_classifier(path, name.strip())

    # ---- labelling ---------------------------------------------------------------------------
    def selected_photo_ids(self) -> list[int]:
        return [self._model.photo_id(i.row()) for i in self._view.selectionModel().selectedIndexes()]

    def label_selection(self, class_index: int | None, advance: bool = False) -> None:
        """Label the selected photos with this class (None: remove their labels).

        ``advance`` (a number key): one photo labelled, the next is selected, so that
        labelling by keys flows photo after photo, as Lightroom's auto-advance does.
        """
        if not self._active:
            self._message_bar.show_message("To label photos, create a classifier: it learns from your labels.",
                                           "info", ("New Classifier…", self.new))
            return
        if class_index is not None and class_index >= len(self._model.categories):
            return
        ids = self.selected_photo_ids()
        if not ids:
            self._window.statusBar().showMessage("Select photos first, then press a class's number.", 5000)
            return
        self._labeller.label(ids, class_index)
        if advance and len(ids) == 1:
            self._advance()

    def _advance(self) -> None:
        """After labelling one photo, select the next (positions hold still, so it is the next one on screen)."""
        current = self._view.currentIndex()
        below = self._model.index(current.row() + 1) if current.isValid() else QModelIndex()
        if below.isValid():
            self._view.selectionModel().setCurrentIndex(below, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self._view.scrollTo(below)

    def _on_labels_changed(self) -> None:
        self._panel.label_panel.set_counts(self._model.label_counts(), self._panel.label_panel.accuracy)
        self.dial.labels_changed()
        self.changed.emit()

    def counts_changed(self) -> None:
        """Labels of photos only now opened count as well."""
        if self._active:
            self._panel.label_panel.set_counts(self._model.label_counts(), self._panel.label_panel.accuracy)

    def set_least_sure(self, on: bool) -> None:
        """"Label these next": show the photos the classifier is least sure about, least sure first."""
        on = bool(on) and bool(self._active)
        self._model.set_least_sure(on)
        self._panel.label_panel.set_least_sure(on)
        self.least_sure_action.setChecked(on)
        self.changed.emit()
        if on:
            self._view.scrollToTop()

    def add_label_menu(self, menu: QMenu) -> None:
        """The context menu's part: label the selection with any class, remove labels, or start a classifier."""
        if not self._active:
            menu.addAction("&New Classifier to Label Photos…").triggered.connect(self.new)
            return
        label_menu = menu.addMenu("&Label As")
        for k, category in enumerate(self._model.categories):
            action = label_menu.addAction(category.name)
            if k < KEYED_CLASSES:
                action.setShortcut(QKeySequence(str(k + 1)))
            action.triggered.connect(lambda _c=False, index=k: self.label_selection(index))
        remove = menu.addAction("&Remove Label")
        remove.setShortcut(QKeySequence("0"))
        remove.triggered.connect(lambda: self.label_selection(None))

    def reset(self, name: str | None = None) -> None:
        """List the classifiers again (cache cleared, model changed) and sort by ``name`` (None: the one in use)."""
        self._worker.list_classifiers()
        self._worker.activate_classifier(self._active if name is None else name)
