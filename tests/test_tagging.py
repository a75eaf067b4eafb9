"""Keywords for photo managers: ``photosort tag`` writes XMP sidecars digiKam, darktable and Lightroom read,
merges into theirs without losing anything, is idempotent, dry-runs, undoes byte for byte, and never clobbers.

What is written is read back with ExifTool (a real reader of the format) where it is installed, and the
sidecars "another app" made are written with ExifTool too; without it those parts are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from photo_factory import draw_photo

from photosort.core.library import Sorting
from photosort.core.sidecars import read_sidecar
from photosort.core.tagging import CREATE, SKIP, UPDATE, plan_tagging, run_tagging, undo_tagging
from photosort.core.xmp import XmpPacket
from photosort.core.zeroshot import Category

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed (libimage-exiftool-perl)")
KEYWORD_TAGS = ("-XMP-dc:Subject", "-XMP-lr:HierarchicalSubject", "-XMP-digiKam:TagsList")
UNKNOWN = '<foo:Note xmlns:foo="urn:example:foo" foo:kind="x">kept &amp; intact</foo:Note>'


def exif_read(path: str | Path, *tags: str) -> dict:
    """What ExifTool reads from a file (every value a list), or a skip when it is not installed."""
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed")
    out = subprocess.run([EXIFTOOL, "-j", "-struct", *(tags or KEYWORD_TAGS), os.fsencode(path)],
                         capture_output=True, check=True).stdout
    doc = json.loads(out)[0]
    doc.pop("SourceFile")
    return {k: v if isinstance(v, list) else [v] for k, v in doc.items()}


def exif_write(paths: str | Path | list[Path], *assignments: str) -> None:
    """Write tags with ExifTool, as another app would (a sidecar that does not exist is created)."""
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed")
    files = [os.fsencode(p) for p in (paths if isinstance(paths, list) else [paths])]
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", *assignments, *files], check=True)


def snapshot(root: Path) -> dict[bytes, str]:
    """Every file under ``root`` with the hash of its bytes (names as bytes: some are not UTF-8)."""
    out = {}
    for folder, _, files in os.walk(os.fsencode(root)):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[path] = hashlib.blake2b(handle.read()).hexdigest()
    return out


@pytest.fixture
def photos(make_photos) -> Path:
    return make_photos(2, kinds=("beach", "forest"))


def categories(cli, root: Path, *extra: str) -> dict[str, str | None]:
    """photosort's own answer (``sort --json``): photo name -> category."""
    code, doc, _ = cli("sort", str(root), "--categories", "beach, forest", *extra)
    assert code == 0
    return {Path(p["path"]).name: p["category"] for p in doc["photos"]}


def foreign_sidecar(path: Path) -> None:
    """A sidecar another app wrote: a rating, a title, a city, flat and hierarchical keywords, and XML
    photosort knows nothing about."""
    exif_write(path, "-XMP-xmp:Rating=4", "-XMP-dc:Title=Our trip", "-XMP-photoshop:City=Rome",
               "-XMP-dc:Subject=holiday", "-XMP-dc:Subject=beach", "-XMP-lr:HierarchicalSubject=places|beach",
               "-XMP-digiKam:TagsList=people/anna")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("</rdf:RDF>", f" <rdf:Description rdf:about=''>{UNKNOWN}</rdf:Description>\n"
                                 "</rdf:RDF>"), encoding="utf-8")


# ---- writing ------------------------------------------------------------------------------------
def test_tag_writes_keywords_that_exiftool_reads_and_never_touches_a_photo(cli, photos: Path) -> None:
    expected = categories(cli, photos, "--threshold", "0")
    originals = snapshot(photos)
    code, doc, _ = cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0")
    assert code == 0 and doc["created"] == 4 and doc["updated"] == 0 and doc["journal"]
    after = snapshot(photos)
    assert {p: h for p, h in after.items() if p in originals} == originals  # every photo byte for byte as it was
    assert sorted(os.path.basename(p) for p in set(after) - set(originals)) == sorted(
        os.fsencode(name + ".xmp") for name in expected)  # darktable's and digiKam's IMG_1.JPG.xmp
    for name, category in expected.items():
        sidecar = next(photos.rglob(name + ".xmp"))
        keywords = XmpPacket.parse(sidecar.read_bytes()).keywords()
        assert (keywords.flat, keywords.hierarchical) == ((category,), (("photosort", category),) * 2)
        if EXIFTOOL:  # a real reader of the format agrees
            assert exif_read(sidecar) == {"Subject": [category], "HierarchicalSubject": [f"photosort|{category}"],
                                          "TagsList": [f"photosort/{category}"]}


@needs_exiftool
def test_merging_keeps_everything_another_app_wrote_and_uses_its_sidecar(cli, photos: Path) -> None:
    photo = photos / "beach" / "beach_000.jpg"
    theirs = photos / "beach" / "beach_000.xmp"  # Lightroom's naming: the one photosort must merge into
    foreign_sidecar(theirs)
    before = exif_read(theirs, "-XMP:all")
    category = categories(cli, photos, "--threshold", "0")[photo.name]
    assert cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0")[0] == 0
    assert not (photos / "beach" / "beach_000.jpg.xmp").exists()  # no second sidecar beside theirs
    merged = exif_read(theirs, "-XMP:all")
    assert {k: v for k, v in merged.items() if k not in ("Subject", "HierarchicalSubject", "TagsList",
                                                          "AddedSubjects")} == \
        {k: v for k, v in before.items() if k not in ("Subject", "HierarchicalSubject", "TagsList")}
    assert merged["Subject"][:2] == ["holiday", "beach"] and category in merged["Subject"]
    assert merged["HierarchicalSubject"] == ["places|beach", f"photosort|{category}"]
    assert merged["TagsList"] == ["people/anna", f"photosort/{category}"]
    assert UNKNOWN in theirs.read_text(encoding="utf-8")  # XML nobody knows, kept as it was


@needs_exiftool
def test_a_resort_replaces_only_photosorts_keywords_and_rerunning_changes_nothing(cli, photos: Path) -> None:
    theirs = photos / "beach" / "beach_000.jpg.xmp"
    foreign_sidecar(theirs)
    tag = ("tag", str(photos), "--categories", "beach, forest")
    assert cli(*tag, "--threshold", "0")[0] == 0
    written = snapshot(photos)
    code, doc, _ = cli(*tag, "--threshold", "0")  # the same sort again: nothing to do
    assert (code, doc["created"], doc["updated"], doc["unchanged"], doc["journal"]) == (0, 0, 0, 4, None)
    assert snapshot(photos) == written
    code, doc, _ = cli(*tag, "--threshold", "1")  # everything unsure now: photosort's keywords go, no others
    assert code == 0 and doc["updated"] == 4
    assert exif_read(theirs) == {"Subject": ["holiday", "beach"], "HierarchicalSubject": ["places|beach"],
                                 "TagsList": ["people/anna"]}
    for sidecar in photos.rglob("forest_*.xmp"):
        assert exif_read(sidecar) == {}
    resorted = snapshot(photos)
    code, doc, _ = cli(*tag, "--threshold", "1")
    assert (code, doc["updated"], doc["created"]) == (0, 0, 0) and snapshot(photos) == resorted


def test_a_users_own_flat_keyword_is_never_taken_away_by_a_resort() -> None:
    packet = XmpPacket.new()
    packet.replace_own_keywords("beach")
    user = XmpPacket.parse(packet.to_bytes().replace(b"<rdf:li>beach</rdf:li>\n    </rdf:Bag>\n   </dc:subject>",
                                                     b"<rdf:li>beach</rdf:li>\n     <rdf:li>forest</rdf:li>\n"
                                                     b"    </rdf:Bag>\n   </dc:subject>", 1))
    assert user.keywords().flat == ("beach", "forest")  # the user typed "forest" after photosort wrote "beach"
    user.replace_own_keywords("forest")  # re-sorted: forest was the user's before photosort's
    user.replace_own_keywords(None)  # and then unsure
    assert user.keywords().flat == ("forest",) and user.keywords().hierarchical == ()


def test_dry_run_says_per_photo_what_would_be_written_and_writes_nothing(cli, photos: Path, tmp_path: Path) -> None:
    before = snapshot(photos)
    code, doc, _ = cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0", "--dry-run")
    assert code == 0 and doc["dry_run"] and doc["counts"]["create"] == 4
    for change in doc["sidecars"]:
        category = change["keyword"]
        assert change["sidecar"] == change["photo"] + ".xmp" and change["action"] == "create"
        assert change["added"] == [category, f"photosort|{category}", f"photosort/{category}"]
    assert snapshot(photos) == before
    assert not list((tmp_path / "data").rglob("tag-*.jsonl"))
    code, text, _ = cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0", "--dry-run",
                        as_json=False)
    assert code == 0 and sum(line.startswith("create ") for line in text.splitlines()) == 4
    assert "Nothing was written" in text


# ---- undo ---------------------------------------------------------------------------------------
def test_undo_restores_every_sidecar_byte_for_byte_and_removes_the_ones_it_created(cli, photos: Path) -> None:
    theirs = photos / "beach" / "beach_001.jpg.xmp"
    theirs.write_bytes(XmpPacket.new().to_bytes().replace(b"<rdf:RDF", b"<!-- theirs --><rdf:RDF"))
    before = snapshot(photos)
    assert cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0")[0] == 0
    assert snapshot(photos) != before
    code, doc, _ = cli("tag", "--undo")
    assert code == 0 and (doc["restored"], doc["removed"], doc["refused"]) == (1, 3, [])
    assert snapshot(photos) == before
    code, _, err = cli("tag", "--undo")  # nothing left to undo
    assert code == 1 and "no tagging" in err.lower()


@needs_exiftool
def test_undo_refuses_a_sidecar_changed_since_photosort_wrote_it(cli, photos: Path) -> None:
    assert cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0")[0] == 0
    edited = photos / "forest" / "forest_000.jpg.xmp"
    exif_write(edited, "-XMP-dc:Subject+=edited in digiKam")
    kept = edited.read_bytes()
    code, doc, _ = cli("tag", "--undo")
    assert code == 0 and doc["removed"] == 3 and [r["sidecar"] for r in doc["refused"]] == [str(edited)]
    assert edited.read_bytes() == kept
    assert len(list(photos.rglob("*.xmp"))) == 1


def test_a_sidecar_changed_after_it_was_read_is_never_clobbered(engine, photos: Path) -> None:
    engine.index(photos)
    library = engine.open_library([photos])
    result = library.sort(Sorting.by_categories([Category("beach"), Category("forest")]), threshold=0.0)
    existing = photos / "beach" / "beach_000.jpg.xmp"
    existing.write_bytes(XmpPacket.new().to_bytes())
    plan = plan_tagging(result, library.roots)
    assert sorted(c.action for c in plan.changes) == [CREATE, CREATE, CREATE, UPDATE]
    existing.write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")  # another program saved it meanwhile
    appeared = photos / "forest" / "forest_001.jpg.xmp"
    appeared.write_bytes(b"made meanwhile")  # and another created one
    done = run_tagging(plan, engine.settings.journal_dir)
    assert existing.read_bytes() == b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>" and appeared.read_bytes() == b"made meanwhile"
    assert sorted(p for p, _ in done.skipped) == sorted([str(existing), str(appeared)])
    assert len(done.created) == 2
    undone = undo_tagging(Path(done.journal))
    assert len(undone.removed) == 2 and existing.exists() and appeared.exists()


def test_a_cancelled_run_keeps_what_it_wrote_and_a_run_that_wrote_nothing_leaves_no_journal(engine, photos: Path) -> None:
    from photosort.core.progress import CancelToken

    engine.index(photos)
    library = engine.open_library([photos])
    result = library.sort(Sorting.by_categories([Category("beach"), Category("forest")]), threshold=0.0)
    cancel = CancelToken()
    cancel.cancel()
    done = run_tagging(plan_tagging(result, library.roots), engine.settings.journal_dir, cancel=cancel)
    assert done.cancelled and done.created == [] and done.journal is None
    assert not list(photos.rglob("*.xmp")) and not list(engine.settings.journal_dir.glob("tag-*"))


def test_symbolic_links_and_damaged_sidecars_are_left_alone(engine, photos: Path, tmp_path: Path) -> None:
    engine.index(photos)
    library = engine.open_library([photos])
    result = library.sort(Sorting.by_categories([Category("beach"), Category("forest")]), threshold=0.0)
    outside = tmp_path / "elsewhere.xmp"
    outside.write_bytes(b"not yours")
    (photos / "beach" / "beach_000.jpg.xmp").symlink_to(outside)
    (photos / "beach" / "beach_001.jpg.xmp").write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>")
    (photos / "forest" / "forest_000.jpg.xmp").write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>")
    skipped = {Path(c.sidecar).name: c.reason for c in plan_tagging(result, library.roots).changes if c.action == SKIP}
    assert "symbolic link" in skipped["beach_000.jpg.xmp"] and "DOCTYPE" in skipped["beach_001.jpg.xmp"]
    assert "well-formed" in skipped["forest_000.jpg.xmp"] and outside.read_bytes() == b"not yours"


# ---- naming, --into, odd names ------------------------------------------------------------------
def test_lightroom_naming_is_used_only_where_the_stem_is_the_photos_own(cli, photos: Path) -> None:
    own = photos / "beach" / "beach_000.xmp"
    own.write_bytes(XmpPacket.new().to_bytes())
    shared = photos / "forest" / "forest_000.xmp"  # a raw beside the JPEG owns it
    (photos / "forest" / "forest_000.cr2").write_bytes(b"raw")
    shared.write_bytes(XmpPacket.new().to_bytes())
    kept = shared.read_bytes()
    assert cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0")[0] == 0
    assert XmpPacket.parse(own.read_bytes()).keywords().hierarchical
    assert not (photos / "beach" / "beach_000.jpg.xmp").exists()
    assert shared.read_bytes() == kept and (photos / "forest" / "forest_000.jpg.xmp").exists()


def test_into_writes_a_mirrored_tree_and_undo_takes_it_away(cli, photos: Path, tmp_path: Path) -> None:
    before = snapshot(photos)
    mirror = tmp_path / "sidecars"
    code, doc, _ = cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0", "--into", str(mirror))
    assert code == 0 and doc["created"] == 4 and snapshot(photos) == before
    assert sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*.xmp")) == [
        "beach/beach_000.jpg.xmp", "beach/beach_001.jpg.xmp", "forest/forest_000.jpg.xmp", "forest/forest_001.jpg.xmp"]
    assert cli("tag", "--undo")[0] == 0
    assert not mirror.exists()  # the folders it made, empty again, went too


def test_a_photo_whose_name_is_not_utf8_gets_its_own_sidecar(cli, photos: Path) -> None:
    odd = os.fsencode(photos / "beach") + b"/caf\xe9.jpg"
    draw_photo("beach", seed=9).save(odd, "JPEG", quality=90)
    code, doc, _ = cli("tag", str(photos), "--categories", "beach, forest", "--threshold", "0")
    assert code == 0 and doc["created"] == 5
    sidecar = odd + b".xmp"
    assert os.path.exists(sidecar)
    assert XmpPacket.parse(read_sidecar(os.fsdecode(sidecar)) or b"").keywords().flat
    if EXIFTOOL:
        assert exif_read(os.fsdecode(sidecar))["HierarchicalSubject"][0].startswith("photosort|")
    code, text, _ = cli("tag", "--undo", as_json=False)
    assert code == 0 and "removed 5 sidecars" in text and not os.path.exists(sidecar)


def test_usage_errors(cli, photos: Path) -> None:
    for args in (("tag", str(photos)), ("tag",), ("tag", "--undo", "--categories", "beach"),
                 ("train", str(photos), "--classifier", "k", "--from-keywords", "trip//x")):
        code, _, err = cli(*args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, args


# ---- reading keywords ---------------------------------------------------------------------------
def test_patterns_match_levels_and_flat_keywords() -> None:
    from photosort.core.keywords import KeywordPattern
    from photosort.core.xmp import Keywords

    keywords = Keywords(("Beach", "trip-italy"), (("trip", "italy", "rome"), ("people", "anna")))
    assert KeywordPattern.parse("trip/*").labels(keywords) == {"italy"}
    assert KeywordPattern.parse("trip|*|*").labels(keywords) == {"italy/rome"}
    assert KeywordPattern.parse("TRIP/It*").labels(keywords) == {"aly"}
    assert KeywordPattern.parse("*/anna").labels(keywords) == {"people"}
    assert KeywordPattern.parse("trip-*").labels(keywords) == {"italy"}
    assert KeywordPattern.parse("beach").labels(keywords) == {"Beach"}
    assert KeywordPattern.parse("anna").labels(keywords) == set()  # a flat pattern: flat keywords only


@needs_exiftool
def test_train_from_keywords_in_sidecars_embedded_xmp_and_iptc_predicts(cli, make_photos) -> None:
    root = make_photos(4, kinds=("beach", "forest", "night"))
    three = range(3)
    exif_write([root / "beach" / f"beach_{i:03d}.xmp" for i in three], "-XMP-lr:HierarchicalSubject=trip|beach")
    exif_write([root / "forest" / f"forest_{i:03d}.jpg" for i in three], "-XMP-digiKam:TagsList=trip/forest/pines")
    exif_write([root / "night" / f"night_{i:03d}.jpg" for i in three], "-IPTC:Keywords=trip-night")  # flat, IPTC
    exif_write(root / "beach" / "beach_003.jpg.xmp", "-XMP-lr:HierarchicalSubject=trip|beach",
               "-XMP-lr:HierarchicalSubject+=trip|forest")  # two labels: left out
    code, doc, _ = cli("train", str(root), "--classifier", "kinds", "--from-keywords", "trip/*",
                       "--from-keywords", "trip-*")
    assert code == 0, doc
    found = doc["from_keywords"]
    assert found["labels_per_class"] == {"beach": 3, "forest": 3, "night": 3}
    assert [a["labels"] for a in found["ambiguous"]] == [["beach", "forest"]]
    assert doc["classes"] == ["beach", "forest", "night"] and doc["labels"] == 9
    code, doc, _ = cli("sort", str(root), "--classifier", "kinds", "--threshold", "0")
    by_name = {Path(p["path"]).name: p["category"] for p in doc["photos"]}
    assert (by_name["beach_003.jpg"], by_name["forest_003.jpg"], by_name["night_003.jpg"]) == ("beach", "forest", "night")


def test_train_from_keywords_says_when_nothing_matches(cli, photos: Path) -> None:
    code, _, err = cli("train", str(photos), "--classifier", "k", "--from-keywords", "trip/*")
    assert code == 1 and err.count("\n") == 1 and "No photo" in err and "trip/*" in err


def test_photosorts_own_keywords_train_a_classifier(cli, make_photos) -> None:
    """Round trip without ExifTool: tag with typed categories, then learn from those keywords."""
    root = make_photos(2, kinds=("beach", "night"))
    expected = {n: c for n, c in categories(cli, root, "--threshold", "0").items()}
    assert cli("tag", str(root), "--categories", "beach, forest", "--threshold", "0")[0] == 0
    code, doc, _ = cli("train", str(root), "--classifier", "again", "--from-keywords", "photosort/*")
    assert code == 0
    per_class: dict[str, int] = {}
    for category in expected.values():
        per_class[category] = per_class.get(category, 0) + 1
    assert doc["from_keywords"]["labels_per_class"] == dict(sorted(per_class.items()))


@needs_exiftool
def test_embedded_xmp_is_read_from_jpeg_png_tiff_webp_and_heic(tmp_path: Path) -> None:
    from PIL import Image

    from photosort.core.keywords import read_keywords

    files = []
    for ext in ("jpg", "png", "tif", "webp"):
        files.append(tmp_path / f"photo.{ext}")
        Image.new("RGB", (16, 12), (200, 30, 30)).save(files[-1])
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        files.append(tmp_path / "photo.heic")
        Image.new("RGB", (16, 12), (200, 30, 30)).save(files[-1])
    except ImportError:  # the [heic] extra is optional
        pass
    exif_write(files, "-XMP-lr:HierarchicalSubject=trip|rome")
    exif_write([f for f in files if f.suffix in (".jpg", ".tif")], "-IPTC:Keywords=caff\u00e8")  # Latin-1, ExifTool's default
    for path in files:
        found = read_keywords(str(path))
        assert found.keywords.hierarchical == (("trip", "rome"),) and not found.problems, path.name
        assert found.keywords.flat == (("caff\u00e8",) if path.suffix in (".jpg", ".tif") else ()), path.name
