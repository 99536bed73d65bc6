"""One resolution step: a case file (or an inline case) plus --quick -> a frozen RunSpec.

    spec = resolve("cases/copy.yaml", quick=True)     # or CaseError(lines): one line per problem
    spec.case      # the validated case, --quick applied, every default filled in
    spec.task, spec.cells, spec.labels, spec.plan     # built once, here
    spec.resolved()                                    # plain data for run.json

`diag run`, `diag validate`, the pytest plugin and `diag sweep` all start here; nothing after
this reads the raw YAML. Problems are found in two passes: the schema (every key, type and
option of every kind, all at once), then, if it passed, what needs the built task and cells
(unique labels, state sizes, paths, the probe plan).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import CaseError, error_lines
from .plan import ProbePlan, make_plan, plan_problems, quick_case
from .schema import case_model, unknown_key
from .yamlfile import read_yaml


@dataclass(frozen=True)
class RunSpec:
    case: BaseModel              # the validated case (--quick applied), defaults filled in
    path: Path | None            # the case file; None for an inline case
    base_dir: Path               # relative paths in the case (baseline, files) resolve here
    quick: bool
    labels: tuple[str, ...]
    task: Any
    cells: tuple
    plan: ProbePlan

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def folder_name(self) -> str:
        """The report folder under --out: a quick run never replaces the full run's report."""
        return f"{self.case.name}.quick" if self.quick else self.case.name

    def resolved(self) -> dict[str, Any]:
        """The case as plain data with every default filled in, labels included (run.json)."""
        d = self.case.model_dump(mode="json", exclude_none=True)
        for c, label in zip(d["cells"], self.labels):
            c["label"] = label
        return d

    @property
    def baseline_path(self) -> Path:
        """<case folder>/baselines/<name>.json, or the case's `baseline:` relative to its folder;
        quick runs keep their own file, <stem>.quick.json (their lags and steps differ)."""
        if self.case.baseline is not None:
            p = Path(self.case.baseline)
            p = p if p.is_absolute() else self.base_dir / p
        else:
            p = self.base_dir / "baselines" / f"{self.case.name}.json"
        return p.with_name(f"{p.stem}.quick{p.suffix or '.json'}") if self.quick else p


def default_labels(cells) -> list[str]:
    """Unlabelled cells are named after their kind; a repeated kind gets "lstm 2", "lstm 3"."""
    given = {c.label for c in cells if c.label is not None}
    count: dict[str, int] = {}
    out = []
    for c in cells:
        if c.label is not None:
            out.append(c.label)
            continue
        n = count.get(c.kind, 0)
        while True:
            n += 1
            label = c.kind if n == 1 else f"{c.kind} {n}"
            if label not in given:
                break
        count[c.kind] = n
        out.append(label)
    return out


def validate_data(raw: Any) -> BaseModel:
    """The schema pass: the validated case model, or CaseError with every problem."""
    model = case_model()
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise CaseError(error_lines(e, model, unknown_key)) from None


def _prefixed(key: str, exc: Exception) -> list[str]:
    """"activation: must be ..." from a cell becomes "cells[0].activation: must be ..."."""
    lines = getattr(exc, "lines", None) or [str(exc).strip() or exc.__class__.__name__]
    return [f"{key}.{ln}" if ln.split(":")[0].replace(".", "").replace("_", "").isalnum() else f"{key}: {ln}"
            for ln in lines]


def build(case: BaseModel, *, quick: bool = False, path: Path | None = None,
          base_dir: Path | None = None) -> RunSpec:
    """The second pass: task, cells, labels and the probe plan of a validated case."""
    from .cells import make_cell
    from .tasks import make_task
    lines: list[str] = []
    labels = default_labels(case.cells)
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label in first:
            lines.append(f"cells[{i}].label: must be unique; {label!r} is also the label of cells[{first[label]}]")
        first.setdefault(label, i)
    t = case.task
    task = make_task(t.kind, **{k: getattr(t, k) for k in type(t).model_fields if k != "kind"})
    if case.train is not None and task.loss_kind is None:
        lines.append(f"train: the {task.kind} task has no targets to train on; remove `train` "
                     "(the probe then runs at initialisation)")
    cells = []
    for i, spec in enumerate(case.cells):
        opts = {k: getattr(spec, k) for k in type(spec).model_fields if k not in ("kind", "label")}
        try:
            cells.append(make_cell(spec.kind, input_size=task.input_size, **opts))
        except (ValueError, TypeError) as e:
            lines += _prefixed(f"cells[{i}]", e)
    if not lines:
        lines += plan_problems(case, task, cells)
    if lines:
        raise CaseError(lines)
    if quick:
        case = quick_case(case, task.length)
    return RunSpec(case=case, path=path, base_dir=base_dir or (path.parent if path else Path.cwd()),
                   quick=quick, labels=tuple(labels), task=task, cells=tuple(cells),
                   plan=make_plan(case, task, cells))


def _check_baseline(spec: RunSpec) -> None:
    """`baseline:` stays under the case's folder: `--update-baseline` writes there, and a case
    file from elsewhere must not be able to point it at /etc or ../../anything."""
    b = spec.case.baseline
    if b is None:
        return
    inside = not Path(b).is_absolute() and ".." not in Path(b).parts
    if not inside:
        raise CaseError([f"baseline: must be a path inside the case's folder ({spec.base_dir}), got {b!r} "
                         "(diag run --baseline-anywhere allows it)"])


def resolve(source: str | os.PathLike | dict, *, quick: bool = False,
            base_dir: str | os.PathLike | None = None, baseline_anywhere: bool = False) -> RunSpec:
    """A case file's path (or an inline case as a dict, relative paths against `base_dir`)
    -> RunSpec; CaseError(lines) on any problem, each line prefixed with the file."""
    if isinstance(source, dict):
        spec = build(validate_data(source), quick=quick, base_dir=Path(base_dir) if base_dir else None)
        if not baseline_anywhere:
            _check_baseline(spec)
        return spec
    p = Path(source)
    raw = read_yaml(p)
    try:
        spec = build(validate_data(raw), quick=quick, path=p)
        if not baseline_anywhere:
            _check_baseline(spec)
        return spec
    except CaseError as e:
        raise CaseError([f"{p}: {line}" for line in e.lines]) from None


def resolve_files(files, *, quick: bool = False, baseline_anywhere: bool = False) -> list[RunSpec]:
    """Every case resolved before anything runs (one bad file: nothing is written); two cases
    that would write the same report folder are an error."""
    specs, problems = [], []
    for f in files:
        try:
            specs.append(resolve(f, quick=quick, baseline_anywhere=baseline_anywhere))
        except CaseError as e:
            problems += e.lines
    names: dict[str, str] = {}
    for s in specs:
        if s.name in names:
            problems.append(f"{s.path}: name: {s.name!r} is also the name of {names[s.name]}; "
                            "both would write the same report folder")
        names.setdefault(s.name, str(s.path))
    if problems:
        raise CaseError(problems)
    return specs
