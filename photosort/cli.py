"""The ``photosort`` command line: the same engine as the app, for scripting.

Every command takes ``--model``, ``--device``, ``--cache-dir`` (or the
``PHOTOSORT_*`` environment variables) and ``--json``. Errors print one line
and exit non-zero; Ctrl-C stops after the current batch and keeps what was done.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__
from .core.config import DEVICES, MODES, Settings
from .core.errors import PhotosortError
from .core.progress import Progress

log = logging.getLogger("photosort")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


# ---- argument parsing ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="Hugging Face model id or local model folder (env PHOTOSORT_MODEL)")
    common.add_argument("--device", choices=DEVICES, help="where the model runs (env PHOTOSORT_DEVICE; default auto)")
    common.add_argument("--precision", choices=MODES, help="CPU precision: auto (bf16 where the CPU has it, "
                        "else fp32), fp32 (strict), or fast (int8) (env PHOTOSORT_PRECISION)")
    common.add_argument("--cache-dir", help="folder of the cache database (env PHOTOSORT_CACHE_DIR)")
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

    p = sub.add_parser("train", parents=[common], help="train a classifier (head) from a labels CSV (path,label)")
    p.add_argument("folder")
    p.add_argument("--head", required=True, help="name of the classifier")
    p.add_argument("--labels", required=True, help="CSV with rows path,label (paths absolute or relative to FOLDER)")

    p = sub.add_parser("heads", help="list, rename, delete, export or import trained classifiers")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="the classifiers with their classes, labels and accuracy")
    a = actions.add_parser("rename", parents=[common], help="rename a classifier (it keeps its labels)")
    a.add_argument("old")
    a.add_argument("new")
    a = actions.add_parser("delete", parents=[common], help="delete a classifier and its labels (not the photos)")
    a.add_argument("name")
    a = actions.add_parser("export", parents=[common], help="write a classifier to a file, to use on another machine")
    a.add_argument("name")
    a.add_argument("file")
    a.add_argument("--force", action="store_true", help="replace FILE if it exists")
    a = actions.add_parser("import", parents=[common], help="add a classifier from a file made by 'heads export'")
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
                   help="copy (default), move (undoable), or link")
    p.add_argument("--unsure", choices=("folder", "skip"), default="folder",
                   help="put unsure photos in an 'Unsure' folder (default) or leave them out")
    p.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")

    p = sub.add_parser("undo", parents=[common], help="undo the last export that moved photos")
    p.add_argument("journal", nargs="?", help="the journal of the move (default: the latest)")

    p = sub.add_parser("bench", parents=[common], help="measure indexing speed on this machine")
    p.add_argument("folder", nargs="?", help="photos to measure on (default: generated camera-like photos)")
    p.add_argument("--count", type=int, default=64, help="photos to generate, or to take from FOLDER (default 64)")
    p.add_argument("--quick", action="store_true", help="a tiny smoke run (for CI)")
    p.add_argument("--scale", type=int, metavar="N", help="instead, time the app's work on a cache of N photos "
                   "(thumbnails made from FOLDER's photos, or generated ones)")

    p = sub.add_parser("gui", parents=[common], help="open the desktop app (the default)")
    p.add_argument("folder", nargs="?")
    return parser


def _add_classifier_args(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--categories", help='typed categories, e.g. "beach, mountains, pets=a photo of a cat or a dog"')
    group.add_argument("--head", help="name of a trained classifier")
    p.add_argument("--threshold", type=float, help="below this confidence a photo is unsure "
                   "(default 0.5 for categories, 0 for a classifier)")


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
        else:
            width = 28
            filled = int(width * p.fraction)
            eta = f"ETA {_duration(p.eta_s)}" if p.eta_s is not None else ""
            rate = f"{p.rate:5.1f} photos/s" if p.rate else ""
            line = f"{p.phase.capitalize():9} {p.done:>7}/{p.total:<7} ▕{'█' * filled}{'░' * (width - filled)}▏ {rate} {eta}"
        sys.stderr.write("\r" + line.ljust(100)[:100])
        sys.stderr.flush()
        self._shown = True

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


def emit(args: argparse.Namespace, document: dict, human: Callable[[], None]) -> None:
    if args.json:
        json.dump(document, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        human()


class CancelFlag:
    """Ctrl-C sets the flag; long work stops after the current batch and keeps what it finished."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        def handler(signum: int, frame: object) -> None:
            if self.event.is_set():
                raise KeyboardInterrupt
            self.event.set()
            sys.stderr.write("\nStopping after the current batch… (Ctrl-C again to abort)\n")

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


# ---- commands --------------------------------------------------------------------------------
def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.resolve(args.model, args.device, args.cache_dir, args.precision)


def make_engine(args: argparse.Namespace):
    from .core.engine import Engine
    from .core.indexer import PipelineOptions

    options = PipelineOptions()
    if getattr(args, "max_pixels", None):
        options = PipelineOptions(max_pixels=int(args.max_pixels * 1_000_000))
    return Engine(settings_from(args), options)


def index_quietly(engine, args: argparse.Namespace, cancel: CancelFlag):
    """Bring the index up to date before answering; prints a bar only while there is work."""
    bar = ProgressBar(not args.json)
    try:
        report = engine.index(args.folder, progress=bar, cancel=cancel)
    finally:
        bar.close()
    for notice in engine.notices():
        print(f"photosort: {notice}", file=sys.stderr)
    return report


def cmd_index(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    report = index_quietly(engine, args, cancel)

    def human() -> None:
        print(f"{report.folder}: {report.total} photos — {report.indexed} indexed, {report.unchanged} unchanged, "
              f"{len(report.failed)} could not be read" + (f", {report.removed} removed" if report.removed else "")
              + (f" ({report.rate:.1f} photos/s)" if report.indexed else ""))
        for path, error in report.failed[:20]:
            print(f"  unreadable: {path}: {error}")
        if len(report.failed) > 20:
            print(f"  … and {len(report.failed) - 20} more (use --json for all)")
        if report.cancelled:
            print("Cancelled: the photos indexed so far are kept; run again to finish.")

    emit(args, report.to_json(), human)
    return EXIT_CANCELLED if report.cancelled else EXIT_OK


def _sort(args: argparse.Namespace, engine):
    from .core.zeroshot import DEFAULT_THRESHOLD, parse_categories

    if args.categories is not None:
        threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
        return engine.sort_by_categories(args.folder, parse_categories(args.categories), threshold)
    return engine.sort_by_head(args.folder, args.head, args.threshold or 0.0)


def cmd_sort(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    report = index_quietly(engine, args, cancel)
    if report.cancelled:
        return EXIT_CANCELLED
    result = _sort(args, engine)

    def human() -> None:
        for name, count in result.counts().items():
            print(f"{count:>7}  {name if name is not None else 'Unsure'}")
        if args.list:
            for i, path in enumerate(result.embeddings.paths):
                print(f"{result.category_of(i) or 'Unsure'}\t{result.assignment.score[i]:.2f}\t{path}")

    emit(args, result.to_json(), human)
    return EXIT_OK


def cmd_train(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    report = index_quietly(engine, args, cancel)
    if report.cancelled:
        return EXIT_CANCELLED
    trained = engine.train_from_csv(args.folder, args.head, args.labels)

    def human() -> None:
        acc = "not enough labels yet for an accuracy estimate" if trained.accuracy is None else \
            f"cross-validated accuracy {trained.accuracy:.0%}"
        print(f"Trained '{trained.head}' on {trained.labels} labels ({acc}).")
        for name, count in trained.per_class.items():
            print(f"{count:>7}  {name}" + ("   (few labels: add more)" if count < 3 else ""))
        if trained.missing:
            print(f"{len(trained.missing)} labelled paths are not indexed photos of this folder (skipped).")

    emit(args, trained.to_json(), human)
    return EXIT_OK


def cmd_heads(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    """Manage classifiers; every action is quick and needs no photos (import needs only the model's identity)."""
    if args.action == "list":
        heads = engine.head_summaries()
        emit(args, {"heads": [h.to_json() for h in heads]}, lambda: _print_heads(heads))
    elif args.action == "rename":
        engine.rename_head(args.old, args.new)
        emit(args, {"renamed": args.old, "to": args.new}, lambda: print(f"Renamed '{args.old}' to '{args.new}'."))
    elif args.action == "delete":
        engine.delete_head(args.name)
        emit(args, {"deleted": args.name}, lambda: print(f"Deleted the classifier '{args.name}' and its labels."))
    elif args.action == "export":
        path = engine.export_head(args.name, args.file, overwrite=args.force)
        emit(args, {"head": args.name, "file": str(path)}, lambda: print(f"Wrote '{args.name}' to {path}."))
    else:
        head = engine.import_head(args.file, args.name)
        emit(args, {"head": head.name, "classes": head.classes, "file": args.file},
             lambda: print(f"Imported '{head.name}' ({', '.join(head.classes)})."))
    return EXIT_OK


def _print_heads(heads: list) -> None:
    if not heads:
        print("No classifiers yet; train one with: photosort train FOLDER --head NAME --labels CSV")
    for h in heads:
        accuracy = "accuracy not known yet" if h.accuracy is None else f"cross-validated accuracy {h.accuracy:.0%}"
        other = "" if h.for_this_model else f" (made for {h.model_key}; train it again to use it here)"
        print(f"{h.name}: {', '.join(h.classes)} — {h.labels} labels, {accuracy}{other}")


def cmd_search(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    if not args.query and not args.like:
        raise PhotosortError("Say what to search for: a text query, or --like PHOTO.")
    report = index_quietly(engine, args, cancel)
    if report.cancelled:
        return EXIT_CANCELLED
    if args.like:
        results = engine.search_like(args.folder, args.like, args.limit)
    else:
        results = engine.search_text(args.folder, args.query, args.limit)

    def human() -> None:
        for path, score in results:
            print(f"{score:6.3f}  {path}")

    emit(args, {"results": [{"path": p, "score": round(s, 4)} for p, s in results]}, human)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    from .core.export import ExportStopped

    report = index_quietly(engine, args, cancel)
    if report.cancelled:
        return EXIT_CANCELLED
    plan = engine.plan_export(args.folder, _sort(args, engine), args.destination, mode=args.op, unsure=args.unsure)
    if args.dry_run:
        emit(args, plan_to_json(plan), lambda: print(describe_plan(plan)))
        return EXIT_OK
    bar = ProgressBar(not args.json)
    try:
        done = engine.run_export(plan, cancel=cancel, progress=lambda d, t: bar(Progress("exporting", d, t)))
    except ExportStopped as stopped:
        bar.close()
        emit(args, {**stopped.result.to_json(), "error": str(stopped)}, lambda: None)
        raise
    finally:
        bar.close()
    emit(args, done.to_json(), lambda: print(describe_result(done, plan)))
    return EXIT_CANCELLED if done.cancelled else EXIT_OK


def plan_to_json(plan) -> dict:
    return {
        "destination": str(plan.destination),
        "mode": plan.mode,
        "dry_run": True,
        "folders": plan.counts(),
        "moves": [{"source": str(m.source), "destination": str(m.destination)} for m in plan.moves],
        "skipped": [{"path": str(p), "reason": r} for p, r in plan.skipped],
    }


def describe_plan(plan) -> str:
    verb = {"copy": "copy", "move": "move", "link": "link"}[plan.mode]
    lines = [f"Would {verb} {len(plan.moves)} photos into {plan.destination}:"]
    lines += [f"{count:>7}  {folder}/" for folder, count in plan.counts().items()]
    if plan.skipped:
        lines.append(f"{len(plan.skipped):>7}  skipped (unreadable, unsure or already in place)")
    lines.append("Nothing was written (dry run).")
    return "\n".join(lines)


def describe_result(result, plan) -> str:
    verb = {"copy": "Copied", "move": "Moved", "link": "Linked"}[plan.mode]
    lines = [f"{verb} {result.done} photos into {plan.destination}."]
    if result.failed:
        lines.append(f"{len(result.failed)} could not be exported:")
        lines += [f"  {path}: {reason}" for path, reason in result.failed[:20]]
    if result.skipped:
        lines.append(f"{len(result.skipped)} skipped (unreadable, unsure or already in place).")
    if result.cancelled:
        undo_hint = " and can be undone with: photosort undo" if plan.mode == "move" else "."
        lines.append("Cancelled: what was done is kept" + undo_hint)
    elif plan.mode == "move":
        lines.append("Changed your mind? photosort undo puts every photo back.")
    return "\n".join(lines)


def cmd_undo(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    from .core.export import pending_journals, undo_move

    journal = Path(args.journal) if args.journal else None
    if journal is None:
        pending = pending_journals(engine.journal_dir)
        if not pending:
            raise PhotosortError("There is no export that moved photos to undo.")
        journal = pending[-1]
    result = undo_move(journal, cancel=cancel)

    def human() -> None:
        print(f"Put {result.restored} photos back where they were.")
        for original, instead in result.renamed:
            print(f"  {original} was taken by another file; restored as {instead}")
        for path, reason in result.failed:
            print(f"  could not restore {path}: {reason}")

    emit(args, result.to_json(), human)
    return EXIT_OK


def cmd_bench(args: argparse.Namespace, engine, cancel: CancelFlag) -> int:
    from .core import bench

    return bench.run_cli(args, engine, cancel)


def cmd_gui(args: argparse.Namespace) -> int:
    from .gui.app import run_app

    return run_app(settings_from(args), getattr(args, "folder", None))


COMMANDS = {
    "index": cmd_index, "sort": cmd_sort, "train": cmd_train, "heads": cmd_heads, "search": cmd_search,
    "export": cmd_export, "undo": cmd_undo, "bench": cmd_bench,
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
    cancel = CancelFlag()
    cancel.install()
    engine = None
    try:
        engine = make_engine(args)
        return COMMANDS[args.command](args, engine, cancel)
    except PhotosortError as exc:
        print(f"photosort: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("photosort: cancelled; finished work is kept.", file=sys.stderr)
        return EXIT_CANCELLED
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
