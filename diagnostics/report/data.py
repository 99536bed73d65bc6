"""Reading a run folder: curves.json + run.json, and the selections the figures need.

This is the "computing" half of the report: every figure function receives plain arrays
picked here, never the raw JSON, so a figure can be drawn from any source of the same arrays.
JSON null in a log10 array means the norm was exactly zero (log10 = -inf); it becomes -inf
here and the drawing code turns non-finite values into gaps. In a series whose forward pass
diverged (`forward_diverged`, curves.py), a lag where every pair was left out has no value:
its nulls become NaN, so nothing reads them as exact zeros.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..documents import Curves, Fit, Run, SummaryRow, Training, primary_norm


def log_array(values: Any, null: float = -np.inf) -> np.ndarray:
    """JSON list of log10 values -> float64 array; null (an exact zero) -> `null`."""
    if values is None:
        return np.zeros(0)
    return np.array([null if v is None else float(v) for v in values], dtype=np.float64)


def _no_value(y: np.ndarray, gone: list[bool]) -> np.ndarray:
    """NaN at the lags where every pair was left out (a null there is no value, not a zero)."""
    if any(gone) and len(gone) == y.size:
        y[np.asarray(gone)] = np.nan
    return y


def num_array(values: Any) -> np.ndarray:
    """JSON list of plain numbers -> float64 array; null (was non-finite) -> NaN."""
    return log_array(values, null=np.nan)


@dataclass
class Curve:
    """One (cell, checkpoint, path, norm) decay curve over the lags."""
    median: np.ndarray
    q25: np.ndarray
    q75: np.ndarray
    fit: Fit
    # an estimated curve (curves.json `estimated`): its rows, "hutchinson" or "lower_bound",
    # and for the Frobenius estimate the (lo, hi) of its interval per lag, each end the median
    # over the (anchor, sequence) pairs
    rows: int | None = None
    value: str | None = None
    interval: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class RunData:
    """The two documents of a run folder (dicts are checked into the models) and the arrays the
    figures draw. A run.json without a case (curves from a training loop of one's own) is drawn
    too: the cells are the curves', the summary is computed from them."""
    curves: Curves
    run: Run
    lags: np.ndarray = field(init=False)
    cells: list[str] = field(init=False)
    kinds: dict[str, str] = field(init=False)
    checkpoints: list[int] = field(init=False)
    summary: list[SummaryRow] = field(init=False)

    def __post_init__(self):
        self.curves, self.run = Curves.of(self.curves, "curves"), Run.of(self.run, "run")
        self.lags = np.asarray(self.curves.lags, dtype=float)
        self.kinds = {c.label: c.kind for c in self.run.cells}
        for s in [*self.curves.series, *self.curves.influence]:
            self.kinds.setdefault(s.cell, s.kind)
        self.cells = list(self.kinds)  # run.json order first: colours stay stable across figures
        self.checkpoints = self.curves.checkpoints
        self.summary = self.run.summary_of(self.curves)

    @classmethod
    def load(cls, run_dir: Path) -> "RunData":
        """From a run folder's saved files (BadDocument, one line, when one is missing or bad)."""
        run_dir = Path(run_dir)
        return cls(Curves.read(run_dir / "curves.json"), Run.read(run_dir / "run.json"))

    # --- selections -------------------------------------------------------------------
    @property
    def last_checkpoint(self) -> int:
        return self.checkpoints[-1] if self.checkpoints else 0

    @property
    def when(self) -> str:
        """The figures' title words for the checkpoint they show."""
        return "at initialisation" if self.last_checkpoint == 0 else f"after {self.last_checkpoint} training steps"

    @property
    def primary_norm(self) -> str:
        """The norm summaries read (documents.primary_norm), in the order the probe listed them."""
        listed = self.run.probe_plan.norms if self.run.probe_plan is not None else self.curves.norms
        return primary_norm(listed)

    def curve(self, cell: str, checkpoint: int, path: str | None = None, norm: str | None = None) -> Curve | None:
        """The curve of `path` (the cell's decay path when None: a, or state, Curves.decay_paths)."""
        s = self.curves.series_for(cell, checkpoint, path, norm or self.primary_norm)
        if s is None:
            return None
        pairs = s.forward_diverged.of if s.forward_diverged is not None else None
        gone = [pairs is not None and c == pairs for c in s.nonfinite]
        e = s.estimated
        iv = None if e is None or e.interval is None else (log_array(e.interval.lo), log_array(e.interval.hi))
        return Curve(*(_no_value(log_array(q), gone) for q in (s.log10.median, s.log10.q25, s.log10.q75)), s.fit,
                     None if e is None else e.rows, None if e is None else e.value, iv)

    def fit(self, cell: str, checkpoint: int):
        """The fit of the cell's decay curve at `checkpoint`, or of its whole-model influence
        (a model cell, a monitored model), or None: what the tables and 3b read over training."""
        c = self.curve(cell, checkpoint)
        if c is not None:
            return c.fit
        x = self.curves.influence_of(cell, checkpoint, norm=self.primary_norm)
        return None if x is None else x.fit

    def influence(self, cell: str, path: str = "influence", norm: str | None = None):
        """(lags, Curve, kind) of a model cell's input-to-output influence (its own lags from 0)
        at its last checkpoint, or None."""
        x = self.curves.influence_of(cell, path=path, norm=norm or self.primary_norm)
        if x is None:
            return None
        e = x.estimated
        iv = None if e is None or e.interval is None else (log_array(e.interval.lo), log_array(e.interval.hi))
        c = Curve(*(log_array(q) for q in (x.log10.median, x.log10.q25, x.log10.q75)), x.fit,
                  None if e is None else e.rows, None if e is None else e.value, iv)
        return np.asarray(x.lags, dtype=float), c, x.kind

    def paths_of(self, cell: str) -> list[str]:
        return self.curves.paths_of(cell)

    def norms(self) -> list[str]:
        return self.curves.norms

    def bound(self, cell: str, checkpoint: int) -> np.ndarray | None:
        b = self.curves.bound_of(cell, checkpoint)
        return None if b is None else log_array(b.log10)

    def decay_path(self, cell: str) -> str | None:
        return self.curves.decay_paths().get(cell)

    def tk_map(self, cell: str, checkpoint: int, path: str | None = None):
        """(anchors (A,), (A, K) log10 median, norm) or None."""
        it = self.curves.tk_map_of(cell, checkpoint, path)
        rows = [log_array(r, null=np.nan) for r in it.log10_median] if it is not None else []
        if not rows:
            return None
        width = max(len(r) for r in rows)
        grid = np.full((len(rows), width), np.nan)
        for i, r in enumerate(rows):
            grid[i, :len(r)] = r
        return np.asarray(it.anchors, dtype=float), grid, it.norm

    def grad_flow(self, cell: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """checkpoint -> (time steps s, log10 ||dL/d a<s>||)."""
        return {it.checkpoint: (num_array(it.t), log_array(it.log10))
                for it in self.curves.grad_flow if it.cell == cell}

    def temporal_components(self, cell: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """checkpoint -> (lags, log10 of each lag's part of the weight gradient)."""
        return {it.checkpoint: (num_array(it.lags), log_array(it.log10))
                for it in self.curves.temporal_components if it.cell == cell}

    def lyapunov(self, cell: str, checkpoint: int) -> np.ndarray | None:
        """The exponents, NaN (not drawn) where they are rounding rather than signal."""
        it = self.curves.lyapunov_of(cell, checkpoint)
        if it is None:
            return None
        lam = log_array(it.exponents)
        lam[~np.asarray(it.resolved_flags, dtype=bool)] = np.nan
        return lam

    def training(self, cell: str) -> Training | None:
        return self.curves.training_of(cell)

    # --- the case in words --------------------------------------------------------------
    @property
    def case(self) -> dict:
        """The resolved case as run.json holds it ({} for curves that came from no case file)."""
        return self.run.case or {}

    @property
    def name(self) -> str:
        return str(self.case.get("name") or self.curves.case or "unnamed case")

    @property
    def imported(self) -> dict:
        """label -> the weight file it was read from, for cells whose weights were imported."""
        return self.run.imported

    def cell_doc(self, label: str) -> str | None:
        """A registered cell's class docstring, as run.json recorded it."""
        return next((c.doc for c in self.run.cells if c.label == label), None)

    def cell_options(self, label: str) -> dict:
        for c in self.run.cells:
            if c.label == label:
                return dict(c.options)
        for c in self.case.get("cells", []) or []:
            if c.get("label") == label:
                return {k: v for k, v in c.items() if k not in ("kind", "label")}
        return {}
