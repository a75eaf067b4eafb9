"""``photosort duplicates`` and ``photosort trash-rejected``: near-duplicates and bursts on the command line.

The rules are the core's (:mod:`photosort.core.duplicates`, :mod:`photosort.core.keeper`,
:mod:`photosort.core.rejects`); this module parses, asks and prints. It is part
of :mod:`photosort.cli` (which registers these commands and maps their errors
like every other's), kept apart because it is one feature.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .core.duplicates import DEFAULT_SENSITIVITY, DuplicateGroup, GroupKind, check_sensitivity
from .core.errors import UsageError
from .core.paths import display_path, printable
from .core.progress import CancelToken
from .core.rejects import Decision
from .core.wording import plural

EXIT_OK, EXIT_CANCELLED = 0, 130


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The two commands' arguments (called by :func:`photosort.cli.build_parser`)."""
    p = sub.add_parser("duplicates", parents=[common], help="find near-duplicates and bursts, each with a suggested "
                       "photo to keep and why")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p.add_argument("--sensitivity", type=float, default=DEFAULT_SENSITIVITY,
                   help=f"0 to 1: higher finds more, lower only the most certain (default {DEFAULT_SENSITIVITY})")
    p.add_argument("--bursts", action=argparse.BooleanOptionalAction, default=True,
                   help="also group shots taken within a few seconds by one camera (default: yes)")
    p.add_argument("--reject-others", action="store_true",
                   help="record every photo that is not its group's keeper as rejected (left out of exports; "
                   "photosort trash-rejected moves them to the trash); safe to repeat")

    p = sub.add_parser("trash-rejected", parents=[common],
                       help="move the photos you rejected as duplicates to the system's trash")
    p.add_argument("folders", nargs="+", metavar="FOLDER")
    p.add_argument("--yes", action="store_true", help="do not ask first")


def open_folders(engine, args: argparse.Namespace, cancel: CancelToken):
    """The library of every FOLDER, each brought up to date first; None when the user cancelled."""
    from .cli import index_quietly

    for folder in args.folders:
        report = index_quietly(engine, argparse.Namespace(**{**vars(args), "folder": folder}), cancel)
        if report.cancelled:
            return None
    return engine.open_library(args.folders)


def cmd_duplicates(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from .cli import ProgressBar, emit
    from .core.duplicates import reject_others, review

    check_sensitivity(args.sensitivity)  # said before any indexing
    library = open_folders(engine, args, cancel)
    if library is None:
        return EXIT_CANCELLED
    with ProgressBar(not args.json) as bar:
        groups = review(library, args.sensitivity, bursts=args.bursts, progress=bar, cancel=cancel)
    newly = reject_others(library, groups) if args.reject_others else 0
    if args.reject_others:
        groups = _with_rejections(library, groups)
    document = {"groups": [g.to_json() for g in groups]}
    if args.reject_others:
        document["newly_rejected"] = newly
    emit(args, document, lambda: print(describe_groups(groups, newly if args.reject_others else None)))
    return EXIT_OK


def _with_rejections(library, groups: Sequence[DuplicateGroup]) -> list[DuplicateGroup]:
    """The groups with the decisions just recorded (no measuring again)."""
    from dataclasses import replace

    from .core.rejects import decisions

    decided = decisions(library)
    return [replace(g, photos=tuple(replace(p, decision=decided.get(p.id)) for p in g.photos)) for g in groups]


def describe_groups(groups: Sequence[DuplicateGroup], newly_rejected: int | None) -> str:
    if not groups:
        return "No near-duplicates or bursts found."
    lines = []
    for g in groups:
        kind = "Duplicates" if g.kind == GroupKind.DUPLICATE else "Burst"
        lines.append(f"{kind} ({plural(len(g.photos), 'photo')}): keep {_name(g.keep_path)} — {printable(g.reason)}")
        for p in g.photos:
            mark = "keep" if p.id == g.keep else ("rejected" if p.decision == Decision.REJECT else "")
            lines.append(f"  {mark:8} {display_path(p.path)}")
    duplicates = sum(g.kind == GroupKind.DUPLICATE for g in groups)
    others = sum(len(g.others()) for g in groups if g.keep is not None)
    summary = (f"{plural(len(groups), 'group')}: {duplicates} of near-duplicates, {len(groups) - duplicates} "
               f"{'burst' if len(groups) - duplicates == 1 else 'bursts'}; {plural(others, 'photo')} besides the keepers.")
    lines.append(summary)
    if newly_rejected is None:
        lines.append("Run again with --reject-others to reject them (they leave exports; nothing is deleted).")
    else:
        lines.append(f"Rejected {plural(newly_rejected, 'more photo')}; photosort trash-rejected FOLDER moves the "
                     "rejected photos to the trash.")
    return "\n".join(lines)


def _name(path: str | None) -> str:
    return "none" if path is None else display_path(path)


def cmd_trash_rejected(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from .cli import ProgressBar, emit
    from .core.rejects import rejected, trash_rejected

    library = open_folders(engine, args, cancel)
    if library is None:
        return EXIT_CANCELLED
    todo = rejected(library)
    if not todo:
        emit(args, {"trashed": [], "refused": [], "failed": [], "cancelled": False},
             lambda: print("No rejected photos here (photosort duplicates FOLDER --reject-others rejects some)."))
        return EXIT_OK
    if not args.yes and not _confirmed(len(todo)):
        print("Nothing was moved.", file=sys.stderr)
        return EXIT_OK
    with ProgressBar(not args.json) as bar:
        report = trash_rejected(library, progress=bar, cancel=cancel)

    def human() -> None:
        print(f"Moved {plural(len(report.trashed), 'rejected photo')} to the trash (the trash can put them back).")
        for path, reason in report.refused:
            print(f"  kept {display_path(path)}: {printable(reason)}")
        for path, reason in report.failed:
            print(f"  could not move {display_path(path)}: {printable(reason)}")
        if report.cancelled:
            print("Cancelled: the rest are still rejected; run again to move them.")

    emit(args, report.to_json(), human)
    return EXIT_CANCELLED if report.cancelled else EXIT_OK


def _confirmed(count: int) -> bool:
    """Ask on a terminal; a run that cannot ask refuses instead of guessing."""
    if not sys.stdin.isatty():
        raise UsageError(f"Not moving {plural(count, 'rejected photo')} to the trash without asking: add --yes "
                         "(this run cannot ask).")
    sys.stderr.write(f"Move {plural(count, 'rejected photo')} to the trash? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
