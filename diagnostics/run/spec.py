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

from ..cells import Stacked, make_cell
from ..errors import CaseError, DiagnosticsError, error_lines
from ..optional import OptionalMissing
from ..tasks import make_task
from ..weights import WeightsError, load_weights, read_inputs, read_tokens
from ..yamlfile import read_yaml
from .models import build_model_cell, is_model_cell
from .plan import ProbePlan, make_plan, plan_problems, quick_case
from .schema import MODEL, STACK, case_model, unknown_key


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
    feeds: tuple = ()            # per cell: weights.Imported when read from a file, else None
    inputs: Any = None           # probe.inputs (T, B, d), replacing the task's stream
    tokens: Any = None           # probe.tokens (T, B) ids, for the model cells (run/models.py)

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
        return quick_baseline(p) if self.quick else p


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
    """"activation: must be ..." from a cell becomes "cells[0].activation: must be ..." (its
    options' lines, or the one message of a ValueError from its check())."""
    lines = exc.lines if isinstance(exc, DiagnosticsError) else [str(exc).strip() or exc.__class__.__name__]
    return [f"{key}.{ln}" if ln.split(":")[0].replace(".", "").replace("_", "").isalnum() else f"{key}: {ln}"
            for ln in lines]


def _imported(i: int, spec, base_dir: Path, lines: list[str]):
    """cells[i] read from its weight file (diagnostics.weights), or None with the problem said."""
    given = type(spec).model_fields.keys() & spec.model_fields_set - {"kind", "label", "weights"}
    allowed = {"hidden"} | ({"activation"} if spec.kind == "rnn" else set())
    for k in sorted(given - allowed):
        lines.append(f"cells[{i}].{k}: is set by the weight file (cells[{i}].weights); remove it")
    w = spec.weights
    try:
        return load_weights(base_dir / w.file, spec.kind, prefix=w.prefix, layer=w.layer, direction=w.direction,
                            nonlinearity=spec.activation if "activation" in given else None,
                            hidden=spec.hidden if "hidden" in given else None)
    except WeightsError as e:
        lines.append(f"cells[{i}].weights: {e}")
        return None


def build(case: BaseModel, *, quick: bool = False, path: Path | None = None,
          base_dir: Path | None = None) -> RunSpec:
    """The second pass: task, cells (or imported weights), user inputs, labels and the probe
    plan of a validated case."""
    base_dir = base_dir or (path.parent if path else Path.cwd())
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
    cells, feeds, missing = [], [], {}
    for i, spec in enumerate(case.cells):
        if spec.kind == MODEL:
            feeds.append(None)
            cell = _model(i, spec, case, base_dir, lines, missing)
            if cell is not None:
                cells.append(cell)
            continue
        imp = _imported(i, spec, base_dir, lines) if getattr(spec, "weights", None) is not None else None
        feeds.append(imp)
        if imp is not None:
            cells.append(imp.cell)
            if case.train is not None and (imp.reverse or imp.below):
                lines.append(f"cells[{i}].weights: a backward direction or a layer above the first reads inputs "
                             "the task does not provide, so it cannot be trained here; remove `train`")
            elif imp.input_size != task.input_size and (case.train is not None or case.probe.inputs is None):
                # the task's stream feeds the training and, without probe.inputs, the probe
                fix = ("train it on a task of that input size" if case.train is not None else
                       f"the probe reads the task's stream: set task.input_size: {imp.input_size} or give probe.inputs"
                       if "input_size" in type(t).model_fields else
                       "the probe reads the task's stream: give probe.inputs, or a task of that input size")
                lines.append(f"cells[{i}].weights: the model reads {imp.input_size} features per step but the "
                             f"{task.kind} task gives {task.input_size}; {fix}")
            continue
        cell = (_stack(spec, task.input_size, f"cells[{i}]", lines) if spec.kind == STACK else
                _cell(spec, task.input_size, f"cells[{i}]", lines))
        if cell is not None:
            cells.append(cell)
    # a dependency to install: one line for every model cell that needs it
    lines += [f"{', '.join(f'cells[{i}]' for i in at)}: {hint}" for hint, at in missing.items()]
    inputs = tokens = None
    if not lines:
        lines += _model_inputs_problems(case, cells)
    if not lines and case.probe.inputs is not None:
        inputs = _read_inputs(case, cells, feeds, base_dir, lines)
    if not lines and case.probe.tokens is not None:
        tokens = _read_tokens(case, cells, base_dir, lines)
    given = inputs.shape[:2] if inputs is not None else tokens.shape if tokens is not None else None
    if not lines:
        lines += plan_problems(case, task, cells, given)
    if lines:
        raise CaseError(lines)
    if quick:
        case = quick_case(case, task.length if given is None else given[0])
    return RunSpec(case=case, path=path, base_dir=base_dir, quick=quick, labels=tuple(labels), task=task,
                   cells=tuple(cells), plan=make_plan(case, task, cells, given),
                   feeds=tuple(feeds), inputs=inputs, tokens=tokens)


def _cell(spec, input_size: int, key: str, lines: list[str]):
    """One cell entry built with `input_size`, or None with its problems said under `key`."""
    opts = {k: getattr(spec, k) for k in type(spec).model_fields if k not in ("kind", "label", "weights")}
    try:
        return make_cell(spec.kind, input_size=input_size, **opts)
    except (ValueError, TypeError) as e:
        lines += _prefixed(key, e)
        return None


def _stack(spec, input_size: int, key: str, lines: list[str]):
    """A `kind: stack` entry: each layer built with the width of the output below it (the
    task's input for the first), then the Stacked cell; None with the problems said."""
    layers = []
    for k, layer in enumerate(spec.layers):
        cell = _cell(layer, input_size, f"{key}.layers[{k}]", lines)
        if cell is None:
            return None
        layers.append(cell)
        input_size = cell.readout_size
    return Stacked(tuple(layers))


def _model(i: int, spec, case, base_dir: Path, lines: list[str], missing: dict[str, list[int]]):
    """cells[i], a `kind: model` entry, loaded (run/models.py: a factory runs the user's code),
    or None with the problem said (a missing dependency's hint gathered in `missing`)."""
    if case.train is not None:
        lines.append(f"cells[{i}]: a model cell takes no `train:` (training it is your own loop; give the "
                     "trained model's save_pretrained folder or factory instead); remove `train`")
        return None
    try:
        return build_model_cell(spec, base_dir, [case.seed, 1, i])
    except OptionalMissing as e:
        missing.setdefault(e.lines[0], []).append(i)
        return None
    except DiagnosticsError as e:
        lines += _prefixed(f"cells[{i}]", e)
        return None


def _model_inputs_problems(case, cells) -> list[str]:
    """A model cell reads probe.inputs or probe.tokens (one of them); tokens feed model cells only."""
    p, out = case.probe, []
    models = [i for i, c in enumerate(cells) if is_model_cell(c)]
    if p.inputs is not None and p.tokens is not None:
        out.append("probe.tokens: give probe.inputs (embeddings) or probe.tokens (ids), not both")
    elif models and p.inputs is None and p.tokens is None:
        out.append(f"probe.inputs: cells[{models[0]}] is a model cell: give its inputs as probe.inputs (embeddings, "
                   "(T, B, d)) or probe.tokens (ids, (T, B))")
    elif p.tokens is not None:
        out += [f"probe.tokens: cells[{i}] ({c.kind}) reads no tokens (only a model cell has an input embedding); "
                "give probe.inputs instead" for i, c in enumerate(cells) if not is_model_cell(c)]
        out += [f"probe.tokens: cells[{i}] ({cells[i].kind}) has no input embedding (get_input_embeddings); "
                "give probe.inputs instead" for i in models if cells[i].vocab is None]
    return out


def _read_tokens(case, cells, base_dir: Path, lines: list[str]):
    """probe.tokens, read and checked against every model's vocabulary."""
    path, key = case.probe.tokens_file
    try:
        return read_tokens(base_dir / path, min(c.vocab for c in cells), key=key)
    except WeightsError as e:
        lines.append(f"probe.tokens: {e}")
        return None


def _read_inputs(case, cells, feeds, base_dir: Path, lines: list[str]):
    """probe.inputs, read and checked against every cell's input size (an imported cell takes
    the model's own inputs and turns them into its own, see weights.Imported.inputs; a model
    cell that does not state its width is not checked here, the measurement says)."""
    sizes = {f.input_size if f is not None else c.input_size for c, f in zip(cells, feeds)} - {None}
    if len(sizes) > 1:
        lines.append(f"probe.inputs: the cells read different input sizes ({', '.join(map(str, sorted(sizes)))}); "
                     "one input file cannot feed them all")
        return None
    path, key = case.probe.inputs_file
    try:
        return read_inputs(base_dir / path, sizes.pop() if sizes else None, key=key)
    except WeightsError as e:
        lines.append(f"probe.inputs: {e}")
        return None


def quick_baseline(p: Path) -> Path:
    """A quick run's own baseline beside the full run's: <stem>.quick.json (its lags and steps
    differ, so it never compares against, or overwrites, the full run's)."""
    return p.with_name(f"{p.stem}.quick{p.suffix or '.json'}")


def baseline_inside(b: str | None) -> bool:
    """Is a `baseline:` path inside its file's folder (relative, no ".."): a baseline is
    written there by --update-baseline, and a file from elsewhere must not be able to point
    that write at /etc or ../../anything."""
    return b is None or (not Path(b).is_absolute() and ".." not in Path(b).parts)


def resolve(source: str | os.PathLike | dict, *, quick: bool = False,
            base_dir: str | os.PathLike | None = None) -> RunSpec:
    """A case file's path (or an inline case as a dict, relative paths against `base_dir`)
    -> RunSpec; CaseError(lines) on any problem, each line prefixed with the file."""
    if isinstance(source, dict):
        return build(validate_data(source), quick=quick, base_dir=Path(base_dir) if base_dir else None)
    p = Path(source)
    raw = read_yaml(p)
    if isinstance(raw, dict) and "base" in raw and "vary" in raw and "cells" not in raw:
        raise CaseError([f"{p}: is a sweep file (it has `base:` and `vary:`); run it with `diag sweep {p}`"])
    try:
        return build(validate_data(raw), quick=quick, path=p)
    except CaseError as e:
        raise CaseError([f"{p}: {line}" for line in e.lines]) from None


def resolve_files(files, *, quick: bool = False, baseline_anywhere: bool = False) -> list[RunSpec]:
    """Every case resolved before anything runs (one bad file: nothing is written); two cases
    that would write the same report folder are an error."""
    specs, problems = [], []
    for f in files:
        try:
            spec = resolve(f, quick=quick)
        except CaseError as e:
            problems += e.lines
            continue
        specs.append(spec)
        # only `diag run` writes a case's baseline (the plugin and sweeps keep their own)
        if not baseline_anywhere and not baseline_inside(spec.case.baseline):
            problems.append(f"{f}: baseline: must be a path inside the case's folder ({spec.base_dir}), got "
                            f"{spec.case.baseline!r} (diag run --baseline-anywhere allows it)")
    names: dict[str, str] = {}
    for s in specs:
        if s.name in names:
            problems.append(f"{s.path}: name: {s.name!r} is also the name of {names[s.name]}; "
                            "both would write the same report folder")
        names.setdefault(s.name, str(s.path))
    if problems:
        raise CaseError(problems)
    return specs
