"""Drawing the Jacobian-decay figures. Each function takes plain arrays and returns a Figure.

The y axis is log10 of a norm, so equal steps are equal factors of ten: a straight line is
geometric decay and its slope (decades per step) is log10 of the decay factor ρ.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .style import (
    PATH_COLOURS,
    PATH_NAMES,
    SEQUENTIAL,
    STATE_MARK,
    X_LAG,
    gaps,
    legends_outside,
    new_figure,
    plain,
    styled,
    y_decay,
    y_jac,
)


def _grid(n: int, width: float = 11.0, row_height: float = 3.8, **kw):
    """Panels in rows of up to three (four cells as 2 x 2, so no panel slot stays empty)."""
    ncols = 2 if n == 4 else max(1, min(n, 3))
    nrows = math.ceil(n / ncols)
    fig = new_figure(width, row_height * nrows + (0.9 if nrows == 1 else 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _xlim(ax, lags: np.ndarray) -> None:
    """The probed lag range exactly (half a step either side when only one lag was probed)."""
    if not lags.size:
        return
    lo, hi = float(lags[0]), float(lags[-1])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    ax.set_xlim(lo, hi)


def _band(ax, lags, q25, q75, colour, alpha=0.18):
    lo, hi = gaps(q25), gaps(q75)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.fill_between(lags, lo, hi, where=ok, color=colour, alpha=alpha, linewidth=0)


def _interval(ax, lags, interval, colour) -> bool:
    """An estimate's interval (probing/estimator.py), hatched so it is not read as the quartile
    band; True when one was drawn."""
    if interval is None:
        return False
    lo, hi = gaps(interval[0]), gaps(interval[1])
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.fill_between(lags, lo, hi, where=ok, facecolor="none", edgecolor=colour, hatch="////", linewidth=0, alpha=0.6)
    return True


def _estimated(name: str, c: Mapping) -> str:
    """A legend name that says when the curve is estimated, and of what kind."""
    if c.get("rows") is None:
        return name
    bound = ": a lower bound" if c.get("value") == "lower_bound" else ""
    return f"{name}   [estimated, {c['rows']} rows{bound}]"


def _limits(ax, arrays: Sequence[np.ndarray], pad: float = 0.06):
    vals = np.concatenate([np.asarray(a, float).ravel() for a in arrays if a is not None and len(a)] or [[0.0]])
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return
    lo, hi = float(vals.min()), float(vals.max())
    span = max(hi - lo, 0.5)
    ax.set_ylim(lo - pad * span, hi + pad * span)


@styled
def decay_curves(lags: np.ndarray, curves: Mapping[str, dict], colours: Mapping[str, str],
                 title: str, norm: str = "spectral", task_lag: float | None = None) -> Figure:
    """Figure 1: every cell's median log10 ||∂a⟨t⟩/∂a⟨t−k⟩|| over k with its quartile band,
    plus (dashed) the fitted geometric line and (dash-dot) the Pascanu bound where it exists.

    curves[label] = {"median","q25","q75": (K,), "fit_line": (K,) or None, "rho": float|None,
                     "bound": (K,) or None, "horizon": float|None, "path": "a" or "state" (optional)}
    """
    fig = new_figure(11.0, 5.6)
    ax = fig.subplots()
    handles, shown, estimated = [], [], False
    for label, c in curves.items():
        col = colours[label]
        _band(ax, lags, c["q25"], c["q75"], col)
        rho = c.get("rho")
        name = plain(label) + (STATE_MARK if c.get("path") == "state" else "")
        name = name if rho is None else f"{name}   (ρ = {rho:.4g} per step)"
        if np.isnan(c["median"]).all():   # no value at any lag (report/data.py), not a zero
            name = f"{plain(label)}   (the forward pass diverged: nothing to draw)"
        elif not np.isfinite(c["median"]).any():
            name = f"{plain(label)}   (exactly zero at every lag: nothing to draw)"
        name = _estimated(name, c)
        estimated = _interval(ax, lags, c.get("interval"), col) or estimated
        h, = ax.plot(lags, gaps(c["median"]), color=col, label=name)
        handles.append(h)
        shown += [c["median"], c["q25"], c["q75"]]
        if c.get("fit_line") is not None:
            ax.plot(lags, gaps(c["fit_line"]), color=col, linestyle=(0, (5, 3)), linewidth=1.4)
        if c.get("bound") is not None:
            ax.plot(lags, gaps(c["bound"]), color=col, linestyle=(0, (6, 2, 1, 2)), linewidth=1.4)
        hz = c.get("horizon")
        if hz is not None and lags.size and lags[0] <= hz <= lags[-1]:
            ax.axvline(hz, color=col, linestyle=":", linewidth=1.3, alpha=0.9)
    # Keep the axis on the measured curves: an exploding bound would otherwise flatten them;
    # where a bound leaves the top, an arrow says so.
    _limits(ax, shown)
    top = ax.get_ylim()[1]
    for label, c in curves.items():
        b = c.get("bound")
        if b is not None and b.size == lags.size and (out := np.flatnonzero(gaps(b) > top)).size:
            ax.annotate("bound ↑", (lags[out[0]], top), xytext=(4, -14), textcoords="offset points",
                        color=colours[label], fontsize=9)
    keys = [Line2D([], [], color="#555555", linewidth=2, label="median over sequences"),
            Line2D([], [], color="#555555", linewidth=8, alpha=0.25, label="25–75 % of sequences"),
            Line2D([], [], color="#555555", linestyle=(0, (5, 3)), linewidth=1.4, label=r"fitted line (slope = $\log_{10}\rho$)")]
    if any(c.get("bound") is not None for c in curves.values()):
        keys.append(Line2D([], [], color="#555555", linestyle=(0, (6, 2, 1, 2)), linewidth=1.4,
                           label=r"Pascanu bound $(\gamma\,\sigma_{\max}(W_a))^k$"))
    if estimated:
        keys.append(Patch(facecolor="none", edgecolor="#555555", hatch="////",
                          label="95 % interval of the estimate (each end the median over pairs)"))
    if any(c.get("horizon") is not None for c in curves.values()):
        keys.append(Line2D([], [], color="#555555", linestyle=":", linewidth=1.3, label="horizon"))
    if task_lag is not None and lags.size and lags[0] <= task_lag <= lags[-1]:
        # the lag the task needs: a cell whose curve is decades down there cannot learn it
        ax.axvline(task_lag, color="#000000", linewidth=2.5, alpha=0.25)
        ax.annotate(f"task's lag = {task_lag:g}", (task_lag, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(4, -14), textcoords="offset points", fontsize=9.5, color="#333333")
    legends_outside(fig, handles, "cell (median)", keys)
    ax.set_xlabel(X_LAG)
    ax.set_ylabel(y_decay(norm, [c.get("path") for c in curves.values()]))
    ax.set_title(title)
    _xlim(ax, lags)
    return fig


@styled
def memory_paths(lags: np.ndarray, cells: Mapping[str, Mapping[str, dict]], title: str,
                 norm: str = "spectral") -> Figure:
    """Figure 2: for each cell with a memory c⟨t⟩, one panel with the a, c, c_direct and full-state
    paths. cells[label][path] = {"median","q25","q75"}."""
    fig, axes = _grid(len(cells), sharey=True)
    seen = {}
    for ax, (label, paths) in zip(axes, cells.items()):
        for path, c in paths.items():
            col = PATH_COLOURS.get(path, "#777777")
            _band(ax, lags, c["q25"], c["q75"], col, alpha=0.14)
            ls = (0, (4, 2)) if path in ("c_direct", "memory") else "-"
            lw = 1.3 if path == "state" else 2.0
            ax.plot(lags, gaps(c["median"]), color=col, linestyle=ls, linewidth=lw,
                    label=PATH_NAMES.get(path, path))
            seen[path] = ax.lines[-1]
        ax.set_title(plain(label))
        ax.set_xlabel(X_LAG)
        _xlim(ax, lags)   # same lag range in every panel, even where a curve stops
    axes[0].set_ylabel(y_jac(norm, "s") + "\n" + r"($s$ = the part of the state named in the legend)")
    fig.legend(handles=list(seen.values()), loc="outside right upper", title="path")
    fig.suptitle(title)
    return fig


@styled
def checkpoint_curves(lags: np.ndarray, cells: Mapping[str, Mapping[int, dict]],
                      colours: Mapping[int, tuple], title: str, norm: str = "spectral",
                      paths: Mapping[str, str | None] | None = None) -> Figure:
    """Figure 3: per cell, the median decay-path curve at each training checkpoint (colour =
    step); `paths`: each cell's decay path, a state path marked in its panel's title."""
    paths = paths or {}
    fig, axes = _grid(len(cells), sharey=True)
    for ax, (label, by_ck) in zip(axes, cells.items()):
        for ck, c in by_ck.items():
            _band(ax, lags, c["q25"], c["q75"], colours[ck], alpha=0.10)
            ax.plot(lags, gaps(c["median"]), color=colours[ck], label=f"step {ck}")
        ax.set_title(plain(label) + (STATE_MARK if paths.get(label) == "state" else ""))
        ax.set_xlabel(X_LAG)
        _xlim(ax, lags)   # same lag range in every panel, even where a curve stops
    handles = [Line2D([], [], color=col, linewidth=2, label=f"step {ck}") for ck, col in colours.items()]
    fig.legend(handles=handles, loc="outside right upper", title="training step")
    axes[0].set_ylabel(y_decay(norm, [paths.get(c) for c in cells]))
    fig.suptitle(title)
    return fig


@styled
def tk_maps(maps: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str,
            norm: str = "spectral", paths: Mapping[str, str | None] | None = None) -> Figure:
    """Figure 4: per cell, log10 ||∂a⟨t⟩/∂a⟨t−k⟩|| as a colour over (lag k, anchor t); one shared
    colour scale so cells compare directly. maps[label] = (lags (K,), anchors (A,), grid (A, K));
    `paths`: each cell's decay path (the map's), a state path marked in its panel's title."""
    paths = paths or {}
    finite = np.concatenate([g[np.isfinite(g)] for _, _, g in maps.values()] or [np.zeros(1)])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    if vmax - vmin < 1e-9:
        vmin -= 0.5
        vmax += 0.5
    cmap = matplotlib.colormaps[SEQUENTIAL].with_extremes(bad="#ffffff")
    fig, axes = _grid(len(maps), row_height=3.4)
    mesh = None
    for ax, (label, (lags, anchors, grid)) in zip(axes, maps.items()):
        w = grid.shape[1]
        k = lags[:w] if lags.size >= w else np.arange(1, w + 1)
        mesh = ax.pcolormesh(_edges(k), _edges(anchors), np.ma.masked_invalid(grid),
                             cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
        ax.set_title(plain(label) + (STATE_MARK if paths.get(label) == "state" else ""))
        ax.set_xlabel(X_LAG)
        ax.set_yticks(anchors if len(anchors) <= 8 else anchors[:: math.ceil(len(anchors) / 8)])
        ax.grid(False)
    axes[0].set_ylabel("anchor step t")
    if mesh is not None:
        cb = fig.colorbar(mesh, ax=list(axes), shrink=0.95, pad=0.02)
        cb.set_label(y_decay(norm, [paths.get(c) for c in maps]))
    fig.suptitle(title)
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around (possibly uneven) centres, for pcolormesh."""
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


@styled
def norm_comparison(lags: np.ndarray, cells: Mapping[str, dict], colours: Mapping[str, str],
                    title: str) -> Figure:
    """Spectral (thick) against Frobenius (thin dashed) median for each cell's a path.
    cells[label] = {"spectral": {"median", "rows", "value"}, "frobenius": the same and
    "interval", or None}: an estimated norm says so in its legend (a spectral one as a lower bound).
    ||J||₂ <= ||J||_F <= sqrt(n) ||J||₂, so the two differ by at most half a log10(n)."""
    fig = new_figure(11.0, 4.4)
    ax = fig.subplots()
    for label, c in cells.items():
        s, f = c["spectral"], c.get("frobenius")
        ax.plot(lags, gaps(s["median"]), color=colours[label],
                label=_estimated(f"{plain(label)}: spectral " + r"$\|\cdot\|_2$", s))
        if f is not None:
            ax.plot(lags, gaps(f["median"]), color=colours[label], linewidth=1.1,
                    linestyle=(0, (3, 2)), label=_estimated(f"{plain(label)}: Frobenius " + r"$\|\cdot\|_F$", f))
            _interval(ax, lags, f.get("interval"), colours[label])
    ax.set_xlabel(X_LAG)
    ax.set_ylabel(r"$\log_{10}$ of $\|\partial a^{\langle t\rangle}/\partial a^{\langle t-k\rangle}\|$")
    legends_outside(fig, ax.get_lines(), "cell and norm")
    ax.set_title(title)
    return fig

