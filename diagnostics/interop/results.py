"""The result of measuring a PyTorch model: the probe's result, plus what was measured.

    res.kind             "influence" (log10 ||d y<t>/d x<t-k>||, lags 0..K-1) or "memory"
                         (log10 of a layer's state-to-state Jacobian, lags 1..K)
    res.float32_inside   the model computes in float32 inside (float32-level accuracy)
    res.model            the model's class name
"""
from __future__ import annotations

from dataclasses import dataclass

from ..probing import ProbeResult


@dataclass
class ModelResult(ProbeResult):
    kind: str = "influence"
    float32_inside: bool = False
    model: str = ""
