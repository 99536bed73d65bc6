"""Bad sweep files: exit 2, one line per problem naming the key (and the point), nothing run,
nothing written. Good ones: the grid, key paths and ids."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sweep_helpers import tiny_case, write_sweep

from diagnostics.cli.main import main
from diagnostics.errors import CaseError
from diagnostics.sweep.grid import load_sweep, parse_key, set_key

BAD = [
    ({"vary": {"task.pp": [5, 6]}}, ["task.pp", "did you mean 'p'", "point 0 (task.pp=5)", "(and 1 more point(s))"]),
    ({"vary": {"task.p": [5, 1], "seed": [0]}}, ["point 1 (task.p=1, seed=0)", "task.p: must be >= 2, got 1"]),
    ({"vary": {"task.p": []}}, ["vary.task.p: must have at least 1 item"]),
    ({"vary": {"seed": {"range": [3, 3]}}}, ["vary.seed.range: must give at least one value, got [3, 3]"]),
    ({"vary": {"cells[5].hidden": [4]}}, ["cells[5].hidden", "2 item(s)"]),
    ({"vary": {"cells[0]..hidden": [4]}}, ["vary.cells[0]..hidden", "key path"]),
    ({"vary": {"task.p": [5]}, "sucess": "task"}, ["sucess", "did you mean 'success'"]),
    ({"vary": {"task.p": [5]}, "success": {"kind": "within_at_least", "value": 0.9}},
     ["success.kind: within_at_least needs a per-sequence tolerance", "latch"]),
    ({"vary": {"task.p": [5]}, "baseline": "../elsewhere.json"},
     ["baseline: must be a path inside the sweep file's folder", "'../elsewhere.json'"]),
    # success is tagged by kind, as cells and tasks are
    ({"vary": {"task.p": [5]}, "success": "nonsense"}, ["success: must be a mapping, got 'nonsense'"]),
    ({"vary": {"task.p": [5]}, "success": {"kind": "los_below_baseline", "fraction": 0.1}},
     ["success.kind: must be one of accuracy_at_least, loss_below_baseline, task, within_at_least, "
      "got 'los_below_baseline' (did you mean 'loss_below_baseline'?)"]),
    ({"vary": {"task.p": [5]}, "success": {"los_below_baseline": 0.1}},
     ["success.kind: is required (one of accuracy_at_least, loss_below_baseline, task, within_at_least)"]),
    ({"vary": {"task.p": [5]}, "success": {"kind": "accuracy_at_least", "value": 2}},
     ["success.value: must be <= 1, got 2"]),
    # the spelling before kinds: a bad value is said under the key that was written
    ({"vary": {"task.p": [5]}, "success": {"accuracy_at_least": 2}},
     ["success.accuracy_at_least: must be <= 1, got 2"]),
    ({"vary": {"seed": {"range": [0, 2.5]}}}, ["vary.seed.range: start, stop and step must be integers, got [0, 2.5]"]),
    ({"vary": {"seed": {"rang": [0, 2]}}},
     ["vary.seed: must be a list of values or {range: [start, stop]} ([start, stop, step]), got {'rang': [0, 2]}"]),
]


@pytest.mark.parametrize("change,words", BAD, ids=[w[0] for _, w in BAD])
def test_bad_sweep_file_is_one_line_and_runs_nothing(tmp_path, change, words):
    path = write_sweep(tmp_path / "s", **change)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    for w in words:
        assert w in lines[0], lines[0]
    assert lines[0].startswith(f"error: {path}: ")
    assert "{{" not in lines[0] and lines[0].count(", got ") <= 1 and "literal[" not in lines[0], lines[0]
    assert not out.exists()


OLD_SPELLINGS = [
    ("task", {"kind": "task"}, "success: task is the old spelling; write success: {kind: task}"),
    ({"loss_below_baseline": 0.1}, {"kind": "loss_below_baseline", "fraction": 0.1},
     "success: {loss_below_baseline: 0.1} is the old spelling; write success: {kind: loss_below_baseline, fraction: 0.1}"),
    ({"accuracy_at_least": 1.0}, {"kind": "accuracy_at_least", "value": 1.0},
     "success: {accuracy_at_least: 1.0} is the old spelling; write success: {kind: accuracy_at_least, value: 1.0}"),
    ({"within_at_least": 0.9}, {"kind": "within_at_least", "value": 0.9},
     "success: {within_at_least: 0.9} is the old spelling; write success: {kind: within_at_least, value: 0.9}"),
]


@pytest.mark.parametrize("old,new,warning", OLD_SPELLINGS, ids=[str(o) for o, _, _ in OLD_SPELLINGS])
def test_the_success_spelling_before_kinds_is_read_with_one_warning(tmp_path, old, new, warning):
    """`success: {loss_below_baseline: 0.1}` was the one union in the files not tagged by kind;
    the old spelling still reads as the new one, and `diag sweep` says the new spelling once."""
    adding = "within_at_least" in str(old)   # the task with a per-sequence tolerance
    files = {"base": {**tiny_case(), "task": {"kind": "adding", "length": 30}} if adding else None,
             "vary": {"task.length": [30, 40]} if adding else None}
    sweep = load_sweep(write_sweep(tmp_path / "old", **files, success=old))
    again = load_sweep(write_sweep(tmp_path / "new", **files, success=new))
    assert sweep.file.success == again.file.success and type(sweep.file.success).__name__ != "dict"
    assert sweep.warnings == (warning,) and again.warnings == ()
    out = tmp_path / "out"
    (out / "tiny-sweep").mkdir(parents=True)
    (out / "tiny-sweep" / "notes.txt").write_text("mine")   # refused before anything runs
    res = CliRunner().invoke(main, ["sweep", write_sweep(tmp_path / "cli", **files, success=old), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert [ln for ln in res.output.splitlines() if ln.startswith("warning:")] == [
        f"warning: {tmp_path / 'cli' / 'sweep.yaml'}: {warning}"]


def test_grid_over_the_limit_is_refused_with_its_size(tmp_path):
    path = write_sweep(tmp_path / "s", vary={"task.p": [5, 6, 7], "seed": {"range": [0, 4]}})
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "out"), "--max-points", "11"])
    assert res.exit_code == 2
    assert "the grid has 12 points (3 task.p x 4 seed), more than --max-points 11" in res.output
    assert not (tmp_path / "out").exists()


def test_a_grid_is_counted_before_it_is_listed(tmp_path):
    """seed: {range: [0, 10**12]} was a MemoryError traceback (10**8 took 24 s and 4.8 GB before
    --max-points refused it): a range's length is arithmetic."""
    import time
    path = write_sweep(tmp_path / "s", vary={"task.p": [5, 6], "seed": {"range": [0, 10 ** 12]}})
    t0 = time.process_time()
    with pytest.raises(CaseError) as e:
        load_sweep(path)
    assert time.process_time() - t0 < 5
    assert e.value.lines == [f"{path}: vary: the grid has {2 * 10 ** 12} points (2 task.p x {10 ** 12} seed), "
                             "more than --max-points 5000; vary fewer values or raise --max-points"]
    sweep = load_sweep(write_sweep(tmp_path / "t", vary={"seed": {"range": [10, 0, -4]}}))
    assert [p.values["seed"] for p in sweep.points] == [10, 6, 2]
    # beyond 2**63 - 1 len() overflows (an OverflowError traceback): counted all the same
    for r, n in (([0, 10 ** 20], 10 ** 20), ([-10 ** 19, 10 ** 19], 2 * 10 ** 19), ([0, -10 ** 20, -1], 10 ** 20)):
        path = write_sweep(tmp_path / f"u{n}{r[-1]}", vary={"seed": {"range": r}})
        res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "o")])
        assert res.exit_code == 2 and res.output == (f"error: {path}: vary: the grid has {n} points ({n} seed), more "
                                                     "than --max-points 5000; vary fewer values or raise --max-points\n"), res.output


def test_key_paths_and_the_grid(tmp_path):
    assert parse_key("cells[0].recurrent_init.gain") == ["cells", 0, "recurrent_init", "gain"]
    case = tiny_case()
    del case["cells"][1]["hidden"]
    set_key(case, parse_key("cells[1].input_init.gain"), 0.5, "cells[1].input_init.gain")
    assert case["cells"][1]["input_init"] == {"gain": 0.5}        # a default made explicit
    sweep = load_sweep(write_sweep(tmp_path / "s", vary={"cells[0].recurrent_init.gain": [0.9, 1.0],
                                                          "seed": {"range": [0, 3]}}))
    assert [p.values for p in sweep.points][:2] == [{"cells[0].recurrent_init.gain": 0.9, "seed": 0},
                                                    {"cells[0].recurrent_init.gain": 0.9, "seed": 1}]
    assert len(sweep.points) == 6 and len({p.id for p in sweep.points}) == 6
    assert sweep.points[4].spec.case.cells[0].recurrent_init.gain == 1.0 and sweep.points[4].spec.case.seed == 1
    assert sweep.group_keys == ("cells[0].recurrent_init.gain",) and sweep.seed_key == "seed"
    # the id follows the numbers, not the labels: a new description keeps every id
    again = load_sweep(write_sweep(tmp_path / "t", base={**tiny_case(), "description": "other words"},
                                   vary={"cells[0].recurrent_init.gain": [0.9, 1.0], "seed": {"range": [0, 3]}}))
    assert [p.id for p in again.points] == [p.id for p in sweep.points]
    assert load_sweep(write_sweep(tmp_path / "u"), quick=True).points[0].id != load_sweep(
        write_sweep(tmp_path / "u")).points[0].id


def test_two_values_giving_the_same_case_are_refused(tmp_path):
    with pytest.raises(CaseError, match="same case as point 0"):
        load_sweep(write_sweep(tmp_path / "s", vary={"task.p": [5, 5]}))


def test_the_base_cases_own_baseline_key_does_not_stop_a_sweep(tmp_path):
    """A base case's `baseline:` is only diag run's business (a sweep keeps its own baseline):
    one outside the case's folder no longer refuses the sweep with a flag it does not have."""
    path = write_sweep(tmp_path / "s", base={**tiny_case(), "baseline": "../shared/tiny.json"})
    sweep = load_sweep(path, quick=True)
    assert len(sweep.points) == 4
    assert sweep.baseline_path.name == "tiny-sweep.sweep.quick.json"


def test_a_point_too_big_for_a_workers_share_names_that_share_not_a_missing_flag(tmp_path, monkeypatch):
    """diag sweep has no --max-memory: its refusal names the worker's share and --workers."""
    from diagnostics.run import budget
    monkeypatch.setattr(budget, "available_bytes", lambda: 2e6)
    path = write_sweep(tmp_path / "s", vary={"task.p": [5, 6]})     # two points: two workers share the memory
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "out"), "--workers", "2"])
    assert res.exit_code == 2, res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert "a worker's share of this machine's memory (1 MB)" in line and "run fewer --workers" in line, line
    assert "--max-memory" not in line
    assert not (tmp_path / "out").exists()


def test_a_sweep_file_given_to_diag_run_and_a_case_file_given_to_diag_sweep_say_so(tmp_path):
    """The two kinds of file are told apart by their keys, in one line that names the command
    to use instead of an unknown-key error about `base` or `cells`."""
    sweep = write_sweep(tmp_path / "s")
    case = str(tmp_path / "s" / "base.yaml")
    for args, words in ((["run", sweep, "--out", str(tmp_path / "o")], f"is a sweep file (it has `base:` and "
                         f"`vary:`); run it with `diag sweep {sweep}`"),
                        (["validate", case, sweep], "is a sweep file"),
                        (["sweep", case, "--out", str(tmp_path / "o")], f"is a case file (it has `cells:` and "
                         f"no `vary:`); run it with `diag run {case}`")):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, res.output
        (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
        assert words in line, line
    assert not (tmp_path / "o").exists()


def test_an_infinite_sweep_tolerance_is_refused(tmp_path):
    path = write_sweep(tmp_path / "s", tolerances={"decades": float("inf")})
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    assert "tolerances.decades: must be a finite number, got inf" in res.output


@pytest.mark.parametrize("address,problem", [("banana", "no port"), ("tcp://host", "no port"),
                                              ("tcp://host:abc", "port 'abc' is not a number"),
                                              ("tcp://host:99999", "port 99999 is not in 1..65535"),
                                              ("tpc://host:8786", "unknown protocol 'tpc'")])
def test_a_scheduler_address_is_checked_before_connecting(tmp_path, address, problem):
    """--scheduler banana was a traceback (ValueError: missing port number)."""
    path = write_sweep(tmp_path / "s")
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "out"), "--scheduler", address])
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"error: --scheduler: must be a scheduler address such as tcp://HOST:PORT, got "
                                 f"{address!r} ({problem}") and res.output.count("\n") == 1, res.output
    assert not (tmp_path / "out").exists()


def test_more_workers_than_cores_is_a_warning_and_never_more_workers_than_points(tmp_path, monkeypatch):
    """--workers 500 on a 4-point sweep started 500 processes (load 103, nothing done in 90 s)."""
    from contextlib import contextmanager

    from diagnostics.probing import parallel
    from diagnostics.sweep import engine
    started = []

    @contextmanager
    def no_cluster(workers=None, scheduler=None):
        started.append(workers)
        raise OSError("no cluster in this test")
        yield

    monkeypatch.setattr(engine, "open_client", no_cluster)   # the name the engine calls
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    path = write_sweep(tmp_path / "s")          # 4 points
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "out"), "--workers", "500"])
    assert started == [4], started
    warnings = [ln for ln in res.output.splitlines() if ln.startswith("warning:")]
    assert warnings == ["warning: --workers 500 is more than the 2 cores here; the points will share them and "
                        "finish no sooner"], res.output
    res = CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "out2"), "--workers", "2"])
    assert started == [4, 2] and "warning" not in res.output, res.output
    monkeypatch.setattr(parallel, "available_cores", lambda: 64)   # the default, one per core: capped too
    CliRunner().invoke(main, ["sweep", path, "--out", str(tmp_path / "out3")])
    assert started == [4, 2, 4]
