"""The shipped sweeps: they validate in both forms, their committed results (the full runs,
cases/baselines/<name>.sweep.json) are of this very grid and are what the README prints, and
their --quick form matches its committed quick baseline."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from diagnostics.cli import main
from diagnostics.sweep.baseline import load_sweep_doc
from diagnostics.sweep.grid import load_sweep
from diagnostics.sweep.narrative import markdown_table

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = sorted((ROOT / "cases").glob("*_sweep.yaml"))


def test_there_are_shipped_sweeps():
    assert {p.stem for p in SWEEPS} >= {"latch_sweep", "adding_sweep"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweep_validates_and_its_results_are_in_the_readme(path):
    sweep = load_sweep(path)
    assert load_sweep(path, quick=True).points
    assert "2 cores" in sweep.file.description
    assert len({p.values["seed"] for p in sweep.points}) >= 10      # claims rest on 10 trials or more
    doc = load_sweep_doc(sweep.baseline_path)
    assert doc["sweep"] == sweep.name and doc["counts"]["finished"] == len(sweep.points)
    assert [p["values"] for p in doc["points"]] == [p.values for p in sweep.points]
    assert markdown_table(doc) in (ROOT / "README.md").read_text(), (
        f"README.md must hold the table of {sweep.baseline_path.name} as measured:\n{markdown_table(doc)}")


@pytest.mark.slow
@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweep_quick_form_matches_its_quick_baseline(path, tmp_path):
    res = CliRunner().invoke(main, ["sweep", str(path), "--quick", "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.output, (
        f"no committed quick baseline; write it with diag sweep {path.relative_to(ROOT)} --quick --no-report "
        f"--update-baseline\n{res.output}")
