"""The `diag` command: bad input exits 2 with one line per problem and writes nothing; a tiny
run writes the four outputs, a contract-shaped curves.json, byte-identical on a rerun; Ctrl-C
exits 130 leaving nothing; help, list and the equation cards say what is true."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from diagnostics.cli.main import main

TINY = {
    "name": "tiny",
    "description": "A tiny case for the tests.",
    "seed": 3,
    "task": {"kind": "adding", "length": 8},
    "cells": [{"kind": "rnn", "hidden": 4}, {"kind": "gru", "hidden": 3},
              {"kind": "lstm", "hidden": 3, "forget_bias": 1.0}],
    "train": {"steps": 4, "batch": 4, "optimizer": {"kind": "adam", "lr": 0.01}, "clip": 1.0,
              "checkpoints": [0, 2, 4]},
    "probe": {"lags": 12, "sequences": 3, "lyapunov": 2, "lyapunov_steps": 20, "tk_map": {"anchors": 2}},
}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _with(**changes):
    d = json.loads(json.dumps(TINY))
    for path, value in changes.items():
        node, keys = d, path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return d


MALFORMED = [
    ("wrong type", _with(cells__0__hidden="four"), ["cells[0].hidden: must be an integer"]),
    ("zero size", _with(cells__1__hidden=0), ["cells[1].hidden: must be a positive integer, got 0"]),
    ("negative size", _with(train__steps=-5), ["train.steps: must be a positive integer, got -5"]),
    ("unknown cell kind", _with(cells__2__kind="lstn"), [("cells[2].kind: must be one of", "did you mean 'lstm'")]),
    ("unknown task kind", _with(task__kind="addng"), [("task.kind: must be one of", "did you mean 'adding'")]),
    ("unknown key", _with(probe__lag=3), ["probe.lag: unknown key (did you mean 'lags'?)"]),
    ("option of another cell", _with(cells__0__forget_bias=1.0), ["cells[0].forget_bias: is not an option of rnn"]),
    ("name with slash", _with(name="a/b"), ["name: must be a safe folder name"]),
    ("name with dotdot", _with(name=".."), ["name: must be a safe folder name"]),
    ("yaml syntax", "name: tiny\ncells: [\n", ["YAML error at line"]),
    ("empty file", "", ["the file is empty"]),
    ("python tag", "name: !!python/object/apply:os.system ['touch /tmp/pwned']\n", ["is not allowed"]),
    ("several problems", _with(cells__0__hidden=0, task__length="x", seed=-1),
     ["cells[0].hidden:", "task.length:", "seed:"]),
]


def _assert_bad(res, expected, out: Path):
    assert res.exit_code == 2, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    assert "Traceback" not in err and "Traceback" not in res.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert all(ln.startswith("error: ") for ln in lines), lines
    assert len(lines) == len(expected), lines
    for want in expected:   # one expected line: a substring, or a tuple of substrings
        parts = want if isinstance(want, tuple) else (want,)
        assert any(all(p in ln for p in parts) for ln in lines), (want, lines)
    assert not out.exists() or not any(out.iterdir()), "nothing may be written under --out"


@pytest.mark.parametrize("label,data,expected", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_case_exits_2_writes_nothing(tmp_path, label, data, expected, write_case):
    case = write_case(tmp_path, data)
    out = tmp_path / "out"
    for cmd in (["run", case, "--out", out], ["validate", case]):
        _assert_bad(invoke(*cmd), expected, out)


def test_missing_file_and_directory(tmp_path):
    out = tmp_path / "out"
    _assert_bad(invoke("run", tmp_path / "nope.yaml", "--out", out), ["nope.yaml: no such file"], out)
    _assert_bad(invoke("run", tmp_path, "--out", out), ["is a directory"], out)


def test_one_bad_case_stops_all_runs(tmp_path, write_case):
    good = write_case(tmp_path, TINY, "good.yaml")
    bad = write_case(tmp_path, _with(cells__0__hidden=0), "bad.yaml")
    out = tmp_path / "out"
    _assert_bad(invoke("run", good, bad, "--out", out), ["cells[0].hidden"], out)


def test_subprocess_bad_case_has_no_traceback(tmp_path, write_case):
    case = write_case(tmp_path, "name: x\ntask: !!python/object:os.system {}\n")
    p = subprocess.run([sys.executable, "-m", "diagnostics.cli", "run", str(case), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "!!python/object:os.system is not allowed" in p.stderr
    assert not (tmp_path / "o").exists()


def test_schema_prints_json():
    res = invoke("schema")
    assert res.exit_code == 0
    s = json.loads(res.output)
    assert s["title"] == "diag case" and "cells" in s["properties"]


def test_list_names_cells_tasks_and_options():
    res = invoke("list")
    assert res.exit_code == 0
    for word in ("rnn", "gru", "lstm", "forget_bias", "reset_gate", "copy", "adding", "latch",
                 "tariff_shock", "temporal_order", "none", "delay"):
        assert word in res.output


def test_new_writes_a_valid_case_and_refuses_to_overwrite(tmp_path):
    res = invoke("new", "mycase", "--dir", tmp_path)
    assert res.exit_code == 0 and (tmp_path / "mycase.yaml").is_file()
    assert invoke("validate", tmp_path / "mycase.yaml").exit_code == 0
    before = (tmp_path / "mycase.yaml").read_text()
    res = invoke("new", "mycase", "--dir", tmp_path)
    assert res.exit_code == 2 and "not overwritten" in res.output
    assert (tmp_path / "mycase.yaml").read_text() == before
    assert invoke("new", "../evil", "--dir", tmp_path).exit_code == 2


def _no_nonfinite(text: str):
    def bad(c):
        raise AssertionError(f"non-finite constant {c} in curves.json")
    return json.loads(text, parse_constant=bad)


def check_curves_contract(c: dict, labels, checkpoints, K):
    assert c["format"] == "diag-curves/1" and c["case"] == "tiny" and c["lags"] == list(range(1, K + 1))
    for s in c["series"]:
        assert set(s) >= {"cell", "kind", "checkpoint", "path", "norm", "log10", "fit"}
        assert set(s["log10"]) == {"median", "q25", "q75", "min", "max"}
        assert all(len(v) == K for v in s["log10"].values())
        assert set(s["fit"]) == {"slope", "factor", "tau", "horizon"}
    keys = {(s["cell"], s["checkpoint"], s["path"], s["norm"]) for s in c["series"]}
    assert len(keys) == len(c["series"])
    for lab in labels:
        for ck in checkpoints:
            assert (lab, ck, "a", "spectral") in keys and (lab, ck, "a", "frobenius") in keys
    assert ("lstm", 4, "c_direct", "spectral") in keys
    assert {(x["cell"], x["checkpoint"]) for x in c["lyapunov"]} == {(lab, ck) for lab in labels for ck in checkpoints}
    assert all(len(x["exponents"]) == 2 for x in c["lyapunov"])
    assert [t["cell"] for t in c["training"]] == labels
    for t in c["training"]:
        assert t["checkpoints"] == checkpoints and len(t["loss_at_checkpoints"]) == 3
        assert len(t["step"]) == len(t["loss"]) == len(t["grad_norm"]) == 5
    assert {g["cell"] for g in c["grad_flow"]} == set(labels)
    assert [b["cell"] for b in c["bounds"]] == ["rnn"] * 3 and all(len(b["log10"]) == K for b in c["bounds"])
    assert all(len(row) == K for m in c["tk_map"] for row in m["log10_median"])
    assert c["temporal_components"]


@pytest.mark.slow
def test_run_writes_four_outputs_and_compares_baseline(tmp_path, write_case):
    case = write_case(tmp_path, TINY)
    out = tmp_path / "out"
    res = invoke("run", case, "--out", out)
    assert res.exit_code == 0, res.output
    run_dir = out / "tiny"
    assert (run_dir / "index.html").is_file() and (run_dir / "run.json").is_file()
    assert list((run_dir / "figures").glob("*.png"))
    text = (run_dir / "curves.json").read_text()
    check_curves_contract(_no_nonfinite(text), ["rnn", "gru", "lstm"], [0, 2, 4], 12)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["format"] == "diag-run/1" and run["seed"] == 3 and run["case"]["name"] == "tiny"
    assert {"python", "numpy", "diagnostics"} <= set(run["versions"]) and "report" in run["timings"]
    assert [r["cell"] for r in run["summary"]] == ["rnn"] * 3 + ["gru"] * 3 + ["lstm"] * 3
    assert [c["label"] for c in run["cells"]] == ["rnn", "gru", "lstm"] and run["task_description"]
    # summary table and the missing-baseline notice; the baseline is never created silently
    assert "factor" in res.output and "horizon" in res.output
    base = tmp_path / "baselines" / "tiny.json"
    assert f"no baseline at {base}" in res.output and not base.exists()
    # --update-baseline writes it and says so; the next run passes against it
    res = invoke("run", case, "--out", out, "--no-report", "--update-baseline")
    assert res.exit_code == 0 and f"baseline written: {base}" in res.output and base.is_file()
    assert invoke("run", case, "--out", out, "--no-report").exit_code == 0
    # a moved curve is a regression: exit 1 with the table
    moved = json.loads(base.read_text())
    moved["series"][0]["log10"]["median"] = [v - 1.0 for v in moved["series"][0]["log10"]["median"]]
    base.write_text(json.dumps(moved))
    res = invoke("run", case, "--out", out, "--no-report")
    assert res.exit_code == 1 and "REGRESSION" in res.output


@pytest.mark.slow
def test_report_rerenders_without_recomputing(tmp_path, write_case):
    case = write_case(tmp_path, TINY)
    out = tmp_path / "out"
    assert invoke("run", case, "--out", out, "--no-report").exit_code == 0
    run_dir = out / "tiny"
    before = {p.name: p.stat().st_mtime_ns for p in (run_dir / "curves.json", run_dir / "run.json")}
    assert not (run_dir / "index.html").exists()
    res = invoke("report", run_dir)
    assert res.exit_code == 0 and (run_dir / "index.html").is_file()
    assert before == {p.name: p.stat().st_mtime_ns for p in (run_dir / "curves.json", run_dir / "run.json")}
    assert invoke("report", tmp_path / "nothing").exit_code == 2


def test_same_case_and_seed_give_byte_identical_curves(tmp_path, write_case):
    case = write_case(tmp_path, TINY)
    texts = []
    for i in range(2):
        assert invoke("run", case, "--out", tmp_path / f"o{i}", "--no-report").exit_code == 0
        texts.append((tmp_path / f"o{i}" / "tiny" / "curves.json").read_bytes())
    assert texts[0] == texts[1]
    other = write_case(tmp_path, _with(seed=4), "other.yaml")
    assert invoke("run", other, "--out", tmp_path / "o2", "--no-report").exit_code == 0
    assert (tmp_path / "o2" / "tiny" / "curves.json").read_bytes() != texts[0]


def test_quick_run_uses_quick_baseline_and_never_replaces_the_full_report(tmp_path, write_case):
    case = write_case(tmp_path, TINY)
    assert invoke("run", case, "--out", tmp_path / "o", "--no-report").exit_code == 0
    full = (tmp_path / "o" / "tiny" / "run.json").read_bytes()
    res = invoke("run", case, "--out", tmp_path / "o", "--no-report", "--quick")
    assert res.exit_code == 0
    assert f"no baseline at {tmp_path / 'baselines' / 'tiny.quick.json'}" in res.output
    run = json.loads((tmp_path / "o" / "tiny.quick" / "run.json").read_text())
    assert run["quick"] is True and run["case"]["train"]["steps"] == 4   # already below the quick cap
    assert (tmp_path / "o" / "tiny" / "run.json").read_bytes() == full      # the full run's folder is untouched


def test_json_summary_numbers_are_finite_or_null(tmp_path, write_case):
    case = write_case(tmp_path, _with(cells=[{"kind": "rnn", "hidden": 3, "activation": "linear",
                                              "recurrent_init": {"kind": "zeros"}}]))
    assert invoke("run", case, "--out", tmp_path / "o", "--no-report").exit_code == 0
    c = _no_nonfinite((tmp_path / "o" / "tiny" / "curves.json").read_text())
    med = c["series"][0]["log10"]["median"]
    assert med == [None] * 12   # W_a = 0: the Jacobian is exactly zero, log10 -> null


@pytest.mark.slow
def test_contract_example_runs_as_is(tmp_path, contract_yaml, write_case):
    """Issue 4's example (200 lags > a 120-step copy episode) runs; --quick keeps it to seconds."""
    case = write_case(tmp_path, contract_yaml)
    res = invoke("run", case, "--out", tmp_path / "o", "--no-report", "--quick")
    assert res.exit_code == 0, res.output
    c = _no_nonfinite((tmp_path / "o" / "rnn-vs-lstm-copy.quick" / "curves.json").read_text())
    assert c["lags"] == list(range(1, 41)) and {s["cell"] for s in c["series"]} == {"tanh RNN", "gru", "lstm"}


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_run_folder_is_replaced_whole(tmp_path, monkeypatch, exchange, write_case):
    """The run is built in a staging folder and swapped in: no file of the previous run survives
    beside the new ones, and no staging folder is left behind."""
    import diagnostics.publish as publish
    if not exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    case = write_case(tmp_path, TINY)
    out = tmp_path / "out"
    assert invoke("run", case, "--out", out, "--no-report").exit_code == 0
    (out / "tiny" / "stale.png").write_bytes(b"old")
    first = (out / "tiny" / "curves.json").read_bytes()
    assert invoke("run", case, "--out", out, "--no-report").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["tiny"]
    assert sorted(p.name for p in (out / "tiny").iterdir()) == ["curves.json", "run.json"]
    assert (out / "tiny" / "curves.json").read_bytes() == first


def test_ctrl_c_exits_130_and_leaves_no_empty_out(tmp_path, monkeypatch, tiny_case, write_case):
    import diagnostics.run.runner as runner

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(runner, "compute", interrupted)
    res = invoke("run", write_case(tmp_path, tiny_case()), "--out", tmp_path / "never")
    assert res.exit_code == 130 and not (tmp_path / "never").exists()


def test_help_list_and_cards_say_what_is_true(tmp_path):
    assert "diag run -h" not in invoke("run", "--help").output
    listed = invoke("list").output
    assert "train (leave out" in listed and "batch: 32" in listed and "probe:" in listed and "sequences: 16" in listed
    from diagnostics.report.equations import cell_equations
    _, words = cell_equations("lstm", {"chrono": 100.0})
    assert "ln U[1, 99]" in words and "100 - 1" not in words
