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

from ..documents import CURVES, RUN, primary_norm, read_document


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
    fit: dict


@dataclass
class RunData:
    curves: dict
    run: dict
    lags: np.ndarray = field(init=False)
    cells: list[str] = field(init=False)
    kinds: dict[str, str] = field(init=False)
    checkpoints: list[int] = field(init=False)

    def __post_init__(self):
        self.lags = np.asarray(self.curves.get("lags", []), dtype=float)
        self.kinds = {}
        for c in self.run.get("cells", []):
            self.kinds[c["label"]] = c.get("kind", "?")
        for s in self.curves.get("series", []):
            self.kinds.setdefault(s["cell"], s.get("kind", "?"))
        self.cells = list(self.kinds)  # run.json order first: colours stay stable across figures
        self.checkpoints = sorted({int(s["checkpoint"]) for s in self.curves.get("series", [])})

    @classmethod
    def load(cls, run_dir: Path) -> "RunData":
        """From a run folder's saved files (BadDocument, one line, when one is missing or bad)."""
        run_dir = Path(run_dir)
        return cls(read_document(run_dir / "curves.json", CURVES), read_document(run_dir / "run.json", RUN))

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
        listed = (self.run.get("probe_plan") or {}).get("norms") or self.norms()
        return primary_norm(listed)

    def curve(self, cell: str, checkpoint: int, path: str = "a", norm: str | None = None) -> Curve | None:
        norm = norm or self.primary_norm
        for s in self.curves.get("series", []):
            if (s["cell"], int(s["checkpoint"]), s["path"], s["norm"]) == (cell, checkpoint, path, norm):
                lg = s.get("log10", {})
                pairs = (s.get("forward_diverged") or {}).get("of")
                gone = [pairs is not None and c == pairs for c in s.get("nonfinite") or []]
                return Curve(*(_no_value(log_array(lg.get(q)), gone) for q in ("median", "q25", "q75")),
                             dict(s.get("fit") or {}))
        return None

    def paths_of(self, cell: str) -> list[str]:
        seen = []
        for s in self.curves.get("series", []):
            if s["cell"] == cell and s["path"] not in seen:
                seen.append(s["path"])
        return seen

    def norms(self) -> list[str]:
        return sorted({s["norm"] for s in self.curves.get("series", [])})

    def bound(self, cell: str, checkpoint: int) -> np.ndarray | None:
        for b in self.curves.get("bounds", []) or []:
            if b.get("cell") == cell and int(b.get("checkpoint", -1)) == checkpoint:
                return log_array(b.get("log10"))
        return None

    def items(self, key: str, cell: str, checkpoint: int | None = None) -> list[dict]:
        """The items of curves.json's `key` list for `cell` (at `checkpoint` if given)."""
        out = [it for it in (self.curves.get(key) or []) if it.get("cell") == cell]
        if checkpoint is not None:
            out = [it for it in out if int(it.get("checkpoint", -1)) == checkpoint]
        return out

    def tk_map(self, cell: str, checkpoint: int, path: str = "a"):
        """(anchors (A,), (A, K) log10 median, norm) or None."""
        for it in self.items("tk_map", cell, checkpoint):
            if it.get("path", "a") == path:
                rows = [log_array(r, null=np.nan) for r in it.get("log10_median", [])]
                if not rows:
                    return None
                width = max(len(r) for r in rows)
                grid = np.full((len(rows), width), np.nan)
                for i, r in enumerate(rows):
                    grid[i, :len(r)] = r
                return np.asarray(it.get("anchors", []), dtype=float), grid, it.get("norm", "spectral")
        return None

    def xy_by_checkpoint(self, key: str, xkey: str, cell: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """grad_flow (xkey "t") or temporal_components (xkey "lags"): checkpoint -> (x, log10 y)."""
        return {int(it.get("checkpoint", 0)): (num_array(it.get(xkey)), log_array(it.get("log10")))
                for it in self.items(key, cell)}

    def lyapunov(self, cell: str, checkpoint: int) -> np.ndarray | None:
        """The exponents, NaN (not drawn) where they are rounding rather than signal."""
        items = self.items("lyapunov", cell, checkpoint)
        if not items:
            return None
        lam = log_array(items[0].get("exponents"))
        flags = items[0].get("resolved")
        if isinstance(flags, list) and len(flags) == lam.size:
            lam[~np.asarray(flags, dtype=bool)] = np.nan
        return lam

    def training(self, cell: str) -> dict | None:
        items = self.items("training", cell)
        return items[0] if items else None

    def has(self, key: str) -> bool:
        return bool(self.curves.get(key))

    # --- the case in words --------------------------------------------------------------
    @property
    def case(self) -> dict:
        return self.run.get("case") or {}

    @property
    def name(self) -> str:
        return str(self.case.get("name") or self.curves.get("case") or "unnamed case")

    @property
    def imported(self) -> dict:
        """label -> the weight file it was read from, for cells whose weights were imported."""
        return dict((self.run.get("files") or {}).get("imported") or {})

    def cell_doc(self, label: str) -> str | None:
        """A registered cell's class docstring, as run.json recorded it."""
        return next((c.get("doc") for c in self.run.get("cells", []) if c.get("label") == label), None)

    def cell_options(self, label: str) -> dict:
        for c in self.run.get("cells", []):
            if c.get("label") == label:
                return dict(c.get("options") or {})
        for c in self.case.get("cells", []) or []:
            if c.get("label") == label:
                return {k: v for k, v in c.items() if k not in ("kind", "label")}
        return {}
