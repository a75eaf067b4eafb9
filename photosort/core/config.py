"""Settings shared by the CLI and the GUI, resolved from flags and environment.

A flag wins over the environment (``PHOTOSORT_MODEL``, ``PHOTOSORT_DEVICE``,
``PHOTOSORT_CACHE_DIR``, ``PHOTOSORT_PRECISION``), which wins over the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
DEVICES = ("auto", "cpu", "cuda", "mps")
MODES = ("auto", "fp32", "fast")
DB_NAME = "photosort.db"


def default_cache_dir() -> Path:
    """The per-user app-data folder (e.g. ``~/.local/share/photosort`` on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("photosort", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """What every command needs to know: which model, where it runs, where the cache is.

    ``mode`` picks the CPU precision: ``auto`` (bf16 where the CPU has native
    bf16, else fp32; fp16 on CUDA), ``fp32`` (strict reference) or ``fast``
    (int8, opt-in). Embeddings made in ``fast`` mode are kept apart in the cache.
    """

    model: str = DEFAULT_MODEL
    device: str = "auto"
    cache_dir: Path | None = None
    mode: str = "auto"

    @property
    def cache_path(self) -> Path:
        return (self.cache_dir or default_cache_dir()) / DB_NAME

    @classmethod
    def resolve(
        cls,
        model: str | None = None,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        mode: str | None = None,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        """Settings from explicit values, falling back to the environment, then defaults."""
        env = os.environ if environ is None else environ
        cache = cache_dir or env.get("PHOTOSORT_CACHE_DIR") or None
        return cls(
            model=model or env.get("PHOTOSORT_MODEL") or DEFAULT_MODEL,
            device=(device or env.get("PHOTOSORT_DEVICE") or "auto").lower(),
            cache_dir=Path(cache).expanduser() if cache else None,
            mode=(mode or env.get("PHOTOSORT_PRECISION") or "auto").lower(),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
