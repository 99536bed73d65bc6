"""Overlay figures for failing checks: the baseline band against the current curve.

One PNG per failing series (or Lyapunov spectrum, or training record), so a CI artifact shows at a
glance what moved and where. Figures are built on matplotlib's object API with the Agg canvas (no
pyplot global state, no display needed) and written atomically.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..documents import Curves
from ..io import atomic_write_bytes
from .comparison import Comparison

BASE, CUR = "#0072B2", "#D55E00"     # Okabe-Ito blue / vermillion: colour-blind safe


def _arr(v) -> np.ndarray:
    """JSON list with nulls (exact zeros in log space) -> float array with NaN gaps."""
    return np.array([np.nan if x is None else float(x) for x in (v or [])], dtype=float)


def _find(doc: Curves, section: str, ident: tuple):
    return next((it for it in getattr(doc, section) if it.key == ident), None)


def _slug(parts) -> str:
    s = "-".join(str(p) for p in parts)
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", s).strip("_")[:120] or "overlay"


def _title(section: str, ident: tuple) -> str:
    if section in ("series", "influence"):
        return f"{ident[0]}, checkpoint {ident[1]}, path {ident[2]}, {ident[3]} norm"
    if section == "lyapunov":
        return f"{ident[0]}, checkpoint {ident[1]}, Lyapunov spectrum of {ident[2]}"
    return f"{ident[0]}, training loss"


def _worst(rows) -> str:
    """e.g. 'median at k=12 (+0.129 decades), slope' -- short enough for a title line."""
    parts = []
    for r in rows:
        stat = r.series.rsplit(" ", 1)[-1] if r.what == "point" else r.what
        at = {"point": f" at k={r.lag}", "loss": f" at step {r.lag}", "lyapunov": f" #{r.lag}"}.get(r.what, "")
        d = f" ({r.difference:+.3g})" if r.difference is not None else ""
        parts.append(f"{stat}{at}{d}")
    return ", ".join(parts)


def _lags(item, n: int) -> np.ndarray:
    """The lags of a curve: an influence curve's own (from 0), a series' 1..n."""
    own = getattr(item, "lags", None)
    return np.asarray(own, dtype=float) if own and len(own) == n else np.arange(1, n + 1)


def _series_fig(ax, base, cur, rows, tol) -> None:
    influence = False
    for item, colour, who in ((base, BASE, "baseline"), (cur, CUR, "current")):
        if item is None:
            continue
        influence = influence or hasattr(item, "lags")
        lg = item.log10
        med = _arr(lg.median)
        k = _lags(item, med.size)
        if who == "baseline":
            q25, q75 = _arr(lg.q25), _arr(lg.q75)
            if q25.size == med.size == q75.size:
                ax.fill_between(k, q25, q75, color=colour, alpha=0.25, lw=0, label="baseline q25–q75")
            ax.fill_between(k, med - tol.decades, med + tol.decades, color=colour, alpha=0.12, lw=0,
                            label=f"baseline median ± {tol.decades:g} decades")
            ax.plot(k, med, color=colour, lw=1.5, ls="--", label="baseline median")
        else:
            for q in (_arr(lg.q25), _arr(lg.q75)):
                if q.size:
                    ax.plot(_lags(item, q.size), q, color=colour, lw=0.8, ls=":")
            ax.plot(k, med, color=colour, lw=1.8, label="current median (dotted: q25, q75)")
    for lag in sorted({r.lag for r in rows if r.what == "point" and isinstance(r.lag, int)}):
        ax.axvline(lag, color="0.4", lw=0.8, ls="-.")     # where each failing statistic moved most
    ax.set_xlabel("lag k (steps)")
    # a model's influence is of its output on its input, not of a state on itself
    ax.set_ylabel("log10 ‖∂y⟨t⟩/∂x⟨t−k⟩‖ (input-to-output influence)" if influence
                  else "log10 ‖∂state⟨t⟩/∂state⟨t−k⟩‖")


def _lyapunov_fig(ax, base, cur, rows, tol) -> None:
    for item, colour, who, m in ((base, BASE, "baseline", "o"), (cur, CUR, "current", "x")):
        if item is None:
            continue
        e = _arr(item.exponents)
        i = np.arange(1, e.size + 1)
        if who == "baseline":
            ax.errorbar(i, e, yerr=tol.lyapunov_abs, fmt=m, color=colour, capsize=3,
                        label=f"baseline ± {tol.lyapunov_abs:g}")
        else:
            ax.plot(i, e, m, color=colour, ms=8, label="current")
    ax.set_xlabel("exponent index (largest first)")
    ax.set_ylabel("Lyapunov exponent (ln per step)")


def _training_fig(ax, base, cur, rows, tol) -> None:
    positive = True
    for item, colour, who in ((base, BASE, "baseline"), (cur, CUR, "current")):
        if item is None:
            continue
        loss = _arr(item.loss)
        steps = np.asarray(item.step or np.arange(loss.size), dtype=float)
        n = min(steps.size, loss.size)
        steps, loss = steps[:n], loss[:n]
        positive &= bool(np.all(loss[np.isfinite(loss)] > 0))
        ax.plot(steps, loss, color=colour, lw=1.5, ls="--" if who == "baseline" else "-", label=f"{who} loss")
        ck, lc = item.checkpoints, _arr(item.loss_at_checkpoints)
        if len(ck) == lc.size and lc.size:
            ax.plot(ck, lc, "o", color=colour, ms=5)
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")


KINDS = {"series": _series_fig, "influence": _series_fig, "lyapunov": _lyapunov_fig, "training": _training_fig}


def write_overlays(comparison: Comparison, current: Curves | dict, baseline: Curves | dict, out_dir) -> list[Path]:
    """Write one overlay PNG per failing series/spectrum/training record; return their paths."""
    out_dir = Path(out_dir)
    current, baseline = Curves.of(current, "current curves"), Curves.of(baseline, "baseline curves")
    groups: dict[tuple, list] = {}
    for r in comparison.failing:
        if r.key and r.key[0] in KINDS:
            groups.setdefault(r.key, []).append(r)
    paths, used = [], set()
    for key, rows in groups.items():
        section, ident = key[0], key[1:]
        draw = KINDS[section]
        base, cur = _find(baseline, section, ident), _find(current, section, ident)
        fig = Figure(figsize=(7.5, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        draw(ax, base, cur, rows, comparison.tol)
        ax.set_title(f"{_title(section, ident)}\nFAILING: {_worst(rows)}", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # lags, indices and steps are whole
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        name = _slug((section, *ident))
        while name in used:
            name += "_"
        used.add(name)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        path = out_dir / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths
