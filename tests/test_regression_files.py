"""Regression files: baseline paths (inside the case's folder), reading curves, the gate, `diag check`
(and its note when two cases differ), atomic writes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner
from regression_data import make_curves

from diagnostics.cli.check import check_cmd
from diagnostics.cli.main import main
from diagnostics.regression.baseline import BadCurves, gate, load_curves, write_baseline
from diagnostics.regression.comparison import compare


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- baseline files --------------------------------------------------------------------------
def test_baseline_path_of_a_resolved_case(tmp_path):
    from diagnostics.run.spec import resolve
    (tmp_path / "cases").mkdir()
    case = tmp_path / "cases" / "copy.yaml"
    text = "name: copy\ntask: {kind: copy, delay: 3}\ncells: [{kind: rnn, hidden: 2}]\n"
    case.write_text(text)
    assert resolve(case).baseline_path == tmp_path / "cases" / "baselines" / "copy.json"
    assert resolve(case, quick=True).baseline_path == tmp_path / "cases" / "baselines" / "copy.quick.json"
    case.write_text(text + "baseline: b/x.json\n")
    assert resolve(case).baseline_path == tmp_path / "cases" / "b" / "x.json"
    assert resolve(case, quick=True).baseline_path == tmp_path / "cases" / "b" / "x.quick.json"


@pytest.mark.parametrize("baseline", ["/tmp/x.json", "../../x.json", "baselines/../../x.json"])
def test_a_baseline_outside_the_case_folder_needs_a_flag(tmp_path, baseline, tiny_case, write_case):
    p = write_case(tmp_path, tiny_case(baseline=baseline))
    res = invoke("run", p, "--out", tmp_path / "o", "--no-report", "--update-baseline")
    assert res.exit_code == 2 and "baseline: must be a path inside the case's folder" in res.output
    assert not (tmp_path / "o").exists()
    assert invoke("validate", write_case(tmp_path, tiny_case(baseline="b/x.json"))).exit_code == 0


def test_load_curves_errors(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_baseline(make_curves(), run / "curves.json")
    assert load_curves(run) == load_curves(run / "curves.json")
    cases = {"nojson.json": "{", "list.json": "[]", "fmt.json": '{"format": "other"}',
             "bin.json": b"\xff\xfe\x00"}
    for name, text in cases.items():
        p = tmp_path / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(BadCurves, match=name):
            load_curves(p)
    with pytest.raises(BadCurves, match="no such file"):
        load_curves(tmp_path / "absent.json")
    with pytest.raises(BadCurves, match="no curves.json"):
        load_curves(tmp_path)


def test_gate_missing_written_ok_regression(tmp_path):
    path = tmp_path / "baselines" / "x.json"
    cur = make_curves()
    g = gate(cur, path)
    assert g.status == "missing" and not path.exists() and g.exit_code == 0 and "--update-baseline" in g.message()
    g = gate(cur, path, update=True)
    assert g.status == "written" and path.exists() and str(path) in g.message()
    assert gate(cur, path).status == "ok"
    cur["series"][0]["log10"]["median"][3] += 1
    g = gate(cur, path, overlays_dir=tmp_path / "ov")
    assert g.status == "regression" and g.exit_code == 1 and len(g.overlays) == 1
    assert g.overlays[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "REGRESSION" in g.message()


# --- diag check ------------------------------------------------------------------------------
def test_check_command_exit_codes(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_baseline(make_curves(), a)
    write_baseline(make_curves(), b)
    r = CliRunner()
    res = r.invoke(check_cmd, [str(a), str(b)])
    assert res.exit_code == 0, res.output
    moved = make_curves()
    moved["series"][1]["log10"]["median"][5] -= 0.2
    write_baseline(moved, b)
    res = r.invoke(check_cmd, [str(a), str(b), "--overlays", str(tmp_path / "ov")])
    assert res.exit_code == 1 and "rnn ckpt=0 a/frobenius median" in res.output and "overlay:" in res.output
    assert len(list((tmp_path / "ov").glob("*.png"))) == 1
    assert r.invoke(check_cmd, [str(a), str(b), "--decades", "0.3"]).exit_code == 0
    for args, words in (([str(a), str(tmp_path / "nope.json")], "no such file"),
                        ([str(a), str(b), "--decades", "-1"], "--decades"),
                        ([str(a), str(tmp_path)], "no curves.json"),
                        ([str(a)], "Missing argument")):
        res = r.invoke(check_cmd, args)
        assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, res.output
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)


def test_check_says_when_two_cases_differ(tmp_path, tiny_case, write_case):
    a = write_case(tmp_path, tiny_case(), "a.yaml")
    b = write_case(tmp_path, tiny_case(name="other"), "b.yaml")
    for f in (a, b):
        assert invoke("run", f, "--out", tmp_path / "o", "--no-report").exit_code == 0
    res = invoke("check", tmp_path / "o" / "tiny", tmp_path / "o" / "other")
    assert res.output.startswith("note: comparing two different cases: 'tiny'")


def test_check_takes_tolerances_from_a_case_file(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_baseline(make_curves(), a)
    moved = make_curves()
    moved["series"][1]["log10"]["median"][5] -= 0.2
    write_baseline(moved, b)
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ntask: {kind: copy, delay: 5}\ncells: [{kind: rnn, hidden: 4}]\n"
                    "tolerances: {decades: 0.3}\n")
    r = CliRunner()
    assert r.invoke(check_cmd, [str(a), str(b), "--case", str(case)]).exit_code == 0
    assert r.invoke(check_cmd, [str(a), str(b), "--case", str(case), "--decades", "0.1"]).exit_code == 1
    case.write_text("name: c\ntask: {kind: copy}\ncells: [{kind: rnn}]\ntolerances: {decadez: 1}\n")
    res = r.invoke(check_cmd, [str(a), str(b), "--case", str(case)])
    assert res.exit_code == 2 and "decadez" in res.output


def test_probe_result_as_curves_pools_every_anchor_like_diag_run():
    """The plugin's curves summarise like `diag run`: quantiles over every (anchor, sequence)
    pair, not the last anchor alone; checked against numpy's own median and a direct fit."""
    import numpy as np

    from diagnostics.cells import make_cell
    from diagnostics.probing.core import probe
    from diagnostics.probing.metrics import fit_decay
    from diagnostics.regression.adapt import curves_from_result
    cell = make_cell("rnn", input_size=2, hidden=5)
    params = cell.init(np.random.default_rng(0))
    xs = np.random.default_rng(1).normal(size=(12, 5, 2))
    res = probe(cell, params, xs, lags=6, anchors=[7, 12])
    doc = curves_from_result(res, label="rnn", kind="rnn")
    assert doc["lags"] == list(range(1, 7)) and len(doc["series"]) == 2
    s = next(x for x in doc["series"] if x["norm"] == "spectral")
    pooled = res.log10[("a", "spectral")].reshape(-1, 6)            # (anchors x sequences, lags)
    np.testing.assert_allclose(s["log10"]["median"], np.median(pooled, axis=0), rtol=0, atol=1e-15)
    last_only = np.median(res.log10[("a", "spectral")][-1], axis=0)
    assert np.abs(np.array(s["log10"]["median"]) - last_only).max() > 1e-6   # the anchors differ
    assert s["fit"]["slope"] == fit_decay(res.lags, np.median(pooled, axis=0))["slope"]
    assert compare(doc, json.loads(json.dumps(doc))).ok


# --- atomic writes ---------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import os, sys, time
    from diagnostics.regression.baseline import write_baseline
    if sys.argv[2] == "stall":
        def stalled_fsync(fd):          # the data is in the temp file, the rename has not happened
            print("WRITING", flush=True)
            time.sleep(60)
        os.fsync = stalled_fsync
    else:
        print("WRITING", flush=True)
    big = {"format": "diag-curves/1", "lags": list(range(1, 2001)), "series": [
        {"cell": "c%d" % i, "log10": {"median": [0.123456789 * k for k in range(2000)]}} for i in range(100)]}
    write_baseline(big, sys.argv[1])
    print("DONE", flush=True)
""")


def _start_writer(path, mode):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], stdout=subprocess.PIPE, env=env, text=True)
    assert p.stdout.readline().strip() == "WRITING"
    return p


def test_killed_writer_leaves_previous_baseline_intact(tmp_path):
    path = tmp_path / "baselines" / "case.json"
    write_baseline(make_curves(), path)
    before = path.read_bytes()
    p = _start_writer(path, "stall")
    tmp = list(path.parent.glob(".case.json.*.tmp"))
    assert len(tmp) == 1 and tmp[0].stat().st_size > 1_000_000      # genuinely mid-write
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL
    assert path.read_bytes() == before and load_curves(path).to_data() == make_curves()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_writer_killed_at_any_moment_leaves_a_whole_file(tmp_path, delay):
    path = tmp_path / "case.json"
    write_baseline(make_curves(), path)
    p = _start_writer(path, "plain")
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    data = json.loads(path.read_text())                 # old or new, never a torn file
    assert data["format"] == "diag-curves/1" and len(data["series"]) in (6, 100)
