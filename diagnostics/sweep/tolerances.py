"""Tolerances of the sweep regression (`diag check A/sweep.json B/sweep.json`, the sweep baseline).

Why these defaults. The same sweep on the same machine gives the same sweep.json bit for bit,
so any tolerance only absorbs cross-machine float noise, which training can amplify: a trial
whose loss ends near the success threshold may flip. One flipped trial out of ten moves a rate
by 0.1, well inside a 95% Wilson interval at n = 10 (about ±0.3), so `successes` 1 lets one
trial flip per cell and group and catches a real change of two or more. Pooled curves are
medians over seeds: one seed's curve moving changes them less than a single run's curve, so
the curve tolerance is the case regression's `decades` (0.05) at the same statistics.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Stat = Literal["median", "q25", "q75"]


class SweepTolerances(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)   # .inf would switch the gate off

    successes: int = Field(1, ge=0, description="max change of a success count (same number of trials)")
    decades: float = Field(0.05, ge=0, description="max log10 change of a pooled curve point")
    stats: list[Stat] = Field(["median", "q25", "q75"], min_length=1,
                              description="which pooled-curve statistics are compared")

    def describe(self) -> str:
        return f"successes={self.successes} decades={self.decades:g} stats={','.join(self.stats)}"
