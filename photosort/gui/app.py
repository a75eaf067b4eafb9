"""Application start-up: QApplication, theme, logging, the error hook, and the main window.

The window must appear fast, so nothing here imports torch or loads the
model: the worker thread does that after the window is shown. Unexpected
exceptions (in any thread) are logged to ``photosort.log`` next to the cache
and shown in a dialog in the GUI thread, never only as a console traceback.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox, QStyleFactory

from ..core.config import Settings
from ..core.errors import PhotosortError
from ..core.indexer import PipelineOptions
from .main_window import MainWindow
from .preferences import APPLICATION, ORGANISATION, Preferences, forced_theme
from .resources import app_icon

log = logging.getLogger(__name__)

LOG_NAME = "photosort.log"


def run_app(settings: Settings, folder: str | None) -> int:
    """Open the main window (and ``folder`` in it, when given); returns the exit code."""
    started = time.perf_counter()
    app = create_application()
    log_path = configure_logging(settings.folder)
    reporter = install_excepthook(log_path)
    # Leave the window a core of its own where there are more than two (plan_threads decides).
    window = MainWindow(settings, options=PipelineOptions(reserve_cores=1))
    window.show()
    QTimer.singleShot(0, lambda: log.info("window shown %.0f ms after start-up began",
                                          (time.perf_counter() - started) * 1000))
    if folder:
        QTimer.singleShot(0, lambda: window.open_folders([folder]))
    _close_on_ctrl_c(window)
    code = app.exec()
    reporter.deleteLater()
    return code


def create_application() -> QApplication:
    """The QApplication with our names (used by QSettings), icon and theme (the saved one, or PHOTOSORT_THEME's)."""
    QApplication.setOrganizationName(ORGANISATION)
    QApplication.setApplicationName(APPLICATION)
    QGuiApplication.setDesktopFileName("photosort")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(app_icon())
    remember_system_look(app)
    apply_theme(app, start_theme(Preferences()))
    return app  # type: ignore[return-value]


def start_theme(preferences: Preferences) -> str:
    """The theme for this run: ``PHOTOSORT_THEME`` when it names one (it wins for the run), else the saved choice."""
    forced = forced_theme()
    return forced if forced else preferences.theme()


_system_look: tuple[str, QPalette] | None = None  # the style name and palette Qt chose before we changed them


def remember_system_look(app: QApplication) -> tuple[str, QPalette]:
    """The style name and palette the desktop gave us, kept the first time, so "System" can go back to them.

    Call it before any theme is applied. The palette kept has no colour set by
    us, so setting it again also makes Qt follow the desktop's light/dark changes again.
    """
    global _system_look
    if _system_look is None:
        _system_look = (app.style().name(), QPalette(app.palette()))
    return _system_look


def apply_theme(app: QApplication, theme: str) -> None:
    """Use ``theme`` from now on: "light" or "dark" (Fusion with our palette), else the system's look.

    Qt already follows the system's light/dark setting on Windows, macOS and
    GNOME/KDE; Light and Dark are for desktops that do not tell Qt, and for
    people who want the other one. Safe to call at any time: open windows repaint.
    """
    style, palette = remember_system_look(app)
    theme = theme.strip().lower()
    if theme in ("dark", "light"):
        fusion = QStyleFactory.create("Fusion")
        if fusion is not None:
            app.setStyle(fusion)
        app.setPalette(dark_palette() if theme == "dark" else app.style().standardPalette())
        return
    if app.style().name().lower() != style.lower():
        app.setStyle(style)
    app.setPalette(palette)


def dark_palette() -> QPalette:
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2b2b2e", QPalette.ColorRole.WindowText: "#e8e8ea",
        QPalette.ColorRole.Base: "#1f1f22", QPalette.ColorRole.AlternateBase: "#2a2a2e",
        QPalette.ColorRole.Text: "#e8e8ea", QPalette.ColorRole.Button: "#38383c",
        QPalette.ColorRole.ButtonText: "#e8e8ea", QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#3b82f6", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#9a9aa0", QPalette.ColorRole.ToolTipBase: "#38383c",
        QPalette.ColorRole.ToolTipText: "#e8e8ea", QPalette.ColorRole.Link: "#6ea8ff",
        QPalette.ColorRole.Light: "#505055", QPalette.ColorRole.Midlight: "#404045",
        QPalette.ColorRole.Mid: "#5a5a60", QPalette.ColorRole.Dark: "#19191b", QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#77777c"))
    return palette


def configure_logging(folder: Path) -> Path | None:
    """Log INFO and above from photosort to a small rotating file; the console keeps its level."""
    root = logging.getLogger()
    for handler in root.handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(root.level)  # so our INFO records do not reach the console
    ours = logging.getLogger("photosort")
    ours.setLevel(logging.INFO)
    path = folder / LOG_NAME
    if any(isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path for h in ours.handlers):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        log.warning("cannot write the log file %s: %s", path, exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    ours.addHandler(handler)
    return path


class ErrorReporter(QObject):
    """Shows unexpected errors in a dialog, from whichever thread they happen in."""

    report = Signal(str, str)  # title, message

    def __init__(self, log_path: Path | None) -> None:
        super().__init__()
        self.log_path = log_path
        self.shown: list[QMessageBox] = []
        self.report.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def handle(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, PhotosortError):
            log.warning("%s", exc)
            self.report.emit("photosort", str(exc))
            return
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
        where = f" The details were written to {self.log_path}." if self.log_path else ""
        self.report.emit("Something went wrong",
                         f"{exc_type.__name__}: {exc}\n\nphotosort keeps running; if something looks wrong, "
                         f"restart it.{where}")

    @Slot(str, str)
    def _show(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                          QApplication.activeWindow())
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r, b=box: self.shown.remove(b) if b in self.shown else None)
        self.shown.append(box)
        box.open()


def install_excepthook(log_path: Path | None) -> ErrorReporter:
    """Route uncaught exceptions (GUI thread and other threads) to a dialog and the log."""
    reporter = ErrorReporter(log_path)
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        reporter.handle(exc_type, exc, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            hook(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook
    return reporter


def _close_on_ctrl_c(window: MainWindow) -> None:
    """Ctrl-C in the terminal closes the window cleanly (Python sees signals only between Qt events)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window, interval=300)
    timer.timeout.connect(lambda: None)
    timer.start()
