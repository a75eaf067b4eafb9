"""The desktop app: a thin PySide6 layer over :mod:`photosort.core`.

Widgets only paint and forward requests; indexing, scoring and SQLite writes
happen in one worker thread that owns the engine (see :mod:`.worker`), and
thumbnails are decoded in a loader thread (see :mod:`.thumbnail_cache`).
Importing this package must stay cheap: no torch, no model.
"""

from .qt_compat import protect_none_refcount

protect_none_refcount()
