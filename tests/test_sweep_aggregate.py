"""sweep.json from point files written by hand (no cluster): counts, Wilson intervals,
quartiles and pooled curves against numpy; then the sweep regression (`diag check` on two
sweep.json files, the baseline gate)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sweep_helpers import write_sweep

from diagnostics.cli.main import main
from diagnostics.io import atomic_write_json, dumps
from diagnostics.sweep.aggregate import aggregate
from diagnostics.sweep.baseline import compare_sweeps, gate
from diagnostics.sweep.engine import point_dir
from diagnostics.sweep.grid import load_sweep
from diagnostics.sweep.narrative import opening
from diagnostics.sweep.stats import wilson
from diagnostics.sweep.tolerances import SweepTolerances

LOG2 = float(np.log(2.0))
SHIPPED = Path(__file__).resolve().parent.parent / "cases" / "sweeps" / "baselines" / "adding_sweep.sweep.quick.json"


def fake_point(folder, p, loss: dict, slope: dict, diverged=(), estimated=None):
    """curves.json + run.json of a finished point: per cell a final loss and a straight median curve
    (`estimated`: the series' curves.json `estimated`, as from probe.estimator)."""
    lags = list(range(1, 11))
    series, training = [], []
    for cell in ("tanh RNN", "LSTM"):
        for ck in (0, 20):
            med = [slope[cell] * k * (1 if ck else 0.5) for k in lags]
            series.append({"cell": cell, "kind": "rnn", "checkpoint": ck, "path": "a", "norm": "spectral",
                           "log10": {"median": med, "q25": med, "q75": med, "min": med, "max": med},
                           "nonfinite": [0] * 10, "fit": {"slope": slope[cell], "factor": 10 ** slope[cell],
                                                          "tau": None, "horizon": None if slope[cell] > -0.3 else 11}})
            if estimated is not None:
                series[-1]["estimated"] = estimated
        training.append({"cell": cell, "final_loss": loss[cell], "baseline": LOG2, "final_accuracy": 1.0,
                         "final_within": None, "solved": loss[cell] < 0.1 * LOG2,
                         "diverged_at": 7 if cell in diverged else None})
    d = point_dir(folder, p.id)
    atomic_write_json(d / "curves.json", {"format": "diag-curves/1", "case": "tiny", "lags": lags,
                                          "series": series, "training": training})
    atomic_write_json(d / "run.json", {"format": "diag-run/1"})


@pytest.fixture
def swept(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s", vary={"task.p": [5, 6], "seed": {"range": [0, 5]}}))
    folder = tmp_path / "out"
    rng = np.random.default_rng(0)
    losses = {}
    for p in sweep.points:
        if p.values == {"task.p": 6, "seed": 4}:
            atomic_write_json(point_dir(folder, p.id) / "error.json", {"type": "MemoryError", "message": "boom"})
            continue
        loss = {"tanh RNN": float(rng.uniform(0, 0.2)), "LSTM": float(rng.uniform(0.5, 0.8))}
        losses[p.index] = loss
        fake_point(folder, p, loss, {"tanh RNN": -0.1 * (1 + p.values["seed"]), "LSTM": -0.01},
                   diverged=("LSTM",) if p.values == {"task.p": 5, "seed": 0} else ())
    return sweep, folder, losses


def test_counts_intervals_quartiles_and_pooled_curves(swept):
    sweep, folder, losses = swept
    doc = aggregate(sweep, folder).to_data()
    assert doc["counts"] == {"points": 10, "finished": 9, "failed": 1, "missing": 0,
                             "reasons": {"MemoryError": 1}, "diverged": 1}
    g5, g6 = doc["groups"]
    assert g5["values"] == {"task.p": 5} and g6["values"] == {"task.p": 6}
    rnn5 = g5["cells"][0]
    ours = [losses[i]["tanh RNN"] for i in range(5)]
    wins = sum(v <= 0.5 * LOG2 for v in ours)                     # the sweep's criterion: 0.5 x baseline
    assert (rnn5["trials"], rnn5["successes"]) == (5, wins)
    assert rnn5["wilson95"] == list(wilson(wins, 5))
    assert rnn5["final_loss"]["median"] == pytest.approx(np.median(ours), abs=0)
    assert rnn5["final_loss"]["q25"] == pytest.approx(np.quantile(ours, 0.25), abs=0)
    curves = {c["checkpoint"]: c for c in rnn5["curves"]}
    per_seed = np.array([[-0.1 * (1 + s) * k for k in range(1, 11)] for s in range(5)])
    assert curves[20]["median"] == pytest.approx(np.median(per_seed, axis=0).tolist(), abs=1e-15)
    assert curves[20]["q75"] == pytest.approx(np.quantile(per_seed, 0.75, axis=0).tolist(), abs=1e-15)
    assert curves[20]["seeds"] == 5
    assert rnn5["horizon"]["beyond"] == 2 and rnn5["horizon"]["n"] == 5    # slopes -0.1, -0.2 never fall 3 decades
    lstm5, lstm6 = g5["cells"][1], g6["cells"][1]
    assert (lstm5["successes"], lstm5["diverged"]) == (0, 1)
    assert (lstm6["trials"], lstm6["failed"]) == (4, 1)
    assert doc["points"][9]["error"] == "MemoryError: boom"
    assert aggregate(sweep, folder).to_json() == dumps(doc)                # deterministic
    text = " ".join(opening(doc))
    assert "the LSTM never succeeded" in text


def test_pooled_estimates_are_marked_and_the_opening_says_so(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s", vary={"seed": {"range": [0, 3]}}))
    folder = tmp_path / "out"
    for p in sweep.points:
        fake_point(folder, p, {"tanh RNN": 0.1, "LSTM": 0.6}, {"tanh RNN": -0.1, "LSTM": -0.01},
                   estimated={"kind": "sketch", "rows": 32, "seed": p.values["seed"], "value": "lower_bound"})
    doc = aggregate(sweep, folder)
    assert all(c.estimated.model_dump() == {"kind": "sketch", "rows": 32, "value": "lower_bound"}
               for g in doc.groups for cell in g.cells for c in cell.curves)
    assert ("The pooled curves and decay factors are of lower bounds: each seed's curves were estimated from 32 "
            "random rows (probe.estimator), not measured exactly.") in opening(doc)


def test_sweep_regression_counts_and_curves(swept, tmp_path):
    sweep, folder, _ = swept
    doc = aggregate(sweep, folder).to_data()
    assert compare_sweeps(doc, doc).ok
    moved = copy.deepcopy(doc)
    moved["groups"][0]["cells"][0]["successes"] -= 1
    assert compare_sweeps(moved, doc).ok                                  # one flipped trial is tolerated
    moved["groups"][0]["cells"][0]["successes"] -= 1
    bad = compare_sweeps(moved, doc)
    assert [r.what for r in bad.failing] == ["successes"]
    assert not compare_sweeps(moved, doc, SweepTolerances(successes=0)).ok
    curved = copy.deepcopy(doc)
    curved["groups"][1]["cells"][0]["curves"][1]["median"][4] += 0.06
    strict = SweepTolerances(seed_band=False)
    assert [(r.what, r.lag) for r in compare_sweeps(curved, doc, strict).failing] == [("point", 5)]
    fewer = copy.deepcopy(doc)
    fewer["groups"][1]["cells"].pop()
    assert [r.what for r in compare_sweeps(fewer, doc).failing] == ["missing"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(dumps(doc))
    b.write_text(dumps(moved))
    ok = CliRunner().invoke(main, ["check", str(a), str(a)])
    assert ok.exit_code == 0 and "sweep: all" in ok.output
    res = CliRunner().invoke(main, ["check", str(b), str(a)])
    assert res.exit_code == 1 and "successes" in res.output and "FAIL" in res.output
    assert CliRunner().invoke(main, ["check", str(b), str(a), "--successes", "2"]).exit_code == 0
    path = tmp_path / "baselines" / "x.sweep.json"
    assert gate(doc, path).status == "missing" and not path.exists()   # never created silently
    assert gate(doc, path, update=True).status == "written" and path.read_text() == dumps(doc)
    assert gate(doc, path).status == "ok" and gate(moved, path).exit_code == 1


def test_sweep_regression_refuses_exact_against_estimated_pooled_curves_unless_asked(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path / "s", vary={"seed": {"range": [0, 3]}}))
    for name, estimated in (("exact", None), ("sketch", {"kind": "sketch", "rows": 32, "seed": 0,
                                                         "value": "lower_bound"})):
        for p in sweep.points:
            fake_point(tmp_path / name, p, {"tanh RNN": 0.1, "LSTM": 0.6}, {"tanh RNN": -0.1, "LSTM": -0.01},
                       estimated=estimated)
    exact, sketch = (aggregate(sweep, tmp_path / name).to_data() for name in ("exact", "sketch"))
    cmp = compare_sweeps(sketch, exact)     # the same numbers: only how they were measured differs
    assert not cmp.ok and {r.what for r in cmp.failing} == {"estimator"}
    assert {(r.key[1:], r.baseline, r.current) for r in cmp.failing} == {
        ((cell, ck), "exact", "sketch rows=32") for cell in ("tanh RNN", "LSTM") for ck in (0, 20)}
    assert not [r for r in compare_sweeps(exact, sketch).rows if r.ok and r.what == "point"]
    asked = compare_sweeps(sketch, exact, SweepTolerances(mixed_estimators=True))
    assert asked.ok and {r.what for r in asked.rows} >= {"point"} and "estimator" not in {r.what for r in asked.rows}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(dumps(exact))
    b.write_text(dumps(sketch))
    res = CliRunner().invoke(main, ["check", str(b), str(a)])
    assert res.exit_code == 1 and "estimator" in res.output
    assert CliRunner().invoke(main, ["check", str(b), str(a), "--mixed-estimators"]).exit_code == 0


def _seed_curves(doc, group=0, cell=0, ck=1):
    return doc["groups"][group]["cells"][cell]["curves"][ck]


def test_the_one_seed_band_is_what_replacing_one_seed_can_do():
    """The band against brute force: every seed replaced in turn by an exact zero and by a value
    above all, the quantile taken each time (numpy's, linear interpolation)."""
    from diagnostics.sweep.aggregate import one_seed_band
    rng = np.random.default_rng(3)
    arr = rng.normal(size=(10, 7))
    arr[2, 3] = -np.inf                      # an exact zero is a value
    for q in (0.25, 0.5, 0.75):
        band = one_seed_band(arr, q)
        los, his = [], []
        for i in range(arr.shape[0]):
            low, high = arr.copy(), arr.copy()
            low[i], high[i] = -np.inf, 1e300
            with np.errstate(invalid="ignore"):
                los.append(np.nan_to_num(np.quantile(low, q, axis=0), nan=-np.inf))
            his.append(np.quantile(high, q, axis=0))
        # to rounding: numpy interpolates as b - (b - a)(1 - g) above g = 0.5, log_quantile as a + g(b - a)
        np.testing.assert_allclose(band["lo"], np.min(los, axis=0), rtol=0, atol=1e-15)
        np.testing.assert_allclose(band["hi"], np.max(his, axis=0), rtol=0, atol=1e-15)
        assert (band["lo"] <= np.quantile(np.where(np.isinf(arr), -1e300, arr), q, axis=0) + 1e-12).all()
    assert one_seed_band(arr[:4], 0.75) is None and one_seed_band(arr[:2], 0.5) is None   # unbounded above
    assert one_seed_band(arr[:5], 0.75) is not None and one_seed_band(arr[:3], 0.5) is not None


def test_one_seed_may_move_but_every_seed_moving_is_a_regression(tmp_path):
    """As one trial's success may flip, one seed's curve may change to anything; a change that
    moves every seed (a real one: a recurrent gain +5% shifts each curve by 0.021 decades per
    lag) fails. Measured across BLAS kernels on the shipped latch sweep, one chaotic trial moved
    a pooled q75 by 0.11 decades."""
    sweep = load_sweep(write_sweep(tmp_path / "s", vary={"task.p": [5], "seed": {"range": [0, 10]}}))
    folder = tmp_path / "out"
    for p in sweep.points:
        fake_point(folder, p, {"tanh RNN": 0.01, "LSTM": 0.6},
                   {"tanh RNN": -0.1 * (1 + 0.1 * p.values["seed"]), "LSTM": -0.01})
    doc = aggregate(sweep, folder).to_data()
    assert _seed_curves(doc)["band"]["q75"] is not None
    one = tmp_path / "one"
    for p in sweep.points:                    # seed 3's curve is another one entirely
        slope = -0.5 if p.values["seed"] == 3 else -0.1 * (1 + 0.1 * p.values["seed"])
        fake_point(one, p, {"tanh RNN": 0.01, "LSTM": 0.6}, {"tanh RNN": slope, "LSTM": -0.01})
    moved = aggregate(sweep, one).to_data()
    assert _seed_curves(moved)["q75"] != _seed_curves(doc)["q75"]
    assert compare_sweeps(moved, doc).ok
    assert not compare_sweeps(moved, doc, SweepTolerances(seed_band=False)).ok
    every = tmp_path / "every"
    for p in sweep.points:                    # every seed's decay 0.021 decades per lag faster
        fake_point(every, p, {"tanh RNN": 0.01, "LSTM": 0.6},
                   {"tanh RNN": -0.1 * (1 + 0.1 * p.values["seed"]) - 0.021, "LSTM": -0.01})
    bad = compare_sweeps(aggregate(sweep, every), doc)
    assert {r.series.split(" pooled ")[-1] for r in bad.failing} == {"median", "q25", "q75"}, bad.table()


def test_check_refuses_a_sweep_against_curves(tmp_path):
    a = tmp_path / "sweep.json"
    a.write_text(SHIPPED.read_text(encoding="utf-8"))
    c = tmp_path / "curves.json"
    c.write_text(json.dumps({"format": "diag-curves/1", "lags": [], "series": []}))
    res = CliRunner().invoke(main, ["check", str(a), str(c)])
    assert res.exit_code == 2 and "format: expected 'diag-sweep/1', got 'diag-curves/1'" in res.output


def test_opening_claims_only_what_the_intervals_support():
    def cell(name, k, n=10):
        return {"cell": name, "kind": "rnn", "trials": n, "successes": k, "rate": k / n,
                "wilson95": list(wilson(k, n)), "diverged": 0, "failed": 0, "baseline": None, "final_loss": None,
                "accuracy": None, "within": None, "factor": None, "horizon": None, "curves": []}
    doc = {"format": "diag-sweep/1", "sweep": "s", "case": "c", "quick": False, "keys": ["task.p"], "seed_key": None,
           "success": {"kind": "task", "value": None, "description": "loss <= 0.1 x baseline"},
           "counts": {"points": 0, "finished": 0, "failed": 0, "missing": 0, "reasons": {}, "diverged": 0},
           "points": [],
           "groups": [{"values": {"task.p": 50}, "lags": [], "cells": [cell("A", 10), cell("B", 6), cell("C", 0)]},
                      {"values": {"task.p": 5}, "lags": [], "cells": [cell("A", 10), cell("B", 9), cell("C", 8)]}]}
    text = opening(doc)
    assert "at p = 50 the A's 10/10 (0.72–1.00) is above the C's 0/10 (0.00–0.28), and the B's 6/10" in text[1]
    assert "the A's 10/10 and the B's 6/10 at p = 50" in text[2] and "no conclusion" in text[2]
    assert text[3].startswith("At p = 5 every cell's interval overlaps every other's")
    assert not any("B's 6/10 (0.31–0.83) is above the A" in t for t in text)


def test_a_quick_sweep_page_says_so_before_anything_else(tmp_path):
    """The "quick smoke run, not the real results" caveat comes before the opening sentences
    (it came after a paragraph of counts)."""
    from diagnostics.sweep.report import render_sweep_report
    sweep = load_sweep(write_sweep(tmp_path / "s", vary={"task.p": [5, 6], "seed": {"range": [0, 3]}}), quick=True)
    folder = tmp_path / "out"
    for p in sweep.points:
        fake_point(folder, p, {"tanh RNN": 0.01, "LSTM": 0.6}, {"tanh RNN": -0.1, "LSTM": -0.01})
    html = render_sweep_report(folder, aggregate(sweep, folder)).read_text(encoding="utf-8")
    caveat, opening_at = html.find("Quick smoke run"), html.find("What this sweep shows")
    assert 0 < caveat < opening_at, (caveat, opening_at)
