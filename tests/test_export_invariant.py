"""Issue 10's invariant under random sequences of copies, moves, kills, re-runs, finishes and undos.

Each seed builds a small library of distinct Pillow photos and a destination
(beside the library, or inside it as ``Sorted/``), then takes random steps, each
in a process of its own (``tests/export_driver.py``) that is SIGKILLed just
before a random file operation — between a link and an unlink, after a
temporary file was written, mid-journal — or runs to the end. Where it dies is
decided by the seed alone, never by timing. After every step:

* every photo exists, by content, at most once in the library and at most once
  in the destination, and at least once in all; no file holds anything but one
  of the photos (no half-written copy under a real name, no stranger's bytes);
* after a step that was not killed, no temporary file or name reservation is
  left anywhere.

Some photos have an XMP sidecar (``p00.jpg.xmp`` or ``p01.xmp``), which the
export carries along: each sidecar obeys the same rule (at most once in the
library, at most once in the destination, never lost).

At the end every move is undone, newest first, and every photo is back in the
library exactly once, each sidecar beside it under its own name. Odd seeds export with the nested layout
``{category}/{year}`` (more folders made, recorded and removed), even ones with
the default ``{category}``. A killed undo is followed by undo again (what a user
does), since the temporary files of a copy back lie in the library.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from photo_factory import KIND_COLOURS, draw_photo

from photosort.core.export import journal_state, pending_journals
from photosort.core.export.fileops import is_placeholder, is_temp_name
from photosort.core.export.marker import MARKER_NAME

DRIVER = Path(__file__).with_name("export_driver.py")
REPO = Path(__file__).resolve().parent.parent
PHOTOS = 6
STEPS = 9
SEEDS = range(12)
ACTIONS = ("copy", "move", "undo", "finish")
LAYOUTS = ("{category}", "{category}/{year}")  # by seed parity, so the seeds' random steps stay the same
WEIGHTS = (3, 4, 3, 2)


@dataclass
class World:
    library: Path
    destination: Path
    journal_dir: Path
    originals: set[str]
    categories: dict[str, str | None]
    sidecars: dict[Path, tuple[Path, str]] = field(default_factory=dict)  # sidecar -> (its photo, its content)
    history: list[str] = field(default_factory=list)
    layout: str = "{category}"


def make_world(tmp_path: Path, rng: random.Random) -> World:
    library = tmp_path / "lib"
    kinds = list(KIND_COLOURS)
    categories: dict[str, str | None] = {}
    for i in range(PHOTOS):
        folder = library / ("2023" if i % 2 else "2024")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"p{i:02d}.jpg"
        draw_photo(kinds[i % len(kinds)], size=(48, 32), seed=i).save(folder / name, quality=80)
        categories[digest(folder / name)] = rng.choice(["Cats", "Dogs", None])
    destination = library / "Sorted" if rng.random() < 0.5 else tmp_path / "out"
    sidecars = add_sidecars(library)
    originals = {digest(path) for path in files_under(library)}
    assert len(originals) == PHOTOS + len(sidecars)
    return World(library, destination, tmp_path / "data" / "journals", originals, categories, sidecars=sidecars)


def add_sidecars(library: Path) -> dict[Path, tuple[Path, str]]:
    """``p00.jpg.xmp`` (darktable's naming) for every third photo, ``p01.xmp`` (Lightroom's) for the next."""
    sidecars = {}
    for photo in sorted(library.rglob("p*.jpg")):
        number = int(photo.stem[1:])
        if number % 3 == 2:
            continue
        sidecar = photo.with_name(photo.name + ".xmp" if number % 3 == 0 else photo.stem + ".xmp")
        sidecar.write_bytes(f"<x:xmpmeta>{photo.name}</x:xmpmeta>".encode())
        sidecars[sidecar] = (photo, digest(sidecar))
    return sidecars


def digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes()).hexdigest()


def files_under(root: Path) -> list[Path]:
    """Plain files under ``root`` (links not followed), the export marker left out."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if name != MARKER_NAME and path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def step(world: World, rng: random.Random, action: str, may_kill: bool = True) -> bool | None:
    """Run one action in a subprocess; True when it was killed, None when there was nothing to do."""
    kill_at = rng.randint(1, 45) if rng.random() < 0.55 else None
    spec: dict = {"journal_dir": str(world.journal_dir), "no_hardlinks": rng.random() < 0.4,
                  "kill_at": kill_at if may_kill else None}
    if action in ("copy", "move"):
        spec.update(op="export", mode=action, library=str(world.library), destination=str(world.destination),
                    categories=world.categories, layout=world.layout)
    else:
        journal = pick_journal(world, action)
        if journal is None:
            return None
        spec.update(op=action, journal=str(journal))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(DRIVER), json.dumps(spec)], capture_output=True, text=True, env=env,
                          timeout=300)
    killed = done.returncode == -9
    world.history.append(f"{action} kill_at={spec['kill_at']} no_hardlinks={spec['no_hardlinks']} "
                         f"-> {'killed' if killed else done.returncode}")
    assert killed or done.returncode == 0, f"{world.history}\n{done.stderr}"
    return killed


def pick_journal(world: World, action: str) -> Path | None:
    """``undo``: the last move, as ``photosort undo`` picks it; ``finish``: the newest unfinished one."""
    pending = pending_journals(world.journal_dir)
    if action == "undo":
        return pending[-1] if pending else None
    unfinished = [j for j in pending if journal_state(j) != "finished"]
    return unfinished[-1] if unfinished else None


def check(world: World, completed: bool) -> None:
    """The invariant, after every step."""
    leftovers: list[Path] = []
    counts: dict[str, dict[str, list[Path]]] = {}
    for path in sorted(set(files_under(world.library)) | set(files_under(world.destination))):
        if is_temp_name(path.name) or is_placeholder(path):
            leftovers.append(path)
            continue
        content = digest(path)
        assert content in world.originals, f"{path} holds no photo or sidecar of the library; {world.history}"
        region = "destination" if inside(path, world.destination) else "library"
        counts.setdefault(content, {"library": [], "destination": []})[region].append(path)
    for content in world.originals:
        places = counts.get(content, {"library": [], "destination": []})
        assert places["library"] or places["destination"], f"a photo or sidecar was lost; {world.history}"
        assert len(places["library"]) <= 1, f"duplicate in the library: {places['library']}; {world.history}"
        assert len(places["destination"]) <= 1, f"duplicate in the destination: {places['destination']}; {world.history}"
    if completed:
        assert not leftovers, f"temporary files outlived a finished run: {leftovers}; {world.history}"


def choose(rng: random.Random, last_killed_undo: bool) -> str:
    return "undo" if last_killed_undo else rng.choices(ACTIONS, WEIGHTS)[0]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_exports_kills_reruns_and_undos_keep_every_photo_exactly_once(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    world = make_world(tmp_path, rng)
    world.layout = LAYOUTS[seed % len(LAYOUTS)]
    killed = killed_undo = False
    for _ in range(STEPS):
        action = choose(rng, killed_undo)
        outcome = step(world, rng, action)
        killed = killed if outcome is None else outcome
        killed_undo = bool(outcome) and action == "undo"
        check(world, completed=not killed)
    while killed_undo or pending_journals(world.journal_dir):
        outcome = step(world, rng, "undo")
        killed = killed if outcome is None else outcome
        killed_undo = bool(outcome)
        check(world, completed=not killed)
    if killed:  # the last step was a killed export: run it again, to the end
        step(world, rng, world.history[-1].split()[0], may_kill=False)
        check(world, completed=True)
    library = [digest(p) for p in files_under(world.library) if not inside(p, world.destination)]
    assert sorted(library) == sorted(world.originals), f"every photo is back exactly once; {world.history}"
    for sidecar, (photo, content) in world.sidecars.items():
        assert sidecar.is_file() and digest(sidecar) == content, f"{sidecar} is not back; {world.history}"
        assert photo.is_file(), f"{sidecar} is back, but not beside its photo {photo}; {world.history}"
