"""``photosort bench``: measuring photosort on this machine, kept out of the engine.

The engine (:mod:`photosort.core`) does the work; this package only times it
and compares it with the tutorial pipeline. It may import the engine, never
the window (no Qt). Modules:

* :mod:`.measure`: the indexing benchmark per device and precision mode;
* :mod:`.naive`: the tutorial pipeline, the reference for speed-up and fidelity;
* :mod:`.formats`: the rate per photo format and each fast path's fidelity (:mod:`.fidelity`), on photos
  written per format (:mod:`.format_photos`, :mod:`.dng`);
* :mod:`.scale`: ``--scale N``, the app's everyday work with N cached photos;
* :mod:`.photos`: camera-like JPEGs to measure on when no folder is given;
* :mod:`.report`: the records of a run, the table and the JSON document.
"""

from __future__ import annotations

import argparse
import logging
import sys

from photosort.core.config import Settings
from photosort.core.errors import Cancelled
from photosort.core.progress import CancelToken

from .measure import CPU_MODES, QUICK_MODES, machine_info, run_bench
from .report import BenchReport, print_report, progress_printer
from .scale import run_scale

log = logging.getLogger(__name__)

__all__ = ["run_cli"]

EXIT_CANCELLED = 130  # what a shell reports for Ctrl-C


def run_cli(args: argparse.Namespace, settings: Settings, cancel: CancelToken | None) -> int:
    """``photosort bench [FOLDER] [--count N] [--quick] [--precision MODE] [--no-formats] [--scale N] [--json]``.

    Prints the table (or, with ``--json``, one JSON document) on stdout and
    progress on stderr; returns the exit status.
    """
    say = progress_printer(args.json)
    try:
        if getattr(args, "scale", None):
            scale = run_scale(settings.model, int(args.scale), args.folder, say)
            report = BenchReport(machine_info(), {}, [], scale)
        else:
            report = run_bench(settings, args.folder, count=args.count, quick=args.quick,
                               devices=_devices(settings.device), modes=_modes(args),
                               formats=not getattr(args, "no_formats", False), say=say, cancel=cancel)
    except Cancelled:
        print("photosort: benchmark cancelled.", file=sys.stderr)
        return EXIT_CANCELLED
    print_report(report, args.json)
    return 0


def _devices(requested: str) -> list[str]:
    """``auto`` measures every device this machine has; any other choice only that one."""
    if requested != "auto":
        return [requested]
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _modes(args: argparse.Namespace) -> tuple[str, ...]:
    """``--precision`` measures one mode; otherwise all of them (``--quick``: the two that need no compiler)."""
    if getattr(args, "precision", None):
        return (args.precision,)
    return QUICK_MODES if args.quick else CPU_MODES
