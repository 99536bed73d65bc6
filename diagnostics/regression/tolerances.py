"""Tolerances of the curve regression, in log space.

Defaults absorb ordinary cross-machine float noise (BLAS kernels reorder sums: ~1e-12
relative per step, so a few 1e-9 decades after thousands of lags) while a real change — a
forget bias moved by 0.5, a recurrent gain by 5% — moves curves by tenths of a decade.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Tolerances(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decades: float = Field(0.05, ge=0, description="max |log10 current - log10 baseline| at any curve point")
    slope_rel: float = Field(0.05, ge=0, description="max relative change of the fitted slope (log10 per step)")
    horizon_steps: int = Field(2, ge=0, description="max change of the horizon, in steps")
    loss_rel: float = Field(0.05, ge=0, description="max relative change of the training loss at checkpoints")
