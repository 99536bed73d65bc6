"""Drawing the training-side figures: gradient flow, temporal components, loss, Lyapunov.

Each function takes plain arrays and returns a Figure (no reading, no statistics here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .style import gaps, legends_outside, new_figure, plain, plain_log_ticks, styled


def _early_late_keys(first: int, last: int) -> list[Line2D]:
    keys = [Line2D([], [], color="#555555", linewidth=2.2, label=f"training step {last}")]
    if first != last:
        keys.append(Line2D([], [], color="#555555", linewidth=1.2, linestyle=(0, (4, 2)),
                           label=f"training step {first}"))
    return keys


def _xy_figure(series: Mapping[str, Mapping[int, tuple[np.ndarray, np.ndarray]]],
               colours: Mapping[str, str], xlabel: str, ylabel: str, title: str,
               invert_x: bool = False) -> Figure:
    """Shared layout of gradient-flow and temporal-component plots: one axis, colour = cell,
    the last checkpoint solid and the first dashed so one sees what training changed."""
    fig = new_figure(11.0, 5.0)
    ax = fig.subplots()
    cks = sorted({ck for by_ck in series.values() for ck in by_ck})
    first, last = cks[0], cks[-1]
    handles = []
    for label, by_ck in series.items():
        col = colours[label]
        if first in by_ck and first != last:
            x, y = by_ck[first]
            ax.plot(x, gaps(y), color=col, linewidth=1.2, linestyle=(0, (4, 2)), alpha=0.85)
        ck = last if last in by_ck else max(by_ck)
        x, y = by_ck[ck]
        h, = ax.plot(x, gaps(y), color=col, linewidth=2.2, label=plain(label))
        handles.append(h)
    legends_outside(fig, handles, "cell", _early_late_keys(first, last))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if invert_x:
        ax.invert_xaxis()
    ax.set_title(title)
    return fig


@styled
def gradient_flow(series, colours, title: str) -> Figure:
    """Figure 5: log10 ||∂L/∂a⟨s⟩|| over the time step s. series[label][checkpoint] = (s, log10)."""
    return _xy_figure(series, colours, "time step s of the sequence",
                      r"$\log_{10}\,\|\partial L/\partial a^{\langle s\rangle}\|_2$", title)


@styled
def temporal_components(series, colours, title: str) -> Figure:
    """Figure 6: per-lag part of the recurrent-weight gradient (Pascanu et al. 2013, eq. 4).
    series[label][checkpoint] = (lags, log10 norm)."""
    return _xy_figure(series, colours, "lag k between the loss term and the input it reaches",
                      r"$\log_{10}\,\|$per-lag component of $\partial L/\partial W\|_F$", title)


@dataclass
class TrainingRun:
    """What figure 7 draws of one cell's training: the recorded losses and gradient norms (null:
    not a finite number), their moving means over `window` records (~`window_steps` steps)."""
    step: Sequence[int]
    loss: Sequence[Optional[float]]
    grad_norm: Sequence[Optional[float]]
    memoryless_loss: Optional[float]
    diverged_at: Optional[int]
    checkpoints: Sequence[int]
    loss_at_checkpoints: Sequence[Optional[float]]
    loss_kind: Optional[str]
    window: int = 1
    window_steps: int = 1
    loss_smooth: Optional[np.ndarray] = None
    grad_smooth: Optional[np.ndarray] = None


@styled
def training_curves(runs: Mapping[str, TrainingRun], colours: Mapping[str, str], title: str) -> Figure:
    """Figure 7: loss (log scale) with the memoryless loss, and the gradient norm."""
    fig = new_figure(11.0, 4.8)
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.5, 1])
    memoryless = set()
    for label, r in runs.items():
        col = colours[label]
        step, loss = np.asarray(r.step, float), _positive(r.loss)
        smooth = r.window > 1
        # raw per-step values thin and faint, their moving (geometric) mean on top
        ax.plot(step, loss, color=col, linewidth=0.8 if smooth else 1.8, alpha=0.35 if smooth else 1.0,
                label=None if smooth else plain(label))
        if smooth:
            ax.plot(step, r.loss_smooth, color=col, linewidth=2.0, label=plain(label))
        cks, lcs = r.checkpoints or [], r.loss_at_checkpoints or []
        if cks and len(cks) == len(lcs):
            ax.plot(cks, _positive(lcs), "o", color=col, markersize=5, markeredgecolor="white")
        if r.memoryless_loss is not None and np.isfinite(r.memoryless_loss) and r.memoryless_loss > 0:
            memoryless.add(float(r.memoryless_loss))
        if r.diverged_at is not None:
            ax.axvline(r.diverged_at, color=col, linestyle=":", linewidth=1.5)
        gn = _positive(r.grad_norm or [])
        if gn.size:
            ax2.plot(step[:gn.size], gn, color=col, linewidth=0.8 if smooth else 1.4, alpha=0.35 if smooth else 1.0)
            if smooth:
                ax2.plot(step[:gn.size], r.grad_smooth, color=col, linewidth=2.0)
    for b in sorted(memoryless):
        ax.axhline(b, color="#000000", linestyle=(0, (5, 3)), linewidth=1.3)
    handles, _ = ax.get_legend_handles_labels()
    if memoryless:
        handles.append(Line2D([], [], color="#000000", linestyle=(0, (5, 3)), linewidth=1.3,
                              label="memoryless loss (best answer without memory)"))
    handles.append(Line2D([], [], color="#555555", marker="o", linestyle="none", label="probe checkpoints"))
    if max(r.window for r in runs.values()) > 1:
        w = max(r.window_steps for r in runs.values())
        handles.append(Line2D([], [], color="#555555", linewidth=0.8, alpha=0.5,
                              label=f"recorded values (thick: moving mean over ~{w} steps)"))
    if any(r.diverged_at is not None for r in runs.values()):
        handles.append(Line2D([], [], color="#555555", linestyle=":", label="diverged here"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4)
    kinds = {r.loss_kind for r in runs.values()} - {None}
    unit = {"xent": "cross-entropy, nats per step", "mse": "mean squared error"}
    ax.set_ylabel("training loss (" + (unit.get(kinds.pop(), "") if len(kinds) == 1 else "per step") + ", log scale)")
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_title("loss")
    ax2.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    plain_log_ticks(ax2.yaxis)
    if not any(r.grad_norm for r in runs.values()):   # a training loop's monitor records the loss only
        ax2.text(0.5, 0.5, "no gradient norm recorded", transform=ax2.transAxes, ha="center", va="center",
                 color="#555555")
    ax2.set_xlabel("optimiser step")
    ax2.set_ylabel(r"$\|\partial L/\partial\theta\|_2$ before clipping (log scale)")
    ax2.set_title("gradient norm")
    fig.suptitle(title)
    return fig


@styled
def fit_over_training(cells: Mapping[str, Mapping[str, list]], colours: Mapping[str, str], lags: int,
                      title: str) -> Figure:
    """Figure 3b: per cell, the horizon (left; null: none within `lags`, drawn hollow at the top)
    and the decay factor (right) at each checkpoint."""
    fig = new_figure(11.0, 4.4)
    ax, ax2 = fig.subplots(1, 2)
    for label, c in cells.items():
        col, step = colours[label], np.asarray(c["step"], float)
        hz = np.array([np.nan if h is None else float(h) for h in c["horizon"]])
        ax.plot(step, hz, "o-", color=col, markersize=4, label=plain(label))
        none = np.isnan(hz)
        if none.any():
            ax.plot(step[none], np.full(none.sum(), float(lags)), "o", color=col, markerfacecolor="white")
        ax2.plot(step, [np.nan if f is None else float(f) for f in c["factor"]], "o-", color=col, markersize=4)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("horizon (lags)")
    ax.set_title("horizon")
    ax2.set_xlabel("optimiser step")
    ax2.set_ylabel("decay factor ρ per step")
    ax2.set_title("decay factor")
    fig.legend(loc="outside lower center", ncols=min(4, max(1, len(cells))))
    fig.suptitle(title)
    return fig


def _positive(v) -> np.ndarray:
    """Values for a log axis: non-positive or missing ones become gaps."""
    a = np.array([np.nan if x is None else float(x) for x in v], dtype=float)
    a[~(a > 0)] = np.nan
    return a


@styled
def lyapunov_spectrum(spectra: Mapping[str, np.ndarray], colours: Mapping[str, str], title: str) -> Figure:
    """Figure 8: the m largest Lyapunov exponents λ_i (natural log per step) of each cell."""
    fig = new_figure(11.0, 4.8)
    ax = fig.subplots()
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    m = 1
    for i, (label, lam) in enumerate(spectra.items()):
        idx = np.arange(1, lam.size + 1)
        m = max(m, lam.size)
        name = plain(label) if np.isfinite(lam).any() else f"{plain(label)} (no finite value: not drawn)"
        ax.plot(idx, gaps(lam), color=colours[label], marker=markers[i % len(markers)],
                markersize=6, linewidth=1.6, label=name)
    ax.axhline(0.0, color="#000000", linewidth=1.0)
    finite = np.concatenate([lam[np.isfinite(lam)] for lam in spectra.values()] + [np.zeros(1)])
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.08 * max(hi - lo, 0.1)
    ax.set_ylim(lo - pad, hi + 2 * pad)      # room above λ = 0 for its label
    ax.text(0.99, 0.0, r"$\lambda = 0$: neither growth nor decay", transform=ax.get_yaxis_transform(),
            ha="right", va="bottom", fontsize=9, color="#333333")
    ax.set_xlabel("exponent index i (largest first)")
    ax.set_ylabel(r"$\lambda_i$  (natural log per step)")
    ax.set_xticks(np.arange(1, m + 1))
    sec = ax.secondary_yaxis("right", functions=(lambda x: x / np.log(10), lambda x: x * np.log(10)))
    sec.set_ylabel("the same in log10 per step (cf. slopes in fig. 1)")
    legends_outside(fig, ax.get_lines()[:len(spectra)], "cell")
    ax.set_title(title)
    return fig
