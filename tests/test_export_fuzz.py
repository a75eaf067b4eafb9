"""Property tests: no category name or file-name clash can escape or merge."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photosort.core.export import ExportItem, plan_export, safe_folder_name

RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789¹²³"
}

# Mostly the characters that make trouble, plus anything at all.
hostile_text = st.one_of(
    st.text(),
    st.text(
        alphabet=st.sampled_from(list('./\\:*?"<>| \t\x00\x7f\u202eCONAUXnulcom1LPT9¹.e\u0301é😀\u200d🐈\ud800')),
        max_size=40,
    ),
    st.builds(lambda s, n: s * n, st.sampled_from(["😀", "é", "a", ". ", "e\u0301", "\u1100\u1161"]), st.integers(1, 300)),
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(hostile_text)
def test_safe_folder_name_is_always_one_harmless_component(name: str) -> None:
    safe = safe_folder_name(name)
    assert safe not in ("", ".", "..")
    assert not set(safe) & set('/\\:*?"<>|')
    assert not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in safe)
    assert safe == safe.strip(" .")
    assert safe.partition(".")[0].rstrip(" ").upper() not in RESERVED
    assert len(safe.encode("utf-8")) <= 255
    assert len(safe) <= 101
    assert unicodedata.is_normalized("NFC", safe)
    assert safe_folder_name(safe) == safe


FILE_NAMES = ["a.jpg", "A.JPG", "a (2).jpg", "b.png", "B.png", "x", ".hidden", "é.jpg", "e\u0301.jpg", "y" * 250 + ".jpg"]
CATEGORIES = st.one_of(
    st.none(), st.sampled_from(["Cats", "cats", "Unsure", "unsure", "a/b", "a_b", "..", "CON", ""]), st.text(max_size=12)
)


@SETTINGS
@given(
    photos=st.lists(st.tuples(st.sampled_from(FILE_NAMES), CATEGORIES), min_size=1, max_size=12),
    existing=st.lists(
        st.tuples(st.sampled_from(["Cats", "cats", "Unsure", "a_b", "CON_"]), st.sampled_from(FILE_NAMES)), max_size=4
    ),
    planted=st.lists(st.sampled_from(["Cats", "Unsure", "a_b (2)", "Unnamed"]), max_size=2),
    mode=st.sampled_from(["copy", "move", "link"]),
    unsure=st.sampled_from(["folder", "skip"]),
)
def test_plan_gives_every_photo_one_unique_place_inside_the_root(
    photos: list[tuple[str, str | None]],
    existing: list[tuple[str, str]],
    planted: list[str],
    mode: str,
    unsure: str,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root = base / "out"
        outside = base / "outside"
        outside.mkdir()
        for folder, name in existing:
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / name).write_bytes(b"old")
        for name in planted:
            root.mkdir(exist_ok=True)
            if not os.path.lexists(root / name):
                (root / name).symlink_to(outside, target_is_directory=True)
        items = []
        for index, (name, category) in enumerate(photos):
            source = base / "src" / str(index) / name
            source.parent.mkdir(parents=True)
            source.write_bytes(b"photo")
            items.append(ExportItem(source, category))

        plan = plan_export(items, root, mode=mode, unsure=unsure)

        keys = [_key(move.destination.relative_to(root)) for move in plan.moves]
        assert len(keys) == len(set(keys)), "two photos planned to the same name"
        for move in plan.moves:
            folder = move.destination.parent
            beside = {_key(Path(name)) for name in os.listdir(folder)} if folder.is_dir() else set()
            assert _key(Path(move.destination.name)) not in beside, "a planned name is already taken"
        root_real = os.path.realpath(root)
        for move in plan.moves:
            folder_real = os.path.realpath(move.destination.parent)
            assert os.path.dirname(folder_real) == root_real
            assert move.destination.parent.name == move.folder
            assert not move.destination.parent.is_symlink()
        planned = [move.source for move in plan.moves] + [path for path, _ in plan.skipped]
        assert sorted(planned) == sorted(item.source for item in items)
        for path, reason in plan.skipped:
            assert unsure == "skip" and reason.startswith("unsure"), (path, reason)
        assert list(outside.iterdir()) == []


def _key(relative: Path) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", relative.as_posix()).casefold())
