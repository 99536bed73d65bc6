"""One case from the command line: run it in a staging folder, render the report there, swap
the folder in whole (publish.py), compare with the baseline, print the summary.
Returns the exit code (0 ok, 1 regression or failed report).
"""
from __future__ import annotations

import time
from pathlib import Path

import click

from .caseload import LoadedCase
from .curves import summary_table
from .io import atomic_write_json
from .publish import discard, staging_dir, swap_in
from .runner import run_case


def baseline_file(lc: LoadedCase, quick: bool) -> Path:
    from .regression.baseline import baseline_path_for
    case_file = lc.path if lc.path is not None else Path("cases") / f"{lc.case.name}.yaml"
    return baseline_path_for(lc.case.name, case_file, explicit=lc.case.baseline, quick=quick)


def _render(stage: Path, final: Path) -> bool:
    try:
        from .report import render_report
        render_report(stage)
        return True
    except Exception as e:  # noqa: BLE001 - the numbers are saved; the page can be redone
        click.echo(f"error: report for {final} failed: {e.__class__.__name__}: {e} "
                   f"(the run's files are written; retry with `diag report {final}`)", err=True)
        return False


def run_one(lc: LoadedCase, out: Path, *, quick: bool, update_baseline: bool, report: bool) -> int:
    code = 0
    click.echo(f"== {lc.case.name}{' (quick)' if quick else ''}: {lc.path}", err=True)
    final = Path(out) / lc.case.name
    stage = staging_dir(final)
    try:
        res = run_case(lc, stage, quick=quick)
        if report:
            t0 = time.perf_counter()
            code = 0 if _render(stage, final) else 1
            res.timings["report"] = time.perf_counter() - t0
            res.run["timings"] = {k: round(v, 3) for k, v in res.timings.items()}
            atomic_write_json(stage / "run.json", res.run)
        swap_in(stage, final)
    finally:
        discard(stage)   # a no-op after a plain rename; the leftovers otherwise
    res.run_dir = final
    if report and code == 0:
        click.echo(f"report: {final / 'index.html'}", err=True)
    took = f"compute {res.timings.get('compute', 0):.1f} s"
    if "report" in res.timings:
        took += f", report {res.timings['report']:.1f} s"
    click.echo(f"\n{lc.case.name}: {final}  ({took})")
    click.echo(summary_table(res.summary))
    from .regression.baseline import gate
    g = gate(res.curves, baseline_file(lc, quick), lc.case.tolerances, update=update_baseline,
             overlays_dir=final / "regression")
    click.echo(g.message())
    return max(code, g.exit_code)
