"""Tolerances of the curve regression, in log space.

Why these defaults
------------------
A tolerance must sit above what changes between machines and below what a real change does.

Real changes move curves by tenths of a decade: a recurrent gain moved by 5% shifts an RNN's
slope by log10(1.05) = 0.021 decades per step (0.4 decades after 20 lags, and its top Lyapunov
exponent by ln 1.05 = 0.049); an LSTM forget bias moved from 1.0 to 1.5 shifts the direct
memory path by log10(σ(1.5)/σ(1)) = 0.049 decades per step.

Machines change the bits, not the numbers: across OpenBLAS's kernels and thread counts and
numpy's SIMD paths, every shipped case moves by less than 1e-12 decades at any curve point,
slope, loss or resolved Lyapunov exponent (benchmarks/kernel_spread.py; the figures, with the
machine and the date, are in docs/explanation/tolerances.md).

So the defaults below keep their real-change meaning with a safety factor of more than 10^11
over that spread. Two things are not compared because they are rounding, not signal: Lyapunov
exponents of directions lost to rounding (a dead relu unit's, several nats apart between
kernels; diagnostics/probing/lyapunov.py flags them, `resolved: false`) and the bits of exactly-zero
curves (null on both sides is equal). Training amplifies rounding only where it is chaotic,
and there the run itself is not reproducible across machines (one of the 70 points of the
shipped sweeps' --quick forms moved by 0.18 decades in 30 steps). A case of such a training
should not be a baseline
(or should widen its `tolerances:`); sweeps tolerate one such trial per group
(sweep/tolerances.py).

- `decades` 0.05: a 12% change of a norm at any lag; the coarsest change a reader would see.
- `slope_rel` 0.05 with floor `slope_abs` 5e-4 log10/step: a near-flat curve (slope ~ 0, e.g. an
  orthogonal linear RNN) has no meaningful relative change; 5e-4/step is 0.05 decades over 100
  lags, matching `decades`.
- `horizon_steps` 2 with `horizon_rel` 0.05: the horizon scales like 1/|slope|, so a long horizon
  moves by as much as the slope tolerance allows; the larger of the two applies.
- `loss_rel` 0.05 with floor `loss_abs` 1e-3: a solved task's loss (~1e-4) is all noise relative.
- `lyapunov_abs` 0.02 (natural log per step): half the shift of a 5% gain change.
- `stats` median, q25, q75: the curve and its band; min/max are single extreme sequences.
- Estimated series (probe.estimator: sketch): a Frobenius estimate's point tolerance is widened,
  lag by lag, by the half-width of each estimated side's 95% interval (the row's tolerance shows
  the widened value and its label says so); a series measured differently on the two sides
  (exact against estimated, other rows or seed) is a failing row unless `mixed_estimators`.

Bit-identical files across machines
-----------------------------------
On one machine, with one numpy/BLAS build and the same environment, the same case and seed give a
byte-identical curves.json (tested). Across machines the bits of the BLAS results change with
the kernels (OpenBLAS and MKL pick SIMD kernels for the CPU at run time), the thread count and
the numpy/BLAS version. None of this needs pinning for `diag check` or `diag run` to pass (the
test suite runs the shipped cases against their baselines under a second set of kernels); for
byte-identical files pin them: OPENBLAS_CORETYPE=Haswell (say) or MKL_CBWR=AVX2, and
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1, when writing and when checking.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .options import StrictModel

Quartile = Literal["median", "q25", "q75"]   # a curve and its band (a sweep's pooled curves have only these)
Stat = Literal[Quartile, "min", "max"]       # a run's curves also keep the extremes


class Tolerances(StrictModel):   # like the case schema: "0.05" is not a number; .inf would switch the gate off

    decades: float = Field(0.05, ge=0, description="max |log10 current - log10 baseline| at any curve point")
    slope_rel: float = Field(0.05, ge=0, description="max relative change of the fitted slope (log10 per step)")
    slope_abs: float = Field(5e-4, ge=0, description="absolute floor of the slope tolerance, log10 per step")
    horizon_steps: int = Field(2, ge=0, description="max change of the horizon, in steps")
    horizon_rel: float = Field(0.05, ge=0, description="relative horizon tolerance; the larger of the two applies")
    loss_rel: float = Field(0.05, ge=0, description="max relative change of the training loss at checkpoints")
    loss_abs: float = Field(1e-3, ge=0, description="absolute floor of the loss tolerance")
    lyapunov_abs: float = Field(0.02, ge=0, description="max change of a Lyapunov exponent, natural log per step")
    stats: list[Stat] = Field(["median", "q25", "q75"], min_length=1,
                                    description="which curve statistics are compared point by point")
    mixed_estimators: bool = Field(
        False, description="compare series measured differently (exact against estimated, or estimates from other "
                           "rows or seed); refused by default")

    def slope_tol(self, baseline: float) -> float:
        return max(self.slope_rel * abs(baseline), self.slope_abs)

    def horizon_tol(self, baseline: float) -> float:
        return max(float(self.horizon_steps), self.horizon_rel * abs(baseline))

    def loss_tol(self, baseline: float) -> float:
        return max(self.loss_rel * abs(baseline), self.loss_abs)

    def label(self) -> str:
        """The tolerances in one line (the comparison table's heading)."""
        return (f"decades={self.decades:g} slope_rel={self.slope_rel:g} (floor {self.slope_abs:g}/step) "
                f"horizon={self.horizon_steps} steps or {self.horizon_rel:g} rel "
                f"loss_rel={self.loss_rel:g} (floor {self.loss_abs:g}) lyapunov_abs={self.lyapunov_abs:g}")
