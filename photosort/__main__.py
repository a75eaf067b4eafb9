"""``python -m photosort`` runs the command line (and the app, with no command)."""

from .cli import run

run()
