"""The frozen CLIP encoder: loading it, and turning pixels and text into unit vectors.

A hub id is first brought into the Hugging Face cache by
:mod:`photosort.core.download` (only the files needed, with byte progress,
cancellable, resumed after an interruption, never a network call once it is
there); ``from_pretrained`` then loads the local folder. A local model folder
is loaded as it is.

Precision is chosen per device at run time. Figures: ViT-B/32 stand-in, 2
cores of a Sapphire Rapids Xeon (AMX), batches of 16, ``photosort bench``;
"model" is the model alone, "indexing" the whole pipeline on 12 MP JPEGs:

* CUDA: fp16, batches sized to the GPU (up to 128), input through one reused
  pinned buffer.
* CPU, default (``auto``): bf16 where the CPU has native bf16 (AVX512-BF16 or
  AMX; model ~75 photos/s, indexing ~45) and fp32 elsewhere. bf16 vectors agree
  with fp32 ones to cosine >= 0.9999, so both share one cache key.
* CPU, ``fp32``: the strict reference (model ~25 photos/s, indexing ~21).
* CPU, ``fast`` (opt-in): the vision tower compiled with ``torch.compile``
  (inductor, frozen weights). Where bf16 is native it stays bf16 (model ~88
  photos/s; vectors as bf16's, same cache key); indexing barely gains (~45)
  because decoding the JPEGs is then most of the work. Elsewhere it goes int8:
  torchao's dynamic int8 compiled (optional extra ``photosort[fast]``), or,
  without torchao, torch.ao's deprecated ``quantize_dynamic``; both ran ~1.55x
  fp32 with oneDNN limited to AVX2. torchao int8 is not used where bf16 is
  native: it needed ~20 % more CPU time than compiled bf16 there. Compiling
  needs a C++ compiler and takes ~40 s the first time, ~10 s once inductor's
  cache (kept beside the photosort cache) is warm; when it fails the model
  runs uncompiled, with a notice.

The model identity (``model_key``) names the weights *and* the precision
family, so int8 vectors (cosine ~0.999 to exact ones) are never mixed with
exact ones in the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import Settings
from .decode import Preprocess
from .errors import CHOOSE_MODEL, ModelLoadError, PhotosortError
from .progress import CancelToken, ProgressFn
from .threads import cpu_cores, plan_threads

log = logging.getLogger(__name__)
# transformers imports torchao when it is installed (photosort[fast]); torchao then warns about optional
# kernels built for other torch versions, which photosort does not use.
logging.getLogger("torchao").setLevel(logging.ERROR)
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # torchao's enum registrations, same story

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Precision:
    """How the vision tower runs: a torch dtype or int8 weights (``quantized``), maybe compiled."""

    name: str  # "fp32", "bf16", "fp16", "bf16+compile", "int8", "int8+compile"
    dtype: torch.dtype
    quantized: bool = False
    compiled: bool = False

    @property
    def family(self) -> str:
        """Precisions whose embeddings agree to cosine >= 0.995 share a family (and a cache key)."""
        return "int8" if self.quantized else "exact"


FP32 = Precision("fp32", torch.float32)
BF16 = Precision("bf16", torch.bfloat16)
FP16 = Precision("fp16", torch.float16)
BF16_COMPILED = Precision("bf16+compile", torch.bfloat16, compiled=True)
INT8 = Precision("int8", torch.float32, quantized=True)
INT8_COMPILED = Precision("int8+compile", torch.float32, quantized=True, compiled=True)

CPU_BATCH = 16  # larger batches gain nothing on a few cores and delay the first results
CUDA_BATCH = 128


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 matrix work natively (x86: AVX512-BF16 or AMX; Arm: BF16).

    oneDNN also "supports" bf16 on older AVX-512 CPUs by emulation, which is
    slower than fp32, so on x86 the instruction sets are asked for directly.
    """
    if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
        checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
        try:
            return any(bool(check()) for check in checks if check is not None)
        except RuntimeError:
            return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_device(requested: str) -> tuple[torch.device, str | None]:
    """The device to run on and, when the request cannot be honoured, a message saying so."""
    if requested == "cuda" or requested == "auto":
        if torch.cuda.is_available():
            try:
                torch.zeros(1, device="cuda")
                return torch.device("cuda"), None
            except RuntimeError as exc:
                return torch.device("cpu"), f"CUDA failed ({str(exc).splitlines()[0][:120]}); running on the CPU instead."
        elif requested == "cuda":
            return torch.device("cpu"), "CUDA is not available on this machine; running on the CPU instead."
    if requested in ("mps", "auto"):
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps"), None
        if requested == "mps":
            return torch.device("cpu"), "Apple MPS is not available; running on the CPU instead."
    if requested not in ("auto", "cpu", "cuda", "mps"):
        return torch.device("cpu"), f"Unknown device {requested!r}; using the CPU."
    return torch.device("cpu"), None


def pick_precision(device: torch.device, mode: str) -> Precision:
    """The precision to *ask* for; loading may fall back within the same family (see ``_place``)."""
    if device.type == "cuda":
        return FP16
    if device.type == "mps" or mode == "fp32":
        return FP32
    if mode == "fast":
        return BF16_COMPILED if cpu_has_fast_bf16() else INT8_COMPILED
    return BF16 if cpu_has_fast_bf16() else FP32


MODE_NAMES = {"auto": "Automatic", "fp32": "Exact", "fast": "Fast"}
_PLACES = {"cpu": "this CPU", "cuda": "the GPU", "mps": "the Apple GPU"}


def available_devices() -> tuple[str, ...]:
    """The devices this computer can run the model on: "cpu", then "cuda" and "mps" where torch sees them.

    Only asks torch whether each is there and never puts anything on it, so the
    Settings dialog can call it without starting CUDA in the window's thread.
    """
    present = ["cpu"]
    if torch.cuda.is_available():
        present.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        present.append("mps")
    return tuple(present)


def planned_device(requested: str) -> torch.device:
    """The device ``pick_device`` would choose for ``requested``, judged by what is present alone.

    A GPU that is present but fails to start still falls back to the CPU when
    the engine loads (with a message); saying so beforehand would mean starting it.
    """
    present = available_devices()
    if requested == "auto":
        return torch.device(next((d for d in ("cuda", "mps") if d in present), "cpu"))
    return torch.device(requested if requested in present else "cpu")


def describe_precision(device_choice: str, mode: str) -> str:
    """What ``mode`` runs as with ``device_choice`` on this computer, in one short line for the Settings dialog.

    Read from ``pick_precision``, so the words cannot drift from what runs:
    e.g. "Automatic — bf16 on this CPU (same vectors as Exact, about 2x faster)".
    The figures are the README's (Performance).
    """
    device = planned_device(device_choice)
    precision = pick_precision(device, mode)
    runs = "int8" if precision.quantized else precision.name.replace("+compile", " + compiled")
    label = f"{MODE_NAMES.get(mode, mode)} — {runs} on {_PLACES[device.type]}"
    note = _precision_note(device, precision, mode)
    return f"{label} ({note})" if note else label


def _precision_note(device: torch.device, precision: Precision, mode: str) -> str:
    """Why pick this precision, or not: the cost or gain that matters to someone choosing."""
    automatic = pick_precision(device, "auto")
    if mode != "auto" and precision == automatic:
        return "the same as Automatic here"
    if precision == BF16:
        return "same vectors as Exact, about 2x faster"
    if precision == BF16_COMPILED:
        return "compiles 10–40 s each run, gains little"
    if precision.quantized:
        return "model ~1.5x faster; photos are indexed again"
    if precision == FP32 and automatic == BF16:
        return "about half the speed of Automatic"
    if device.type == "cpu" and mode == "auto":
        return "this CPU has no native bf16"
    return ""


def batch_size_for(device: torch.device) -> int:
    """Photos per model call: a few dozen on a CPU, hundreds on a GPU (fewer on a small one)."""
    if device.type != "cuda":
        return CPU_BATCH
    try:
        free, _ = torch.cuda.mem_get_info(device)
    except RuntimeError:
        return CPU_BATCH * 4
    # ViT-B/32 in fp16 needs well under 2 MB a photo; keep a wide margin for other programs.
    return int(max(CPU_BATCH, min(CUDA_BATCH, free // (16 * 2**20) // 16 * 16)))


class VisionTower(torch.nn.Module):
    """Normalised pixels -> projected image features: the part of CLIP that indexing runs."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.vision_model = model.vision_model
        self.visual_projection = model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values).pooler_output
        return self.visual_projection(pooled)


@dataclass
class ClipEncoder:
    """A loaded CLIP model ready to embed batches of preprocessed photos and text prompts."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    device: torch.device
    precision: Precision
    prep: Preprocess
    fingerprint: str
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    notices: list[str] = field(default_factory=list)
    batch_size: int = CPU_BATCH
    tower: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        # Fold /255, -mean and /std into one multiply-add on the uint8 batch.
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self.dim = int(self.model.config.projection_dim)
        if self.tower is None:
            self.tower = VisionTower(self.model)
        self._pinned: torch.Tensor | None = None

    @property
    def model_key(self) -> str:
        """Identity of the vectors this encoder makes: weights plus precision family."""
        return f"{key_name(self.name)}@{self.fingerprint}/{self.precision.family}"

    @torch.inference_mode()
    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """Unit-length image embeddings (float32, N x dim) for uint8 N x crop x crop x 3 RGB."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        parts = [self.embed_tensor(self._to_device(batch[i : i + self.batch_size]))
                 for i in range(0, len(batch), self.batch_size)]
        return torch.cat(parts).cpu().numpy()

    @torch.inference_mode()
    def embed_tensor(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unit embeddings (float32, on the device) for a uint8 N x H x W x 3 tensor already on the device."""
        n = pixels.shape[0]
        if self.precision.compiled and n < self.batch_size:
            # A compiled tower is specialised to one batch shape: pad rather than recompile.
            pad = pixels.new_zeros((self.batch_size - n, *pixels.shape[1:]))
            pixels = torch.cat([pixels, pad])
        x = pixels.permute(0, 3, 1, 2).float().mul_(self._scale).add_(self._shift)
        x = x.to(self.precision.dtype).contiguous()
        features = self.tower(x)[:n].float()
        return _normalise(features)

    def _to_device(self, batch: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        if self.device.type != "cuda":
            return tensor
        # Reuse one pinned buffer: pinning afresh each batch costs more than the copy saves.
        if self._pinned is None or self._pinned.shape[0] < tensor.shape[0] or self._pinned.shape[1:] != tensor.shape[1:]:
            self._pinned = torch.empty((max(self.batch_size, tensor.shape[0]), *tensor.shape[1:]),
                                       dtype=torch.uint8).pin_memory()
        staged = self._pinned[: tensor.shape[0]]
        staged.copy_(tensor)
        # The buffer is reused only after this batch's results came back, so the async copy is safe.
        return staged.to(self.device, non_blocking=True)

    @torch.inference_mode()
    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Unit-length text embeddings (float32, N x dim), one per prompt."""
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        pooled = self.model.text_model(**tokens).pooler_output
        features = self.model.text_projection(pooled).float()
        return _normalise(features).cpu().numpy()


def _normalise(features: torch.Tensor) -> torch.Tensor:
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def load_encoder(settings: Settings, reserve_cores: int = 0, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None) -> ClipEncoder:
    """Load the CLIP model named in ``settings``; ModelLoadError with a fix when that fails.

    A hub model not yet on this computer is downloaded first, reporting
    ``Progress("downloading", bytes, total)`` to ``progress``; ``cancel`` stops
    that download (Cancelled; what arrived is kept and the next run resumes).
    ``reserve_cores`` is the indexing run's (``PipelineOptions.reserve_cores``):
    fast mode compiles the model for the torch thread count indexing will use,
    which is smaller when a core is left to the window.
    """
    from transformers import AutoTokenizer, CLIPModel
    from transformers.utils import logging as hf_logging

    from .download import model_folder

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    name = settings.model
    folder = str(model_folder(name, progress, cancel))
    device, notice = pick_device(settings.device)
    precision = pick_precision(device, settings.mode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Eager attention: ~10 % faster than SDPA for ViT-B/32 on a CPU, same on a GPU at this size.
            model = CLIPModel.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")
            tokenizer = AutoTokenizer.from_pretrained(folder)
            prep, mean, std = _read_preprocessing(folder)
            fingerprint, _ = model_fingerprint(name)
    except Exception as exc:
        raise ModelLoadError(_load_failure_message(name, exc)) from None
    model.eval().requires_grad_(False)
    notices = [notice] if notice else []
    batch = batch_size_for(device)
    if precision.compiled:
        _use_persistent_compile_cache(settings)
    threads = plan_threads(cpu_cores(), device.type, reserve_cores).torch_threads
    model, tower, precision = _place(model, device, precision, prep, batch, threads, notices)
    encoder = ClipEncoder(name, model, tokenizer, device, precision, prep, fingerprint, mean, std,
                          batch_size=batch, tower=tower)
    for text in notices:
        log.warning(text)
    encoder.notices.extend(notices)
    log.info("loaded %s on %s (%s, batches of %d)", name, device, precision.name, batch)
    return encoder


def _place(model: torch.nn.Module, device: torch.device, precision: Precision, prep: Preprocess, batch: int,
           threads: int, notices: list[str]) -> tuple[torch.nn.Module, Callable[[torch.Tensor], torch.Tensor], Precision]:
    """Put the model on its device in the chosen precision; return the tower to run and the precision got.

    The text tower stays fp32 (it embeds a few prompts). A precision that
    cannot be had falls back within its family, with a notice: int8 without
    torchao uses torch.ao's dynamic int8, and a failed compile runs uncompiled.
    """
    model.to(device)
    tower = VisionTower(model)
    if precision.quantized:
        from .quantize import quantize_int8

        tower, compiled, message = quantize_int8(tower, _example_batch(prep, batch, torch.float32, device), threads)
        if message:
            notices.append(message)
        return model, tower, INT8_COMPILED if compiled else INT8
    if precision.dtype != torch.float32:
        tower.to(precision.dtype)
    if not precision.compiled:
        return model, tower, precision
    from .quantize import compile_tower

    compiled, message = compile_tower(tower, _example_batch(prep, batch, precision.dtype, device), threads)
    if compiled is None:
        notices.append(message or "Fast mode could not compile the model; running it uncompiled.")
        return model, tower, Precision(precision.name.replace("+compile", ""), precision.dtype)
    return model, compiled, precision


def _example_batch(prep: Preprocess, batch: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.zeros((batch, 3, prep.crop, prep.crop), dtype=dtype, device=device)


def _use_persistent_compile_cache(settings: Settings) -> None:
    """Keep inductor's compiled kernels beside the photosort cache so the next run compiles much faster."""
    try:
        folder = settings.cache_path.parent / "compiled"
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(folder))


def _read_preprocessing(folder: str) -> tuple[Preprocess, tuple[float, ...], tuple[float, ...]]:
    """Resize/crop sizes and normalisation from the model folder's own preprocessor_config.json (CLIP's without one)."""
    path = Path(folder, "preprocessor_config.json")
    config = json.loads(path.read_text()) if path.is_file() else {}
    size = config.get("size", 224)
    size = size.get("shortest_edge", size.get("height", 224)) if isinstance(size, dict) else size
    crop = config.get("crop_size", size)
    crop = crop.get("height", size) if isinstance(crop, dict) else crop
    mean = tuple(config.get("image_mean", CLIP_MEAN))
    std = tuple(config.get("image_std", CLIP_STD))
    return Preprocess(size=int(size), crop=int(crop)), mean, std


def model_fingerprint(name: str) -> tuple[str, int]:
    """Short identity of the weights and their embedding size, read without loading the weights.

    It hashes the model's config.json, the hub snapshot (commit) it came from,
    and for a local folder the weight files' names and sizes.
    """

    config_path = Path(_model_file(name, "config.json"))
    config_bytes = config_path.read_bytes()
    digest = hashlib.blake2b(config_bytes, digest_size=6)
    if config_path.parent.parent.name == "snapshots":
        digest.update(config_path.parent.name.encode())
    folder = Path(name)
    if folder.is_dir():
        for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    config = json.loads(config_bytes)
    return digest.hexdigest(), int(config.get("projection_dim", 512))


def _model_file(name: str, filename: str) -> str:
    """A file of the model: in its local folder, or a hub model's from the Hugging Face cache, else downloaded alone."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"no {filename} in the folder")
        return str(path)
    from .download import model_file

    return str(model_file(name, filename))


def model_identity(settings: Settings) -> tuple[str, int]:
    """The cache key (weights + precision family) and vector size the encoder *would* have, cheaply.

    Lets a re-run with nothing new answer from the cache without loading the model.
    """
    try:
        fingerprint, dim = model_fingerprint(settings.model)
    except PhotosortError:
        raise  # already says what to do (offline, no such model, no connection)
    except Exception as exc:
        raise ModelLoadError(_load_failure_message(settings.model, exc)) from None
    device, _ = pick_device(settings.device)
    family = pick_precision(device, settings.mode).family
    return f"{key_name(settings.model)}@{fingerprint}/{family}", dim


def key_name(name: str) -> str:
    """The model's name in cache keys: a hub id as is, a local folder by its folder name.

    The fingerprint identifies the weights, so moving a local model folder does
    not make photos be indexed again.
    """
    path = Path(name).expanduser()
    return f"local:{path.resolve().name}" if path.is_dir() else name


def _load_failure_message(name: str, exc: BaseException) -> str:
    if os.path.isdir(name):
        return (
            f"Could not load the CLIP model from the folder {name}: {str(exc).splitlines()[0][:160]}. "
            "Choose a folder saved with save_pretrained (config.json, weights, tokenizer)."
        )
    if name.startswith((os.path.sep, ".", "~")) and not os.path.exists(os.path.expanduser(name)):
        return f"Model folder not found: {name}. Check the path, or use a Hugging Face model id."
    return (
        f"Could not load the CLIP model '{name}': {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}. "
        f"Choose another model or a local model folder ({CHOOSE_MODEL})."
    )
