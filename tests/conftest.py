"""Shared fixtures: a tiny random CLIP loaded through the real code, photos made with Pillow."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from photo_factory import KIND_COLOURS, draw_photo

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may touch the network
os.environ.pop("PHOTOSORT_MODEL", None)
os.environ.pop("PHOTOSORT_CACHE_DIR", None)
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

    return Settings(model=str(tiny_model), device="cpu", cache_dir=tmp_path / "cache")


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
