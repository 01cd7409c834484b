"""What every module of the inference service shares in its runtime state."""

from __future__ import annotations

from services.inference.images import Decoder
from services.inference.triton import TritonModels
from shared.service import StateKey

TRITON = StateKey("triton models", TritonModels)
DECODER = StateKey("image decoder", Decoder)
