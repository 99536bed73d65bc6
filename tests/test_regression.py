"""CI regression of gradient curves: compare, table, baselines, `diag check`, atomic writes, plugin."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from diagnostics.regression.baseline import BadCurves, baseline_path_for, gate, load_curves, write_baseline
from diagnostics.regression.cli import check_cmd
from diagnostics.regression.compare import compare
from diagnostics.regression.tolerances import Tolerances

pytest_plugins = ["pytester"]


def make_curves(K=30):
    """A small diag-curves/1 document: straight log10 lines, one Lyapunov spectrum, one training."""
    lags = list(range(1, K + 1))

    def line(slope, off):
        return [off + slope * k for k in lags]

    series = []
    for cell, slope in (("rnn", -0.08), ("lstm", -0.02)):
        for path in ("a",) if cell == "rnn" else ("a", "c"):
            for norm in ("spectral", "frobenius"):
                series.append({"cell": cell, "kind": cell, "checkpoint": 0, "path": path, "norm": norm,
                               "log10": {"median": line(slope, 0.1), "q25": line(slope, 0.0),
                                         "q75": line(slope, 0.2), "min": line(slope, -0.5),
                                         "max": line(slope, 0.6)},
                               "fit": {"slope": slope, "factor": 10 ** slope, "tau": 5.0,
                                       "horizon": round(-3 / slope)}})
    return {"format": "diag-curves/1", "case": "synthetic", "lags": lags, "series": series,
            "lyapunov": [{"cell": "rnn", "checkpoint": 0, "path": "a", "exponents": [-0.1, -0.3, -0.9]}],
            "training": [{"cell": "rnn", "step": [0, 1, 2], "loss": [2.0, 1.5, 1.2], "grad_norm": [1.0] * 3,
                          "baseline": 2.0, "diverged_at": None, "checkpoints": [0, 2],
                          "loss_at_checkpoints": [2.0, 1.2], "final_loss": 1.2}],
            "grad_flow": []}


def failing(cmp, what=None):
    return [r for r in cmp.failing if what is None or r.what == what]


# --- compare ---------------------------------------------------------------------------------
def test_identical_passes():
    a = make_curves()
    cmp = compare(a, copy.deepcopy(a))
    assert cmp.ok and cmp.failing == [] and len(cmp.rows) > 0
    assert "all" in cmp.table() and "passed" in cmp.table()


def test_shift_of_006_decades_fails_at_the_right_lag():
    base, cur = make_curves(), make_curves()
    s = cur["series"][2]                               # lstm a/spectral
    s["log10"]["median"][16] += 0.06                   # lag 17
    s["log10"]["median"][20] += 0.03                   # smaller move elsewhere: not the worst
    cmp = compare(cur, base)
    assert not cmp.ok
    (row,) = failing(cmp)
    assert (row.what, row.lag) == ("point", 17)
    assert row.series == "lstm ckpt=0 a/spectral median"
    assert row.difference == pytest.approx(0.06) and row.tolerance == 0.05
    # the same shift within a wider tolerance passes; 0.04 decades passes the default
    assert compare(cur, base, Tolerances(decades=0.07)).ok
    s["log10"]["median"][16] -= 0.02
    assert compare(cur, base).ok


def test_whole_curve_shift_fails_all_stats():
    base, cur = make_curves(), make_curves()
    for st in ("median", "q25", "q75"):
        cur["series"][0]["log10"][st] = [v - 0.1 for v in cur["series"][0]["log10"][st]]
    assert {r.series.split()[-1] for r in failing(compare(cur, base), "point")} == {"median", "q25", "q75"}


@pytest.mark.parametrize("section,index", [("series", 3), ("lyapunov", 0), ("training", 0)])
def test_missing_on_either_side_fails(section, index):
    base, cur = make_curves(), make_curves()
    del cur[section][index]
    for c, b, present in ((cur, base, ("present", "missing")), (base, cur, ("missing", "present"))):
        (row,) = failing(compare(c, b))
        assert row.what == "missing" and (row.baseline, row.current) == present


def test_null_handling():
    base, cur = make_curves(), make_curves()
    for d in (base, cur):
        d["series"][0]["log10"]["median"][-1] = None          # both exact zero: equal
    assert compare(cur, base).ok
    cur["series"][0]["log10"]["median"][-1] = -320.0          # underflowed: counts as zero
    assert compare(cur, base).ok
    cur["series"][0]["log10"]["median"][-1] = -250.0          # tiny but not zero: fails
    (row,) = failing(compare(cur, base))
    assert (row.what, row.lag, row.baseline, row.current, row.difference) == ("point", 30, None, -250.0, None)
    assert "null" in compare(cur, base).table() and "inf" in compare(cur, base).table()


def test_infinities_from_memory_become_null():
    base, cur = make_curves(), make_curves()
    base["series"][0]["log10"]["median"][-1] = None
    cur["series"][0]["log10"]["median"][-1] = float("-inf")
    assert compare(cur, base).ok


def test_slope_horizon_loss_lyapunov():
    base = make_curves()
    cur = copy.deepcopy(base)
    cur["series"][0]["fit"]["slope"] = -0.08 * 1.04             # 4% < 5%
    cur["series"][0]["fit"]["horizon"] += 2                      # 2 steps allowed
    cur["training"][0]["loss_at_checkpoints"][1] = 1.2 * 1.04
    cur["lyapunov"][0]["exponents"][0] = -0.1 + 0.019
    assert compare(cur, base).ok
    cur["series"][0]["fit"]["slope"] = -0.08 * 1.06
    cur["series"][1]["fit"]["horizon"] = None                    # null vs number
    cur["training"][0]["loss_at_checkpoints"][1] = 1.2 * 1.06
    cur["lyapunov"][0]["exponents"][2] = -0.9 - 0.03
    cmp = compare(cur, base)
    got = {(r.what, r.lag) for r in cmp.failing}
    assert got == {("slope", None), ("horizon", None), ("loss", 2), ("lyapunov", 3)}


def test_slope_floor_for_flat_curves():
    base = make_curves()
    base["series"][0]["fit"]["slope"] = 0.0
    cur = copy.deepcopy(base)
    cur["series"][0]["fit"]["slope"] = 4e-4                      # below the 5e-4 floor
    assert compare(cur, base).ok
    cur["series"][0]["fit"]["slope"] = 6e-4
    assert failing(compare(cur, base), "slope")


def test_different_lag_counts_fail():
    base, cur = make_curves(30), make_curves(25)
    whats = {r.what for r in compare(cur, base).failing}
    assert "lags" in whats
    top = [r for r in compare(cur, base).failing if r.series == "lags"]
    assert top and (top[0].baseline, top[0].current) == ("30 lags", "25 lags")


def test_table_is_aligned_and_names_its_columns():
    base, cur = make_curves(), make_curves()
    cur["series"][2]["log10"]["median"][16] += 0.06
    del cur["series"][4]
    text = compare(cur, base).table()
    lines = text.splitlines()
    assert lines[0].startswith("gradient curves: 2 of")
    for word in ("series", "worst lag", "expected (baseline)", "obtained (current)", "difference", "tolerance"):
        assert word in lines[1]
    assert set(lines[2]) <= {"-", " "}
    # right-aligned number columns end at the same character in every row
    end = lines[1].index("difference") + len("difference")
    assert lines[3][end - len("+0.0600"):end] == "+0.0600"
    assert "missing" in text and "FAIL" in text
    assert len(compare(cur, base).table(all_rows=True).splitlines()) > len(lines)


def test_tolerances_are_strict():
    with pytest.raises(Exception):
        Tolerances(decades=-1)
    with pytest.raises(Exception):
        Tolerances(decades="0.1")
    with pytest.raises(Exception):
        Tolerances(decadez=0.1)
    assert Tolerances(stats=["median"]).stats == ["median"]


# --- baseline files --------------------------------------------------------------------------
def test_baseline_path_for(tmp_path):
    case = tmp_path / "cases" / "copy.yaml"
    assert baseline_path_for("copy", case) == tmp_path / "cases" / "baselines" / "copy.json"
    assert baseline_path_for("copy", case, quick=True) == tmp_path / "cases" / "baselines" / "copy.quick.json"
    assert baseline_path_for("copy", case, explicit="b/x.json") == tmp_path / "cases" / "b" / "x.json"
    assert baseline_path_for("c", case, explicit="/abs/y.json", quick=True).as_posix() == "/abs/y.quick.json"


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
    assert path.read_bytes() == before and load_curves(path) == make_curves()


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
