"""Drawing the two sensitivity figures from plain arrays (selection: select_sensitivity.py).

Both y axes are log10 of a root mean square over sequences (and anchors), the quantity of the
closed forms. Figure 11's x axis is 1 - |λ|² on a log scale, reversed so that memory grows to
the right: a power law (1 - λ²)^p is then a straight line of slope -p, so the ε^(-3/2) of the
linear recurrence's sensitivity and the ε^(-1/2) of its state read off directly.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .style import gaps, legends_outside, new_figure, plain, styled

PARAM_NAMES = {"W_a": r"$W_a$", "nu": r"$\nu$ ($|\lambda| = e^{-e^{\nu}}$)",
               "theta": r"$\theta$ (angle of $\lambda$)", "W": r"$W$ (stacked gate weights)"}
MARKERS = {"W_a": "o", "nu": "s", "theta": "^", "state": "D"}
Y_SENS = r"$\log_{10}$ RMS $\|\partial a^{\langle t\rangle}/\partial\theta\|_F$"


def _pname(p: str) -> str:
    return PARAM_NAMES.get(p, plain(p))


@styled
def sensitivity_by_lag(panels: Mapping[str, Mapping[str, dict]], colours: Mapping[str, str], title: str) -> Figure:
    """Figure 10: per recurrent parameter θ, log10 RMS ||(∂a⟨t⟩/∂a⟨t−k⟩)(∂⁺a⟨t−k⟩/∂θ)||_F over k.
    panels[θ][label] = {"lags", "rms": (K,)}."""
    n = len(panels)
    ncols = min(n, 3)
    fig = new_figure(11.0, 3.9 * math.ceil(n / ncols) + 0.6)
    axes = fig.subplots(math.ceil(n / ncols), ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    handles = {}
    for ax, (param, cells) in zip(axes, panels.items()):
        for label, c in cells.items():
            h, = ax.plot(c["lags"], gaps(c["rms"]), color=colours[label], linewidth=1.6, label=plain(label))
            handles.setdefault(label, h)
        ax.set_title("θ = " + _pname(param))
        ax.set_xlabel("lag k (steps back in time)")
    axes[0].set_ylabel(r"$\log_{10}$ RMS $\|(\partial a^{\langle t\rangle}/\partial a^{\langle t-k\rangle})"
                       r"\,\partial^{+}a^{\langle t-k\rangle}/\partial\theta\|_F$")
    legends_outside(fig, handles.values(), "cell")
    fig.suptitle(title)
    return fig


def _x(lam) -> np.ndarray:
    return 1.0 - np.asarray(lam, dtype=float) ** 2


@styled
def sensitivity_memory(groups: Mapping[str, dict], title: str, rho: float | None = None) -> Figure:
    """Figure 11: left, each cell's total sensitivity to each recurrent parameter; right, its
    state size; both against 1 - |λ|² (log, reversed). groups[name] = {"memory": (m,),
    "points": {θ or "state": (m,) log10 RMS}, "lines": {θ or "state": (λ grid, log10 RMS)},
    "colour"}."""
    fig = new_figure(11.0, 6.4)
    ax_s, ax_a = fig.subplots(1, 2)
    handles = []
    for i, (name, g) in enumerate(groups.items()):
        x = _x(g["memory"])
        size = max(4.0, 10.0 - 2.5 * i)    # later groups smaller: coinciding points stay visible
        for p, y in g["points"].items():
            ax = ax_a if p == "state" else ax_s
            lab = f"{plain(name)}: " + ("state" if p == "state" else _pname(p))
            h, = ax.plot(x, gaps(y), linestyle="none", marker=MARKERS.get(p, "o"), markersize=size,
                         color=g["colour"], markeredgecolor="white", markeredgewidth=0.8, label=lab)
            handles.append(h)
            if p in g["lines"]:
                lam, line = g["lines"][p]
                ax.plot(_x(lam), gaps(line), color=g["colour"], linewidth=1.3, alpha=0.85)
    for ax in (ax_s, ax_a):
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel(r"$1 - |\lambda|^2$  (log scale; memory grows $\rightarrow$)")
    ax_s.set_ylabel(Y_SENS)
    ax_a.set_ylabel(r"$\log_{10}$ RMS $\|a^{\langle t\rangle}\|_2$")
    ax_s.set_title("sensitivity to the recurrent parameters")
    ax_a.set_title("size of the state")
    keys = []
    if any(g["lines"] for g in groups.values()):
        words = "closed form (Zucchet & Orvieto 2024)" + ("" if rho is None else f", input autocorrelation ρ = {rho:g}")
        keys.append(Line2D([], [], color="#555555", linewidth=1.3, label=words))
    fig.legend(handles=handles + keys, loc="outside lower center", ncols=3, fontsize=9)
    fig.suptitle(title)
    return fig
