"""The shipped sweeps: they validate in both forms, and their committed results (the full runs,
cases/sweeps/baselines/<name>.sweep.json, which `diag sweep` compares against) are of this very
grid and are what docs/explanation/experiments.md (or a study's own page) prints; their quick baselines (<name>.sweep.quick.json) are of the
quick grid. (The --quick forms are run against them by .ci/run, not here: 70 points take a few
minutes, and every shipped case's numerics are already gated by test_shipped_baselines.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.sweep.baseline import load_sweep_doc
from diagnostics.sweep.grid import load_sweep
from diagnostics.sweep.narrative import markdown_table

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = sorted((ROOT / "cases" / "sweeps").glob("*.yaml"))


def test_there_are_shipped_sweeps():
    assert {p.stem for p in SWEEPS} >= {"latch_sweep", "adding_sweep"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweep_validates_and_its_results_are_in_the_docs(path):
    sweep = load_sweep(path)
    assert load_sweep(path, quick=True).points
    assert "2 cores" in sweep.file.description
    assert len({p.values["seed"] for p in sweep.points}) >= 10      # claims rest on 10 trials or more
    doc = load_sweep_doc(sweep.baseline_path)
    assert doc.sweep == sweep.name and doc.counts.finished == len(sweep.points)
    assert [p.values for p in doc.points] == [p.values for p in sweep.points]
    # experiments.md, or the page of a study of its own (selective-tasks.md)
    pages = sorted((ROOT / "docs" / "explanation").glob("*.md"))
    texts = ["\n".join(line.strip() for line in page.read_text().splitlines()) for page in pages]
    assert any(markdown_table(doc) in text for text in texts), (
        f"a page of docs/explanation must hold the table of {sweep.baseline_path.name} as measured:\n"
        f"{markdown_table(doc)}")



@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweep_has_a_quick_baseline_of_its_quick_grid(path):
    sweep = load_sweep(path, quick=True)
    doc = load_sweep_doc(sweep.baseline_path)
    assert sweep.baseline_path.name == f"{sweep.name}.sweep.quick.json"
    assert doc.quick is True and doc.counts.finished == len(sweep.points)
    assert [p.id for p in doc.points] == [p.id for p in sweep.points]
    # every pooled curve of the shipped grids has ten seeds: each statistic's band is bounded
    assert all(cv.band is not None and all(b is not None for b in (cv.band.median, cv.band.q25, cv.band.q75))
               for g in doc.groups for c in g.cells for cv in c.curves)
