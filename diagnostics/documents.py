"""The files a run leaves, by contract: their format strings and the one way to read them.

    curves.json  "diag-curves/1"  numbers that depend only on the case and seed (byte-stable)
    run.json     "diag-run/1"     the resolved case, versions, machine, timings, summary
    sweep.json   "diag-sweep/1"   a sweep's success rates and pooled curves (diagnostics/sweep)
    sweep-run.json "diag-sweep-run/1"  what varies between runs of a sweep (its timings, machine)

`read_document(path, CURVES)` accepts a file or a run folder and raises `BadDocument` with one
line naming the file and the problem. `primary_norm` is the one rule for which norm a summary
(table, fits, (t, k) map, figures, regression adapters) reads when several were measured.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import DiagnosticsError

CURVES = "diag-curves/1"
RUN = "diag-run/1"
SWEEP = "diag-sweep/1"
SWEEP_RUN = "diag-sweep-run/1"   # written since this version; earlier sweep-run.json had no format
_FILES = {CURVES: "curves.json", RUN: "run.json", SWEEP: "sweep.json"}
_REQUIRED = {CURVES: ("lags", "series"), SWEEP: ("groups", "points")}


class BadDocument(DiagnosticsError):
    """A file that cannot be used; the message is one line naming the file and the problem."""


def primary_norm(norms) -> str:
    """Spectral when measured (the norm of the Pascanu bound and of the Lyapunov rate), else
    the first listed."""
    norms = list(norms)
    return "spectral" if "spectral" in norms or not norms else norms[0]


def read_document(path_or_dir: str | os.PathLike, fmt: str) -> dict:
    given = Path(path_or_dir)
    p = given / _FILES[fmt] if given.is_dir() else given
    if not p.exists():
        raise BadDocument(f"{given} has no {_FILES[fmt]}" if given.is_dir() else f"{p}: no such file")
    if not p.is_file():   # a FIFO with no writer would block the read forever
        raise BadDocument(f"{p}: not a regular file (a pipe or a device); expected {fmt} JSON")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadDocument(f"{p}: not a text file (expected {fmt} JSON)") from None
    except json.JSONDecodeError as e:
        raise BadDocument(f"{p}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    except OSError as e:
        raise BadDocument(f"{p}: cannot read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise BadDocument(f"{p}: expected a JSON object with format {fmt!r}, got {type(data).__name__}")
    if data.get("format") != fmt:
        raise BadDocument(f"{p}: format: expected {fmt!r}, got {data.get('format')!r}")
    for key in _REQUIRED.get(fmt, ()):
        if not isinstance(data.get(key), list):
            raise BadDocument(f"{p}: {key}: expected a list, got {type(data.get(key)).__name__}")
    return data


def all_diverged(part) -> bool:
    """A summary row's forward_diverged or lyapunov_diverged covers every pair or sequence:
    there is no number to show."""
    return bool(part) and part.get("pairs", part.get("sequences")) == part.get("of")
