"""The one exception hierarchy of the engine.

Every error a user can meet is a :class:`PhotosortError` whose message says
what went wrong *and* what to do about it, in one line, so the CLI can print
it as is and the GUI can show it in a dialog. Cancelling is not an error: it
is :class:`Cancelled`, which deliberately does not derive from
:class:`PhotosortError`.
"""

from __future__ import annotations


class PhotosortError(Exception):
    """A failure the user can act on; ``str(error)`` is the one-line message."""


class FolderError(PhotosortError):
    """A folder or file given by the user cannot be used."""


class ModelLoadError(PhotosortError):
    """The CLIP model cannot be loaded (offline, wrong id, broken folder)."""


class CacheError(PhotosortError):
    """The cache database cannot be opened or written."""


class LabelsError(PhotosortError):
    """A labels CSV is malformed or refers to photos outside the folder."""


class HeadError(PhotosortError):
    """A classifier head is missing, invalid, or made for another model."""


class ExportError(PhotosortError):
    """An export could not be planned or carried out safely."""


class Cancelled(Exception):
    """The user asked long work to stop; what was finished is kept."""
