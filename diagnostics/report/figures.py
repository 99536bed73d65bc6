"""The report's figures: for each, what data it needs (select) and how it is drawn (draw).

In the manner of cockpit's instruments, `select` picks plain arrays out of a run (or returns a
sentence saying why the figure cannot be drawn) and `draw` turns those arrays into a Figure.
The list FIGURES fixes the order on the page and the PNG file names.
"""
from __future__ import annotations

import numpy as np

from dataclasses import replace

from . import figures_decay as fd
from . import figures_influence as fi
from . import figures_sensitivity as fs
from . import figures_train as ft
from . import select_sensitivity as ss
from .data import RunData
from .page import FigureSpec
from .style import JAC, JAC_S, cell_colours, checkpoint_colours


def fit_line(lags: np.ndarray, median: np.ndarray, slope: float | None) -> np.ndarray | None:
    """The fitted geometric decay (log10 slope per step) as a line over the lags. The contract
    stores only the slope, so the offset is the median of (curve - slope k) over finite points
    (the Theil-Sen choice)."""
    ok = np.isfinite(median)
    if slope is None or not ok.any() or median.size != lags.size:
        return None
    icpt = float(np.median(median[ok] - slope * lags[ok]))
    line = icpt + slope * lags
    line[~ok] = np.nan    # only where the curve itself exists
    return line


def geometric_moving_mean(values, w: int) -> np.ndarray:
    """Centred moving mean of log(values) over w points, back on the linear scale: the right
    average for a log axis. Missing or non-positive values are left out (NaN where all are)."""
    y = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.where(y > 0, np.log(y), np.nan)
    if w <= 1 or ly.size == 0:
        return np.exp(ly)
    ok = np.isfinite(ly)
    kernel = np.ones(w)
    total = np.convolve(np.where(ok, ly, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore"):
        out = np.exp(total / count)
    out[~ok] = np.nan      # no smoothed value where the run itself has none (e.g. after divergence)
    return out


def _curve_dict(c) -> dict:
    return {"median": c.median, "q25": c.q25, "q75": c.q75, "rows": c.rows, "value": c.value, "interval": c.interval}


def _bound(d: RunData, cell: str, ck: int):
    """The Pascanu bound for the norm drawn: (γ σ_max)^k holds for the spectral norm; for the
    Frobenius norm the bound that holds is √n times it (‖J‖_F <= √n ‖J‖_2)."""
    b = d.bound(cell, ck)
    if b is None or d.primary_norm == "spectral":
        return b
    n = d.cell_options(cell).get("hidden")
    return b + 0.5 * np.log10(n) if isinstance(n, int) and n > 0 else None


def _jac(paths) -> str:
    """∂a/∂a in a title, ∂S/∂S when every drawn curve is a state path, both when mixed."""
    paths = {p for p in paths if p}
    return JAC_S if paths == {"state"} else f"{JAC} (or {JAC_S})" if "state" in paths else JAC


def select_decay(d: RunData):
    ck, curves = d.last_checkpoint, {}
    for cell in d.cells:
        c = d.curve(cell, ck)
        if c is None:
            continue
        hz = c.fit.horizon
        curves[cell] = {**_curve_dict(c), "fit_line": fit_line(d.lags, c.median, c.fit.slope),
                        "rho": c.fit.factor, "bound": _bound(d, cell, ck),
                        "horizon": float(hz) if hz is not None else None, "path": d.decay_path(cell)}
    if not curves:
        return "No a-path (or state-path) curves in curves.json."
    lag = d.run.task_lag
    return {"lags": d.lags, "curves": curves, "colours": cell_colours(d.cells), "norm": d.primary_norm,
            "task_lag": float(lag) if lag is not None else None,
            "title": f"How fast {_jac(c.get('path') for c in curves.values())} shrinks with the lag k ({d.when})"}


def select_memory(d: RunData):
    ck, cells = d.last_checkpoint, {}
    for cell in d.cells:
        paths = [p for p in ("a", "c", "c_direct", "memory", "state") if p in d.paths_of(cell)]
        if not {"c", "c_direct", "memory"} & set(paths):
            continue
        cells[cell] = {p: _curve_dict(d.curve(cell, ck, p)) for p in paths if d.curve(cell, ck, p)}
    if not cells:
        return ("No cell in this case carries a memory c⟨t⟩ (no LSTM) or a direct memory path (no mLSTM), so there are "
                "no memory paths to show.")
    return {"lags": d.lags, "cells": cells, "norm": d.primary_norm, "title": f"Memory paths of the gated cells ({d.when})"}


def select_checkpoints(d: RunData):
    if len(d.checkpoints) < 2:
        return "The case has no training (the probe ran at initialisation only), so there is one curve per cell: see the first figure."
    cells, shown = {}, thinned(d.checkpoints)
    for cell in d.cells:
        by_ck = {ck: _curve_dict(c) for ck in shown if (c := d.curve(cell, ck)) is not None}
        if by_ck:
            cells[cell] = by_ck
    if not cells:   # a monitored model: its influence has its own lags and figure
        return ("No cell here has a decay curve of its state; the model's input-to-output influence at the last "
                "checkpoint is in its own figure, and its fit over training in figure 3b.")
    return {"lags": d.lags, "cells": cells, "colours": checkpoint_colours(shown), "norm": d.primary_norm,
            "paths": {c: d.decay_path(c) for c in cells},
            "title": "How training moves the decay curve (median, 25–75 % band)"}


SHOWN_CHECKPOINTS = 8


def thinned(checkpoints: list[int]) -> list[int]:
    """At most SHOWN_CHECKPOINTS of them, evenly spread, the first and the last kept: a
    monitored training probes at every `every` steps, and a hundred curves in one panel (and
    its legend) show nothing."""
    if len(checkpoints) <= SHOWN_CHECKPOINTS:
        return list(checkpoints)
    picks = np.unique(np.linspace(0, len(checkpoints) - 1, SHOWN_CHECKPOINTS).round().astype(int))
    return [checkpoints[i] for i in picks]


def select_fit_over_training(d: RunData):
    if len(d.checkpoints) < 2:
        return "One checkpoint per cell: the horizon and decay factor are in the summary table."
    cells = {}
    for cell in d.cells:
        fits = [(ck, f) for ck in d.checkpoints if (f := d.fit(cell, ck)) is not None]
        if len(fits) >= 2:
            cells[cell] = {"step": [ck for ck, _ in fits], "horizon": [f.horizon for _, f in fits],
                           "factor": [f.factor for _, f in fits]}
    if not cells:
        return "No cell was probed at two checkpoints or more."
    return {"cells": cells, "colours": cell_colours(d.cells), "lags": int(d.lags[-1]),
            "title": "Horizon and decay factor over training"}


def select_tk(d: RunData):
    ck, maps, norm = d.last_checkpoint, {}, d.primary_norm
    for cell in d.cells:
        m = d.tk_map(cell, ck)
        if m is not None and len(m[0]) >= 2:
            maps[cell], norm = (d.lags, m[0], m[1]), m[2]
    if not maps:
        return "No (t, k) map with two or more anchor steps t in curves.json (probe.tk_map off or one anchor)."
    return {"maps": maps, "norm": norm, "paths": {c: d.decay_path(c) for c in maps},
            "title": f"Decay at every anchor step t ({d.when})"}


def _xy_select(pick, what: str):
    """pick(d, cell) -> {checkpoint: (x, log10 y)}: RunData.grad_flow or .temporal_components."""
    def select(d: RunData):
        series = {c: s for c in d.cells if (s := pick(d, c))}
        if not series:
            return f"No {what} in curves.json (it is measured during training; this case does not train)."
        return {"series": series, "colours": cell_colours(d.cells)}
    return select


def select_training(d: RunData):
    runs = {}
    for cell in d.cells:
        t = d.training(cell)
        if t is None or not t.step:
            continue
        n = len(t.step)
        w = max(1, n // 30) | 1     # odd window, ~30 windows over the run
        gap = float(np.median(np.diff(t.step))) if n > 1 else 1.0   # steps may be recorded sparsely
        runs[cell] = ft.TrainingRun(step=t.step, loss=t.loss, grad_norm=t.grad_norm, memoryless_loss=t.memoryless_loss,
                                    diverged_at=t.diverged_at, checkpoints=t.checkpoints,
                                    loss_at_checkpoints=t.loss_at_checkpoints, loss_kind=t.loss_kind,
                                    window=w, window_steps=int(round(w * gap)),
                                    loss_smooth=geometric_moving_mean(t.loss, w),
                                    grad_smooth=geometric_moving_mean(t.grad_norm, w))
    if not runs:
        return "No training in this case, so there is no loss curve."
    return {"runs": runs, "colours": cell_colours(d.cells),
            "title": "Training: does the cell beat the memoryless loss?"}


def select_lyapunov(d: RunData):
    spectra = {c: lam for c in d.cells if (lam := d.lyapunov(c, d.last_checkpoint)) is not None and lam.size}
    if not spectra:
        return "No Lyapunov spectrum in curves.json (probe.lyapunov is 0)."
    return {"spectra": spectra, "colours": cell_colours(d.cells),
            "title": f"Lyapunov spectrum ({d.when})"}


def select_norms(d: RunData):
    if not {"spectral", "frobenius"} <= set(d.norms()):
        return f"Only one norm was measured ({', '.join(d.norms()) or 'none'})."
    cells = {}
    for cell in d.cells:
        s = d.curve(cell, d.last_checkpoint, norm="spectral")
        f = d.curve(cell, d.last_checkpoint, norm="frobenius")
        if s is not None:
            # each norm's own estimate: a spectral one is a lower bound, a Frobenius one has an interval
            cells[cell] = {"spectral": {"median": s.median, "rows": s.rows, "value": s.value},
                           "frobenius": None if f is None else {"median": f.median, "rows": f.rows, "value": f.value,
                                                                "interval": f.interval}}
    return {"lags": d.lags, "cells": cells, "colours": cell_colours(d.cells),
            "title": f"Spectral against Frobenius norm of {_jac(d.decay_path(c) for c in cells)} ({d.when})"}


def _has_models(d: RunData) -> bool:
    """The case has model cells (their figures are left off every other page)."""
    return bool(d.curves.influence)


def select_influence(d: RunData):
    curves = {}
    for cell in d.curves.model_cells:
        got = d.influence(cell)
        if got is None:
            continue
        lags, c, kind = got
        hz = c.fit.horizon
        curves[cell] = {**_curve_dict(c), "lags": lags, "kind": kind, "rho": c.fit.factor,
                        "fit_line": fit_line(lags, c.median, c.fit.slope),
                        "horizon": float(hz) if hz is not None else None}
    if not curves:
        return f"No influence curve in the {d.primary_norm} norm in curves.json."
    return {"curves": curves, "colours": cell_colours(d.cells), "norm": d.primary_norm,
            "title": "Influence of the input k steps back on the output now"}


def select_layer_memory(d: RunData):
    cells = {}
    for cell in d.curves.model_cells:
        paths = [p for p in d.paths_of(cell) if p.endswith(".memory")]
        ck = d.curves.checkpoints_of(cell)[-1]   # a monitored model's last checkpoint; a case's 0
        curves = {p: _curve_dict(c) for p in paths if (c := d.curve(cell, ck, p)) is not None}
        if curves:
            cells[cell] = curves
    if not cells:
        return ("No model cell here is a selective recurrence the memory paths know (Mamba, Mamba-2, RecurrentGemma, "
                "xLSTM), so there are no per-layer memory paths to show.")
    return {"lags": d.lags, "cells": cells, "norm": d.primary_norm,
            "title": "Memory paths of each selective layer, through its gates alone"}


def _titled(fn, title):
    return lambda **kw: fn(title=title, **kw)


FIGURES: list[FigureSpec] = [
    FigureSpec("decay", "1. Gradient decay over the lag",
               "Each line is the median over probe sequences of log10 ‖∂a<t>/∂a<t-k>‖₂, the factor by which a "
               "change in the hidden state k steps back still moves the state now; the shaded band holds the middle "
               "half of the sequences. For a cell whose output is not fed back (Mamba, Mamba-2, Gated DeltaNet, "
               "mLSTM, a stack of them) the line is its state path ‖∂S<t>/∂S<t-k>‖₂ instead, marked so in the legend. A straight falling line is geometric decay: its slope is log10 ρ per step. "
               "Dashed: the fitted line; dash-dot: the Pascanu bound (γ σ_max(W_a))^k for plain RNNs (times √n when the curves are Frobenius norms, the bound that holds for them); dotted "
               "vertical: the horizon; thick grey vertical (when known): the task's lag, how far back the input that "
               "matters lies. Gaps mean an exact zero. A curve estimated from r random rows (probe.estimator) says "
               "so in its legend: a spectral one is a lower bound, a Frobenius one has its 95 % interval hatched.",
               select_decay, fd.decay_curves),
    FigureSpec("memory_paths", "2. Memory paths (gated cells)",
               "For cells with a memory cell c⟨t⟩: the hidden-state path a, the memory path c, the direct path "
               "through the forget gate alone (c_direct, ∏ Γ_f) and the full state [a; c] (for an mLSTM: its "
               "direct memory path ∏ f′ and its state [C; n; m]). A flat c line is the "
               "'constant error carousel': the memory keeps information that the hidden state loses.",
               select_memory, fd.memory_paths),
    FigureSpec("checkpoints", "3. Decay curves during training",
               "The median a-path curve (state path for a cell whose output is not fed back) of each cell at every "
               "probe checkpoint (dark = early, light = late).",
               select_checkpoints, fd.checkpoint_curves),
    FigureSpec("fit_over_training", "3b. Horizon and decay factor over training",
               "Per cell, at every probe checkpoint: the horizon (the first lag three decades below lag 1, on the "
               "curve of figure 3; a hollow marker at the top: none within the probed lags) and the fitted decay "
               "factor ρ per step (1: nothing decays). A horizon that grows while the loss falls is the memory the "
               "training is building.", select_fit_over_training, ft.fit_over_training),
    FigureSpec("tk_map", "4. The (t, k) map",
               "Colour = log10 ‖∂a<t>/∂a<t-k>‖₂ (median; the state path ‖∂S<t>/∂S<t-k>‖₂ for a cell whose output "
               "is not fed back, marked so in its panel's title) for each anchor step t and lag k, one shared scale. "
               "Horizontal stripes that look alike mean the decay does not depend on where in the sequence one "
               "starts. White: not measured (k > t) or an exact zero.", select_tk, fd.tk_maps),
    FigureSpec("grad_flow", "5. Gradient flow through the sequence",
               "How large the loss gradient is with respect to the hidden state at each step s. Where it falls "
               "away towards early steps, early inputs barely influence learning. Solid: last checkpoint; "
               "dashed: first.",
               _xy_select(RunData.grad_flow, "gradient flow"),
               _titled(ft.gradient_flow, "Gradient of the loss reaching each step")),
    FigureSpec("temporal_components", "6. Temporal components of the weight gradient",
               "The recurrent-weight gradient is a sum over lags (Pascanu et al. 2013, eq. 4); each point is the "
               "size of the part that comes from k steps back. Long-lag parts far below short-lag ones are what "
               "'vanishing gradient' means for learning.",
               _xy_select(RunData.temporal_components, "temporal components"),
               _titled(ft.temporal_components, "Size of each lag's contribution to ∂L/∂W")),
    FigureSpec("training", "7. Training loss against the memoryless loss",
               "Loss per optimiser step on a log scale; the dashed black line is the memoryless loss, the best loss "
               "possible without memory of the relevant input. A cell has learned the long-lag dependency only if it "
               "goes clearly below it. Dots mark the steps where the probe ran.", select_training, ft.training_curves),
    FigureSpec("lyapunov", "8. Lyapunov spectrum",
               "The long-run growth rates of small perturbations of the state, largest first (natural log per step). "
               "Negative: perturbations, and gradients, die out at rate e^λ per step; near zero: they persist; "
               "positive: they explode. The right axis gives the same value as a log10 slope, to compare with "
               "figure 1.", select_lyapunov, ft.lyapunov_spectrum),
    FigureSpec("norms", "9. Spectral and Frobenius norms",
               "The spectral norm ‖J‖₂ (largest stretch, thick) against the Frobenius norm ‖J‖_F (all directions, "
               "thin dashed). They differ by at most a factor √n, so both show the same decay rate. A norm estimated "
               "from r random rows (probe.estimator) says so in its legend: the spectral one as a lower bound, the "
               "Frobenius one with its 95 % interval hatched.",
               select_norms, fd.norm_comparison),
    FigureSpec("sensitivity", "10. Sensitivity of the state to its recurrent parameters, by lag",
               "d a<t>/dθ = Σ_k (∂a<t>/∂a<t-k>)(∂⁺a<t-k>/∂θ): each line is the root mean square over sequences "
               "of the Frobenius norm of the part that comes from k steps back, one panel per recurrent parameter θ "
               "(Zucchet & Orvieto 2024). It is the Jacobian of figure 1 times how much step t-k itself depends on θ, "
               "so a long memory adds up many parts that barely decay.", ss.select_by_lag, fs.sensitivity_by_lag,
               applies=ss.asked),
    FigureSpec("sensitivity_memory", "11. The curse of memory: sensitivity and state against memory",
               "Each point is one cell: left, the root mean square of ‖d a<t>/dθ‖_F, the sum of every lag of figure 10 "
               "back to the start of the stream; right, of ‖a<t>‖₂; against 1 − |λ|², where |λ| is the fitted decay "
               "factor ρ of figure 1 (|λ| itself for a linear recurrence). Lines: the closed forms, drawn for "
               "one-unit linear recurrences and LRUs with a unit input weight on gaussian or AR(1) inputs. A slope "
               "of −p on these axes is growth like (1 − |λ|²)^(−p): the curse of memory is a sensitivity that grows "
               "faster than the state.", ss.select_memory, fs.sensitivity_memory, applies=ss.asked),
    FigureSpec("influence", "12. Input-to-output influence of the models",
               "For each model cell (a whole sequence model named in the case: a Hugging Face model, or your own "
               "module), the median over sequences of log10 ‖∂y<t>/∂x<t-k>‖: how much its output at the anchor step "
               "t moves with its input k steps earlier, lag 0 being the direct term. This is the influence through "
               "the whole model, every layer and path at once, not the state-to-state Jacobian ‖∂a<t>/∂a<t-k>‖ of "
               "figure 1, and it is not comparable to it line for line. Dashed: the fitted geometric line; dotted: "
               "the horizon (3 decades below lag 1). For a transformer it has no reason to fall with the lag: "
               "attention reaches every earlier step directly.", select_influence, fi.influence_curves,
               applies=_has_models),
    FigureSpec("layer_memory", "13. Memory paths of the selective layers",
               "For the models whose layers are selective recurrences (Mamba, Mamba-2, RecurrentGemma's RG-LRU, "
               "xLSTM's mLSTM): per layer, the state-to-state factor k steps back through the gates alone, read "
               "from the model's parameters and its activations on these inputs (exp(Δ A) per channel and state "
               "coordinate; the RG-LRU's a; the forget gate per head). Spectral: the largest coordinate; Frobenius: "
               "every state entry. It bounds how long one layer can hold an input, whatever the layers around it do.",
               select_layer_memory, fi.layer_memory, applies=_has_models),
]


def _has_cells(d: RunData) -> bool:
    """The run has cells of diag's own (not only model cells): figures 1-9 are theirs."""
    models = set(d.curves.model_cells)
    return not models or any(c not in models for c in d.cells)


def _has_cells_or_training(d: RunData) -> bool:
    """Figures 3b and 7 are also a monitored model's: its influence fit and loss over training."""
    return _has_cells(d) or bool(d.curves.training)


# a page of model cells only leaves the cells' figures off, as a page without sensitivity does 10-11
FIGURES = [replace(f, applies=_has_cells_or_training if f.slug in ("fit_over_training", "training") else _has_cells)
           if f.slug not in ("influence", "layer_memory") and not f.slug.startswith("sensitivity") else f
           for f in FIGURES]
