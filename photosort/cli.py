"""The ``photosort`` command line: the same engine as the app, for scripting.

Every command takes ``--model``, ``--device``, ``--cache-dir`` (or the
``PHOTOSORT_*`` environment variables) and ``--json``. Errors print one line
and exit non-zero; Ctrl-C stops after the current batch and keeps what was done.
Paths are printed through :func:`~photosort.core.paths.display_path` (a name
that is not UTF-8 reads ``caf\\xe9.jpg``); ``--json`` keeps them exact (see :func:`json_text`).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .cli_duplicates import add_parsers as add_duplicate_parsers
from .cli_duplicates import cmd_duplicates, cmd_trash_rejected
from .core.classifiers import describe_import
from .core.config import DEVICES, MODES, Settings
from .core.errors import Cancelled, Face, UsageError, user_message
from .core.export.results import HOW_LINKS_WORK
from .core.paths import display_path, printable
from .core.progress import CancelToken, Progress
from .core.sorting import DEFAULT_THRESHOLD
from .core.wording import byte_size, plural

log = logging.getLogger("photosort")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
SHOWN_SKIPPED = 5  # skipped photos named in a one-line summary; --json lists them all


# ---- argument parsing ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="Hugging Face model id or local model folder (env PHOTOSORT_MODEL)")
    common.add_argument("--device", choices=DEVICES, help="where the model runs (env PHOTOSORT_DEVICE; default auto)")
    common.add_argument("--precision", choices=MODES, help="CPU precision: auto (bf16 where the CPU has it, "
                        "else fp32), fp32 (strict), or fast (compiled; int8 where bf16 is not native) "
                        "(env PHOTOSORT_PRECISION)")
    common.add_argument("--data-dir", "--cache-dir", dest="data_dir",
                        help="photosort's data folder: library.db, cache.db, settings (env PHOTOSORT_DATA_DIR)")
    common.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens to stderr")

    parser = argparse.ArgumentParser(prog="photosort", description="Sort your photos into folders with CLIP.")
    parser.add_argument("--version", action="version", version=f"photosort {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", parents=[common], help="embed every photo of a folder (only what changed)")
    p.add_argument("folder")
    p.add_argument("--max-pixels", type=float, help="refuse photos larger than this many megapixels (default 100)")

    p = sub.add_parser("sort", parents=[common], help="sort photos by typed categories or a trained classifier")
    p.add_argument("folder")
    _add_classifier_args(p)
    p.add_argument("--list", action="store_true", help="print every photo with its category")

    p = sub.add_parser("train", parents=[common], help="train a classifier from a labels CSV (path,label) or from "
                       "the keywords a photo manager wrote")
    p.add_argument("folder")
    p.add_argument("--classifier", "--head", dest="classifier", required=True, help="name of the classifier")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--labels", help="CSV with rows path,label (paths absolute or relative to FOLDER)")
    source.add_argument("--from-keywords", action="append", metavar="PATTERN",
                        help='label photos from their keywords (XMP sidecars, embedded XMP, IPTC): "trip/*" labels '
                        "a photo tagged trip/italy (or trip|italy) 'italy'; repeat for more patterns")

    p = sub.add_parser("classifiers", aliases=["heads"],
                       help="list, rename, delete, export or import trained classifiers")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="the classifiers with their classes, labels and accuracy")
    a = actions.add_parser("rename", parents=[common], help="rename a classifier (it keeps its labels)")
    a.add_argument("old")
    a.add_argument("new")
    a = actions.add_parser("delete", parents=[common], help="delete a classifier and its labels (not the photos)")
    a.add_argument("name")
    a = actions.add_parser("export", parents=[common], help="write a classifier to a file, to use on another computer")
    a.add_argument("name")
    a.add_argument("file")
    a.add_argument("--force", action="store_true", help="replace FILE if it exists")
    a = actions.add_parser("import", parents=[common], help="add a classifier from a file made by 'classifiers export'")
    a.add_argument("file")
    a.add_argument("--name", help="the name to give it (default: the name in the file)")

    p = sub.add_parser("search", parents=[common], help="find photos by text, or photos like a given one")
    p.add_argument("folder")
    p.add_argument("query", nargs="?", help="what to look for, e.g. \"kids playing in snow\"")
    p.add_argument("--like", help="a photo to find similar ones to")
    p.add_argument("--limit", type=int, default=20)

    p = sub.add_parser("export", parents=[common], help="write the sorted photos into one folder per category")
    p.add_argument("folder")
    p.add_argument("destination")
    _add_classifier_args(p)
    p.add_argument("--mode", dest="op", choices=("copy", "move", "link"), default="copy",
                   help=f"copy (default), move (undoable), or link: {HOW_LINKS_WORK}; the originals stay put")
    p.add_argument("--unsure", choices=("folder", "skip"), default="folder",
                   help="put unsure photos in an 'Unsure' folder (default) or leave them out")
    p.add_argument("--layout", default="{category}", metavar="TEMPLATE",
                   help="the folders to make, e.g. \"{category}/{year}/{month}\" (default {category}); placeholders: "
                        "{category} {year} {month} {day} (capture date, else file date) {camera} {original_folder}")
    p.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")
    p.add_argument("--include-rejected", action="store_true",
                   help="also export photos rejected as duplicates (left out by default)")

    p = sub.add_parser("tag", parents=[common], help="write the sort result as keywords into XMP sidecars "
                       "(digiKam, darktable, Lightroom); --undo puts them back")
    p.add_argument("folder", nargs="?")
    _add_classifier_args(p, required=False)
    p.add_argument("--into", metavar="DIR", help="write the sidecars into DIR, in folders mirroring the photos' "
                   "(default: beside the photos)")
    p.add_argument("--dry-run", action="store_true", help="print what would be written, per photo, and write nothing")
    p.add_argument("--undo", action="store_true", help="put back the sidecars of the last tagging as they were")

    add_duplicate_parsers(sub, common)

    p = sub.add_parser("undo", parents=[common], help="undo the last export that moved photos")
    p.add_argument("journal", nargs="?", help="the journal of the move (default: the latest)")

    p = sub.add_parser("bench", parents=[common], help="measure indexing speed on this machine")
    p.add_argument("folder", nargs="?", help="photos to measure on (default: generated camera-like photos)")
    p.add_argument("--count", type=int, default=64, help="photos to generate, or to take from FOLDER (default 64)")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (for CI)")
    p.add_argument("--no-formats", action="store_true", help="skip the rate per photo format (JPEG, HEIC, RAW, PNG)")
    p.add_argument("--scale", type=int, metavar="N", help="instead, time the app's work on a cache of N photos "
                   "(thumbnails made from FOLDER's photos, or generated ones)")

    p = sub.add_parser("settings", parents=[common], help="show the model, device and precision in use, or save "
                       "the ones given (the window's Settings use the same file)")
    p.add_argument("--save", action="store_true", help="save --model/--device/--precision for the CLI and the window")

    p = sub.add_parser("gui", parents=[common], help="open the desktop app (the default)")
    p.add_argument("folder", nargs="?")
    return parser


def _add_classifier_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--categories", help='typed categories, e.g. "beach, mountains, pets=a photo of a cat or a dog"')
    group.add_argument("--classifier", "--head", dest="classifier", help="name of a trained classifier")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                      help=f"below this confidence a photo is unsure (default {DEFAULT_THRESHOLD}); a photo you "
                      "labelled always goes where its label says")
    rule.add_argument("--target-accuracy", type=float, metavar="A",
                      help="with --classifier: file a photo automatically only where the classifier's labels "
                      "show it at least this likely right (e.g. 0.95; thresholds per class, estimated from the "
                      "labels); the rest are unsure")


# ---- output helpers --------------------------------------------------------------------------
class ProgressBar:
    """A one-line progress bar with rate and ETA on stderr, drawn only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._shown = False

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        if p.phase == "scanning":
            line = "Scanning folder…"
        elif p.phase == "downloading":  # the model, once: bytes
            width = 28
            filled = int(width * p.fraction)
            eta = f"ETA {_duration(p.eta_s)}" if p.eta_s is not None and p.done < p.total else ""
            rate = f"{byte_size(p.rate)}/s" if p.rate else ""
            line = (f"Download  {byte_size(p.done):>8} of {byte_size(p.total):<8} ▕{'█' * filled}{'░' * (width - filled)}▏ "
                    f"{rate} {eta}")
        else:
            width = 28
            filled = int(width * p.fraction)
            eta = f"ETA {_duration(p.eta_s)}" if p.eta_s is not None else ""
            rate = f"{p.rate:5.1f} photos/s" if p.rate else ""
            line = f"{p.phase.capitalize():9} {p.done:>7}/{p.total:<7} ▕{'█' * filled}{'░' * (width - filled)}▏ {rate} {eta}"
        sys.stderr.write("\r" + line.ljust(100)[:100])
        sys.stderr.flush()
        self._shown = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()
            self._shown = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def warn(text: str) -> None:
    """A warning that does not stop the command: one line on stderr (with --json too), the exit code unchanged."""
    print(f"photosort: warning: {printable(text)}", file=sys.stderr)


def emit(args: argparse.Namespace, document: dict, human: Callable[[], None]) -> None:
    if args.json:
        sys.stdout.write(json_text(document) + "\n")
    else:
        human()


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(document: dict) -> str:
    """The ``--json`` document as valid JSON text, paths exact.

    A name that is not UTF-8 keeps each undecodable byte as the lone surrogate
    escape Python gives it (``caf\\xe9.jpg`` is ``"caf\\udce9.jpg"``):
    ``os.fsencode(json.loads(text)[...])`` is the file's exact name. Where
    stdout is not UTF-8, every non-ASCII character is escaped.
    """
    utf8 = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "") == "utf8"
    text = json.dumps(document, ensure_ascii=not utf8, indent=1)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def printing_never_fails() -> None:
    """What a terminal cannot show is written as an escape instead of ending the command with a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def install_ctrl_c(cancel: CancelToken) -> None:
    """Ctrl-C cancels: long work stops after the current batch and keeps what it finished; twice aborts."""

    def handler(signum: int, frame: object) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()
        sys.stderr.write("\nStopping after the current batch… (Ctrl-C again to abort)\n")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


TEXT_ARGUMENTS = {"categories": "--categories", "query": "the search text", "classifier": "--classifier",
                  "old": "the classifier's name", "new": "the new name", "name": "the name"}  # words, not paths


def check_text_arguments(args: argparse.Namespace) -> None:
    """Categories, queries and names are text: bytes that are not UTF-8 there are refused in one line.

    (Paths may hold any bytes; a category typed in a terminal set to another encoding cannot be a prompt.)
    """
    for name, what in TEXT_ARGUMENTS.items():
        value = getattr(args, name, None)
        if isinstance(value, str) and _LONE_SURROGATE.search(value):
            raise UsageError(f"{what} '{printable(value)}' is not UTF-8 text: set the terminal to UTF-8 "
                             "(LANG=en_US.UTF-8, for example) and type it again.")


# ---- commands --------------------------------------------------------------------------------
def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.resolve(args.model, args.device, args.data_dir, args.precision)


def make_engine(args: argparse.Namespace):
    from .core.engine import Engine
    from .core.indexer import PipelineOptions

    options = PipelineOptions()
    if getattr(args, "max_pixels", None):
        options = PipelineOptions(max_pixels=int(args.max_pixels * 1_000_000))
    return Engine(settings_from(args), options)


def index_quietly(engine, args: argparse.Namespace, cancel: CancelToken):
    """Bring the index up to date before answering; prints a bar only while there is work."""
    with ProgressBar(not args.json) as bar:
        report = engine.index(args.folder, progress=bar, cancel=cancel)
    for notice in engine.notices():
        print(f"photosort: {printable(notice)}", file=sys.stderr)
    return report


def open_indexed(engine, args: argparse.Namespace, cancel: CancelToken):
    """The library of FOLDER, brought up to date first; None when the user cancelled."""
    report = index_quietly(engine, args, cancel)
    if report.cancelled:
        return None
    return engine.open_library([args.folder])


def cmd_index(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    report = index_quietly(engine, args, cancel)

    def human() -> None:
        print(report.summary())
        for path, error in report.failed[:20]:
            print(f"  unreadable: {display_path(path)}: {printable(error)}")
        if len(report.failed) > 20:
            print(f"  … and {len(report.failed) - 20} more (use --json for all)")
        if report.cancelled:
            print("Cancelled: the photos indexed so far are kept; run again to finish.")

    emit(args, report.to_json(), human)
    return EXIT_CANCELLED if report.cancelled else EXIT_OK


def sorting_from(args: argparse.Namespace):
    """The sorting the arguments ask for; typed categories are checked here, before any indexing."""
    from .core.library import Sorting
    from .core.zeroshot import checked_categories

    if args.classifier is not None:
        return Sorting.by_classifier(args.classifier)
    return Sorting.by_categories(checked_categories(args.categories))


def check_target_accuracy(args: argparse.Namespace) -> None:
    """--target-accuracy is in (0, 1) and goes with --classifier: said before any indexing."""
    from .core.calibration import TARGET_NEEDS_CLASSIFIER, check_target

    if args.target_accuracy is not None:
        check_target(args.target_accuracy)
        if args.classifier is None:
            raise UsageError(TARGET_NEEDS_CLASSIFIER)


def sort_indexed(args: argparse.Namespace, engine, cancel: CancelToken, check: Callable[[], object] | None = None):
    """The folder indexed and sorted as the arguments say: (library, SortResult), or None when cancelled.

    ``check`` validates other arguments after the sorting ones and before any indexing (a usage error costs nothing).
    """
    sorting = sorting_from(args)
    check_target_accuracy(args)
    if check is not None:
        check()
    library = open_indexed(engine, args, cancel)
    if library is None:
        return None
    result = library.sort(sorting, args.threshold, args.target_accuracy)
    warn_about(sorting)
    return library, result


def warn_about(sorting) -> None:
    """Said once the photos are sorted (a usage error said later would otherwise follow a warning)."""
    from .core.zeroshot import category_warnings

    for warning in category_warnings(sorting.categories):
        warn(warning)


def cmd_sort(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    if (sorted_ := sort_indexed(args, engine, cancel)) is None:
        return EXIT_CANCELLED
    _, result = sorted_

    def human() -> None:
        for name, count in result.counts().items():
            print(f"{count:>7}  {name if name is not None else 'Unsure'}")
        if result.filing is not None:
            print(result.filing.describe())
        if args.list:
            for i, path in enumerate(result.photos.paths):
                print(f"{result.category_of(i) or 'Unsure'}\t{result.decision.score[i]:.2f}\t{display_path(path)}")

    emit(args, result.to_json(), human)
    return EXIT_OK


def cmd_train(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    library = open_indexed(engine, args, cancel)
    if library is None:
        return EXIT_CANCELLED
    if args.from_keywords:
        return train_from_keywords(args, library, cancel)
    trained = library.train_from_csv(args.classifier, args.labels)
    emit(args, trained.to_json(), lambda: print_trained(trained))
    return EXIT_OK


def train_from_keywords(args: argparse.Namespace, library, cancel: CancelToken) -> int:
    from .core.keywords import train_from_keywords as train

    with ProgressBar(not args.json) as bar:
        done = train(library, args.classifier, args.from_keywords, progress=bar, cancel=cancel)

    def human() -> None:
        print(done.found.describe())
        print_trained(done.trained)

    emit(args, done.to_json(), human)
    return EXIT_OK


def print_trained(trained) -> None:
    """What training made: labels per class, the accuracy, what needs more labels."""
    acc = "not enough labels yet for an accuracy estimate" if trained.accuracy is None else \
        f"cross-validated accuracy {trained.accuracy:.0%}"
    print(f"Trained '{trained.classifier}' on {plural(trained.labels, 'label')} ({acc}).")
    for name, count in trained.per_class.items():
        print(f"{count:>7}  {name}" + ("   (few labels: add more)" if name in trained.few_labels else ""))
    if trained.missing:
        shown = ", ".join(display_path(p) for p in trained.missing[:SHOWN_SKIPPED])
        more = f" and {len(trained.missing) - SHOWN_SKIPPED} more" if len(trained.missing) > SHOWN_SKIPPED else ""
        print(f"Skipped {plural(len(trained.missing), 'labelled photo')} not indexed in this folder: {shown}{more}.")


def cmd_classifiers(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    """Manage classifiers; every action is quick and needs no photos (import needs only the model's identity)."""
    classifiers = engine.classifiers
    if args.action == "list":
        summaries = classifiers.summaries()
        emit(args, {"classifiers": [c.to_json() for c in summaries]}, lambda: _print_classifiers(summaries))
    elif args.action == "rename":
        new = classifiers.rename(args.old, args.new)
        emit(args, {"renamed": args.old, "to": new}, lambda: print(f"Renamed '{args.old}' to '{new}'."))
    elif args.action == "delete":
        classifiers.delete(args.name)
        emit(args, {"deleted": args.name}, lambda: print(f"Deleted the classifier '{args.name}' and its labels."))
    elif args.action == "export":
        path = classifiers.export_file(args.name, args.file, overwrite=args.force)
        emit(args, {"classifier": args.name, "file": str(path)}, lambda: print(f"Wrote '{args.name}' to {display_path(path)}."))
    else:
        imported = classifiers.import_file(args.file, args.name)
        emit(args, {"classifier": imported.name, "classes": imported.classes, "file": args.file},
             lambda: print(describe_import(imported)))
    return EXIT_OK


def _print_classifiers(summaries: list) -> None:
    if not summaries:
        print("No classifiers yet; train one with: photosort train FOLDER --classifier NAME --labels CSV")
    for c in summaries:
        accuracy = "accuracy not known yet" if c.accuracy is None else f"cross-validated accuracy {c.accuracy:.0%}"
        other = "" if c.for_this_model else f" (made for {c.model_key}; it is trained again when used here)"
        print(f"{c.name}: {', '.join(c.classes)} — {plural(c.labels, 'label')}, {accuracy}{other}")


def cmd_search(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    if not args.query and not args.like:
        raise UsageError("Say what to search for: a text query, or --like PHOTO.")
    if args.query and args.like:
        raise UsageError("Give either a text query or --like PHOTO, not both.")
    if args.limit <= 0:
        raise UsageError("--limit must be at least 1.")
    library = open_indexed(engine, args, cancel)
    if library is None:
        return EXIT_CANCELLED
    results = library.search_like(args.like, args.limit) if args.like else library.search_text(args.query, args.limit)

    def human() -> None:
        for path, score in results:
            print(f"{score:6.3f}  {display_path(path)}")

    emit(args, {"results": [{"path": p, "score": round(s, 4)} for p, s in results]}, human)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from .core.export import ExportStopped, parse_layout

    # A mistyped layout template is said before any indexing.
    if (sorted_ := sort_indexed(args, engine, cancel, check=lambda: parse_layout(args.layout))) is None:
        return EXIT_CANCELLED
    library, result = sorted_
    plan = library.plan_export(result, args.destination, mode=args.op, unsure=args.unsure, layout=args.layout,
                               include_rejected=args.include_rejected)
    filing = {} if result.filing is None else {"auto_filing": result.filing.to_json(result.classes)}
    if result.filing is not None and not args.json:
        print(result.filing.describe())
    if args.dry_run:
        emit(args, {**plan_to_json(plan), **filing}, lambda: print(describe_plan(plan)))
        return EXIT_OK
    bar = ProgressBar(not args.json)
    try:
        done = engine.run_export(plan, cancel=cancel, progress=bar)
    except ExportStopped as stopped:
        bar.close()
        emit(args, {**stopped.result.to_json(), "error": str(stopped)}, lambda: None)
        raise
    finally:
        bar.close()
    emit(args, {**done.to_json(), **filing}, lambda: print(describe_result(done, plan)))
    return EXIT_CANCELLED if done.cancelled else EXIT_OK


def plan_to_json(plan) -> dict:
    return {
        "destination": str(plan.destination),
        "mode": plan.mode,
        "dry_run": True,
        "layout": plan.layout,
        "folders": plan.counts(),
        "moves": [{"source": str(m.source), "destination": str(m.destination), "sidecars": [str(s) for s in m.sidecars]}
                  for m in plan.moves],
        "skipped": [{"path": str(p), "reason": r} for p, r in plan.skipped],
    }


def describe_plan(plan) -> str:
    from .core.export import DEFAULT_LAYOUT, describe_tree

    verb = {"copy": "copy", "move": "move", "link": "link"}[plan.mode]
    layout = f" as {plan.layout}" if plan.layout != DEFAULT_LAYOUT else ""
    from .core.export.results import sidecars_note

    lines = [f"Would {verb} {plural(len(plan.moves), 'photo')}{sidecars_note(plan.sidecar_count())} into "
             f"{display_path(plan.destination)}{layout}:"]
    lines += [printable(line) for line in describe_tree(plan.counts())]
    if plan.skipped:
        lines.append(f"{len(plan.skipped):>7}  skipped (unreadable, unsure, rejected or already in place)")
    lines.append("Nothing was written (dry run).")
    return "\n".join(lines)


def describe_result(result, plan) -> str:
    from .core.export.results import sidecar_failures_note

    already = f"; {plural(len(result.already), 'photo')} already there" if result.already else ""
    lines = [f"{result.summary()} into {display_path(plan.destination)}{already}."]
    if result.failed:
        lines.append(f"{len(result.failed)} could not be exported:")
        lines += [f"  {display_path(path)}: {printable(reason)}" for path, reason in result.failed[:20]]
    if result.sidecars_failed:
        lines.append(sidecar_failures_note(result.sidecars_failed))
        lines += [f"  {display_path(path)}: {printable(reason)}" for path, reason in result.sidecars_failed[:20]]
    if result.skipped:
        lines.append(f"{len(result.skipped)} skipped (unreadable, unsure, rejected or already in place).")
    if result.cancelled:
        undo_hint = " and can be undone with: photosort undo" if plan.mode == "move" else "."
        lines.append("Cancelled: what was done is kept" + undo_hint)
    elif plan.mode == "move":
        lines.append("Changed your mind? photosort undo puts every photo back.")
    return "\n".join(lines)


def cmd_tag(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    """Keywords into XMP sidecars (or, with --undo, the sidecars as they were)."""
    from .core import tagging

    if args.undo:
        return undo_tagging(args, engine, cancel)
    if args.folder is None:
        raise UsageError("Give the folder of the photos to tag, e.g. photosort tag ~/Pictures --classifier trips.")
    if args.classifier is None and args.categories is None:
        raise UsageError("Say how to sort the photos: --classifier NAME or --categories \"beach, forest\".")
    if (sorted_ := sort_indexed(args, engine, cancel)) is None:
        return EXIT_CANCELLED
    library, result = sorted_
    if result.filing is not None and not args.json:
        print(result.filing.describe())
    bar = ProgressBar(not args.json)
    try:
        plan = tagging.plan_tagging(result, library.roots, args.into, progress=bar, cancel=cancel)
        if args.dry_run:
            bar.close()
            emit(args, plan.to_json(), lambda: print(plan.describe()))
            return EXIT_OK
        done = tagging.run_tagging(plan, engine.settings.journal_dir, progress=bar, cancel=cancel)
    finally:
        bar.close()
    emit(args, {**done.to_json(), "into": plan.into}, lambda: print(done.describe()))
    return EXIT_CANCELLED if done.cancelled else EXIT_OK


def undo_tagging(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from .core import tagging
    from .core.scan import resolve_root

    if args.classifier is not None or args.categories is not None or args.into or args.dry_run:
        raise UsageError("--undo puts back the last tagging as it was: give it no --classifier, --categories, "
                         "--into or --dry-run.")
    folder = resolve_root(args.folder) if args.folder else None
    journal = tagging.latest_tag_journal(engine.settings.journal_dir, folder)
    with ProgressBar(not args.json) as bar:
        result = tagging.undo_tagging(journal, progress=bar, cancel=cancel)
    emit(args, result.to_json(), lambda: print(result.describe()))
    return EXIT_CANCELLED if result.cancelled else EXIT_OK


def cmd_undo(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from .core.errors import ExportError
    from .core.export import pending_journals

    journal = Path(args.journal) if args.journal else None
    if journal is None:
        pending = pending_journals(engine.settings.journal_dir)
        if not pending:
            raise ExportError("There is no export that moved photos to undo.")
        journal = pending[-1]
    with ProgressBar(not args.json) as bar:
        result = engine.undo_move(journal, cancel=cancel, progress=bar)

    def human() -> None:
        from .core.export.results import sidecars_note

        print(f"Put {plural(result.restored, 'photo')}{sidecars_note(result.sidecars)} back where they were.")
        for original, instead in result.renamed:
            print(f"  {display_path(original)} was taken by another file; restored as {display_path(instead)}")
        for path, reason in [*result.failed, *result.sidecars_failed]:
            print(f"  could not restore {display_path(path)}: {printable(reason)}")

    emit(args, result.to_json(), human)
    return EXIT_OK


def cmd_settings(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from .core.config import save_choices

    settings = engine.settings
    saved = None
    if args.save:
        saved = save_choices(settings.folder, settings.model, settings.device, settings.mode)
    document = {"model": settings.model, "device": settings.device, "precision": settings.mode,
                "data_folder": str(settings.folder), "library": str(settings.library_path),
                "cache": str(settings.cache_path), "saved_to": str(saved) if saved else None}

    def human() -> None:
        print(f"model      {settings.model}\ndevice     {settings.device}\nprecision  {settings.mode}")
        print(f"data       {display_path(settings.folder)}  (library.db: your classifiers and labels; cache.db: can be cleared)")
        if saved:
            print(f"Saved to {display_path(saved)}; the window and every command use these from now on.")

    emit(args, document, human)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace, engine, cancel: CancelToken) -> int:
    from . import bench

    return bench.run_cli(args, engine.settings, cancel)


def cmd_gui(args: argparse.Namespace) -> int:
    from .gui.app import run_app

    return run_app(settings_from(args), getattr(args, "folder", None))


COMMANDS = {
    "index": cmd_index, "sort": cmd_sort, "train": cmd_train, "classifiers": cmd_classifiers, "heads": cmd_classifiers,
    "duplicates": cmd_duplicates, "trash-rejected": cmd_trash_rejected,
    "search": cmd_search, "export": cmd_export, "tag": cmd_tag, "undo": cmd_undo, "settings": cmd_settings, "bench": cmd_bench,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv or ["gui"])
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        for noisy in ("huggingface_hub", "transformers", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.command == "gui":
        return cmd_gui(args)
    printing_never_fails()
    cancel = CancelToken()
    install_ctrl_c(cancel)
    engine = None
    try:
        check_text_arguments(args)
        engine = make_engine(args)
        return COMMANDS[args.command](args, engine, cancel)
    except (Cancelled, KeyboardInterrupt):
        print("photosort: cancelled; finished work is kept.", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:  # every failure reaches the user as one line (the one mapping, in core.errors)
        message = user_message(exc, Face.CLI)
        print(f"photosort: error: {message.text}", file=sys.stderr)
        if not message.expected:
            log.info("the details of this failure", exc_info=exc)
            print("photosort: run again with -v for the details.", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    finally:
        if engine is not None:
            engine.close()


def run() -> None:
    """Console-script entry point."""
    started = time.monotonic()
    code = main()
    log.debug("done in %.2fs", time.monotonic() - started)
    sys.exit(code)


if __name__ == "__main__":
    run()
