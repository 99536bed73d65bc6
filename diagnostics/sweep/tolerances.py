"""Tolerances of the sweep regression (`diag check A/sweep.json B/sweep.json`, the sweep baseline).

Why these defaults. The same sweep on the same machine gives the same sweep.json bit for bit,
so any tolerance only absorbs cross-machine float noise, which training can amplify: across
BLAS kernels (benchmarks/kernel_spread.py --sweeps) the shipped sweeps' points agree to 1e-7
decades but for a chaotic training, whose one seed moved its group's pooled quartile by a
tenth of a decade (docs/explanation/tolerances.md). Which trial is chaotic, and by how much,
is a property of the training, not of a tolerance one could choose in advance.

So the rule is the one the success counts already follow: one trial may move. `successes` 1
lets one trial's success flip per cell and group (one flip out of ten moves a rate by 0.1, well
inside a 95% Wilson interval at n = 10, about ±0.3) and catches a real change of two or more;
`seed_band` lets each pooled curve move as far as replacing any one seed's curve by anything
could move it (sweep.json's `band`, computed from the baseline's own seeds), plus `decades`
0.05 (the case regression's). A real change moves every seed: a recurrent gain +5% shifts
each curve by 0.021 decades per lag, beyond the band within a few lags. A baseline written
before the band existed is compared point by point within `decades` alone.

Pooled curves of estimates (probe.estimator) against exact ones, or estimates from other rows,
are not compared: an estimate's own error is not a change of the model. Each gives a failing
"estimator" row unless `mixed_estimators`, as in the curve regression.
"""
from __future__ import annotations

from pydantic import Field

from ..options import StrictModel
from ..tolerances import Quartile


class SweepTolerances(StrictModel):   # strict and finite: .inf would switch the gate off

    successes: int = Field(1, ge=0, description="max change of a success count (same number of trials)")
    decades: float = Field(0.05, ge=0, description="max log10 change of a pooled curve point")
    stats: list[Quartile] = Field(["median", "q25", "q75"], min_length=1,
                              description="which pooled-curve statistics are compared")
    seed_band: bool = Field(True, description="a pooled curve may also move as far as any one seed's curve "
                                              "changing could move it (the baseline's band)")
    mixed_estimators: bool = Field(False, description="compare pooled curves measured differently (exact against "
                                                      "estimated, or estimates from other rows); refused by default")

    def label(self) -> str:
        """The tolerances in one line (the comparison table's heading)."""
        return (f"successes={self.successes} decades={self.decades:g}{' + one-seed band' if self.seed_band else ''} "
                f"stats={','.join(self.stats)}{' mixed estimators' if self.mixed_estimators else ''}")
