"""Settings shared by the CLI and the window: one source, resolved in one order.

A flag wins over the environment (``PHOTOSORT_MODEL``, ``PHOTOSORT_DEVICE``,
``PHOTOSORT_PRECISION``, ``PHOTOSORT_DATA_DIR``), which wins over the choices
saved in Settings (``settings.json`` in the data folder, written by the window
or by ``photosort settings``), which win over the defaults. So the model the
user picked in the window is the model ``photosort index`` uses, and a flag
still changes it for one run.

The data folder (platformdirs' per-user app-data folder unless
``--data-dir``/``PHOTOSORT_DATA_DIR`` says otherwise) holds:

- ``library.db``: the user's own data (classifiers, labels, category sets);
  never cleared or rebuilt by photosort;
- ``cache.db``: derived data (embeddings, thumbnails, unreadable-photo records),
  which can be cleared at any time and is rebuilt by indexing;
- ``settings.json``: the saved choices above; ``journals/``: move exports that
  can be undone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import StoreError, os_error

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
DEVICES = ("auto", "cpu", "cuda", "mps")
MODES = ("auto", "fp32", "fast")
CACHE_DB = "cache.db"
LIBRARY_DB = "library.db"
LEGACY_DB = "photosort.db"  # before user data and derived data were kept apart (photosort 0.1)
SETTINGS_FILE = "settings.json"
SETTINGS_VERSION = 1
SAVED_KEYS = ("model", "device", "precision")


def default_data_dir() -> Path:
    """The per-user app-data folder (e.g. ``~/.local/share/photosort`` on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("photosort", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """What every command needs to know: which model, where it runs, where the data folder is.

    ``mode`` picks the CPU precision: ``auto`` (bf16 where the CPU has native
    bf16, else fp32; fp16 on CUDA), ``fp32`` (strict reference) or ``fast``
    (bf16 + compile, or int8 where bf16 is not native; opt-in). Embeddings made
    in ``fast`` mode are kept apart in the cache.
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    data_dir: Path | None = None
    mode: str = "auto"

    @property
    def folder(self) -> Path:
        return self.data_dir or default_data_dir()

    @property
    def cache_path(self) -> Path:
        return self.folder / CACHE_DB

    @property
    def library_path(self) -> Path:
        return self.folder / LIBRARY_DB

    @property
    def journal_dir(self) -> Path:
        """Where move journals live until the user clears them (user data: they are how a move is undone)."""
        return self.folder / "journals"

    @classmethod
    def resolve(
        cls,
        model: str | None = None,
        device: str | None = None,
        data_dir: str | Path | None = None,
        mode: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        """Flags, else the environment, else the saved choices, else the defaults."""
        env = os.environ if environ is None else environ
        folder = data_dir or env.get("PHOTOSORT_DATA_DIR") or env.get("PHOTOSORT_CACHE_DIR") or None
        folder_path = Path(folder).expanduser() if folder else None
        saved = read_saved_choices(folder_path or default_data_dir())
        return cls(
            model=model or env.get("PHOTOSORT_MODEL") or saved.get("model") or DEFAULT_MODEL,
            device=(device or env.get("PHOTOSORT_DEVICE") or saved.get("device") or "auto").lower(),
            data_dir=folder_path,
            mode=(mode or env.get("PHOTOSORT_PRECISION") or saved.get("precision") or "auto").lower(),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def read_saved_choices(folder: Path) -> dict[str, str]:
    """The model/device/precision saved in ``folder/settings.json`` (only valid ones); {} when none."""
    path = folder / SETTINGS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the unreadable settings file %s: %s", path, exc)
        return {}
    if not isinstance(document, dict):
        return {}
    if _version(document) > SETTINGS_VERSION:
        log.info("%s was written by a newer photosort; reading the settings this one knows", path)
    out = {k: document[k].strip() for k in SAVED_KEYS if isinstance(document.get(k), str) and document[k].strip()}
    if out.get("device", "auto").lower() not in DEVICES:
        out.pop("device")
    if out.get("precision", "auto").lower() not in MODES:
        out.pop("precision")
    return out


def _version(document: dict) -> int:
    """The settings file's version; 0 when it has none or it is not a number (a broken file, not a newer one)."""
    try:
        return int(document.get("version", 0) or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def save_choices(folder: Path, model: str, device: str, precision: str) -> Path:
    """Save the model/device/precision for the window and the CLI alike (written whole, never half)."""
    path = folder / SETTINGS_FILE
    try:
        current = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    if not isinstance(current, dict):
        current = {}
    if _version(current) > SETTINGS_VERSION:
        raise StoreError(f"{path} was written by a newer photosort; update photosort to change its settings.")
    current.update({"version": SETTINGS_VERSION, "model": model, "device": device, "precision": precision})
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".settings.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(current, handle, indent=1)
            handle.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:  # a full disk or a folder in the way: leave no half-written file behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise os_error(exc, "save the settings", path) from None
    return path
