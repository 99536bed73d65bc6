"""The project's own CI regression: every shipped case, in --quick form, against its committed
quick baseline (cases/baselines/<name>.quick.json). A missing baseline fails here with the command
that writes it; writing one is a deliberate act that shows in review:

    diag run cases/<name>.yaml --quick --no-report --update-baseline
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from diagnostics.cli import main

# the sweep files (diag sweep) live in cases/sweeps/, checked by test_shipped_sweeps.py
CASES = sorted((Path(__file__).resolve().parent.parent / "cases").glob("*.yaml"))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_shipped_case_matches_its_quick_baseline(case, tmp_path):
    res = CliRunner().invoke(main, ["run", str(case), "--quick", "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.output, (
        f"{case.name}: no committed quick baseline or no comparison made; write it with\n"
        f"    diag run {case.relative_to(case.parent.parent)} --quick --no-report --update-baseline\n"
        f"and commit cases/baselines/. Output:\n{res.output}")


def test_quickstart_full_run_matches_its_baseline(tmp_path):
    """The README's main command compares against cases/baselines/quickstart.json; that
    comparison must pass, or the first command a user runs would exit 1."""
    case = CASES[0].parent / "quickstart.yaml"
    res = CliRunner().invoke(main, ["run", str(case), "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.output, res.output
