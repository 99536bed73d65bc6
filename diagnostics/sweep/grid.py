"""A sweep file -> every point of its grid, each resolved and validated like a case.

    sweep = load_sweep("cases/sweeps/latch_sweep.yaml", quick=False, max_points=5000)
    sweep.points[i].id, .values ({"task.p": 5, "seed": 0}), .case (the point's case, plain
    data), .spec (its RunSpec)

Nothing runs here. Problems are CaseError lines, one per problem, the sweep file first: the
sweep schema, then the base case on its own, then the grid's size, then each point as a case
("point 3 (task.p=1, seed=0): task.p: must be >= 2, got 1"); a problem shared by many points
is said once, for the first of them, with how many more share it.

A point's id is a hash of what decides its numbers: the resolved case (every default filled
in, --quick applied) less the keys that only label it (description, report, baseline,
tolerances), and the package version. So a rerun finds a finished point by its id, and a new
version of the package runs every point again.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import CaseError, error_lines, key_path, short
from ..run.spec import RunSpec, baseline_inside, quick_baseline, resolve
from ..version import __version__
from ..yamlfile import read_yaml
from . import MAX_POINTS
from .schema import SweepFile, old_success

SEED_KEY = "seed"
LABEL_ONLY = ("description", "report", "baseline", "tolerances")
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")


@dataclass(frozen=True)
class Point:
    index: int
    id: str
    values: dict[str, Any]       # key path -> value, in the order of `vary`
    case: dict                   # the point's case as written (base + values), plain data
    spec: RunSpec

    def label(self) -> str:
        return values_label(self.values)


def values_label(values: dict) -> str:
    """"task.p=5, seed=0": a point in messages."""
    return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in values.items())


@dataclass(frozen=True)
class Sweep:
    file: SweepFile
    path: Path | None
    base_dir: Path               # the point cases' relative paths resolve here
    quick: bool
    keys: tuple[str, ...]
    points: tuple[Point, ...]
    warnings: tuple[str, ...] = ()   # one line each (an old spelling read); `diag sweep` prints them

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def folder_name(self) -> str:
        return f"{self.name}.quick" if self.quick else self.name

    @property
    def seed_key(self) -> str | None:
        return SEED_KEY if SEED_KEY in self.keys else None

    @property
    def group_keys(self) -> tuple[str, ...]:
        """The varied keys other than the seed: what a row of the table is."""
        return tuple(k for k in self.keys if k != SEED_KEY)

    @property
    def baseline_path(self) -> Path:
        folder = self.path.parent if self.path else self.base_dir
        b = self.file.baseline
        p = folder / b if b else folder / "baselines" / f"{self.name}.sweep.json"
        return quick_baseline(p) if self.quick else p


def parse_key(key: str) -> list[str | int]:
    """"cells[0].recurrent_init.gain" -> ["cells", 0, "recurrent_init", "gain"]; ValueError."""
    parts: list[str | int] = []
    for seg in key.split("."):
        m = _SEGMENT.fullmatch(seg)
        if not m:
            raise ValueError(f"must be a key path such as task.p or cells[0].hidden, got {key!r}")
        parts.append(m.group(1))
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    return parts


def set_key(case: dict, parts: list[str | int], value: Any, key: str) -> None:
    """Set a value in the case; a missing mapping on the way is created (a default the base
    case did not write), a missing list item is an error."""
    node: Any = case
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = key if last else key_path(parts[:i + 1])
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                have = f"{len(node)} item(s)" if isinstance(node, list) else "no list"
                raise ValueError(f"{where}: the base case has {have} at {key_path(parts[:i], 'the top')}")
        elif not isinstance(node, dict):
            raise ValueError(f"{where}: the base case has {short(node)} at {key_path(parts[:i])}, not a mapping")
        if last:
            node[part] = copy.deepcopy(value)
        else:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = [] if isinstance(parts[i + 1], int) else {}
            node = node[part]


def success_problems(success, points) -> list[str]:
    """The criterion must be measurable at every point (one line per kind of problem)."""
    out: list[str] = []
    for p in points:
        if p.spec.case.train is None:
            line = "success: the points have no `train`; a success rate needs training"
        else:
            problem = success.problem(p.spec.task)
            if problem is None:
                continue
            line = f"success.kind: {problem}"
        if line not in out:
            out.append(line)
    return out


def point_id(spec: RunSpec) -> str:
    numbers = {k: v for k, v in spec.resolved().items() if k not in LABEL_ONLY}
    text = json.dumps({"case": numbers, "quick": spec.quick, "version": __version__},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read(source) -> tuple[SweepFile, Path | None, list[str]]:
    """The validated sweep file, its path, and the warnings of reading it."""
    if isinstance(source, dict):
        raw, path = source, None
    else:
        path = Path(source)
        raw = read_yaml(path)
    if isinstance(raw, dict) and "cells" in raw and "vary" not in raw:
        raise CaseError([f"is a case file (it has `cells:` and no `vary:`); run it with `diag run {path or ''}`, "
                         "or name it as a sweep's `base:`"])
    old = old_success(raw.get("success")) if isinstance(raw, dict) else None
    if old is not None:
        raw = {**raw, "success": old[0]}
    try:
        return SweepFile.model_validate(raw), path, [old[2]] if old else []
    except ValidationError as e:
        lines = error_lines(e, SweepFile)
    if old is not None and old[1] != "task":   # a bad value in the old spelling: name the key written
        field = next(f"success.{k}:" for k in old[0] if k != "kind")
        lines = [f"success.{old[1]}:" + ln[len(field):] if ln.startswith(field) else ln for ln in lines]
    raise CaseError(lines)


def _base(sf: SweepFile, folder: Path) -> tuple[dict, Path]:
    """The base case as plain data and the folder its relative paths resolve in."""
    if isinstance(sf.base, dict):
        return copy.deepcopy(sf.base), folder
    p = Path(sf.base)
    p = p if p.is_absolute() else folder / p
    raw = read_yaml(p)
    return raw, p.parent


def load_sweep(source: str | os.PathLike | dict, *, quick: bool = False, max_points: int = MAX_POINTS,
               base_dir: str | os.PathLike | None = None) -> Sweep:
    """Every point resolved, or CaseError with one line per problem (the file first)."""
    where = f"{source}: " if not isinstance(source, dict) else ""
    try:
        return _load(source, quick, max_points, base_dir)
    except CaseError as e:
        raise CaseError([where + line for line in e.lines]) from None


def _load(source, quick: bool, max_points: int, base_dir) -> Sweep:
    sf, path, warnings = _read(source)
    folder = path.parent if path else Path(base_dir or Path.cwd())
    if not baseline_inside(sf.baseline):   # --update-baseline writes it
        raise CaseError([f"baseline: must be a path inside the sweep file's folder ({folder}), got {sf.baseline!r}"])
    try:
        base, case_dir = _base(sf, folder)
    except CaseError as e:   # the base file's own lines name it
        raise CaseError([f"base: {line}" for line in e.lines]) from None
    try:
        resolve(base, quick=quick, base_dir=case_dir)
    except CaseError as e:
        raise CaseError([f"base: {line}" for line in e.lines]) from None
    problems = []
    keys = {}
    for key in sf.vary:
        try:
            keys[key] = parse_key(key)
        except ValueError as e:
            problems.append(f"vary.{key}: {e}")
    if problems:
        raise CaseError(problems)
    sizes = sf.sizes()   # counted before anything is listed: a range may be astronomically long
    size = math.prod(sizes.values())
    if size > max_points:
        dims = " x ".join(f"{n} {k}" for k, n in sizes.items())
        raise CaseError([f"vary: the grid has {size} points ({dims}), more than --max-points {max_points}; "
                         "vary fewer values or raise --max-points"])
    grid = sf.values()
    points, seen = [], {}
    for index, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(grid, combo))
        case = copy.deepcopy(base)
        try:
            for key, value in values.items():
                set_key(case, keys[key], value, key)
            spec = resolve(case, quick=quick, base_dir=case_dir)
        except CaseError as e:   # before ValueError: it is one
            lines = e.lines
        except ValueError as e:
            lines = [str(e)]
        else:
            points.append(Point(index, point_id(spec), values, case, spec))
            continue
        label = values_label(values)
        for line in lines:
            first = seen.setdefault(line, [f"point {index} ({label})", 0])
            first[1] += 1
    if seen:
        raise CaseError([f"{first}: {line}" + (f" (and {n - 1} more point(s))" if n > 1 else "")
                         for line, (first, n) in seen.items()])
    problems = success_problems(sf.success, points)
    if problems:
        raise CaseError(problems)
    ids = {}
    for p in points:   # two grid points that resolve to the same case would share a folder
        if p.id in ids:
            raise CaseError([f"vary: point {p.index} ({p.label()}) is the same case as point "
                             f"{ids[p.id]}; a repeated value or a key the case ignores"])
        ids[p.id] = p.index
    return Sweep(sf, path, folder, quick, tuple(grid), tuple(points), tuple(warnings))
