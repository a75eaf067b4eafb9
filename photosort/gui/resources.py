"""Finding the app's icons, whether running from a checkout or an installed package.

In the repository the icons live in the top-level ``resources/`` folder next
to the ``photosort/`` package. An installed package may carry them inside the
package (``photosort/resources``) or as shared data
(``<prefix>/share/photosort/resources``). We look in that order and take the
first folder that holds the app icon, so every layout works without
configuration; a missing folder degrades to Qt's standard icons.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QStyle

log = logging.getLogger(__name__)

APP_ICON = "photosort.svg"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../photosort


def candidate_dirs() -> list[Path]:
    """Where the resources may be, most specific first."""
    return [
        _PACKAGE_DIR / "resources",
        _PACKAGE_DIR.parent / "resources",
        Path(sys.prefix) / "share" / "photosort" / "resources",
    ]


@functools.cache
def resources_dir() -> Path | None:
    for folder in candidate_dirs():
        if (folder / APP_ICON).is_file():
            return folder
    log.warning("icon folder not found (looked in %s); using standard icons", ", ".join(map(str, candidate_dirs())))
    return None


def resource_path(name: str) -> Path | None:
    folder = resources_dir()
    path = folder / name if folder else None
    return path if path is not None and path.is_file() else None


def app_icon() -> QIcon:
    """The app icon, rendered crisply at every size from the SVG."""
    path = resource_path(APP_ICON)
    if path is None:
        return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_DirIcon)
    return QIcon(str(path))


def tinted_svg_pixmap(name: str, size: int, color: QColor, device_pixel_ratio: float = 1.0) -> QPixmap:
    """An SVG line drawing rendered in ``color`` (its grey strokes recoloured), sharp on high-DPI screens.

    Lets an illustration follow the light/dark palette instead of shipping two files.
    """
    pixels = max(1, round(size * device_pixel_ratio))
    pixmap = QPixmap(QSize(pixels, pixels))
    pixmap.fill(Qt.GlobalColor.transparent)
    path = resource_path(name)
    if path is not None:
        svg = path.read_text(encoding="utf-8").replace("#808080", color.name())
        renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
        painter = QPainter(pixmap)
        renderer.render(painter)
        painter.end()
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    return pixmap
