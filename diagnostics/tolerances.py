"""Tolerances of the curve regression, in log space.

Why these defaults
------------------
A real change moves curves by tenths of a decade: a recurrent gain moved by 5% shifts an RNN's
slope by log10(1.05) = 0.021 decades per step (0.4 decades after 20 lags, and its top Lyapunov
exponent by ln 1.05 = 0.049); an LSTM forget bias moved from 1.0 to 1.5 shifts the direct
memory path by log10(σ(1.5)/σ(1)) = 0.049 decades per step. Cross-machine float noise is ten
orders of magnitude smaller. Measured on the shipped quickstart case: OpenBLAS's SSE kernels
against its AVX2/AVX-512 ones move curve points by ~1e-14 decades; initial parameters moved by
1e-13 relative (far beyond any summation-order change) move them by <= 4e-11 decades after 150
Adam steps, and by ~1e-11 after 400 steps on a small case. Training is the one place noise is
amplified (each step feeds the next), so the loss and slope get floors and quick baselines train
briefly; a chaotic training run (a diverging or exploding cell) could still amplify noise, and
such a case should widen its `tolerances:`.

- `decades` 0.05: a 12% change of a norm at any lag; the coarsest change a reader would see.
- `slope_rel` 0.05 with floor `slope_abs` 5e-4 log10/step: a near-flat curve (slope ~ 0, e.g. an
  orthogonal linear RNN) has no meaningful relative change; 5e-4/step is 0.05 decades over 100
  lags, matching `decades`.
- `horizon_steps` 2 with `horizon_rel` 0.05: the horizon scales like 1/|slope|, so a long horizon
  moves by as much as the slope tolerance allows; the larger of the two applies.
- `loss_rel` 0.05 with floor `loss_abs` 1e-3: a solved task's loss (~1e-4) is all noise relative.
- `lyapunov_abs` 0.02 (natural log per step): half the shift of a 5% gain change.
- `stats` median, q25, q75: the curve and its band; min/max are single extreme sequences.

Cross-machine settings that matter (README)
-------------------------------------------
On one machine, with one numpy/BLAS build and the same environment, the same case and seed give a
byte-identical curves.json (tested). Across machines the bits of the BLAS results change with:
- the kernels: OpenBLAS (numpy's wheels) picks SIMD kernels for the CPU at run time (SSE, AVX2,
  AVX-512); MKL likewise. Pin them with OPENBLAS_CORETYPE=Haswell (say) or MKL_CBWR=COMPATIBLE
  (or AVX2) when bit-identical files are wanted across CPUs;
- the thread count: multi-threaded BLAS may split large products by thread count. Set
  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 when writing and when checking
  baselines (the quickstart's --quick curves came out identical with 1 and 2 threads);
- the numpy/BLAS version itself (a new kernel is a new summation order).
None of this needs pinning for `diag check` or `diag run` to pass: the default tolerances sit ten
orders of magnitude above these differences (tested with OPENBLAS_CORETYPE=Prescott).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Stat = Literal["median", "q25", "q75", "min", "max"]


class Tolerances(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)   # like the case schema: "0.05" is not a number; .inf would switch the gate off

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

    def slope_tol(self, baseline: float) -> float:
        return max(self.slope_rel * abs(baseline), self.slope_abs)

    def horizon_tol(self, baseline: float) -> float:
        return max(float(self.horizon_steps), self.horizon_rel * abs(baseline))

    def loss_tol(self, baseline: float) -> float:
        return max(self.loss_rel * abs(baseline), self.loss_abs)

    def describe(self) -> str:
        return (f"decades={self.decades:g} slope_rel={self.slope_rel:g} (floor {self.slope_abs:g}/step) "
                f"horizon={self.horizon_steps} steps or {self.horizon_rel:g} rel "
                f"loss_rel={self.loss_rel:g} (floor {self.loss_abs:g}) lyapunov_abs={self.lyapunov_abs:g}")
