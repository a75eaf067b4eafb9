"""Export sorted folders: choose, preview the plan, run it with progress and cancel, then a summary.

The dialog only collects choices and shows results; the plan and the export
are the engine's (:meth:`Engine.plan_export`, :func:`run_export`), run by the
worker, exactly as ``photosort export`` does. What the preview table shows is
the plan that the Export button carries out, so nothing is written before
the user has seen how many photos go to each folder. Every choice change asks
for a new plan (debounced); a reply to an older request is ignored.

The folder layout (``{category}/{year}``...) is the core's template
(:mod:`photosort.core.export.layout`): it is checked here as it is typed, so a
mistake is said under the field at once (no dialog, no round trip), and the
preview shows where the first few photos would go.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.calibration import unsure_below
from ..core.classifiers import ClassifierSummary
from ..core.export import DEFAULT_LAYOUT, PLACEHOLDERS, ExportPlan, ExportResult, LayoutError, UndoResult, parse_layout
from ..core.export.layout import PRESETS
from ..core.export.results import HOW_LINKS_WORK, sidecar_failures_note, sidecars_note
from ..core.paths import display_path
from ..core.progress import Progress
from ..core.wording import plural
from .classifier_panel import TYPED_CATEGORIES
from .task_runner import Outcome, TaskKind, TaskWatch
from .worker import ExportPreview, ExportRequest, WorkerClient

log = logging.getLogger(__name__)

PREVIEW_DELAY_MS = 150
UNDO_MOVE_ACTION = "Undo a &Move Export…"  # the Edit menu item that opens the Move Exports dialog
MOVE_EXPORTS_MENU = f"Edit ▸ {UNDO_MOVE_ACTION.replace('&', '')}"  # where hints send the user
MODES = {
    "copy": ("&Copy", "Copy", "Copies each photo (verified against the original); your photos stay where they are."),
    "move": ("&Move", "Move", f"Moves each photo; the move can be undone afterwards ({MOVE_EXPORTS_MENU})."),
    "link": ("&Link", "Link", f"Adds links to your photos: {HOW_LINKS_WORK}."),
}
DOING = {"copy": "Copying", "move": "Moving", "link": "Linking"}
MAX_LISTED_PROBLEMS = 200
PREVIEWED_PHOTOS = 3  # photos whose place the layout preview spells out
LAYOUT_HELP = " ".join(f"{{{name}}}" for name in PLACEHOLDERS) + " · / makes a subfolder"
LAYOUT_TIP = ("Where in the destination each photo goes. Placeholders: " + ", ".join(f"{{{n}}}" for n in PLACEHOLDERS)
              + ". Dates are when the photo was taken (EXIF), else when its file was written; a photo whose camera "
              "is not known goes to “Unknown camera”. Text around placeholders is kept; / makes a subfolder.")
ERROR_COLOUR = "#c0392b"


def photos(n: int) -> str:
    return plural(n, "photo")


def describe_plan(plan: ExportPlan) -> str:
    """One line under the preview: how many photos go into how many folders, and how many stay."""
    counts = plan.counts()
    text = f"{photos(sum(counts.values()))} into {len(counts):,} folder{'s' if len(counts) != 1 else ''}"
    if plan.skipped:
        text += f" · {photos(len(plan.skipped))} left where they are"
    return text


def describe_result(mode: str, result: ExportResult, destination: Path, error: str) -> str:
    """The summary a user reads after an export (or finishing a move)."""
    lines = []
    if error:
        lines.append(error)
    folders = len({p.destination.parent for p in result.placed})
    done = result.summary()
    if folders:
        done += f" into {folders:,} folder{'s' if folders != 1 else ''}"
    lines.append(f"{done} in {destination}.")
    if result.cancelled:
        kept = "They stay there; Undo Move puts them back." if mode == "move" else "They are kept."
        lines.append(f"Stopped before the end. {kept}")
    if mode == "copy" and result.done:
        lines.append("Every copy was verified against its original.")
    if result.already:
        lines.append(f"{photos(len(result.already))} already there from an earlier export: not copied again.")
    if result.skipped:
        lines.append(f"{photos(len(result.skipped))} left where they were (unsure or unreadable).")
    if result.failed:
        lines.append(f"{photos(len(result.failed))} could not be exported; see the list below.")
    if result.sidecars_failed:
        lines.append(sidecar_failures_note(result.sidecars_failed))
        lines += [f"  {display_path(path)}: {reason}" for path, reason in result.sidecars_failed[:20]]
    return "\n".join(lines)


def describe_layout_preview(plan: ExportPlan, limit: int = PREVIEWED_PHOTOS) -> str:
    """Where the first few photos go, one per line: ``IMG_0001.JPG → Cats/2019/07/``."""
    lines = [f"{display_path(move.source.name)} → {display_path(move.folder)}/" for move in plan.moves[:limit]]
    if len(plan.moves) > limit:
        lines.append(f"… and {photos(len(plan.moves) - limit)} more")
    return "\n".join(lines)


def describe_folders(result: ExportResult, root: Path | None = None) -> str:
    """Photos placed per folder (its path under ``root``), one line each, as a list under the summary."""
    counts: dict[str, int] = {}
    for placed in result.placed:
        folder = placed.destination.parent
        name = Path(os.path.relpath(folder, root)).as_posix() if root is not None else folder.name
        counts[name] = counts.get(name, 0) + 1
    return "\n".join(f"    {name}: {photos(n)}" for name, n in sorted(counts.items(), key=lambda kv: kv[0].casefold()))


def describe_outcome(outcome: Outcome, mode: str, destination: Path) -> str:
    """The summary of an export, an undo or the finishing of a move, however it ended."""
    error = outcome.failure.message if outcome.failure is not None else ""
    if outcome.result is None:
        return error or "Stopped before any photo was handled."
    if outcome.task.kind is TaskKind.UNDO:
        return "\n".join(filter(None, [error, describe_undo(outcome.result)]))
    return describe_result(mode, outcome.result, destination, error)


def describe_undo(result: UndoResult) -> str:
    lines = [f"Put {photos(result.restored)}{sidecars_note(result.sidecars)} back where they were."]
    if result.sidecars_failed:
        lines.append(f"{plural(len(result.sidecars_failed), 'sidecar file')} could not be put back:")
        lines += [f"  {display_path(path)}: {reason}" for path, reason in result.sidecars_failed[:20]]
    if result.renamed:
        lines.append(f"{photos(len(result.renamed))} got a new name because another file had taken their place.")
    if result.failed:
        lines.append(f"{photos(len(result.failed))} could not be put back; see the list below.")
    if result.cancelled:
        lines.append("Stopped before the end; undo again to put back the rest.")
    return "\n".join(lines)


class ExportDialog(QDialog):
    """Destination, mode, classifier and unsure choice; live preview; progress; summary with Open Folder."""

    movedPhotos = Signal()  # a move (or its undo) changed where photos are
    previewShown = Signal()  # the preview table (or why there is none) shows the latest choices
    summaryShown = Signal()  # an export or undo ended and its summary is on screen

    def __init__(self, client: WorkerClient, heads: list[ClassifierSummary], classifier: str, threshold: float,
                 destination: str = "", parent: QWidget | None = None, target_accuracy: float | None = None,
                 layout: str = DEFAULT_LAYOUT) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Sorted Folders")
        self.setMinimumWidth(560)
        self._client = client
        self._threshold = threshold
        self._target_accuracy = target_accuracy  # the accuracy dial's, where the classifier has an estimate
        self._request = 0
        self._preview: ExportPreview | None = None
        self._state = "choosing"  # choosing, running, undoing, done
        self._mode_running = "copy"
        self._outcome: Outcome | None = None
        self._preview_timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.request_preview)
        self._build(heads, classifier, destination)
        self._build_layout_field(layout)
        client.worker.exportPlanned.connect(self._on_planned)
        self._watch = TaskWatch(client.tasks, self)
        self._watch.progressed.connect(self._on_progress)
        self._watch.ended.connect(self._on_ended)
        self._update_choices()

    # ---- building ------------------------------------------------------------------------
    def _build(self, heads: list[ClassifierSummary], classifier: str, destination: str) -> None:
        layout = QVBoxLayout(self)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_choices(heads, classifier, destination))
        self.pages.addWidget(self._build_progress())
        self.pages.addWidget(self._build_summary())
        layout.addWidget(self.pages, 1)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open Folder")
        self.open_button.clicked.connect(self.open_destination)
        self.undo_button = QPushButton("Undo Move")
        self.undo_button.setToolTip("Put every moved photo back where it was")
        self.undo_button.clicked.connect(self.undo_move)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.undo_button)
        self.open_button.hide()
        self.undo_button.hide()
        buttons.addStretch(1)
        self.close_button = QPushButton("Cancel")
        self.close_button.clicked.connect(self._close_or_cancel)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        buttons.addWidget(self.close_button)
        buttons.addWidget(self.export_button)
        layout.addLayout(buttons)

    def _build_choices(self, heads: list[ClassifierSummary], classifier: str, destination: str) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        row = QHBoxLayout()
        self.destination_edit = QLineEdit(destination)
        self.destination_edit.setPlaceholderText("The folder to fill with one folder per category")
        self.destination_edit.textChanged.connect(self._schedule_preview)
        row.addWidget(self.destination_edit, 1)
        self.browse_button = QPushButton("Choose…")
        self.browse_button.clicked.connect(self.choose_destination)
        row.addWidget(self.browse_button)
        form.addRow("Destination:", row)
        self._form = form

        self.classifier_combo = QComboBox()
        self.classifier_combo.addItem(TYPED_CATEGORIES, "")
        for head in heads:
            if head.for_this_model:
                self.classifier_combo.addItem(head.name, head.name)
        self.classifier_combo.setCurrentIndex(max(0, self.classifier_combo.findData(classifier)))
        self.classifier_combo.currentIndexChanged.connect(self._schedule_preview)
        form.addRow("Classifier:", self.classifier_combo)

        self.mode_group = QButtonGroup(self)
        modes = QHBoxLayout()
        self.mode_buttons: dict[str, QRadioButton] = {}
        for key, (text, _verb, _help) in MODES.items():
            button = QRadioButton(text)
            self.mode_group.addButton(button)
            self.mode_buttons[key] = button
            modes.addWidget(button)
        modes.addStretch(1)
        self.mode_buttons["copy"].setChecked(True)
        for button in self.mode_buttons.values():
            button.toggled.connect(self._update_choices)
        form.addRow("Photos:", modes)
        self.mode_help = QLabel()
        self.mode_help.setWordWrap(True)
        form.addRow("", self.mode_help)

        self.unsure_group = QButtonGroup(self)
        self.unsure_folder = QRadioButton("Put them in an “Unsure” folder")
        self.unsure_skip = QRadioButton("Leave them where they are")
        self.unsure_group.addButton(self.unsure_folder)
        self.unsure_group.addButton(self.unsure_skip)
        self.unsure_folder.setChecked(True)
        self.unsure_folder.toggled.connect(self._schedule_preview)
        unsure = QVBoxLayout()
        unsure.addWidget(self.unsure_folder)
        unsure.addWidget(self.unsure_skip)
        self.unsure_rule_label = QLabel(f"Unsure ({unsure_below(None, self._threshold)}):")
        self.unsure_rule_label.setToolTip("Which photos are unsure: the window's dial, in accuracy where the "
                                          "classifier has an estimate from its labels")
        form.addRow(self.unsure_rule_label, unsure)
        self.include_rejected_check = QCheckBox("Include photos rejected as duplicates")
        self.include_rejected_check.setToolTip("Photos you rejected in View ▸ Duplicates are left where they are "
                                               "unless this is checked")
        self.include_rejected_check.toggled.connect(self._schedule_preview)
        form.addRow("Rejected:", self.include_rejected_check)
        layout.addLayout(form)

        self.preview_title = QLabel("Preview: nothing is written until you press the button below.")
        self.preview_title.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(self.preview_title)
        self.preview_table = QTableWidget(0, 2)
        self.preview_table.setHorizontalHeaderLabels(["Folder", "Photos"])
        self.preview_table.verticalHeader().hide()
        self.preview_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.preview_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.preview_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.preview_table.setMinimumHeight(170)
        layout.addWidget(self.preview_table, 1)
        self.preview_label = QLabel()
        self.preview_label.setWordWrap(True)
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.preview_label.setMinimumHeight(2 * self.preview_label.fontMetrics().lineSpacing())
        layout.addWidget(self.preview_label)
        return page

    def _build_layout_field(self, template: str) -> None:
        """The folder layout: an editable combo of presets, its help, its error and where the first photos go."""
        self.layout_combo = QComboBox()
        self.layout_combo.setEditable(True)
        self.layout_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.layout_combo.setCompleter(None)  # a preset's name must not complete what is typed
        for name, preset in PRESETS:
            self.layout_combo.addItem(name, preset)
            self.layout_combo.setItemData(self.layout_combo.count() - 1, preset, Qt.ItemDataRole.ToolTipRole)
        self.layout_combo.setCurrentIndex(max(0, self.layout_combo.findData(template)))
        self.layout_combo.setEditText(template)
        self.layout_combo.setToolTip(LAYOUT_TIP)
        self.layout_combo.activated.connect(self._on_preset_chosen)
        self.layout_combo.editTextChanged.connect(self._schedule_preview)
        self.layout_error = QLabel()
        self.layout_error.setWordWrap(True)
        self.layout_error.setStyleSheet(f"color: {ERROR_COLOUR};")
        self.layout_error.hide()
        self.layout_help = QLabel(LAYOUT_HELP)
        self.layout_help.setWordWrap(True)
        self.layout_help.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.layout_preview = QLabel()
        self.layout_preview.setTextFormat(Qt.TextFormat.PlainText)
        self.layout_preview.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Room for the lines the plan fills in, from the start: the buttons below must not move as it arrives.
        self.layout_preview.setMinimumHeight((PREVIEWED_PHOTOS + 1) * self.layout_preview.fontMetrics().lineSpacing())
        self.layout_preview.setToolTip("Where the first photos of the plan go, under the destination")
        field = QWidget()  # a widget, not a bare layout: its wrapped labels then get the height they need
        box = QVBoxLayout(field)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        for widget in (self.layout_combo, self.layout_error, self.layout_help, self.layout_preview):
            box.addWidget(widget)
        self._form.insertRow(1, "Folders:", field)

    def _show_page(self, index: int) -> None:
        """Show the choices, the progress or the summary, with the dialog only as tall as that page needs: a short
        summary is a short dialog (the hidden pages' sizes no longer count)."""
        for i in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if i == index else QSizePolicy.Policy.Ignored
            self.pages.widget(i).setSizePolicy(policy, policy)
        self.pages.setCurrentIndex(index)
        self.layout().activate()
        self.resize(self.width(), self.sizeHint().height())

    def _fit_height(self) -> None:
        """Grow the dialog when wrapped text under the layout field (an error, the first photos) needs more room:
        a window does not grow for word-wrapped labels by itself, and would squeeze them into each other."""
        outer = self.layout()
        outer.activate()
        needed = outer.totalSizeHint().height()  # the form's height-for-width alone falls a line short
        if outer.hasHeightForWidth():
            needed = max(needed, outer.totalHeightForWidth(self.width()))
        if self.isVisible() and needed > self.height():
            self.resize(self.width(), needed)

    def _on_preset_chosen(self, index: int) -> None:
        """A preset's name is shown in the list; its template is what goes in the field."""
        template = self.layout_combo.itemData(index)
        if template:
            self.layout_combo.setEditText(str(template))

    def layout_template(self) -> str:
        """The folder layout as typed (checked with :meth:`layout_problem`)."""
        return self.layout_combo.currentText().strip() or DEFAULT_LAYOUT

    def layout_problem(self) -> str:
        """Why the typed layout cannot be used ("" when it can)."""
        try:
            parse_layout(self.layout_template())
        except LayoutError as exc:
            return str(exc)
        return ""

    def _build_progress(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        self.progress_label = QLabel()
        layout.addWidget(self.progress_label)
        self.progress_bar = QProgressBar()
        layout.addWidget(self.progress_bar)
        layout.addStretch(1)
        return page

    def _build_summary(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        self.summary_title = QLabel()
        font = self.summary_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.summary_title.setFont(font)
        layout.addWidget(self.summary_title)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary_label)
        self.folders_label = QLabel()
        self.folders_label.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.folders_label)
        self.problems_view = QPlainTextEdit()
        self.problems_view.setReadOnly(True)
        layout.addWidget(self.problems_view, 1)
        layout.addStretch(1)
        return page

    # ---- choices -------------------------------------------------------------------------
    def mode(self) -> str:
        return next((k for k, b in self.mode_buttons.items() if b.isChecked()), "copy")

    def set_mode(self, mode: str) -> None:
        self.mode_buttons[mode].setChecked(True)

    def choice(self) -> ExportRequest:
        return ExportRequest(os.path.expanduser(self.destination_edit.text().strip()), self.mode(),
                             str(self.classifier_combo.currentData() or ""),
                             "folder" if self.unsure_folder.isChecked() else "skip", self._threshold,
                             self._target_accuracy, self.layout_template(),
                             include_rejected=self.include_rejected_check.isChecked())

    def choose_destination(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into this folder",
                                                  self.destination_edit.text() or os.path.expanduser("~"))
        if folder:
            self.destination_edit.setText(folder)

    def _update_choices(self) -> None:
        self.mode_help.setText(MODES[self.mode()][2])
        self._schedule_preview()

    def _schedule_preview(self) -> None:
        self._preview = None
        self._request = -1  # a plan already on its way answers the old choices: ignore it
        self.export_button.setEnabled(False)
        self._preview_timer.start()

    def request_preview(self) -> None:
        """Ask the worker for the plan of the current choices (nothing is written)."""
        self._preview_timer.stop()
        choice = self.choice()
        problem = self.layout_problem()
        self.layout_error.setText(problem)
        self.layout_error.setVisible(bool(problem))
        self.layout_preview.clear()
        self._fit_height()
        if problem:
            self._show_preview_message("Fix the folder layout to see the plan.")
            return
        if not choice.destination:
            self._show_preview_message("Choose a destination folder to see the plan.")
            return
        self.preview_label.setText("Planning…")
        self._request = self._client.preview_export(choice)

    # ---- worker messages ---------------------------------------------------------------------
    def _on_planned(self, preview: ExportPreview) -> None:
        if preview.request != self._request or self._state != "choosing":
            return
        self._preview = preview
        if preview.unsure_rule:
            self.unsure_rule_label.setText(f"Unsure ({preview.unsure_rule}):")
        if preview.plan is None:
            self._show_preview_message(preview.error)
            return
        plan = preview.plan
        counts = plan.counts()
        self.preview_table.setRowCount(len(counts))
        for row, (folder, count) in enumerate(sorted(counts.items(), key=lambda kv: kv[0].casefold())):
            name = QTableWidgetItem(folder)
            name.setToolTip(str(plan.destination / folder))
            number = QTableWidgetItem(f"{count:,}")
            number.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.preview_table.setItem(row, 0, name)
            self.preview_table.setItem(row, 1, number)
        self.preview_label.setText(describe_plan(plan))
        self.layout_preview.setText(describe_layout_preview(plan))
        self._fit_height()
        self.preview_label.setToolTip("\n".join(f"{p.name}: {why}" for p, why in plan.skipped[:20]))
        total = len(plan.moves)
        self.export_button.setText(f"{MODES[plan.mode][1]} {photos(total)}")
        self.export_button.setEnabled(total > 0)
        self.previewShown.emit()

    def _show_preview_message(self, text: str) -> None:
        self.preview_table.setRowCount(0)
        self.preview_label.setText(text)
        self.export_button.setText("Export")
        self.export_button.setEnabled(False)
        self.previewShown.emit()

    def plan(self) -> ExportPlan | None:
        """The plan on screen, which Export carries out (None while choices change or when there is none)."""
        return self._preview.plan if self._preview is not None else None

    def preview_counts(self) -> dict[str, int]:
        """The preview as shown (folder -> photos), for tests and screen readers alike."""
        return {self.preview_table.item(r, 0).text(): int(self.preview_table.item(r, 1).text().replace(",", ""))
                for r in range(self.preview_table.rowCount())}

    # ---- running ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._state in ("running", "undoing")

    @property
    def running_mode(self) -> str:
        return self._mode_running

    def start_export(self) -> None:
        """Carry out the previewed plan."""
        if self._preview is None or self._preview.plan is None or self._state != "choosing":
            return
        self._mode_running = self._preview.plan.mode
        self._state = "running"
        total = len(self._preview.plan.moves)
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(0)
        self.progress_label.setText(f"{DOING[self._mode_running]} {photos(total)}…")
        self._show_running()
        self._watch.follow(self._client.run_export(self._preview.request))

    def cancel(self) -> None:
        """Stop after the photo being written; everything done so far is kept (and a move stays undoable)."""
        if self.running:
            self._watch.cancel()
            self.progress_label.setText("Stopping after this photo…")
            self.close_button.setEnabled(False)

    def _show_running(self) -> None:
        self._show_page(1)
        self.export_button.hide()
        self.open_button.hide()
        self.undo_button.hide()
        self.close_button.setText("Cancel")
        self.close_button.setEnabled(True)

    def _on_progress(self, progress: Progress) -> None:
        if not self.running:
            return
        done, total = progress.done, progress.total
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        if self.close_button.isEnabled():
            verb = "Putting back" if self._state == "undoing" else DOING[self._mode_running]
            self.progress_label.setText(f"{verb} {done:,} of {photos(total)}…")

    def _on_ended(self, outcome: Outcome) -> None:
        undoing, self._state = self._state == "undoing", "done"
        if undoing:
            self._on_undone(outcome)
            return
        self._outcome = outcome
        text = describe_outcome(outcome, self._mode_running, self.destination())
        if outcome.result is None:
            self._show_summary("Nothing was exported", text, [])
            return
        stopped = outcome.failure is not None or outcome.cancelled
        self._show_summary("Export stopped" if stopped else "Export finished", text, outcome.result.failed,
                           describe_folders(outcome.result, self.destination()))
        self.open_button.show()
        moved = self._mode_running == "move" and outcome.result.journal is not None and outcome.result.done > 0
        self.undo_button.setVisible(moved)
        if moved:
            self.movedPhotos.emit()

    def undo_move(self) -> None:
        """Put the photos of this move back (from its journal)."""
        if self._outcome is None or self._outcome.result is None or self._outcome.result.journal is None:
            return
        self._state = "undoing"
        self.progress_bar.setRange(0, 0)
        self.progress_label.setText("Putting the photos back…")
        self._show_running()
        self._watch.follow(self._client.undo_move(str(self._outcome.result.journal)))

    def _on_undone(self, outcome: Outcome) -> None:
        text = describe_outcome(outcome, "move", self.destination())
        title = "Move undone" if outcome.failure is None and not outcome.cancelled else "Undo stopped"
        self._show_summary(title, text, outcome.result.failed if outcome.result is not None else [])
        self.movedPhotos.emit()

    def _show_summary(self, title: str, text: str, problems: list[tuple[Path, str]], folders: str = "") -> None:
        self._show_page(2)
        self.summary_title.setText(title)
        self.summary_label.setText(text)
        self.folders_label.setText(folders)
        self.folders_label.setVisible(bool(folders))
        listed = [f"{path}: {why}" for path, why in problems[:MAX_LISTED_PROBLEMS]]
        if len(problems) > MAX_LISTED_PROBLEMS:
            listed.append(f"… and {len(problems) - MAX_LISTED_PROBLEMS:,} more (see the log)")
        self.problems_view.setPlainText("\n".join(listed))
        self.problems_view.setVisible(bool(problems))
        self.pages.widget(2).layout().setStretch(4, 0 if problems else 1)
        self.export_button.hide()
        self.undo_button.hide()
        self.close_button.setText("Close")
        self.close_button.setEnabled(True)
        self.summaryShown.emit()

    def summary_text(self) -> str:
        return self.summary_label.text()

    def destination(self) -> Path:
        """Where the export that ran (or is previewed) puts the photos."""
        plan = self._preview.plan if self._preview is not None else None
        return plan.destination if plan is not None else Path(self.destination_edit.text())

    def open_destination(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.destination())))

    # ---- closing --------------------------------------------------------------------------------
    def _close_or_cancel(self) -> None:
        if self.running:
            self.cancel()
        else:
            self.reject()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.running:
            self.cancel()
            event.accept()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running:  # the window's close button: stop after this photo, stay open until stopped
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)
