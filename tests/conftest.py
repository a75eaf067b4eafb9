"""Shared fixtures: a tiny random CLIP loaded through the real code, photos made with Pillow."""

from __future__ import annotations

import atexit
import importlib.abc
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from photo_factory import KIND_COLOURS, draw_photo

QT_MODULES = ("PySide6", "shiboken6", "pytestqt")


class BlockQt(importlib.abc.MetaPathFinder):
    """PHOTOSORT_TEST_BLOCK_QT=1: Qt cannot be imported, so the tests prove the engine runs without it."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in QT_MODULES:
            raise ModuleNotFoundError(f"{name} is blocked by PHOTOSORT_TEST_BLOCK_QT=1: the engine must not need Qt",
                                      name=name)
        return None


if os.environ.get("PHOTOSORT_TEST_BLOCK_QT") == "1":
    if loaded := sorted(m for m in sys.modules if m.partition(".")[0] in QT_MODULES):
        raise pytest.UsageError(f"PHOTOSORT_TEST_BLOCK_QT=1 but {', '.join(loaded[:3])} is already imported; "
                                "run with -p no:pytest-qt --ignore=tests/gui -m 'not gui'")
    sys.meta_path.insert(0, BlockQt())

GUI_TESTS = Path(__file__).resolve().parent / "gui"


MAX_TEST_PROCESSES = 4  # each process holds torch, a model and maybe Qt: more than this costs memory, not time


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one test process per core this run may use, at most MAX_TEST_PROCESSES."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_TEST_PROCESSES))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/gui/ is marked ``gui`` (a pytestmark in tests/gui/conftest.py would not apply)."""
    for item in items:
        if item.path.resolve().is_relative_to(GUI_TESTS):
            item.add_marker(pytest.mark.gui)


os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may touch the network
os.environ.pop("PHOTOSORT_MODEL", None)
os.environ.pop("PHOTOSORT_CACHE_DIR", None)
os.environ.pop("PHOTOSORT_DATA_DIR", None)
# No test may read or write the real user's data folder (platformdirs follows XDG_DATA_HOME on Linux).
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="photosort-tests-xdg-")
atexit.register(shutil.rmtree, os.environ["XDG_DATA_HOME"], ignore_errors=True)
os.environ.pop("PHOTOSORT_DEVICE", None)
os.environ.pop("PHOTOSORT_PRECISION", None)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CLIP model folder (saved with save_pretrained) plus its tokenizer."""
    from tiny_model import write_tiny_clip

    return write_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def settings(tiny_model: Path, tmp_path: Path):
    from photosort.core.config import Settings

    return Settings(model=str(tiny_model), device="cpu", data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings):
    from photosort.core.engine import Engine

    eng = Engine(settings)
    yield eng
    eng.close()


@pytest.fixture
def make_photos(tmp_path: Path) -> Callable[..., Path]:
    """make_photos(n_per_kind=3, kinds=..., folder=...) writes JPEGs into <tmp>/photos/<kind>/."""

    def make(n_per_kind: int = 3, kinds: tuple[str, ...] = tuple(KIND_COLOURS), folder: Path | None = None) -> Path:
        root = folder or tmp_path / "photos"
        for kind in kinds:
            (root / kind).mkdir(parents=True, exist_ok=True)
            for i in range(n_per_kind):
                draw_photo(kind, seed=i).save(root / kind / f"{kind}_{i:03d}.jpg", quality=90)
        return root

    return make


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside this checkout")
    return SHARED


@pytest.fixture
def copy_tree() -> Callable[[Path, Path], Path]:
    def copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    return copy


@pytest.fixture
def cli(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Run photosort in this process with the tiny model and the data folder ``tmp_path / "data"``.

    Returns (exit code, the JSON document, or the text printed with ``as_json=False``, stderr).
    """
    from photosort.cli import main

    def run(*args: str, as_json: bool = True):
        argv = [*args, "--model", str(tiny_model), "--data-dir", str(tmp_path / "data")]
        code = main([*argv, "--json"] if as_json else argv)
        out, err = capsys.readouterr()
        return code, (json.loads(out) if as_json and out.strip() else out), err

    return run
