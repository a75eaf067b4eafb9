"""The first run: the model comes from a hub (here a fake one on 127.0.0.1), shown, cancellable, resumable, offline-safe.

The fake hub (tests/fake_hub.py) answers the calls huggingface_hub 2.x makes for
``snapshot_download`` and ``hf_hub_download``, so the real library code runs
against it: model info, file tree, HEAD with ETag / X-Repo-Commit / Content-Length,
GET with Range. It can stall a transfer at a byte offset until released, or drop
the connection and stay down; it records every request, so the tests check what
went over the wire (a Range request on a rerun, nothing at all when the model is
cached) rather than timings.
"""

from __future__ import annotations

import errno
import hashlib
import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fake_hub import REPO, FakeHub, point_at, serve

from photosort import cli
from photosort.core import download
from photosort.core import progress as progress_mod
from photosort.core.config import Settings
from photosort.core.engine import Engine
from photosort.core.errors import (
    Action,
    Cancelled,
    DiskFullError,
    Face,
    ModelDownloadError,
    ModelLoadError,
    user_message,
)
from photosort.core.model import load_encoder, model_identity
from photosort.core.progress import CancelToken, Progress

NEEDED = ("config.json", "merges.txt", "model.safetensors", "preprocessor_config.json", "tokenizer.json",
          "tokenizer_config.json", "vocab.json")
NOT_NEEDED = ("pytorch_model.bin", "tf_model.h5", "README.md", "onnx/config.json")
WEIGHTS = "model.safetensors"


@pytest.fixture
def online(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hub = serve(tiny_model, tmp_path / "hf", monkeypatch)
    monkeypatch.setattr(progress_mod, "PROGRESS_INTERVAL_S", 0.0)  # every report reaches the test
    yield hub
    hub.stop()


@pytest.fixture
def hub_settings(tmp_path: Path) -> Settings:
    return Settings(model=REPO, device="cpu", data_dir=tmp_path / "data", mode="fp32")


def needed_bytes(hub: FakeHub) -> int:
    return sum(len(hub.files[name]) for name in NEEDED)


def partial_files(home: Path) -> list[Path]:
    return sorted(home.glob("hub/models--*/blobs/*.incomplete"))


def test_the_first_run_downloads_only_what_from_pretrained_needs_with_byte_progress(online: FakeHub, hub_settings,
                                                                                   tiny_model: Path) -> None:
    seen: list[Progress] = []
    encoder = load_encoder(hub_settings, progress=seen.append)

    assert {p.phase for p in seen} == {"downloading"}
    done = [p.done for p in seen]
    assert done == sorted(done) and len(set(done)) >= len(NEEDED)  # climbs file by file (and within the weights)
    assert seen[-1].done == seen[-1].total == needed_bytes(online)
    assert all(p.total == needed_bytes(online) for p in seen)
    fetched = {r.path.rsplit("/", 1)[-1] for r in online.requests if r.method == "GET" and "/resolve/" in r.path}
    assert fetched == set(NEEDED)  # not the .bin, .h5, README or a subfolder's files
    assert all(not online.gets(name) for name in NOT_NEEDED)

    # It loads and embeds, and the vectors are the tiny model's own: every byte arrived intact.
    reference = load_encoder(Settings(model=str(tiny_model), device="cpu", mode="fp32"))
    texts = ["a photo of a cat", "a receipt"]
    np.testing.assert_allclose(encoder.embed_texts(texts), reference.embed_texts(texts), atol=1e-6)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(encoder.embed_pixels(pixels), reference.embed_pixels(pixels), atol=1e-5)
    assert encoder.model_key.startswith(f"{REPO}@")
    assert model_identity(hub_settings)[0] == encoder.model_key


def test_cancelling_a_stalled_download_returns_at_once_and_the_next_run_resumes_it(online: FakeHub, tmp_path: Path,
                                                                                  hub_settings) -> None:
    size = len(online.files[WEIGHTS])
    online.hold_at[WEIGHTS] = size // 2  # the line stalls half way through the weights
    small = needed_bytes(online) - size
    cancel = CancelToken()
    cancelled_at: list[float] = []

    def watch(p: Progress) -> None:
        if online.held.is_set() and p.done > small and not cancel.cancelled:  # some of the weights are written
            cancelled_at.append(time.monotonic())
            cancel.cancel()

    with pytest.raises(Cancelled):
        download.model_folder(REPO, progress=watch, cancel=cancel)
    returned = time.monotonic()
    assert cancelled_at and not online.release.is_set()  # it returned while the transfer was still stalled
    print(f"cancel returned {1000 * (returned - cancelled_at[0]):.0f} ms after the token was set")
    assert download.cached_snapshot(REPO) is None

    online.hold_at.clear()
    online.release.set()  # the stalled transfer goes on: the cancelled helper stops at its next chunk
    seen: list[Progress] = []
    folder = download.model_folder(REPO, progress=seen.append)

    first, again = online.gets(WEIGHTS)
    assert first.range is None and again.range is not None
    resumed_from = int(again.range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_from < size
    assert seen[0].done > 0  # the rerun starts from what was kept, not from zero
    assert hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest() == hashlib.sha256(online.files[WEIGHTS]).hexdigest()
    assert not partial_files(tmp_path / "hf")
    load_encoder(hub_settings).embed_texts(["a dog"])


@pytest.mark.slow  # huggingface_hub retries a dropped transfer five times, a second apart, before giving up
def test_a_dropped_connection_says_so_in_one_line_and_the_next_run_completes(online: FakeHub, tmp_path: Path,
                                                                            hub_settings) -> None:
    size = len(online.files[WEIGHTS])
    online.cut_at[WEIGHTS] = size // 3  # the connection drops there, and the line stays down

    with pytest.raises(ModelDownloadError) as failure:
        download.model_folder(REPO)
    message = user_message(failure.value)
    assert "Could not download the CLIP model" in message.text and "connection" in message.text
    assert "continues where it stopped" in message.text and "\n" not in message.text
    assert message.action == Action.RETRY and message.expected
    [kept] = partial_files(tmp_path / "hf")
    kept_bytes = kept.stat().st_size
    assert 0 < kept_bytes < size

    online.down = False  # back online
    folder = download.model_folder(REPO)
    assert online.gets(WEIGHTS)[-1].range == f"bytes={kept_bytes}-"
    assert (folder / WEIGHTS).read_bytes() == online.files[WEIGHTS]
    load_encoder(hub_settings).embed_texts(["a dog"])


def test_a_downloaded_model_is_used_offline_without_any_network_call(online: FakeHub, tmp_path: Path, hub_settings,
                                                                     make_photos, monkeypatch) -> None:
    download.model_folder(REPO)
    asked = len(online.requests)
    load_encoder(hub_settings)  # online, the cached model is used as it is: no request at all
    assert len(online.requests) == asked

    online.stop()
    point_at("http://127.0.0.1:9", tmp_path / "hf", monkeypatch, offline=True)  # no hub, and offline mode on
    engine = Engine(hub_settings)
    try:
        report = engine.index(make_photos(2))
    finally:
        engine.close()
    assert report.indexed == report.total > 0 and not report.failed
    assert len(online.requests) == asked


def test_offline_without_the_model_says_what_to_do_in_one_line(online: FakeHub, tmp_path: Path, hub_settings,
                                                               make_photos, monkeypatch, capsys) -> None:
    point_at(online.url, tmp_path / "hf", monkeypatch, offline=True)
    engine = Engine(hub_settings)
    with pytest.raises(ModelLoadError) as failure:
        engine.index(make_photos(1))
    engine.close()
    message = user_message(failure.value, Face.WINDOW)
    assert "not on this computer yet" in message.text and "offline" in message.text and "\n" not in message.text
    assert "Settings → Model" in message.text and "--model" not in message.text  # the window's own terms
    assert message.action == Action.SETTINGS
    assert online.requests == []  # offline means offline

    code = cli.main(["index", str(make_photos(1)), "--model", REPO, "--data-dir", str(tmp_path / "data")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--model FOLDER" in err and "Settings →" not in err


def test_no_connection_an_unknown_model_and_a_full_disk_each_read_as_one_line(online: FakeHub, hub_settings,
                                                                              make_photos, monkeypatch) -> None:
    with pytest.raises(ModelLoadError) as unknown:
        download.model_folder("photosort-tests/no-such-model")
    assert "There is no model 'photosort-tests/no-such-model'" in str(unknown.value)
    assert user_message(unknown.value).action == Action.SETTINGS

    with monkeypatch.context() as patch, pytest.raises(DiskFullError) as full:
        patch.setattr(download.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
        download.model_folder(REPO)
    assert "Not enough free space" in str(full.value) and "1.0 KB is free" in str(full.value)
    assert not online.gets(WEIGHTS)

    written = download.explain(OSError(errno.ENOSPC, "No space left on device"), REPO, Path("/cache"), "http://hub")
    assert isinstance(written, DiskFullError) and "the disk is full" in str(written)

    online.stop()  # connection refused: said at once (no half-minute of retries), from the engine's first look
    engine = Engine(hub_settings)
    started = time.monotonic()
    with pytest.raises(ModelDownloadError) as refused:
        engine.index(make_photos(1))
    engine.close()
    assert "cannot connect to 127.0.0.1" in str(refused.value)
    assert user_message(refused.value).action == Action.RETRY
    assert time.monotonic() - started < 20  # generous: a retry loop would take 30 s or more


def test_a_local_model_folder_never_asks_the_hub(online: FakeHub, tiny_model: Path) -> None:
    assert download.model_folder(str(tiny_model)) == tiny_model
    load_encoder(Settings(model=str(tiny_model), device="cpu"))
    assert online.requests == []


def test_the_cli_shows_the_download_and_ctrl_c_cancels_it_without_a_traceback(online: FakeHub, tmp_path: Path,
                                                                              make_photos, capsys) -> None:
    folder = make_photos(1)
    data = str(tmp_path / "data")
    online.hold_at[WEIGHTS] = len(online.files[WEIGHTS]) // 2

    def press_ctrl_c() -> None:
        if online.held.wait(30):
            signal.raise_signal(signal.SIGINT)  # handled on the main thread: the CLI's handler sets its token

    previous = signal.getsignal(signal.SIGINT)
    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        code = cli.main(["index", str(folder), "--model", REPO, "--data-dir", data])
    finally:
        presser.join()
        signal.signal(signal.SIGINT, previous)
    out, err = capsys.readouterr()
    assert code == cli.EXIT_CANCELLED
    assert "Traceback" not in err and "Cancelled" in out

    online.hold_at.clear()
    online.release.set()
    code = cli.main(["index", str(folder), "--model", REPO, "--data-dir", data, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["indexed"] == report["total"] > 0
    assert online.gets(WEIGHTS)[-1].range is not None  # the second run resumed the weights


def test_the_cli_bar_shows_bytes_rate_and_time_left(capsys) -> None:
    bar = cli.ProgressBar(True)
    bar.enabled = True  # stderr is not a terminal under pytest
    bar(Progress("downloading", 123_400_000, 605_000_000, 2_500_000.0, 192.6))
    line = capsys.readouterr().err
    assert "123 MB of 605 MB" in line and "2.5 MB/s" in line and "ETA 3:12" in line
