"""A Hugging Face hub on 127.0.0.1 for tests: one model repository served the way huggingface_hub 2.x asks for it.

What the library calls (read in huggingface_hub/_snapshot_download.py, file_download.py, hf_api.py):

* ``GET /api/models/{repo}/revision/{revision}``: the repository's info; its ``sha`` is the commit.
* ``GET /api/models/{repo}/tree/{commit}?recursive=True``: the files with size, git ``oid`` and, for LFS files,
  ``lfs.oid`` (SHA-256).
* ``HEAD /{repo}/resolve/{revision}/{file}``: ``X-Repo-Commit``, ``ETag`` (the git blob id) and ``Content-Length``;
  LFS files also ``X-Linked-Etag`` (their SHA-256) and ``X-Linked-Size``.
* ``GET`` of the same address, honouring ``Range: bytes=N-`` with ``206`` and ``Content-Range``.
* ``404`` with ``X-Error-Code: RepoNotFound`` / ``EntryNotFound`` for what does not exist.

Tests steer it: ``delay_s`` between chunks (a slow line), ``hold_at`` (stop sending a file at a byte offset until
``release`` is set: a stalled transfer), ``cut_at`` (close the connection at an offset, once, and then refuse every
request while ``down`` stays set: the line dropped). It records every request and the bytes sent per file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "photosort-tests/tiny-clip"
LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack")


@dataclass
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class FakeHub:
    """The repository's files (name -> bytes) and the knobs the tests turn; ``url`` once started."""

    files: dict[str, bytes]
    repo: str = REPO
    chunk: int = 16 * 1024
    delay_s: float = 0.0
    hold_at: dict[str, int] = field(default_factory=dict)
    cut_at: dict[str, int] = field(default_factory=dict)
    down: bool = False
    requests: list[Request] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: set = field(default_factory=set)

    # ---- life -----------------------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-hub", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and end the kept-alive connections too: from now on, connecting is refused."""
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(2)
            self._connections.clear()

    # ---- what the tests read ----------------------------------------------------------------------------------
    def gets(self, filename: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/resolve/" + COMMIT + "/" + filename)]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def count(self, filename: str, n: int) -> None:
        with self._lock:
            self.sent[filename] = self.sent.get(filename, 0) + n

    # ---- what the hub says about its files ----------------------------------------------------------------------
    @staticmethod
    def git_oid(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def tree(self) -> list[dict]:
        entries = []
        for name, data in sorted(self.files.items()):
            entry = {"type": "file", "path": name, "size": len(data), "oid": self.git_oid(data)}
            if name.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        return entries

    def headers_for(self, name: str) -> dict[str, str]:
        data = self.files[name]
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{self.git_oid(data)}"', "Accept-Ranges": "bytes"}
        if name.endswith(LFS_SUFFIXES):
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
            headers["X-Linked-Size"] = str(len(data))
        return headers


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away (a cancelled download, a test that ended) is no news


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    # ---- routing ------------------------------------------------------------------------------------------------
    def _serve(self, body: bool) -> None:
        fake = self.fake
        path = unquote(urlparse(self.path).path)
        fake.record(Request(self.command, path, self.headers.get("Range")))
        if fake.down:
            self.close_connection = True
            self.connection.shutdown(2)  # the line is down: no answer at all
            return
        api = f"/api/models/{fake.repo}/"
        resolve = f"/{fake.repo}/resolve/"
        if path.startswith(api + "revision/"):
            return self._json({"id": fake.repo, "sha": COMMIT, "private": False,
                               "siblings": [{"rfilename": n} for n in sorted(fake.files)]}, body)
        if path.startswith(api + "tree/"):
            return self._json(fake.tree(), body)
        if path.startswith(resolve):
            _revision, _, filename = path[len(resolve):].partition("/")
            if filename not in fake.files:
                return self._error(404, "EntryNotFound")
            return self._file(filename, body)
        return self._error(404, "RepoNotFound")

    def _json(self, document: object, body: bool) -> None:
        data = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _error(self, status: int, code: str) -> None:
        data = b'{"error": "not found"}'
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _file(self, name: str, body: bool) -> None:
        fake = self.fake
        data = fake.files[name]
        start = 0
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
            start = int(wanted[len("bytes="):-1])
        if start >= len(data) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        for key, value in fake.headers_for(name).items():
            self.send_header(key, value)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not body:
            return
        position = start
        while position < len(data):
            hold = fake.hold_at.get(name)
            if hold is not None and position >= hold and not fake.release.is_set():
                fake.held.set()
                fake.release.wait(30)
            cut = fake.cut_at.get(name)
            end = min(len(data), position + fake.chunk)
            if cut is not None and position < cut <= end:
                end = cut
            try:
                self.wfile.write(data[position:end])
                self.wfile.flush()
            except OSError:
                return
            fake.count(name, end - position)
            position = end
            if cut is not None and position == cut:
                del fake.cut_at[name]
                fake.down = True  # the connection dropped, and the line stays down until the test says
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fake.delay_s:
                time.sleep(fake.delay_s)


def repo_files(model_folder: Path) -> dict[str, bytes]:
    """A tiny model folder as a hub repository, with the files from_pretrained does not need, as real CLIP repos have."""
    files = {p.name: p.read_bytes() for p in sorted(model_folder.iterdir()) if p.is_file()}
    weights = files["model.safetensors"]
    files["pytorch_model.bin"] = b"\x00" * len(weights)  # the same weights again, in the old format
    files["tf_model.h5"] = b"\x01" * 4096
    files["README.md"] = b"# tiny clip\n"
    files["onnx/config.json"] = b"{}"  # a subfolder from_pretrained never reads
    return files


def point_at(hub_url: str, home: Path, monkeypatch: pytest.MonkeyPatch, offline: bool = False) -> None:
    """HF_ENDPOINT and HF_HOME for this test, as photosort reads them (now) and as huggingface_hub read them (at import).

    conftest.py set HF_HUB_OFFLINE=1 before huggingface_hub was imported, so the library's own constant says offline
    and its HTTP session would refuse every request: that constant is set here too, with the others it read once.
    """
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub_url)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "ENDPOINT", hub_url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub_url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", constants.DOWNLOAD_CHUNK_SIZE)  # photosort lowers it


def serve(model_folder: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    """A started fake hub with the tiny model, HF_* pointed at it, and small chunks (the weights come in ~30).

    The caller stops it (``FakeHub.stop``) when the test ends.
    """
    from photosort.core import download

    hub = FakeHub(repo_files(model_folder)).start()
    point_at(hub.url, home, monkeypatch)
    monkeypatch.setattr(download, "CHUNK_BYTES", 8 * 1024)
    return hub
