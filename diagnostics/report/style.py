"""Shared look of every figure: colour-blind-safe colours, readable fonts, byte-stable PNGs.

Figures are built on matplotlib.figure.Figure directly (no pyplot), so rendering a report
never touches global pyplot state or needs a display; PNG output goes through Agg.
"""
from __future__ import annotations

import functools
import io
from typing import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation

# Okabe & Ito (2008) palette, reordered so the first colours contrast most on white;
# yellow (#F0E442) is last because it is faint on a white background.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
PATH_COLOURS = {"a": "#0072B2", "c": "#D55E00", "c_direct": "#009E73", "memory": "#009E73", "state": "#000000"}
PATH_NAMES = {"a": r"$a^{\langle t\rangle}$ (hidden state)", "c": r"$c^{\langle t\rangle}$ (memory cell)",
              "c_direct": r"$c^{\langle t\rangle}$ direct path (through $\Gamma_f$ only)",
              "memory": r"$C^{\langle t\rangle}$ direct path (through $f'$ only)",
              "state": "full state ([a; c] for an LSTM)"}
SEQUENTIAL = "viridis"   # perceptually uniform and colour-blind-safe; used for checkpoints and maps

RC = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 9.5,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 2.0, "figure.facecolor": "white", "axes.facecolor": "white",
    "legend.framealpha": 0.9,
}
DPI = 110

# Axis labels (mathtext, so ⟨t⟩ and norms render the same with every font)
NORM_SUB = {"spectral": "2", "frobenius": "F"}


def y_jac(norm: str = "spectral", part: str = "a") -> str:
    """y label: log10 of the named norm of ∂part⟨t⟩/∂part⟨t−k⟩."""
    sub = NORM_SUB.get(norm, norm)
    return (r"$\log_{10}\,\|\partial %s^{\langle t\rangle}/\partial %s^{\langle t-k\rangle}\|_{%s}$"
            % (part, part, sub))


def y_decay(norm: str, paths) -> str:
    """y label of a figure of decay curves whose paths (Cell.decay_path per drawn cell) are
    given: ∂a/∂a, ∂S/∂S when every one is a state path, and a note when they are mixed."""
    paths = {p for p in paths if p}
    if paths == {"state"}:
        return y_jac(norm, "S")
    return y_jac(norm) + ("\n" + r"($\partial S/\partial S$ for the cells marked state path)" if "state" in paths else "")


JAC = r"$\partial a^{\langle t\rangle}/\partial a^{\langle t-k\rangle}$"
JAC_S = r"$\partial S^{\langle t\rangle}/\partial S^{\langle t-k\rangle}$"
STATE_MARK = "   [state path ∂S/∂S]"
X_LAG = "lag k (steps back in time)"


def legends_outside(fig, handles, title: str | None = None, keys: list | None = None) -> None:
    """Legends right of the axes (figure-level, so constrained layout makes room for them and
    they never hide a curve or a secondary axis); `keys` (line-style meanings) below them."""
    fig.legend(handles=list(handles), loc="outside right upper", title=title)
    if keys:
        fig.legend(handles=keys, loc="outside right lower", fontsize=9)


def plain(label: str) -> str:
    """A case's label as literal text: a '$' would otherwise start matplotlib mathtext."""
    return str(label).replace("$", r"\$")


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the shared rcParams (fonts and sizes are fixed at creation)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)
    return wrapper


def new_figure(width: float, height: float, **kw) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", **kw)


def cell_colours(cells: list[str]) -> dict[str, str]:
    return {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(cells)}


def checkpoint_colours(checkpoints: list[int]) -> dict[int, tuple]:
    """Early checkpoints dark, late ones light; the palest yellow is cut off (faint on white)."""
    cmap = matplotlib.colormaps[SEQUENTIAL]
    n = len(checkpoints)
    pos = np.linspace(0.0, 0.85, n) if n > 1 else [0.0]
    return {c: cmap(p) for c, p in zip(checkpoints, pos)}


def gaps(y: np.ndarray) -> np.ndarray:
    """Non-finite values (log10 of an exact zero, failed steps) are drawn as gaps."""
    y = np.asarray(y, dtype=float).copy()
    y[~np.isfinite(y)] = np.nan
    return y


class _PlainLogFormatter(LogFormatterSciNotation):
    """Matplotlib's choice of which log ticks to label, printed as plain numbers (0.06, 2)."""

    def __call__(self, x, pos=None):
        return f"{x:.3g}" if super().__call__(x, pos) else ""


def plain_log_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers instead of 6×10⁻²."""
    axis.set_major_formatter(_PlainLogFormatter(labelOnlyBase=True))
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False))


def png_bytes(fig: Figure) -> bytes:
    """PNG without a Software/date chunk, so the same data gives the same bytes."""
    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()
