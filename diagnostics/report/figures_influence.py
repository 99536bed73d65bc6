"""Drawing the model cells' figures (a whole sequence model named in the case): the
input-to-output influence ‖∂y⟨t⟩/∂x⟨t−k⟩‖ over its own lags (from 0, the direct term), and
the memory paths of its selective layers (l{i}.memory). Plain arrays in, a Figure out.

The influence is of the model's output on its input, not of a state on itself: its axis says
so, and it is never drawn on the axes of ∂a⟨t⟩/∂a⟨t−k⟩.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures_decay import _band, _estimated, _grid, _interval, _limits, _xlim
from .style import NORM_SUB, OKABE_ITO, X_LAG, gaps, legends_outside, new_figure, plain, styled


def y_influence(norm: str) -> str:
    return (r"$\log_{10}\,\|\partial y^{\langle t\rangle}/\partial x^{\langle t-k\rangle}\|_{%s}$"
            "\n(output on input, whole model)" % NORM_SUB.get(norm, norm))


@styled
def influence_curves(curves: Mapping[str, dict], colours: Mapping[str, str], title: str,
                     norm: str = "spectral") -> Figure:
    """Each model cell's median log10 ‖∂y⟨t⟩/∂x⟨t−k⟩‖ over its lags with the quartile band and,
    dashed, the fitted geometric line. curves[label] = {"lags", "median", "q25", "q75",
    "fit_line", "rho", "horizon", "kind", and for an estimate "rows", "value", "interval"}."""
    fig = new_figure(11.0, 5.6)
    ax = fig.subplots()
    handles, shown = [], []
    for label, c in curves.items():
        col, lags = colours[label], c["lags"]
        _band(ax, lags, c["q25"], c["q75"], col)
        name = plain(label) if label == c["kind"] else f"{plain(label)} ({c['kind']})"
        if not np.isfinite(c["median"]).any():
            name += "   (no finite value: nothing to draw)"
        elif c.get("rho") is not None:
            name += f"   (ρ = {c['rho']:.4g})"
        _interval(ax, lags, c.get("interval"), col)
        h, = ax.plot(lags, gaps(c["median"]), color=col, label=_estimated(name, c))
        handles.append(h)
        shown += [c["median"], c["q25"], c["q75"]]
        if c.get("fit_line") is not None:
            ax.plot(lags, gaps(c["fit_line"]), color=col, linestyle=(0, (5, 3)), linewidth=1.4)
        hz = c.get("horizon")
        if hz is not None and lags[0] <= hz <= lags[-1]:
            ax.axvline(hz, color=col, linestyle=":", linewidth=1.3, alpha=0.9)
    _limits(ax, shown)
    keys = [Line2D([], [], color="#555555", linewidth=2, label="median over sequences"),
            Line2D([], [], color="#555555", linewidth=8, alpha=0.25, label="25–75 % of sequences"),
            Line2D([], [], color="#555555", linestyle=(0, (5, 3)), linewidth=1.4, label=r"fitted line (slope = $\log_{10}\rho$)")]
    if any(c.get("horizon") is not None for c in curves.values()):
        keys.append(Line2D([], [], color="#555555", linestyle=":", linewidth=1.3, label="horizon"))
    legends_outside(fig, handles, "model (median)", keys)
    ax.set_xlabel(X_LAG + " (0: the direct term)")
    ax.set_ylabel(y_influence(norm))
    ax.set_title(title)
    _xlim(ax, next(iter(curves.values()))["lags"])
    return fig


@styled
def layer_memory(lags: np.ndarray, cells: Mapping[str, Mapping[str, dict]], title: str,
                 norm: str = "spectral") -> Figure:
    """One panel per model cell: each selective layer's memory path l{i}.memory, the product
    of its state-to-state factors (exp(Δ A), the RG-LRU's a, the mLSTM's forget gate).
    cells[label][path] = {"median", "q25", "q75"}."""
    fig, axes = _grid(len(cells), sharey=True)
    for ax, (label, paths) in zip(axes, cells.items()):
        for j, (path, c) in enumerate(paths.items()):
            col = OKABE_ITO[j % len(OKABE_ITO)]
            _band(ax, lags, c["q25"], c["q75"], col, alpha=0.14)
            ax.plot(lags, gaps(c["median"]), color=col, label=f"layer {path.split('.')[0][1:]}")
        ax.set_title(plain(label))
        ax.set_xlabel(X_LAG)
        ax.legend(title="memory path", loc="lower left")
        _xlim(ax, lags)
    axes[0].set_ylabel(r"$\log_{10}\,\|\partial h^{\langle t\rangle}/\partial h^{\langle t-k\rangle}\|_{%s}$"
                       "\n(one layer's state, through its gates only)" % NORM_SUB.get(norm, norm))
    fig.suptitle(title)
    return fig
