"""The sweep report's figures, one function each, declaring the data it draws (plain arrays
and labels, no reading of files and no statistics here); the selection from sweep.json is
`select_*` beside each.

    success_rates  success rate against the first varied key, every cell, 95% Wilson intervals
    loss_quartiles final loss / memoryless loss (median and quartiles over seeds) against the same key
    decay_bands    per setting, each cell's median curve of path a over seeds with its quartile band
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..documents import Sweep
from ..report.style import (
    X_LAG,
    cell_colours,
    gaps,
    legends_outside,
    new_figure,
    plain,
    plain_log_ticks,
    styled,
    y_jac,
)
from .narrative import setting


def _x(values: list) -> tuple[np.ndarray, list[str], bool]:
    """Positions of the x values: numeric when they all are (log scale when they span over
    10x and are positive), else evenly spaced categories."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        x = np.asarray(values, dtype=float)
        logx = bool(np.all(x > 0) and x.max() / x.min() > 10)
        return x, [str(v) for v in values], logx
    return np.arange(len(values), dtype=float), [str(v) for v in values], False


def _panels(n: int, width: float = 11.0, per_row: int = 3, height: float = 3.6):
    rows = math.ceil(n / per_row)
    cols = min(n, per_row)
    fig = new_figure(width, height * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


@styled
def success_rates(panels: Sequence[tuple[str, Mapping[str, tuple]]], xkey: str, colours: Mapping[str, str]) -> Figure:
    """panels: (title, {cell: (x values, rate, low, high, "k/n" labels)}), one axis each."""
    fig, axes = _panels(len(panels))
    handles = {}
    cells = list(colours)
    for ax, (title, by_cell) in zip(axes, panels):
        for j, (cell, (xs, rate, lo, hi, _)) in enumerate(by_cell.items()):
            x, ticks, logx = _x(list(xs))
            # cells side by side at each x, so overlapping intervals stay visible
            shift = (j - (len(cells) - 1) / 2) * (0.04 if logx else 0.06)
            xp = x * (10 ** shift) if logx else x + shift * max(1.0, np.ptp(x) / max(len(x) - 1, 1))
            r = np.asarray(rate, dtype=float)
            err = np.vstack([r - np.asarray(lo), np.asarray(hi) - r])
            h = ax.errorbar(xp, r, yerr=err, color=colours[cell], marker="o", capsize=3, linewidth=1.6,
                            label=plain(cell))
            handles.setdefault(cell, h)
        if logx:
            ax.set_xscale("log")
            plain_log_ticks(ax.xaxis)
        ax.set_xticks(x, ticks)
        ax.set_ylim(-0.04, 1.04)
        ax.set_xlabel(xkey)
        ax.set_ylabel("success rate (95% Wilson interval)")
        if title:
            ax.set_title(plain(title))
    legends_outside(fig, list(handles.values()), "cell")
    return fig


@styled
def loss_quartiles(panels: Sequence[tuple[str, Mapping[str, tuple]]], xkey: str, colours: Mapping[str, str]) -> Figure:
    """panels: (title, {cell: (x values, median, q25, q75)}) of final loss / memoryless loss; log y."""
    fig, axes = _panels(len(panels))
    handles = {}
    for ax, (title, by_cell) in zip(axes, panels):
        for cell, (xs, med, q25, q75) in by_cell.items():
            x, ticks, logx = _x(list(xs))
            m = np.asarray(med, dtype=float)
            h = ax.errorbar(x, m, yerr=np.vstack([m - np.asarray(q25), np.asarray(q75) - m]), color=colours[cell],
                            marker="o", capsize=3, linewidth=1.6, label=plain(cell))
            handles.setdefault(cell, h)
        if logx:
            ax.set_xscale("log")
        ax.set_xticks(x, ticks)
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
        ax.axhline(1.0, color="#555555", linestyle=(0, (4, 2)), linewidth=1.2)
        ax.set_xlabel(xkey)
        ax.set_ylabel("final loss / memoryless loss")
        if title:
            ax.set_title(plain(title))
    legends_outside(fig, list(handles.values()), "cell (median, quartiles over seeds)")
    return fig


@styled
def decay_bands(panels: Sequence[tuple[str, np.ndarray, Mapping[str, tuple]]], colours: Mapping[str, str],
                norm: str = "spectral") -> Figure:
    """panels: (title, lags, {cell: (median, q25, q75) over seeds}) at the last checkpoint."""
    fig, axes = _panels(len(panels))
    handles = {}
    for ax, (title, lags, by_cell) in zip(axes, panels):
        for cell, (med, q25, q75) in by_cell.items():
            col = colours[cell]
            ax.fill_between(lags, gaps(q25), gaps(q75), color=col, alpha=0.2, linewidth=0)
            h, = ax.plot(lags, gaps(med), color=col, label=plain(cell))
            handles.setdefault(cell, h)
        ax.set_xlabel(X_LAG)
        ax.set_ylabel(y_jac(norm))
        ax.set_title(plain(title))
    legends_outside(fig, list(handles.values()), "cell (median over seeds, quartile band)")
    return fig


def _split(doc: Sweep):
    """The first non-seed key is the x axis; the other keys' combinations are panels."""
    keys = [k for k in doc.keys if k != doc.seed_key]
    xkey = keys[0] if keys else None
    panels: dict[str, list] = {}
    for g in doc.groups:
        rest = {k: v for k, v in g.values.items() if k != xkey}
        panels.setdefault(setting(rest) if rest else "", []).append(g)
    return xkey, panels


def select_success(doc: Sweep):
    xkey, panels = _split(doc)
    if xkey is None:
        return "one setting only (nothing varies but the seed): see the table"
    labels = doc.labels
    out = []
    for title, groups in panels.items():
        by = {}
        for lab in labels:
            keep = [(g, c) for g in groups if (c := g.cell(lab)).trials]
            by[lab] = ([g.values[xkey] for g, _ in keep], [c.rate for _, c in keep],
                       [c.wilson95[0] for _, c in keep], [c.wilson95[1] for _, c in keep],
                       [f"{c.successes}/{c.trials}" for _, c in keep])
        out.append((title, by))
    return {"panels": out, "xkey": xkey, "colours": cell_colours(labels)}


def select_loss(doc: Sweep):
    xkey, panels = _split(doc)
    if xkey is None:
        return "one setting only: see the table"
    labels = doc.labels
    out = []
    for title, groups in panels.items():
        by = {}
        for lab in labels:
            rows = []
            for g in groups:
                c = g.cell(lab)
                if c.final_loss and c.memoryless_loss:
                    m, q = c.memoryless_loss, c.final_loss
                    rows.append((g.values[xkey], q.median / m, q.q25 / m, q.q75 / m))
            if rows:
                by[lab] = tuple(list(col) for col in zip(*rows))
        out.append((title, by))
    return {"panels": out, "xkey": xkey, "colours": cell_colours(labels)}


def select_decay(doc: Sweep):
    labels = doc.labels
    out = []
    for g in doc.groups:
        by = {}
        for c in g.cells:
            if c.curves:
                last = c.curves[-1]
                f = lambda v: np.array([-np.inf if x is None else x for x in v], dtype=float)  # noqa: E731
                by[c.cell] = (f(last.median), f(last.q25), f(last.q75))
        if by:
            ck = g.cells[0].curves[-1].checkpoint if g.cells[0].curves else 0
            out.append((f"{setting(g.values)} (step {ck})", np.asarray(g.lags, dtype=float), by))
    if not out:
        return "no finished point has curves"
    return {"panels": out, "colours": cell_colours(labels)}
