"""What a user meets (issue 12): numbers that cannot mislead, sizes refused before they run,
and the command line's smaller promises. Each test failed on the code before its fix."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from diagnostics.cli.main import main

TINY = {"name": "tiny", "seed": 3, "task": {"kind": "copy", "delay": 4, "symbols": 2, "alphabet": 3},
        "cells": [{"kind": "rnn", "hidden": 3}], "train": {"steps": 4, "batch": 4, "checkpoints": [0, 4]},
        "probe": {"lags": 8, "sequences": 4, "lyapunov": 2, "lyapunov_steps": 30, "tk_map": {"anchors": 0}}}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write(tmp_path, case, name="c.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(case, sort_keys=False))
    return p


def with_(**changes):
    c = json.loads(json.dumps(TINY))
    c.update(changes)
    return c


# --- null is never "not a number" ------------------------------------------------------------
def test_quantiles_leave_out_nan_instead_of_sorting_it_last():
    """-1, -2, -3, NaN gave median -1.5 and q75 NaN; a diverged sequence must not bias them."""
    from diagnostics.probing.matnorms import log_quantile, not_a_value
    v = np.array([[-1.0], [-2.0], [-3.0], [np.nan]])
    assert log_quantile(v, 0.5)[0] == -2.0 and log_quantile(v, 0.75)[0] == -1.5
    assert not_a_value(v)[0] == 1
    z = np.array([[-np.inf], [-np.inf], [-2.0], [np.nan]])        # exact zeros are values
    assert log_quantile(z, 0.5)[0] == -np.inf and not_a_value(z)[0] == 1
    assert np.isnan(log_quantile(np.full((3, 1), np.nan), 0.5)[0])


def test_a_diverged_sequence_is_counted_per_lag_and_compared():
    from diagnostics.cells import make_cell
    from diagnostics.probing.core import probe
    from diagnostics.regression.adapt import curves_from_result
    from diagnostics.regression.comparison import compare
    cell = make_cell("rnn", input_size=2, hidden=4)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(12, 5, 2))
    good = curves_from_result(probe(cell, params, xs, lags=10))
    xs[6, 0, 0] = np.nan                    # sequence 0's state is NaN from step 7, so its chain is
    res = probe(cell, params, xs, lags=10)  # NaN at every lag of the anchor (step 12)
    bad = curves_from_result(res)
    s = next(x for x in bad["series"] if x["norm"] == "spectral")
    assert s["nonfinite"] == [1] * 10
    ref = np.median(res.log10[("a", "spectral")][0, 1:], axis=0)   # the four sequences that are numbers
    np.testing.assert_allclose(s["log10"]["median"], ref, rtol=0, atol=1e-15)
    assert all(v is not None for v in s["log10"]["median"])
    assert "nonfinite" in {r.what for r in compare(bad, good).failing}


def test_the_report_and_the_command_say_so(tmp_path):
    from diagnostics.report.narrative import warnings
    doc = {"format": "diag-curves/1", "lags": [1, 2, 3],
           "series": [{"cell": "lstm", "checkpoint": 5, "path": "a", "norm": "spectral", "nonfinite": [0, 2, 3]}],
           "lyapunov": [{"cell": "rnn", "checkpoint": 0, "fixed_point": True}]}
    lines = warnings(doc)
    assert "up to 3 (sequence, anchor) pairs were not a number" in lines[0] and "from lag 2 on" in lines[0]
    assert "fixed point" in lines[1]


# --- a probe that never leaves a fixed point ---------------------------------------------------
def test_fixed_point_is_detected_and_reported(tmp_path):
    """Zero inputs and a zero start keep a bias-free tanh RNN at 0: the top exponent is then
    ln ρ(W) (0.73 for gain 2), not the chaotic rate; the page and the command say so."""
    case = {"name": "fp", "task": {"kind": "none", "length": 40, "input_size": 1, "inputs": "zeros"},
            "cells": [{"kind": "rnn", "hidden": 16, "recurrent_init": {"kind": "gaussian", "gain": 2.0}},
                      {"kind": "rnn", "label": "moving", "hidden": 16}],
            "probe": {"lags": 10, "sequences": 2, "lyapunov": 2, "lyapunov_steps": 40, "tk_map": {"anchors": 0}}}
    res = invoke("run", write(tmp_path, case), "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "warning: rnn (step 0): the probe stream left the state at a fixed point" in res.output
    curves = json.loads((tmp_path / "o" / "fp" / "curves.json").read_text())
    assert [x["fixed_point"] for x in curves["lyapunov"]] == [True, True]   # zeros move neither
    case["task"]["inputs"] = "gaussian"
    res = invoke("run", write(tmp_path, case), "--out", tmp_path / "o2", "--no-report")
    assert "fixed point" not in res.output
    page = (tmp_path / "o" / "fp" / "index.html").read_text()
    assert "Warning:" in page and "fixed point" in page


# --- the words on the page -----------------------------------------------------------------
def summary_row(**given):
    """A summary row (documents.SummaryRow): the given fields, null for the others."""
    from diagnostics.documents import SummaryRow
    none = dict.fromkeys(("tau", "horizon", "lyapunov_top", "final_loss", "memoryless_loss", "solved"))
    return SummaryRow(**{**none, **given})


def test_report_opens_with_sentences_from_its_own_numbers(tmp_path):
    from diagnostics.report.narrative import opening
    K = 60
    rnn = [-0.2 - 11.0 * k / (K - 1) for k in range(K)]              # falls 11 decades
    lstm = [-0.5 - 0.4 * k / (K - 1) for k in range(K)]              # stays within one
    doc = {"format": "diag-curves/1", "lags": list(range(1, K + 1)), "series": [
        {"cell": c, "checkpoint": 150, "path": "a", "norm": "spectral", "log10": {"median": y}}
        for c, y in (("tanh RNN", rnn), ("LSTM", lstm))]}
    rows = [summary_row(cell="tanh RNN", kind="rnn", checkpoint=150, factor=0.65, horizon=17, final_loss=0.16,
                        memoryless_loss=0.1667, solved=False),
            summary_row(cell="LSTM", kind="lstm", checkpoint=150, factor=0.985, horizon=None, final_loss=0.0041,
                        memoryless_loss=0.1667, solved=True)]
    text = " ".join(opening(doc, rows))
    assert "Over 60 lags after 150 training steps" in text
    assert "falls 11.0 decades for the tanh RNN" in text and "stays within one decade of its lag-1 value for the LSTM" in text
    assert "the loss stays at the memoryless loss 0.167 for the tanh RNN (0.16)" in text
    assert "40.7x below it for the LSTM (0.0041, solved)" in text


def test_tau_of_a_growing_curve_says_it_grows():
    from diagnostics.run.curves import summary_table
    row = summary_row(cell="rnn", kind="rnn", checkpoint=0, factor=1.0512, horizon=None, lyapunov_top=0.05)
    table = summary_table([row])
    assert "grows x1.051/step" in table and " inf " not in table
    assert table.splitlines()[0].split()[-2:] == ["memoryless", "solved"]      # 'baseline' is the regression file


def test_the_page_says_which_loss_is_which(tmp_path):
    res = invoke("run", write(tmp_path, TINY), "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    page = (tmp_path / "o" / "tiny" / "index.html").read_text()
    assert "evaluation batch" in page and "separate evaluation batch of 256 sequences" in page
    assert "What this run shows." in page


def test_the_task_lag_reaches_the_decay_figure(tmp_path):
    from diagnostics.report.data import RunData
    from diagnostics.report.figures import select_decay
    assert invoke("run", write(tmp_path, TINY), "--out", tmp_path / "o", "--no-report").exit_code == 0
    d = RunData.load(tmp_path / "o" / "tiny")
    assert d.run.task_lag == 6 and select_decay(d)["task_lag"] == 6.0    # copy: delay + symbols


def test_pascanu_bound_holds_for_the_norm_drawn(tmp_path):
    """Frobenius-only curves used to be drawn under the spectral bound (0.7 decades above it)."""
    from diagnostics.report.data import RunData
    from diagnostics.report.figures import select_decay
    case = with_(probe={**TINY["probe"], "norms": ["frobenius"]})
    case["cells"][0]["hidden"] = 9
    assert invoke("run", write(tmp_path, case), "--out", tmp_path / "o", "--no-report").exit_code == 0
    d = RunData.load(tmp_path / "o" / "tiny")
    sel = select_decay(d)
    c = sel["curves"]["rnn"]
    spectral_bound = d.bound("rnn", d.last_checkpoint)
    np.testing.assert_allclose(c["bound"], spectral_bound + 0.5 * math.log10(9), rtol=0, atol=1e-12)
    assert (c["median"] <= c["bound"] + 1e-9).all()           # the bound shown holds for what is drawn


# --- the command line -------------------------------------------------------------------------
def test_check_says_when_two_cases_differ(tmp_path):
    a = write(tmp_path, TINY, "a.yaml")
    b = write(tmp_path, with_(name="other"), "b.yaml")
    for f in (a, b):
        assert invoke("run", f, "--out", tmp_path / "o", "--no-report").exit_code == 0
    res = invoke("check", tmp_path / "o" / "tiny", tmp_path / "o" / "other")
    assert res.output.startswith("note: comparing two different cases: 'tiny'")


@pytest.mark.parametrize("baseline", ["/tmp/x.json", "../../x.json", "baselines/../../x.json"])
def test_a_baseline_outside_the_case_folder_needs_a_flag(tmp_path, baseline):
    p = write(tmp_path, with_(baseline=baseline))
    res = invoke("run", p, "--out", tmp_path / "o", "--no-report", "--update-baseline")
    assert res.exit_code == 2 and "baseline: must be a path inside the case's folder" in res.output
    assert not (tmp_path / "o").exists()
    assert invoke("validate", write(tmp_path, with_(baseline="b/x.json"))).exit_code == 0


def test_ctrl_c_exits_130_and_leaves_no_empty_out(tmp_path, monkeypatch):
    import diagnostics.run.runner as runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(runner, "compute", interrupted)
    res = invoke("run", write(tmp_path, TINY), "--out", tmp_path / "never")
    assert res.exit_code == 130 and not (tmp_path / "never").exists()


def test_adam_betas_must_be_below_one_from_python_too():
    from diagnostics.training.optim import make_optimizer
    with pytest.raises(ValueError, match="optimizer.beta1: must be < 1, got 1.0"):
        make_optimizer({"kind": "adam", "beta1": 1.0}, {"w": np.zeros(2)})


def test_help_list_and_cards_say_what_is_true(tmp_path):
    assert "diag run -h" not in invoke("run", "--help").output
    listed = invoke("list").output
    assert "train (leave out" in listed and "batch: 32" in listed and "probe:" in listed and "sequences: 16" in listed
    from diagnostics.report.equations import cell_equations
    _, words = cell_equations("lstm", {"chrono": 100.0})
    assert "ln U[1, 99]" in words and "100 - 1" not in words


# --- sizes refused before they run ------------------------------------------------------------
BIG = [("task", "delay", 100_000_000, "task.delay"), ("probe", "sequences", 10_000_000, "probe.sequences"),
       ("probe", "lags", 100_000_000, "probe.lags"), ("cells", "hidden", 100_000, "cells[0].hidden"),
       ("train", "batch", 10_000_000, "train.batch")]


@pytest.mark.parametrize("section,key,value,named", BIG, ids=[b[3] for b in BIG])
def test_oversize_cases_exit_2_naming_the_key(tmp_path, section, key, value, named):
    case = json.loads(json.dumps(TINY))
    if section == "cells":
        case["cells"][0][key] = value
    else:
        case[section][key] = value
    res = invoke("run", write(tmp_path, case), "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()
    assert len(line) == 1 and f": {named}: the run would need about " in line[0] and "more than" in line[0], line
    assert not (tmp_path / "o").exists()


def test_max_memory_flag(tmp_path):
    p = write(tmp_path, TINY)
    res = invoke("run", p, "--out", tmp_path / "o", "--max-memory", "10kB")
    assert res.exit_code == 2 and "more than --max-memory (10 kB)" in res.output
    assert invoke("run", p, "--out", tmp_path / "o", "--max-memory", "lots").exit_code == 2
    assert invoke("run", p, "--out", tmp_path / "o", "--no-report", "--max-memory", "2GB").exit_code == 0


def test_the_estimate_bounds_what_a_run_allocates():
    """tracemalloc's peak of numpy's allocations while a case computes stays below the estimate."""
    import tracemalloc

    from diagnostics.run.budget import estimate
    from diagnostics.run.runner import compute
    from diagnostics.run.spec import resolve
    case = {"name": "m", "task": {"kind": "adding", "length": 200},
            "cells": [{"kind": "lstm", "hidden": 32}, {"kind": "rnn", "hidden": 32}],
            "train": {"steps": 3, "batch": 64},
            "probe": {"lags": 200, "sequences": 16, "lyapunov": 4, "lyapunov_steps": 200, "tk_map": {"anchors": 0}}}
    spec = resolve(case)
    tracemalloc.start()
    compute(spec, show=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    est = estimate(spec).bytes
    assert peak < est < 20 * peak, (peak, est)
