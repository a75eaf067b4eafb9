"""Getting a Hugging Face model onto this computer before it is loaded: shown, cancellable, resumable.

:func:`model_folder` turns the model setting into a folder that ``from_pretrained``
loads without the network:

* A local folder given as the model is used as it is; nothing else happens.
* A hub id whose files are already in the Hugging Face cache (config, tokenizer,
  weights) is its snapshot folder there, found with no network call at all: a
  model downloaded once works offline, and its vectors never change under the
  user because the hub moved on.
* Otherwise, online, only what ``from_pretrained`` reads is downloaded: the
  JSON configs, the tokenizer files and the weights in safetensors (a ``.bin``
  only where a repository has no safetensors), never the TensorFlow, Flax or
  duplicate PyTorch weights. huggingface_hub lists them with their sizes
  (``snapshot_download(dry_run=True)``); they are fetched one at a time,
  smallest first, reporting ``Progress("downloading", bytes, total, rate, eta)``
  through the core's :class:`~photosort.core.progress.Reporter`.

Resuming. huggingface_hub 2.x writes each download to a temporary file unique
to that call and deletes it when the call fails, so its next call starts from
zero (it does retry and resume with a Range request *within* one call). Here
each file goes through the library's own ``http_get`` into
``blobs/<etag>.incomplete`` in the cache, which is kept when the download is
cancelled or fails, and the next run continues it with a Range request. A
finished file is checked against its SHA-256 (LFS files: the weights) before it
takes its blob name; ``hf_hub_download`` then finds the blob and only links it
into the snapshot, so the cache is laid out by the library itself.

Cancelling. The bytes arrive on a helper thread while the caller's thread
reports them and watches the :class:`~photosort.core.progress.CancelToken`, so
cancelling returns within a tenth of a second even while the network stalls.
The helper stops at its next chunk and keeps what it wrote; the library's
per-blob file lock keeps a rerun (or another photosort) from writing to the
same partial file before the helper has let go.

Every failure leaves as one :class:`~photosort.core.errors.PhotosortError`
line: offline without the model, no such model, no connection, the connection
lost, a full disk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .errors import CHOOSE_MODEL, Cancelled, DiskFullError, ModelDownloadError, ModelLoadError, PhotosortError, os_error
from .progress import CancelToken, ProgressFn, Reporter, check_cancel, is_cancelled
from .wording import byte_size

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_MODEL_BYTES = {"openai/clip-vit-base-patch32": 605_000_000}  # said when offline: what the first run costs
# What from_pretrained reads from a CLIP folder. ``*.bin`` only as pytorch_model*.bin, and dropped where
# safetensors exist (see _wanted); files in subfolders are never needed.
PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "pytorch_model*.bin"]
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "vocab.json", "tokenizer.model")
CHUNK_BYTES = 1 << 20  # huggingface_hub reads 10 MB chunks: progress and a cancel would be seen only every 10 MB
POLL_S = 0.1  # how often the caller's thread reports bytes and looks at the cancel token
_SHA256 = re.compile(r"[0-9a-f]{64}")


# ---- where the hub is, read when used ------------------------------------------------------------------------
# huggingface_hub.constants reads HF_HOME, HF_HUB_CACHE, HF_ENDPOINT and HF_HUB_OFFLINE once, at import. photosort
# reads them when it needs them and passes the cache folder and the endpoint to every call, so what the environment
# says now is what is used.
def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "on", "yes", "true")


def hub_cache() -> Path:
    """The Hugging Face cache folder (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)."""
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(cache)))


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_reason(endpoint: str | None = None) -> str | None:
    """Why no network call may be made now, or None.

    HF_HUB_OFFLINE (as set now, or when huggingface_hub was imported: the
    library then refuses every request) says so; so does a hub name that does
    not resolve — asking the library would retry for half a minute first.
    """
    from huggingface_hub import constants

    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE") or constants.HF_HUB_OFFLINE:
        return "offline mode is on (HF_HUB_OFFLINE)"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # the proxy resolves names; only trying tells
    url = urlparse(endpoint or hub_endpoint())
    host = url.hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, url.port or (443 if url.scheme == "https" else 80))
    except OSError:
        return f"{host} cannot be reached (no network?)"
    return None


# ---- the one entry point -------------------------------------------------------------------------------------
def model_folder(name: str, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Path:
    """A folder holding the model ``name`` (a local folder or a hub id), downloading what is missing first.

    Raises :class:`Cancelled` when ``cancel`` is set (what arrived is kept for
    the next run), a :class:`PhotosortError` with the fix otherwise.
    """
    folder = Path(name).expanduser()
    if folder.is_dir():
        return folder
    _check_hub_id(name)
    cache = hub_cache()
    cached = cached_snapshot(name, cache)
    if cached is not None:
        return cached
    endpoint = hub_endpoint()
    reason = offline_reason(endpoint)
    if reason is not None:
        raise ModelLoadError(not_downloaded(name, reason))
    return _Download(name, cache, endpoint, progress, cancel).run()


def model_file(name: str, filename: str) -> Path:
    """One small file of a hub model (its config.json): from the cache, else downloaded alone (no progress)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache

    _check_hub_id(name)
    cache = hub_cache()
    cached = try_to_load_from_cache(name, filename, cache_dir=cache)
    if isinstance(cached, str):
        return Path(cached)
    endpoint = hub_endpoint()
    reason = offline_reason(endpoint)
    if reason is not None:
        raise ModelLoadError(not_downloaded(name, reason))
    try:
        # One quick look first: on a connection error hf_hub_download would retry for half a minute.
        get_hf_file_metadata(hf_hub_url(name, filename, endpoint=endpoint), endpoint=endpoint, retry_on_errors=False)
        return Path(hf_hub_download(name, filename, cache_dir=cache, endpoint=endpoint, tqdm_class=_Quiet))
    except (Cancelled, PhotosortError):
        raise
    except Exception as exc:
        translated = explain(exc, name, cache, endpoint)
        if translated is None:
            raise
        raise translated from exc


def cached_snapshot(name: str, cache: Path | None = None) -> Path | None:
    """The model's snapshot folder in the cache when it holds a config, weights and a tokenizer; no network call."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(name, "config.json", cache_dir=cache or hub_cache())
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    if not any((folder / f).is_file() for f in WEIGHTS) or not any((folder / f).is_file() for f in TOKENIZER):
        return None  # a download cancelled part way (the weights come last)
    for index in folder.glob("*.index.json"):
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except (OSError, ValueError):
            return None
        if not all((folder / shard).is_file() for shard in shards):
            return None
    return folder


def on_this_computer(name: str) -> bool:
    """Whether loading the model ``name`` needs no download: a local folder, or a hub model whose files are cached."""
    if Path(name).expanduser().is_dir():
        return True
    try:
        return cached_snapshot(name) is not None
    except ValueError:  # not a hub id either (huggingface_hub's validation error is a ValueError)
        return False


def not_downloaded(name: str, reason: str) -> str:
    """The one line for "offline and the model was never downloaded", in the window's and the CLI's terms."""
    size = DEFAULT_MODEL_BYTES.get(name)
    once = f"once so photosort can download it ({byte_size(size)}, kept for next time)" if size else \
        "once so photosort can download it (it is kept for next time)"
    return (f"The CLIP model '{name}' is not on this computer yet and cannot be downloaded now: {reason}. "
            f"Connect to the internet {once}, or use a model folder you already have ({CHOOSE_MODEL}).")


def _check_hub_id(name: str) -> None:
    """A name that can only be a path (and is not a folder here), or no valid hub id, is said so at once."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.startswith((os.sep, ".", "~")) or os.path.splitdrive(name)[0] or (os.sep != "/" and os.sep in name):
        raise ModelLoadError(f"Model folder not found: {name}. Check the path, or use a Hugging Face model id.")
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelLoadError(f"'{name}' is neither a model folder on this computer nor a Hugging Face model id "
                             "(like openai/clip-vit-base-patch32).") from None


# ---- one download ---------------------------------------------------------------------------------------------
@dataclass
class _File:
    """One file to fetch: where it comes from and where its bytes go in the cache."""

    filename: str
    url: str
    headers: dict[str, str]
    size: int | None
    etag: str
    blob: Path
    lock: Path

    @property
    def partial(self) -> Path:
        return self.blob.with_name(self.blob.name + ".incomplete")

    def partial_bytes(self) -> int:
        try:
            return min(self.partial.stat().st_size, self.size if self.size is not None else 1 << 62)
        except OSError:
            return 0


class _Download:
    """Download the files ``from_pretrained`` needs of one hub model into the cache; see the module's text."""

    def __init__(self, name: str, cache: Path, endpoint: str, progress: ProgressFn | None,
                 cancel: CancelToken | None) -> None:
        self.name, self.cache, self.endpoint = name, cache, endpoint
        self.progress, self.cancel = progress, cancel
        self.done = self.total = 0

    def run(self) -> Path:
        try:
            return self._run()
        except (Cancelled, PhotosortError):
            raise
        except Exception as exc:
            translated = explain(exc, self.name, self.cache, self.endpoint, self.done, self.total)
            if translated is None:
                raise
            raise translated from exc

    def _run(self) -> Path:
        from huggingface_hub import hf_hub_download, snapshot_download

        listing = snapshot_download(self.name, cache_dir=self.cache, endpoint=self.endpoint, allow_patterns=PATTERNS,
                                    dry_run=True, tqdm_class=_Quiet)
        wanted = _wanted(listing)
        if not any(Path(f.filename).name in WEIGHTS or f.filename.endswith(".safetensors") for f in wanted):
            raise ModelLoadError(f"The Hugging Face model '{self.name}' has no weights photosort can load "
                                 f"(model.safetensors or pytorch_model.bin). Choose a CLIP model ({CHOOSE_MODEL}).")
        commit = wanted[0].commit_hash
        to_link = sorted((f for f in wanted if not os.path.exists(f.local_path)), key=lambda f: f.file_size or 0)
        check_cancel(self.cancel)
        files = {f.filename: self._describe(f.filename, commit, f.file_size) for f in to_link if f.will_download}
        self.total = sum(f.size or 0 for f in files.values())
        already = self.done = sum(f.partial_bytes() for f in files.values())
        self._check_space(self.total - already)
        reporter = Reporter("downloading", self.total, self.progress)
        reporter.restart_rate(already)
        if files:
            reporter.update(already, force=True)
        finished = 0
        for info in to_link:
            check_cancel(self.cancel)
            file = files.get(info.filename)
            if file is not None and not file.blob.exists():
                self._fetch(file, lambda got, base=finished: self._report(reporter, base + got))
            # The blob is there now: the library makes the snapshot's link (and refs/main) as after its own download.
            hf_hub_download(self.name, info.filename, revision=commit, cache_dir=self.cache, endpoint=self.endpoint,
                            tqdm_class=_Quiet)
            if file is not None:
                finished += file.size or 0
                self._report(reporter, finished)
        if files:
            reporter.update(self.total, force=True)
            log.info("downloaded %s (%s) into %s", self.name, byte_size(self.total), self.cache)
        return Path(self.cache, _repo_folder(self.name), "snapshots", commit)

    def _report(self, reporter: Reporter, done: int) -> None:
        self.done = done
        reporter.update(done)

    def _describe(self, filename: str, commit: str, listed_size: int | None) -> _File:
        """Where a file comes from (the library's HEAD: its location, ETag and size) and where it goes."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url
        from huggingface_hub.utils import build_hf_headers

        url = hf_hub_url(self.name, filename, revision=commit, endpoint=self.endpoint)
        meta = get_hf_file_metadata(url, endpoint=self.endpoint)
        if not meta.etag:
            raise ModelDownloadError(f"Could not download the CLIP model '{self.name}': {urlparse(url).hostname} did "
                                     "not say which version of its files it serves (no ETag). Check HF_ENDPOINT.")
        headers = build_hf_headers()
        location = meta.location or url
        if urlparse(location).netloc != urlparse(url).netloc:
            headers.pop("authorization", None)  # a signed CDN address: the token stays with the hub
        folder = _repo_folder(self.name)
        return _File(filename, location, headers, meta.size if meta.size is not None else listed_size, meta.etag,
                     self.cache / folder / "blobs" / meta.etag, self.cache / ".locks" / folder / f"{meta.etag}.lock")

    def _check_space(self, needed: int) -> None:
        probe = self.cache
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            return
        if needed > free:
            raise DiskFullError(f"Not enough free space to download the CLIP model '{self.name}': it needs "
                                f"{byte_size(needed)} in {self.cache} and {byte_size(free)} is free. Free some space "
                                "(or set HF_HOME to a folder on a larger disk) and try again.")

    def _fetch(self, file: _File, report: Callable[[int], None]) -> None:
        """Bring one file's bytes in on a helper thread; report them and watch the cancel token here."""
        incoming = _Incoming()
        thread = threading.Thread(target=_receive, args=(file, incoming), name=f"photosort-download-{file.filename}",
                                  daemon=True)
        thread.start()
        while not incoming.finished.wait(POLL_S):
            report(incoming.received)
            if is_cancelled(self.cancel):
                incoming.stop = True  # the helper stops at its next chunk and keeps the partial file
                raise Cancelled()
        if incoming.error is not None:
            raise incoming.error


def _wanted(listing: list) -> list:
    """The files of a dry run that from_pretrained reads: top-level ones, .bin weights only without safetensors."""
    files = [f for f in listing if "/" not in f.filename]
    if any(f.filename.endswith(".safetensors") for f in files):
        files = [f for f in files if not f.filename.endswith(".bin")]
    return files


def _repo_folder(name: str) -> str:
    from huggingface_hub.file_download import repo_folder_name

    return repo_folder_name(repo_id=name, repo_type="model")


@dataclass
class _Incoming:
    """One file's bytes arriving on the helper thread, read from the caller's."""

    received: int = 0  # bytes of the file on disk so far
    stop: bool = False  # set by the caller's thread: stop at the next chunk
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def bar(self) -> type:
        """A class huggingface_hub's http_get can use as its tqdm: it counts bytes and stops when asked."""
        incoming = self

        class Bytes:
            def __init__(self, *args: object, initial: int = 0, **kwargs: object) -> None:
                incoming.received = int(initial or 0)  # what the file already held (0 when a Range was refused)

            def __enter__(self) -> Bytes:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def update(self, n: float | None = 1) -> None:
                if incoming.stop:
                    raise Cancelled()  # before the chunk is written: the partial file stays a clean prefix
                incoming.received += int(n or 0)

            def close(self) -> None:
                return None

        return Bytes


def _receive(file: _File, incoming: _Incoming) -> None:
    """The helper thread: append the file's missing bytes to its partial file; when complete, verify and name it."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock

    try:
        file.lock.parent.mkdir(parents=True, exist_ok=True)
        file.blob.parent.mkdir(parents=True, exist_ok=True)
        with WeakFileLock(file.lock):  # an earlier, cancelled helper may still hold it for one chunk
            if incoming.stop or file.blob.exists():
                return
            constants.DOWNLOAD_CHUNK_SIZE = CHUNK_BYTES  # read by http_get at each call
            with open(file.partial, "ab") as out:
                have = out.tell()
                if file.size is not None and have > file.size:
                    out.truncate(0)
                    have = 0
                incoming.received = have
                http_get(file.url, out, resume_size=have, headers=dict(file.headers), expected_size=file.size,
                         displayed_filename=file.filename, tqdm_class=incoming.bar)
            _verify(file)
            os.replace(file.partial, file.blob)
    except BaseException as exc:  # handed to the caller's thread, which raises it
        incoming.error = exc
    finally:
        incoming.finished.set()


def _verify(file: _File) -> None:
    """A resumed file is two downloads spliced: check it against the hub's SHA-256 (LFS files) before using it."""
    if not _SHA256.fullmatch(file.etag):
        return  # a small git file: its ETag is not a plain content hash, and the library checked its size
    digest = hashlib.sha256()
    with open(file.partial, "rb") as data:
        while block := data.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != file.etag:
        file.partial.unlink(missing_ok=True)
        raise ModelDownloadError(f"The downloaded {file.filename} did not match its checksum, so it was deleted; "
                                 "try again to download it afresh.")


class _Quiet:
    """A progress bar that shows nothing: huggingface_hub's own bars would write over the CLI's and the log."""

    n = 0
    total = 0
    format_dict: dict = {}  # noqa: RUF012 - read, never written

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _nothing  # update, refresh, close, set_description, set_postfix_str, ...


def _nothing(*args: object, **kwargs: object) -> None:
    return None


# ---- what a failure says ---------------------------------------------------------------------------------------
def explain(exc: BaseException, name: str, cache: Path, endpoint: str, done: int = 0,
            total: int = 0) -> PhotosortError | None:
    """A huggingface_hub / network / disk failure while getting the model, as the one line the user reads.

    None for anything else: the caller re-raises it (a bug to report, not a message to word).
    """
    import httpx2
    from huggingface_hub.errors import (
        DryRunError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    while isinstance(exc, DryRunError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the dry run wraps why the hub could not be asked
    host = urlparse(endpoint).hostname or endpoint
    choose = CHOOSE_MODEL
    if isinstance(exc, GatedRepoError):
        return ModelLoadError(f"The Hugging Face model '{name}' is gated: accept its terms on {host} and log in "
                              f"(hf auth login), or choose another model ({choose}).")
    if isinstance(exc, RepositoryNotFoundError):
        return ModelLoadError(f"There is no model '{name}' on {host} (or it is private). Check the name, or choose "
                              f"a local model folder ({choose}).")
    if isinstance(exc, OfflineModeIsEnabled):
        return ModelLoadError(not_downloaded(name, "offline mode is on (HF_HUB_OFFLINE)"))
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return os_error(exc, f"download the CLIP model '{name}'", cache)
    if isinstance(exc, httpx2.ConnectError):
        reason = f"cannot connect to {host} ({_first_line(exc)})"
    elif isinstance(exc, httpx2.TimeoutException):
        reason = f"{host} did not answer in time"
    elif isinstance(exc, httpx2.TransportError):
        reason = f"the connection to {host} was lost"
    elif isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        reason = f"{host} answered with an error ({status})" if status else f"{host} failed ({_first_line(exc)})"
    elif isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        reason = "the connection was lost before the file was complete"
    elif isinstance(exc, LocalEntryNotFoundError):
        reason = f"{host} cannot be reached"
    elif isinstance(exc, OSError):
        return os_error(exc, f"download the CLIP model '{name}'", cache)
    else:
        return None
    kept = f" ({byte_size(done)} of {byte_size(total)} arrived and are kept)" if done else ""
    return ModelDownloadError(f"Could not download the CLIP model '{name}': {reason}{kept}. Check the internet "
                              "connection and try again; the download continues where it stopped.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:120] if text else type(exc).__name__
