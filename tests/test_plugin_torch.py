"""The gradient_curves fixture takes a torch module and its own inputs (run through pytester,
in-process: see test_regression_plugin.py for why everything is imported here first)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import diagnostics.interop.torch  # noqa: E402,F401
import diagnostics.probing.core  # noqa: E402,F401
import diagnostics.probing.metrics  # noqa: E402,F401
import diagnostics.regression.adapt  # noqa: E402,F401
import diagnostics.regression.overlay  # noqa: E402,F401

pytest_plugins = ["pytester"]

USER_TESTS = '''
import os
import numpy as np
import torch


def test_lstm_module(gradient_curves):
    torch.manual_seed(0)
    m = torch.nn.LSTM(2, 8, batch_first=True)
    with torch.no_grad():
        m.weight_hh_l0.mul_(float(os.environ.get("DIAG_GAIN", "1")))
    xs = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(1))     # batch-first, as m takes them
    gradient_curves.check(m, xs, lags=20, basename="lstm8")


def test_gru_backward(gradient_curves):
    torch.manual_seed(1)
    m = torch.nn.GRU(2, 4, bidirectional=True)
    gradient_curves.check(m, np.random.default_rng(0).normal(size=(10, 3, 2)), direction="backward")
'''


@pytest.mark.slow
def test_fixture_probes_a_module(pytester, monkeypatch):
    pytester.makepyfile(test_user=USER_TESTS)
    datadir = pytester.path / "test_user"
    res = pytester.runpytest("--diag-update", "-p", "no:cacheprovider")
    res.assert_outcomes(passed=2)
    lstm = json.loads((datadir / "lstm8.json").read_text())
    assert {s["path"] for s in lstm["series"]} == {"a", "c", "c_direct", "state"} and len(lstm["lags"]) == 20
    assert lstm["series"][0]["cell"] == "lstm" and lstm["series"][0]["kind"] == "lstm"
    # the baseline holds the probe of the imported module on its inputs made time-major
    from diagnostics.interop.torch import from_module
    from diagnostics.probing.core import probe
    torch.manual_seed(0)
    m = torch.nn.LSTM(2, 8, batch_first=True)
    xs = torch.randn(4, 30, 2, generator=torch.Generator().manual_seed(1)).numpy().transpose(1, 0, 2)
    imp = from_module(m)
    med = probe(imp.cell, imp.params, xs, lags=20, paths=["a"], norms=["spectral"]).summary("a", "spectral")["median"]
    got = next(s for s in lstm["series"] if s["path"] == "a" and s["norm"] == "spectral")["log10"]["median"]
    np.testing.assert_allclose(got, med, rtol=0, atol=1e-12)
    gru = json.loads((datadir / "test_gru_backward.json").read_text())
    assert {s["path"] for s in gru["series"]} == {"a"} and gru["series"][0]["cell"] == "gru backward"
    pytester.runpytest().assert_outcomes(passed=2)
    monkeypatch.setenv("DIAG_GAIN", "1.2")   # a moved recurrent gain fails with the table
    res = pytester.runpytest()
    res.assert_outcomes(failed=1, passed=1)
    assert "lstm ckpt=0 a/" in res.stdout.str()


def test_xs_without_a_module_is_an_error(pytester):
    pytester.makepyfile(test_bad='''
def test_bad(gradient_curves):
    gradient_curves.check({"format": "diag-curves/1"}, [[1.0]])
''')
    res = pytester.runpytest()
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*inputs xs go with a torch module, got dict*"])


def test_plugin_and_package_import_no_torch():
    code = ("import sys; import diagnostics, diagnostics.regression.plugin, diagnostics.weights, "
            "diagnostics.cells.stacked; assert 'torch' not in sys.modules and 'safetensors' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


MODEL_TESTS = '''
import os
import torch
import transformers as tf


def test_gpt2(gradient_curves):
    torch.manual_seed(0)
    m = tf.GPT2Model(tf.GPT2Config(n_embd=8, n_layer=2, n_head=2, n_positions=16, vocab_size=10,
                                   bos_token_id=0, eos_token_id=0)).eval()
    with torch.no_grad():
        m.h[0].attn.c_attn.weight.mul_(float(os.environ.get("DIAG_GAIN", "1")))
    xs = torch.randn(2, 12, 8, generator=torch.Generator().manual_seed(1))   # (B, T, d), as it takes them
    gradient_curves.check(m, xs, lags=10, basename="gpt2")


def test_gru_as_a_whole(gradient_curves):
    torch.manual_seed(1)
    m = torch.nn.GRU(2, 4)
    gradient_curves.check(m, torch.randn(10, 3, 2, generator=torch.Generator().manual_seed(0)), influence=True)
'''


@pytest.mark.slow
def test_fixture_measures_any_sequence_model_by_its_influence(pytester, monkeypatch):
    pytest.importorskip("transformers")
    # in a subprocess: transformers' lazily imported modules cannot be unloaded and loaded again
    # in one process (torch refuses a second registration of its operators)
    run = pytester.runpytest_subprocess
    pytester.makepyfile(test_models=MODEL_TESTS)
    datadir = pytester.path / "test_models"
    run("--diag-update", "-p", "no:cacheprovider").assert_outcomes(passed=2)
    gpt2 = json.loads((datadir / "gpt2.json").read_text())
    assert gpt2["series"] == [] and [x["lags"] for x in gpt2["influence"]] == [list(range(10))] * 2
    assert gpt2["influence"][0]["cell"] == gpt2["influence"][0]["kind"] == "GPT2Model"
    gru = json.loads((datadir / "test_gru_as_a_whole.json").read_text())
    assert len(gru["influence"][0]["lags"]) == 10 and gru["influence"][0]["kind"] == "GRU"   # every step of xs
    run().assert_outcomes(passed=2)
    monkeypatch.setenv("DIAG_GAIN", "1.5")   # moved attention weights fail with the table, at lags from 0
    res = run()
    res.assert_outcomes(failed=1, passed=1)
    assert "GPT2Model ckpt=0 influence/" in res.stdout.str()


def test_curves_from_model_are_the_interops_numbers():
    from diagnostics.interop.influence import lag_influence
    from diagnostics.regression.adapt import curves_from_model
    torch.manual_seed(0)
    m = torch.nn.LSTM(2, 4, batch_first=True)
    xs = torch.randn(3, 9, 2, generator=torch.Generator().manual_seed(1))
    curves = curves_from_model(m, xs, label="mine")
    ref = lag_influence(m, xs, 9)
    for item in curves["influence"]:
        assert item["lags"] == list(range(9)) and item["cell"] == "mine" and item["kind"] == "LSTM"
        want = np.median(ref.log10[("influence", item["norm"])][0], axis=0)
        assert item["log10"]["median"] == [float(v) for v in want]
    assert curves["series"] == [] and "float32_inside" not in curves
