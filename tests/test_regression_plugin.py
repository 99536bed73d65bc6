"""The pytest plugin (`gradient_curves` fixture, --diag-update), run through pytester.

The runs are in-process (fast). pytester restores sys.modules after each run, and numpy/scipy C
extensions cannot be imported twice in one process, so everything the inner runs import is
imported here first. One subprocess run checks that the real pytest11 entry point loads the plugin.
"""
from __future__ import annotations

import json

import diagnostics.probing.core  # noqa: F401
import diagnostics.probing.metrics  # noqa: F401  (imported before the inner runs; see the docstring)
import diagnostics.regression.adapt  # noqa: F401
import diagnostics.regression.overlay  # noqa: F401

pytest_plugins = ["pytester"]

USER_TESTS = '''
import os
import numpy as np
from diagnostics.cells import make_cell


def curves():
    shift = float(os.environ.get("DIAG_SHIFT", "0"))
    lags = list(range(1, 21))
    line = [-0.05 * k + (shift if k > 10 else 0.0) for k in lags]
    return {"format": "diag-curves/1", "case": "user", "lags": lags,
            "series": [{"cell": "mine", "kind": "rnn", "checkpoint": 0, "path": "a", "norm": "spectral",
                        "log10": {"median": line, "q25": line, "q75": line},
                        "fit": {"slope": -0.05, "horizon": 60}}]}


def test_dict(gradient_curves):
    gradient_curves.check(curves())


def test_cell(gradient_curves):
    gain = float(os.environ.get("DIAG_GAIN", "1"))
    cell = make_cell("rnn", input_size=2, hidden=6)
    params = {k: v * gain for k, v in cell.init(np.random.default_rng(0)).items()}
    xs = np.random.default_rng(1).normal(size=(16, 4, 2))
    gradient_curves.check((cell, params, xs), label="tanh rnn", basename="rnn6")
'''


def test_plugin_update_pass_and_fail(pytester, monkeypatch):
    pytester.makepyfile(test_user=USER_TESTS)
    datadir = pytester.path / "test_user"

    # a missing baseline fails, says how to create it, and creates nothing
    res = pytester.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(failed=2)
    res.stdout.fnmatch_lines(["*no baseline*test_user*test_dict.json*", "*--diag-update*"])
    assert not datadir.exists()

    # --diag-update writes the baselines beside the test file and lists them
    res = pytester.runpytest("--diag-update")
    res.assert_outcomes(passed=2)
    res.stdout.fnmatch_lines(["*2 gradient-curve baseline(s) written*", "*test_user*rnn6.json"])
    written = json.loads((datadir / "test_dict.json").read_text())
    assert written["series"][0]["cell"] == "mine"
    cell_base = json.loads((datadir / "rnn6.json").read_text())
    assert {s["path"] for s in cell_base["series"]} == {"a"} and len(cell_base["lags"]) == 16

    # unchanged code passes, creating nothing new
    res = pytester.runpytest()
    res.assert_outcomes(passed=2)
    assert sorted(p.name for p in datadir.iterdir()) == ["rnn6.json", "test_dict.json"]

    # a moved curve (0.1 decade after lag 10) and a 5% recurrent gain both fail, with the table
    monkeypatch.setenv("DIAG_SHIFT", "0.1")
    monkeypatch.setenv("DIAG_GAIN", "1.05")
    res = pytester.runpytest()
    res.assert_outcomes(failed=2)
    out = res.stdout.str()
    assert "mine ckpt=0 a/spectral median" in out and "expected (baseline)" in out
    assert "tanh rnn ckpt=0 a/" in out and "overlay:" in out and "--diag-update" in out
    assert "Traceback" not in out
    # the baselines were not touched by the failing run
    assert json.loads((datadir / "test_dict.json").read_text()) == written


def test_plugin_loads_through_its_entry_point(pytester):
    res = pytester.runpytest_subprocess("--help")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*--diag-update*"])  # raises when the option is missing
