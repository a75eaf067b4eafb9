"""The user's own data (library.db), the saved settings (settings.json), and how failures reach the user.

library.db is as precious as the photos: a damaged or foreign file is refused and left
byte-identical, never moved aside or replaced; a newer photosort's file is only read.
settings.json is read in one order (flag > environment > saved > default) by the CLI and
the window alike, and a broken one never stops photosort.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

import pytest

from photosort.core.config import DEFAULT_MODEL, SETTINGS_FILE, SETTINGS_VERSION, Settings, read_saved_choices, save_choices
from photosort.core.errors import (
    AccessDeniedError,
    Action,
    DiskFullError,
    PhotosortError,
    StoreBusyError,
    StoreDamagedError,
    StoreError,
    database_error,
    os_error,
    user_message,
)
from photosort.core.userdata import APPLICATION_ID, CURRENT_CATEGORIES, Label, StoredClassifier, UserStore


def folder_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def store(tmp_path: Path):
    with UserStore(tmp_path / "library.db") as user:
        yield user


# ---- library.db -------------------------------------------------------------------------------
def test_classifiers_keep_their_labels_by_photo_identity(store: UserStore) -> None:
    cid = store.save_classifier("Trips", "m|exact", ["beach", "city"], b"weights", {"labels": 0})
    store.set_labels(cid, {"fp-1": "beach", "fp-2": "city"}, {"fp-1": "/photos/1.jpg"})
    assert store.labels(cid) == {"fp-1": "beach", "fp-2": "city"}
    assert store.label_records(cid) == [Label("fp-2", "city", None), Label("fp-1", "beach", "/photos/1.jpg")]
    store.set_labels(cid, {"fp-2": None, "fp-1": "city"})
    assert store.labels(cid) == {"fp-1": "city"}
    assert store.save_classifier("TRIPS", "m|exact", ["beach", "city"], b"new", {"labels": 1}) == cid  # any case
    stored = store.classifier("trips")
    assert (stored.name, stored.classes, stored.weights, stored.trained_on) == ("TRIPS", ("beach", "city"), b"new", 1)
    assert store.labels(cid) == {"fp-1": "city"}  # saving new weights keeps the labels


def test_deleting_a_classifier_deletes_its_labels_and_nothing_else(store: UserStore) -> None:
    kept = store.save_classifier("Pets", "m", ["cat", "dog"], None, {})
    gone = store.save_classifier("Trips", "m", ["beach"], None, {})
    store.set_labels(kept, {"fp": "cat"})
    store.set_labels(gone, {"fp": "beach"})
    store.delete_classifier("trips")
    assert store.classifier_names() == ["Pets"]
    assert store.labels(kept) == {"fp": "cat"}
    assert store.query("SELECT count(*) FROM labels")[0][0] == 1


def test_category_sets_are_kept_as_typed(store: UserStore) -> None:
    assert store.category_set() is None
    store.save_category_set("beach, night=a photo at night")
    store.save_category_set("cat, dog", name="Pets")
    assert store.category_set(CURRENT_CATEGORIES) == "beach, night=a photo at night"
    assert store.category_set("Pets") == "cat, dog"
    assert store.category_set_names() == ["Pets"]


def test_an_import_runs_once_per_marker(store: UserStore) -> None:
    batch = [(StoredClassifier(0, "Old", "m", ("a", "b"), None, {}), [Label("fp", "a", "/p.jpg")])]
    assert store.import_classifiers(batch, "imported:x") == 1
    assert store.import_classifiers(batch, "imported:x") == 0
    assert store.classifier_names() == ["Old"]
    assert store.meta("imported:x") is not None
    store.save_classifier("Taken", "m", ["a"], None, {})
    clash = [(StoredClassifier(0, "taken", "m", ("z",), None, {}), [])]
    assert store.import_classifiers(clash, "imported:y") == 0  # an existing classifier is never overwritten
    assert store.classifier("Taken").classes == ("a",)


def test_labels_of_photos_whose_names_are_not_utf8_are_kept_exactly(store: UserStore) -> None:
    """A label's path, and a path identity (a photo cached before it had a fingerprint), may hold any bytes."""
    odd_path = os.fsdecode(b"/photos/caf\xe9.jpg")
    odd_identity = "path:" + os.fsdecode(b"/photos/na\xefve.jpg")
    cid = store.save_classifier("Trips", "m", ["beach", "city"], None, {})
    store.set_labels(cid, {"fp-1": "beach", odd_identity: "city"}, {"fp-1": odd_path, odd_identity: odd_identity[5:]})
    assert store.labels(cid) == {"fp-1": "beach", odd_identity: "city"}
    assert {r.photo: r.path for r in store.label_records(cid)} == {"fp-1": odd_path, odd_identity: odd_identity[5:]}
    store.set_labels(cid, {odd_identity: "beach"})  # the same photo: replaced, never a second label
    store.set_labels(cid, {"fp-1": None})
    assert store.labels(cid) == {odd_identity: "beach"}
    batch = [(StoredClassifier(0, "Copied", "m", ("a",), None, {}), [Label(odd_identity, "a", odd_path)])]
    store.import_classifiers(batch, "imported:odd")
    copied = store.classifier("Copied")
    assert store.label_records(copied.id) == [Label(odd_identity, "a", odd_path)]


def test_a_version_1_library_is_migrated_keeping_every_label(tmp_path: Path) -> None:
    """Schema 2 stores a label's photo and path as bytes; labels written by schema 1 (text) read the same."""
    from photosort.core.userdata import _SCHEMA_V1

    path = tmp_path / "library.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("PRAGMA user_version=1")
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("INSERT INTO classifiers VALUES (1, 'Trips', 'm', '[\"beach\", \"city\"]', NULL, '{}', 0, 0)")
    conn.executemany("INSERT INTO labels VALUES (1, ?, ?, ?, 0)",
                     [("fp-1", "beach", "/photos/café.jpg"), ("fp-2", "city", None), ("path:/old/x.jpg", "city", "/old/x.jpg")])
    conn.commit()
    conn.close()
    with UserStore(path) as user:
        assert not user.notices and user._conn.execute("PRAGMA user_version").fetchone()[0] == user.schema_version >= 2
        assert user.labels(1) == {"fp-1": "beach", "fp-2": "city", "path:/old/x.jpg": "city"}
        assert Label("fp-1", "beach", "/photos/café.jpg") in user.label_records(1)
        user.set_labels(1, {"fp-1": "city", "path:/old/x.jpg": None})  # old rows are found by the new code
        assert user.labels(1) == {"fp-1": "city", "fp-2": "city"}
        assert user.query("SELECT count(*) FROM labels")[0][0] == 2


def test_library_uses_wal_and_its_own_application_id(tmp_path: Path) -> None:
    from photosort.core.userdata import APPLICATION_ID

    with UserStore(tmp_path / "library.db") as user:
        assert user._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert user._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert user.integrity_ok()


def test_a_damaged_library_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    path.write_bytes(b"this was a library once" * 200)
    before = folder_state(tmp_path)
    with pytest.raises(StoreDamagedError, match="damaged") as error:
        UserStore(path)
    assert "\n" not in str(error.value) and "backup" in str(error.value)
    assert folder_state(tmp_path) == before  # not moved aside, not replaced, nothing beside it


def test_a_library_with_a_damaged_page_is_refused_when_read(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    with UserStore(path) as user:
        cid = user.save_classifier("Trips", "m", ["beach"], None, {})
        user.set_labels(cid, {f"fp-{i}": "beach" for i in range(2000)})
        user.checkpoint()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[2 * page : 4 * page] = b"\xff" * (2 * page)  # pages 3 and 4: the tables' b-trees, not the header
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    # at open (the schema) or at the first read of the labels
    with pytest.raises(StoreDamagedError), UserStore(path) as user:
        user.labels(cid)
    assert path.read_bytes() == before


def test_another_programs_database_is_not_taken_for_the_library(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not photosort's library") as error:
        UserStore(path)
    assert "\n" not in str(error.value)
    assert path.read_bytes() == before


def test_a_newer_library_is_read_but_never_written(tmp_path: Path) -> None:
    path = tmp_path / "library.db"
    with UserStore(path) as user:
        user.save_classifier("Trips", "m", ["beach"], None, {})
        user.checkpoint()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    before = path.read_bytes()
    with UserStore(path) as user:
        assert user.read_only and "newer photosort" in user.notices[0]
        assert user.classifier_names() == ["Trips"]
        with pytest.raises(StoreError, match="read-only"):
            user.save_classifier("Pets", "m", ["cat"], None, {})
    assert path.read_bytes() == before


# ---- settings.json ----------------------------------------------------------------------------
def test_saved_choices_are_what_the_cli_resolves(tmp_path: Path) -> None:
    save_choices(tmp_path, "saved/model", "cpu", "fp32")
    resolved = Settings.resolve(data_dir=tmp_path, environ={})
    assert (resolved.model, resolved.device, resolved.mode) == ("saved/model", "cpu", "fp32")
    via_env_folder = Settings.resolve(environ={"PHOTOSORT_DATA_DIR": str(tmp_path)})
    assert via_env_folder.model == "saved/model" and via_env_folder.folder == tmp_path
    assert Settings.resolve(environ={"PHOTOSORT_CACHE_DIR": str(tmp_path)}).model == "saved/model"  # the old name


def test_environment_beats_saved_and_a_flag_beats_environment(tmp_path: Path) -> None:
    save_choices(tmp_path, "saved/model", "cpu", "fp32")
    env = {"PHOTOSORT_DATA_DIR": str(tmp_path), "PHOTOSORT_MODEL": "env/model", "PHOTOSORT_DEVICE": "CUDA",
           "PHOTOSORT_PRECISION": "fast"}
    from_env = Settings.resolve(environ=env)
    assert (from_env.model, from_env.device, from_env.mode) == ("env/model", "cuda", "fast")
    flagged = Settings.resolve(model="flag/model", device="mps", mode="auto", environ=env)
    assert (flagged.model, flagged.device, flagged.mode) == ("flag/model", "mps", "auto")
    assert Settings.resolve(data_dir=tmp_path / "elsewhere", environ=env).model == "env/model"
    assert Settings.resolve(data_dir=tmp_path / "elsewhere", environ={}).model == DEFAULT_MODEL  # saved per folder


def test_cli_settings_save_is_used_by_the_next_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from photosort.cli import main

    data = tmp_path / "data"
    assert main(["settings", "--model", "my/model", "--device", "cpu", "--data-dir", str(data), "--save", "--json"]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["saved_to"] == str(data / SETTINGS_FILE) and saved["model"] == "my/model"
    assert main(["settings", "--data-dir", str(data), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["model"], shown["device"], shown["saved_to"]) == ("my/model", "cpu", None)
    assert shown["library"] == str(data / "library.db") and shown["cache"] == str(data / "cache.db")
    assert main(["settings", "--data-dir", str(data), "--model", "other/model", "--json"]) == 0  # a flag, not saved
    assert json.loads(capsys.readouterr().out)["model"] == "other/model"
    assert read_saved_choices(data)["model"] == "my/model"


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'"text"', b"", b"\xff\xfe\x00", b'{"version": "x"}',
                                     b'{"version": [2], "model": 5}', b'{"version": 1e400}'])
def test_a_broken_settings_file_is_ignored_with_the_defaults(tmp_path: Path, content: bytes) -> None:
    (tmp_path / SETTINGS_FILE).write_bytes(content)
    resolved = Settings.resolve(data_dir=tmp_path, environ={})
    assert (resolved.model, resolved.device, resolved.mode) == (DEFAULT_MODEL, "auto", "auto")
    save_choices(tmp_path, "fixed/model", "cpu", "auto")  # saving again repairs it
    assert read_saved_choices(tmp_path)["model"] == "fixed/model"


def test_invalid_saved_values_fall_back_to_the_defaults_one_by_one(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"version": 1, "model": "  kept/model ", "device": "toaster",
                                                      "precision": 16}))
    assert read_saved_choices(tmp_path) == {"model": "kept/model"}
    resolved = Settings.resolve(data_dir=tmp_path, environ={})
    assert (resolved.model, resolved.device, resolved.mode) == ("kept/model", "auto", "auto")


def test_a_newer_settings_file_is_read_but_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    newer = {"version": SETTINGS_VERSION + 1, "model": "newer/model", "device": "cpu", "theme": "dark"}
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(newer))
    before = (tmp_path / SETTINGS_FILE).read_bytes()
    assert Settings.resolve(data_dir=tmp_path, environ={}).model == "newer/model"
    with pytest.raises(StoreError, match="newer photosort"):
        save_choices(tmp_path, "mine/model", "cpu", "auto")
    assert (tmp_path / SETTINGS_FILE).read_bytes() == before
    from photosort.cli import main

    assert main(["settings", "--model", "mine/model", "--data-dir", str(tmp_path), "--save"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "newer photosort" in err and "Traceback" not in err
    assert (tmp_path / SETTINGS_FILE).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [SETTINGS_FILE]  # no temporary file left behind


def test_saving_keeps_keys_this_version_does_not_know(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"version": 1, "window": {"width": 900}}))
    save_choices(tmp_path, "m", "cpu", "auto")
    document = json.loads((tmp_path / SETTINGS_FILE).read_text())
    assert document["window"] == {"width": 900} and document["model"] == "m"


# ---- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("message", "kind", "action"), [
    ("database or disk is full", DiskFullError, Action.RETRY),
    ("database is locked", StoreBusyError, Action.RETRY),
    ("database disk image is malformed", StoreDamagedError, Action.SETTINGS),
    ("file is not a database", StoreDamagedError, Action.SETTINGS),
    ("attempt to write a readonly database", StoreError, Action.SETTINGS),
])
def test_sqlite_errors_are_translated_once(message: str, kind: type, action: Action) -> None:
    error = database_error(sqlite3.OperationalError(message), Path("/data/cache.db"), "write")
    assert type(error) is kind and error.action is action
    assert "\n" not in str(error) and "cache.db" in str(error)


def test_a_full_disk_says_so_and_that_finished_work_is_kept() -> None:
    message = user_message(OSError(errno.ENOSPC, "No space left on device", "/data/cache.db"))
    assert "disk is full" in message.text and "kept" in message.text
    assert message.action is Action.RETRY and message.expected
    assert user_message(sqlite3.OperationalError("database or disk is full")).text.count("disk is full") == 1
    assert isinstance(os_error(OSError(errno.EDQUOT, "Disk quota exceeded"), "copy x.jpg"), DiskFullError)


def test_access_denied_and_other_os_errors_name_what_failed() -> None:
    denied = os_error(PermissionError(errno.EACCES, "Permission denied"), "write the cache", "/data/cache.db")
    assert isinstance(denied, AccessDeniedError) and "/data/cache.db" in str(denied) and "permission" in str(denied)
    other = os_error(OSError(errno.EIO, "Input/output error"), "read IMG_1.JPG")
    assert type(other) is PhotosortError and str(other) == "Cannot read IMG_1.JPG: Input/output error."


def test_an_unexpected_failure_points_at_the_log() -> None:
    message = user_message(KeyError("boom"))
    assert not message.expected and message.action is Action.REPORT and "KeyError" in message.text
    assert user_message(StoreBusyError("busy")).text == "busy"


def test_a_folder_in_place_of_the_settings_file_gives_the_defaults_and_a_message_on_save(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).mkdir()
    assert Settings.resolve(data_dir=tmp_path, environ={}).model == DEFAULT_MODEL
    with pytest.raises(PhotosortError, match="Cannot save the settings") as error:
        save_choices(tmp_path, "m", "cpu", "auto")
    assert "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SETTINGS_FILE]  # no temporary file left behind
