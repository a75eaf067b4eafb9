"""The frozen CLIP encoder: loading it, and turning pixels and text into unit vectors.

Loading goes through Hugging Face ``from_pretrained``, so a user with internet
gets ``openai/clip-vit-base-patch32`` downloaded and cached on first use and a
local model folder works offline. Precision is chosen per device: fp16 on
CUDA, bf16 on CPUs with native bf16 (fp32 otherwise) and int8 in the opt-in
fast mode. The model identity (``model_key``) names the weights *and* the
precision family, so vectors from different models or from the int8 mode are
never mixed in the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .config import Settings
from .decode import Preprocess
from .errors import ModelLoadError

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Precision:
    """How the vision tower runs: a torch dtype, or int8 weights (``quantized``)."""

    name: str  # "fp32", "bf16", "fp16", "int8"
    dtype: torch.dtype
    quantized: bool = False

    @property
    def family(self) -> str:
        """Precisions whose embeddings agree to cosine >= 0.995 share a family (and a cache key)."""
        return "int8" if self.quantized else "exact"


FP32 = Precision("fp32", torch.float32)
BF16 = Precision("bf16", torch.bfloat16)
FP16 = Precision("fp16", torch.float16)
INT8 = Precision("int8", torch.float32, quantized=True)


def cpu_has_fast_bf16() -> bool:
    """True where oneDNN runs bf16 natively (AVX512-BF16 or AMX), the case where bf16 pays off."""
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
                if requested == "cuda":
                    return torch.device("cpu"), f"CUDA failed ({exc}); running on the CPU instead."
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
    if device.type == "cuda":
        return FP16
    if device.type == "mps" or mode == "fp32":
        return FP32
    if mode == "fast":
        return INT8
    return BF16 if cpu_has_fast_bf16() else FP32


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

    def __post_init__(self) -> None:
        mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        # Fold /255, -mean and /std into one multiply-add on the uint8 batch.
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std
        self.logit_scale = float(self.model.logit_scale.exp().item())
        self.dim = int(self.model.config.projection_dim)

    @property
    def model_key(self) -> str:
        """Identity of the vectors this encoder makes: weights plus precision family."""
        return f"{key_name(self.name)}@{self.fingerprint}/{self.precision.family}"

    @torch.inference_mode()
    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """Unit-length image embeddings (float32, N x dim) for uint8 N x crop x crop x 3 RGB."""
        tensor = torch.from_numpy(batch)
        if self.device.type == "cuda":
            tensor = tensor.pin_memory().to(self.device, non_blocking=True)
        x = tensor.permute(0, 3, 1, 2).float().mul_(self._scale).add_(self._shift)
        x = x.to(self.precision.dtype).contiguous()
        pooled = self.model.vision_model(pixel_values=x).pooler_output
        features = self.model.visual_projection(pooled).float()
        return _normalise(features).cpu().numpy()

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


def load_encoder(settings: Settings) -> ClipEncoder:
    """Load the CLIP model named in ``settings``; ModelLoadError with a fix when that fails."""
    from transformers import AutoTokenizer, CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    name = settings.model
    device, notice = pick_device(settings.device)
    precision = pick_precision(device, settings.mode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = CLIPModel.from_pretrained(name, dtype=torch.float32, attn_implementation="eager")
            tokenizer = AutoTokenizer.from_pretrained(name)
            prep, mean, std = _read_preprocessing(name)
            fingerprint, _ = model_fingerprint(name)
    except Exception as exc:
        raise ModelLoadError(_load_failure_message(name, exc)) from None
    model.eval().requires_grad_(False)
    model = _place(model, device, precision)
    encoder = ClipEncoder(name, model, tokenizer, device, precision, prep, fingerprint, mean, std)
    if notice:
        log.warning(notice)
        encoder.notices.append(notice)
    log.info("loaded %s on %s (%s)", name, device, precision.name)
    return encoder


def _place(model: torch.nn.Module, device: torch.device, precision: Precision) -> torch.nn.Module:
    """Move the model to its device; the vision tower takes the chosen precision, text stays fp32."""
    model.to(device)
    if precision.quantized:
        from .quantize import quantize_vision_int8

        quantize_vision_int8(model)
    elif precision.dtype != torch.float32:
        model.vision_model.to(precision.dtype)
        model.visual_projection.to(precision.dtype)
    return model


def _read_preprocessing(name: str) -> tuple[Preprocess, tuple[float, ...], tuple[float, ...]]:
    """Resize/crop sizes and normalisation from the model's own preprocessor_config.json."""
    from transformers.utils import cached_file

    path = cached_file(name, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
    config = json.loads(Path(path).read_text()) if path else {}
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
    """A file of the model: local folder or Hugging Face cache first, then a download.

    Offline, the hub client retries for half a minute before giving up; a
    failed name lookup tells us at once that there is no network to wait for.
    """
    from transformers.utils import cached_file

    try:
        return cached_file(name, filename, local_files_only=True)
    except OSError:
        if os.path.isdir(os.path.expanduser(name)) or not _hub_reachable():
            raise
    return cached_file(name, filename)


def _hub_reachable() -> bool:
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or any(
        os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
    ):
        return os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false")
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def model_identity(settings: Settings) -> tuple[str, int]:
    """The cache key (weights + precision family) and vector size the encoder *would* have, cheaply.

    Lets a re-run with nothing new answer from the cache without loading the model.
    """
    try:
        fingerprint, dim = model_fingerprint(settings.model)
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
        f"Could not load the CLIP model '{name}': it is not a local folder and could not be downloaded "
        "(offline, or a wrong model id?). Connect to the internet once so it can be downloaded, "
        "or choose a local model folder with --model / PHOTOSORT_MODEL."
    )
