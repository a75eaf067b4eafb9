"""Run one export, finish or undo in a process of its own, and SIGKILL it at a chosen file operation.

``python tests/export_driver.py SPEC`` where SPEC is a JSON object:

* ``op``: ``"export"`` (``library``, ``categories``: BLAKE2b hex of a photo's
  bytes -> its category, as a classifier files a photo by what it shows, so a
  copy goes where its original goes; ``destination``, ``mode``), ``"finish"`` or
  ``"undo"`` (``journal``); or ``items``: ``[[path, category], ...]`` instead of
  ``library`` and ``categories``; ``layout``: the folder template (default
  ``{category}``);
* ``journal_dir``: the data folder's journal folder;
* ``kill_at``: the process kills itself (SIGKILL: no ``finally``, no cleanup)
  just before its n-th file operation — link, unlink, replace, rename, fsync,
  mkdir, rmdir, symlink — counted from the start, so where it dies depends only
  on the spec, never on timing; null runs to the end; with ``kill_op`` (one of
  :data:`KILL_POINTS`) only that operation is counted;
* ``no_hardlinks``: hard links fail as they do across disks (moves copy, verify
  and delete; copies reserve names with a placeholder).

The library is read with :func:`~photosort.core.scan.scan_folder`, so a folder
marked as photosort's export is left out as indexing leaves it out. Prints the
result's JSON when it was not killed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from photosort.core.export import ExportItem, plan_export, resume_or_recover, run_export, undo_move
from photosort.core.scan import scan_folder

KILL_POINTS = ("link", "unlink", "replace", "rename", "fsync", "mkdir", "rmdir", "symlink")


def install_kill_switch(kill_at: int | None, no_hardlinks: bool, kill_op: str | None = None) -> None:
    count = {"n": 0}

    def wrap(name: str):
        real = getattr(os, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            count["n"] += kill_op in (None, name)
            if kill_at is not None and count["n"] >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if name == "link" and no_hardlinks:
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(*args, **kwargs)

        return counted

    for name in KILL_POINTS:
        setattr(os, name, wrap(name))


def run(spec: dict[str, Any]) -> dict[str, Any]:
    journal_dir = Path(spec["journal_dir"])
    if spec["op"] == "undo":
        return undo_move(Path(spec["journal"])).to_json()
    if spec["op"] == "finish":
        return resume_or_recover(Path(spec["journal"])).to_json()
    if "items" in spec:
        items = [ExportItem(Path(path), category) for path, category in spec["items"]]
    else:
        categories = spec["categories"]
        items = [ExportItem(Path(f.path), categories.get(content(f.path))) for f in scan_folder(spec["library"])]
    plan = plan_export(items, Path(spec["destination"]), mode=spec["mode"], layout=spec.get("layout", "{category}"))
    return run_export(plan, journal_dir=journal_dir).to_json()


def content(path: str) -> str:
    return hashlib.blake2b(Path(path).read_bytes()).hexdigest()


def main() -> None:
    spec = json.loads(sys.argv[1])
    install_kill_switch(spec.get("kill_at"), bool(spec.get("no_hardlinks")), spec.get("kill_op"))
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
