"""The typed output documents (diagnostics/documents): curves.json, run.json, sweep.json and
sweep-run.json read into their models and written back byte for byte (every committed baseline,
a fresh run and a fresh sweep), files from before a key existed, unknown keys refused in one
line, writers held to the whole form, the JSON Schema of each, a run.json without a case, and
a document that is a FIFO refused in one line rather than waited on."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from sweep_helpers import write_sweep

from diagnostics.cli.main import main
from diagnostics.documents import (
    RUN,
    BadDocument,
    Curves,
    Run,
    Sweep,
    SweepRun,
    json_schema,
    read_document,
)
from diagnostics.documents.base import Model
from diagnostics.run.runner import run_to_folder
from diagnostics.run.spec import resolve

ROOT = Path(__file__).resolve().parent.parent
CURVE_BASELINES = sorted((ROOT / "cases" / "baselines").glob("*.json"))
SWEEP_BASELINES = sorted((ROOT / "cases" / "sweeps" / "baselines").glob("*.json"))

CASE = {"name": "docs", "seed": 0, "task": {"kind": "adding", "length": 12},
        "cells": [{"kind": "rnn", "hidden": 4}, {"kind": "lstm", "hidden": 4}],
        "train": {"steps": 6, "batch": 4, "checkpoints": [0, 6]},
        "probe": {"lags": 8, "sequences": 3, "lyapunov": 2, "lyapunov_steps": 30, "tk_map": {"anchors": 2},
                  "sensitivity": True}}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A run folder written by diag run's own code (curves.json, run.json, no page)."""
    out = tmp_path_factory.mktemp("fresh")
    return run_to_folder(resolve(CASE, base_dir=out), out, report=False, show=False).folder


@pytest.fixture(scope="module")
def fresh_sweep(tmp_path_factory) -> Path:
    """A sweep folder: two real points computed in process (no cluster), then sweep.json and
    sweep-run.json as diag sweep writes them."""
    from diagnostics.sweep.aggregate import aggregate
    from diagnostics.sweep.engine import Outcome, run_point, write_point
    from diagnostics.sweep.grid import load_sweep
    from diagnostics.sweep.runinfo import sweep_run_document
    tmp = tmp_path_factory.mktemp("sweep")
    sweep = load_sweep(write_sweep(tmp / "files", vary={"seed": {"range": [0, 2]}}))
    folder = tmp / "out"
    for p in sweep.points:
        write_point(folder, p, run_point(p.case, sweep.quick, str(p.spec.base_dir)), "test")
    aggregate(sweep, folder).write(folder / "sweep.json")
    sweep_run_document(sweep, folder, Outcome(total=2, skipped=0, ran=[p.id for p in sweep.points]), 1.0).write(
        folder / "sweep-run.json")
    return folder


def _fresh_files(fresh: Path, fresh_sweep: Path) -> list[tuple[type, Path]]:
    point = next((fresh_sweep / "points").iterdir())
    return [(Curves, fresh / "curves.json"), (Run, fresh / "run.json"), (Curves, point / "curves.json"),
            (Run, point / "run.json"), (Sweep, fresh_sweep / "sweep.json"), (SweepRun, fresh_sweep / "sweep-run.json")]


# --- the same bytes back ----------------------------------------------------------------------
@pytest.mark.parametrize("path", CURVE_BASELINES + SWEEP_BASELINES, ids=lambda p: p.name)
def test_every_committed_baseline_reads_and_writes_back_byte_for_byte(path, tmp_path):
    model = Sweep if path.name.endswith(".sweep.json") or ".sweep." in path.name else Curves
    doc = model.read(path)
    assert doc.to_json() == path.read_text(encoding="utf-8")
    assert doc.write(tmp_path / path.name).read_bytes() == path.read_bytes()


def test_a_fresh_run_and_sweep_read_and_write_back_byte_for_byte(fresh, fresh_sweep):
    for model, path in _fresh_files(fresh, fresh_sweep):
        assert model.read(path).to_json() == path.read_text(encoding="utf-8"), path


def test_the_writers_bytes_are_the_plain_writers(fresh):
    """curves.json through the model is what io.dumps made of the writer's dict before the models."""
    from diagnostics.io import dumps
    text = (fresh / "curves.json").read_text(encoding="utf-8")
    assert dumps(json.loads(text)) == text


# --- files from before a key existed --------------------------------------------------------------
def test_files_from_before_a_key_existed_still_read(fresh, fresh_sweep, tmp_path):
    data = json.loads((fresh / "curves.json").read_text())
    for s in data["series"]:
        s.pop("nonfinite")
    ly = data["lyapunov"][0]
    for key in ("resolved", "fixed_point"):
        ly.pop(key)
    data["training"][0].pop("final_within")
    del data["sensitivity"]
    (tmp_path / "old.json").write_text(json.dumps(data, indent=1) + "\n")
    old = Curves.read(tmp_path / "old.json")
    assert old.to_json() == (tmp_path / "old.json").read_text()      # and written back as they were
    assert old.lyapunov[0].resolved_flags == [True, True]          # every exponent resolved
    assert old.series[0].nonfinite == [] and old.series[0].diverged_pairs == (0, 0)
    assert old.training[0].final_within is None and old.sensitivity == []
    sweep = json.loads((fresh_sweep / "sweep.json").read_text())
    for g in sweep["groups"]:
        for c in g["cells"]:
            for curve in c["curves"]:
                curve.pop("band")
    assert Sweep.of(sweep).groups[0].cells[0].curves[0].band is None
    legacy = json.loads((fresh_sweep / "sweep-run.json").read_text())
    del legacy["format"]                                          # sweep-run.json before it named its format
    assert SweepRun.of(legacy).format is None and SweepRun.looks_legacy(legacy)


def test_a_baseline_of_ones_own_with_keys_left_out_still_reads(tmp_path):
    """A dict given to gradient_curves.check and stored with --diag-update needed only format,
    lags and series; it is read as it was (absent lists empty, the rest null) and compared."""
    from diagnostics.regression.comparison import compare
    own = {"format": "diag-curves/1", "lags": [1, 2], "series": [
        {"cell": "mine", "checkpoint": 0, "path": "a", "norm": "spectral", "log10": {"median": [-0.1, -0.2]},
         "fit": {"slope": -0.1}}]}
    (tmp_path / "own.json").write_text(json.dumps(own))
    doc = Curves.read(tmp_path / "own.json")
    assert doc.series[0].log10.q25 == [] and doc.series[0].fit.horizon is None and doc.case is None
    assert doc.to_data() == own
    assert compare(doc, own).ok


# --- what is refused, in one line -------------------------------------------------------------------
def test_an_unknown_or_mistyped_key_is_one_line_naming_the_file_and_the_key(tmp_path):
    data = json.loads((ROOT / "cases" / "baselines" / "quickstart.quick.json").read_text())
    data["series"][2]["fit"]["slop"] = data["series"][2]["fit"].pop("slope")       # a renamed field
    bad = tmp_path / "renamed.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(BadDocument) as e:
        Curves.read(bad)
    assert str(e.value) == f"{bad}: series[2].fit.slop: unknown key (not part of this format; written by another " \
                           "version of diag?)"
    data["series"][2]["fit"]["slope"] = data["series"][2]["fit"].pop("slop")
    data["series"][0]["checkpoint"] = "0"
    bad.write_text(json.dumps(data))
    with pytest.raises(BadDocument, match=r"renamed.json: series\[0\]\.checkpoint: input should be a valid integer, "
                                          r"got '0'$"):
        Curves.read(bad)
    data["series"][0]["checkpoint"] = 0
    data["training"][0]["final_loss"] = True                     # a bool is not a number
    bad.write_text(json.dumps(data))
    with pytest.raises(BadDocument, match=r"renamed.json: training\[0\]\.final_loss: expected a number, got True$"):
        Curves.read(bad)
    res = CliRunner().invoke(main, ["check", str(bad), str(bad)])
    assert res.exit_code == 2 and "training[0].final_loss: expected a number, got True" in res.output


def test_a_writer_that_stops_writing_a_key_fails():
    """Writers build their documents through Document.built: every key but the ones written
    only when there is something to say (here: a series' `nonfinite` left out)."""
    from diagnostics.run.curves import assemble
    item = {"cell": "c", "kind": "rnn", "checkpoint": 0, "path": "a", "norm": "spectral",
            "log10": {s: [0.0] for s in ("median", "q25", "q75", "min", "max")},
            "fit": {"slope": None, "factor": None, "tau": None, "horizon": None}}
    assert assemble("x", 1, {"series": [{**item, "nonfinite": [0]}]}).series[0].nonfinite == [0]
    with pytest.raises(BadDocument, match=r"curves.json as built: series\[0\]\.nonfinite: missing"):
        assemble("x", 1, {"series": [item]})
    with pytest.raises(BadDocument, match=r"series\[0\]\.fit\.slop: unknown key"):
        assemble("x", 1, {"series": [{**item, "nonfinite": [0], "fit": {"slop": None}}]})


def test_models_default_exactly_what_a_file_may_lack():
    """Outside curves.json's items (lenient, see documents/curves.py) a field has a default
    exactly when a file written by diag may lack it (OPTIONAL): the schema and the reader agree."""
    from diagnostics.documents import curves as cv
    lenient = {m for m in vars(cv).values() if isinstance(m, type) and issubclass(m, Model)} - {cv.SummaryRow}
    seen = set()

    def walk(model):
        if model in seen:
            return
        seen.add(model)
        for f in model.model_fields.values():
            for sub in _models_in(f.annotation):
                walk(sub)
    for m in (Run, Sweep, SweepRun):
        walk(m)
    walk(cv.SummaryRow)
    for m in seen - lenient:
        defaulted = {n for n, f in m.model_fields.items() if not f.is_required()}
        assert defaulted == set(m.OPTIONAL), m.__name__
        assert set(m.WHEN_MEASURED) <= set(m.OPTIONAL), m.__name__


def _models_in(annotation) -> list[type]:
    import typing
    if isinstance(annotation, type) and issubclass(annotation, Model):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models_in(a)]


# --- the JSON Schema --------------------------------------------------------------------------------
@pytest.mark.parametrize("name,paths", [("curves", CURVE_BASELINES), ("sweep", SWEEP_BASELINES)])
@pytest.mark.slow
def test_the_schema_validates_every_committed_baseline(name, paths):
    v = jsonschema.Draft202012Validator(json_schema(name))
    for p in paths:
        assert not list(v.iter_errors(json.loads(p.read_text()))), p


def test_the_schema_printed_validates_fresh_files_and_requires_what_diag_writes(fresh, fresh_sweep):
    names = {Curves: "curves", Run: "run", Sweep: "sweep", SweepRun: "sweep-run"}
    for model, path in _fresh_files(fresh, fresh_sweep):
        res = CliRunner().invoke(main, ["schema", "--document", names[model]])
        assert res.exit_code == 0
        v = jsonschema.Draft202012Validator(json.loads(res.output))
        data = json.loads(path.read_text())
        assert not list(v.iter_errors(data)), path
    data = json.loads((fresh / "curves.json").read_text())
    del data["series"][0]["fit"]                          # the reader takes it (see above); diag never writes it
    assert not jsonschema.Draft202012Validator(json_schema("curves")).is_valid(data)
    case = json.loads(CliRunner().invoke(main, ["schema"]).output)     # without --document: the case schema
    assert "cells" in case["properties"] and "diag-curves" not in json.dumps(case)


# --- a run.json without a case file ----------------------------------------------------------------
def test_curves_from_no_case_file_are_reported(tmp_path):
    """The training monitor's case: curves from Python (curves_from_probe) and a run.json that
    names its source instead of a case; `diag report` draws them."""
    from diagnostics.cells import make_cell
    from diagnostics.regression.adapt import curves_from_probe
    cell = make_cell("lstm", input_size=2, hidden=4)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(20, 3, 2))
    curves = Curves.of(curves_from_probe(cell, params, xs, label="my lstm", lags=10, lyapunov=2))
    folder = tmp_path / "monitor"
    curves.write(folder / "curves.json")
    run = Run.for_curves(curves, "my training loop, step 0")
    run.write(folder / "run.json")
    assert set(json.loads((folder / "run.json").read_text())) == {"format", "source", "summary"}
    assert read_document(folder, RUN).case is None and read_document(folder, RUN).source.startswith("my training")
    res = CliRunner().invoke(main, ["report", str(folder)])
    assert res.exit_code == 0, res.output
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "my training loop, step 0" in page and "my lstm" in page and "What this run shows." in page


@pytest.mark.slow
def test_a_copied_run_folder_renders_from_its_documents(fresh, tmp_path):
    """A run folder's documents, read through the models, draw the page (diag report)."""
    folder = tmp_path / "copy"
    shutil.copytree(fresh, folder)
    res = CliRunner().invoke(main, ["report", str(folder)])
    assert res.exit_code == 0, res.output
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "final loss vs memoryless" in page and "vs baseline" not in page


# --- lookups --------------------------------------------------------------------------------------
def test_one_lookup_per_item(fresh):
    c = Curves.read(fresh)
    s = c.series_for("lstm", 6, "c")
    assert (s.cell, s.checkpoint, s.path, s.norm) == ("lstm", 6, "c", "spectral")     # primary norm
    assert c.series_for("lstm", 6, "c", "frobenius").norm == "frobenius"
    assert c.series_for("lstm", 3) is None and c.checkpoints == [0, 6]
    assert set(c.a_series()) == {("rnn", 0), ("rnn", 6), ("lstm", 0), ("lstm", 6)}
    assert c.training_of("rnn").memoryless_loss == c.training_of("rnn").to_data()["baseline"]
    rows = c.summary_rows({"rnn": "rnn", "lstm": "lstm"})
    assert [r.to_data() for r in rows] == json.loads((fresh / "run.json").read_text())["summary"]


# --- a document that is a FIFO ----------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.slow
def test_documents_that_are_fifos_are_one_line_not_a_wait(tmp_path):
    """The other files a command reads: a baseline (diag check), a run folder's documents (diag
    report), and a run.json in an output folder that `diag run` asks whose it is. Each child
    process would hang on the FIFO before."""
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    os.mkfifo(tmp_path / "base.json")
    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "curves.json")
    out = tmp_path / "out"
    (out / "quickstart.quick").mkdir(parents=True)
    os.mkfifo(out / "quickstart.quick" / "run.json")
    for args, words in ((["check", str(root / "cases" / "baselines" / "quickstart.quick.json"),
                          str(tmp_path / "base.json")], "base.json: not a regular file"),
                        (["report", str(tmp_path / "run")], "curves.json: not a regular file"),
                        (["run", str(root / "cases" / "quickstart.yaml"), "--quick", "--out", str(out)],
                         "not written by diag")):
        try:
            res = subprocess.run([sys.executable, "-m", "diagnostics.cli", *args], capture_output=True, text=True,
                                 timeout=60, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
        except subprocess.TimeoutExpired:
            pytest.fail(f"diag {args[0]} waited on a FIFO")
        assert res.returncode == 2 and words in res.stderr and res.stderr.count("\n") == 1, (args[0], res.stderr)
