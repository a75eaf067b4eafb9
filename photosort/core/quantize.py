"""The opt-in fast CPU mode: int8 weights for the vision tower's Linear layers."""

from __future__ import annotations

import logging
import warnings

import torch

log = logging.getLogger(__name__)


def quantize_vision_int8(model: torch.nn.Module) -> None:
    """Replace the vision tower's Linear layers with dynamically quantised int8 ones, in place."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.vision_model = torch.ao.quantization.quantize_dynamic(
            model.vision_model, {torch.nn.Linear}, dtype=torch.qint8
        )
        model.visual_projection = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(model.visual_projection), {torch.nn.Linear}, dtype=torch.qint8
        )[0]
