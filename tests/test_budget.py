"""diagnostics/run/budget.py: a case whose run would need more memory than the machine (or
--max-memory) allows is refused before it runs, in one line naming the key that makes it big,
exit 2, nothing written; and the estimate bounds what a run allocates."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from diagnostics.cli.main import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


BIG = [("task", "delay", 100_000_000, "task.delay"), ("probe", "sequences", 10_000_000, "probe.sequences"),
       ("probe", "lags", 100_000_000, "probe.lags"), ("cells", "hidden", 100_000, "cells[0].hidden"),
       ("train", "batch", 10_000_000, "train.batch")]


@pytest.mark.parametrize("section,key,value,named", BIG, ids=[b[3] for b in BIG])
def test_oversize_cases_exit_2_naming_the_key(tmp_path, tiny_case, write_case, section, key, value, named):
    case = tiny_case()
    if section == "cells":
        case["cells"][0][key] = value
    else:
        case[section][key] = value
    res = invoke("run", write_case(tmp_path, case, "c.yaml"), "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    line = res.output.strip().splitlines()
    assert len(line) == 1 and f": {named}: the run would need about " in line[0] and "more than" in line[0], line
    assert not (tmp_path / "o").exists()


def test_max_memory_flag(tmp_path, tiny_case, write_case):
    p = write_case(tmp_path, tiny_case(), "c.yaml")
    res = invoke("run", p, "--out", tmp_path / "o", "--max-memory", "10kB")
    assert res.exit_code == 2 and "more than --max-memory (10 kB)" in res.output
    assert invoke("run", p, "--out", tmp_path / "o", "--max-memory", "lots").exit_code == 2
    assert invoke("run", p, "--out", tmp_path / "o", "--no-report", "--max-memory", "2GB").exit_code == 0


@pytest.mark.slow
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
