"""`diag sweep SWEEP.yaml`: every point validated, run on Dask, aggregated, reported, gated.

Exit codes: 0 ok; 1 a point failed (recorded; everything else is still written) or the
sweep moved against its baseline; 2 bad input (one line per problem, nothing run or
written); 130 interrupted (finished points are kept; rerun to resume).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import fail
from ..publish import refusal
from ..sweep import MAX_POINTS
from .command import Command


def _budget(sweep, workers: int | None, scheduler: str | None) -> None:
    """Each worker holds one point at a time: refuse a point that would not fit its share of
    this machine's memory (an embedded cluster only; a remote cluster's memory is its own)."""
    if scheduler is not None:
        return
    from ..run.budget import available_bytes, over_budget
    from ..sweep.cluster import worker_count
    avail = available_bytes()
    if avail is None:
        return
    share = avail / worker_count(workers, len(sweep.points))
    problems, seen = [], set()
    for p in sweep.points:
        line = over_budget(p.spec, share, what_limit="a worker's share of this machine's memory",
                           remedy="run fewer --workers")
        if line and line.split(":")[0] not in seen:
            seen.add(line.split(":")[0])
            problems.append(f"{sweep.path}: point {p.index} ({p.label()}): {line}")
    if problems:
        fail(problems)


@click.command("sweep", cls=Command)
@click.argument("sweep_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="folder under which the sweep writes <name>/ (points/, sweep.json, index.html)")
@click.option("--quick", is_flag=True, help="every point in --quick form; writes OUT/<name>.quick/")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="worker processes of the embedded cluster [default: one per core]")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="send the points to an existing Dask scheduler (tcp://HOST:PORT) instead")
@click.option("--max-points", type=click.IntRange(min=1), default=MAX_POINTS, show_default=True,
              help="refuse a grid larger than this")
@click.option("--update-baseline", is_flag=True, help="write (or rewrite) the sweep's baseline sweep.json")
@click.option("--no-report", is_flag=True, help="sweep.json only, no HTML/PNG")
def sweep_cmd(sweep_file, out, quick, workers, scheduler, max_points, update_baseline, no_report):
    """Run every point of SWEEP_FILE's grid (seeds and settings of a base case) on Dask and
    write OUT/<name>/: points/<id>/ (each point's curves.json and run.json), sweep.json
    (success rates with 95% Wilson intervals, quartiles, curves pooled over seeds), index.html.

    A rerun skips finished points, so a killed sweep resumes; a failed point is recorded and
    the sweep goes on. The result is compared with baselines/<name>.sweep.json beside the
    sweep file (exit 1 if it moved); a missing baseline is reported, never created unless
    --update-baseline is given.
    """
    from ..sweep.grid import load_sweep
    if workers is not None and scheduler is not None:
        fail("--workers: applies to the embedded cluster only; with --scheduler the cluster has its own workers")
    if scheduler is not None:
        from ..sweep.cluster import address_problem
        problem = address_problem(scheduler)
        if problem:
            fail(f"--scheduler: must be a scheduler address such as tcp://HOST:PORT, got {scheduler!r} ({problem})")
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a folder")
    sweep = load_sweep(sweep_file, quick=quick, max_points=max_points)
    for line in sweep.warnings:
        click.echo(f"warning: {sweep_file}: {line}", err=True)
    why = refusal(out / sweep.folder_name, "sweep")   # before the cluster starts
    if why:
        fail(why)
    _budget(sweep, workers, scheduler)
    from ..probing.parallel import (
        available_cores,  # the probing package loads scipy: 0.3 s on `diag --help`
    )
    if workers is not None and workers > available_cores():
        click.echo(f"warning: --workers {workers} is more than the {available_cores()} cores here; the points "
                   "will share them and finish no sooner", err=True)
    from ..sweep.run import run_sweep
    click.echo(f"== sweep {sweep.name}{' (quick)' if quick else ''}: {len(sweep.points)} points "
               f"({' x '.join(map(str, sweep.file.sizes().values()))}) -> {out / sweep.folder_name}",
               err=True)
    try:
        res = run_sweep(sweep, out, workers=workers, scheduler=scheduler, report=not no_report,
                        update_baseline=update_baseline)
    except KeyboardInterrupt:
        fail("interrupted; finished points are kept (each written whole): rerun the same command to resume", 130)
    except OSError as e:   # no scheduler at --scheduler, a port refused
        fail(f"--scheduler {scheduler}: cannot connect ({e})" if scheduler else f"cluster: {e}", 1)
    _print(res)
    sys.exit(res.exit_code)


def _print(res) -> None:
    from ..sweep.narrative import failures, opening, table
    o, doc = res.outcome, res.doc
    click.echo(f"points: {o.total} in the grid, {o.skipped} already finished, {len(o.ran)} run now, "
               f"{len(o.failed)} failed" + (f" ({o.workers} workers, {o.seconds:.1f} s)" if o.ran or o.failed else ""))
    click.echo(f"\n{doc.sweep}: {res.folder / 'sweep.json'}")
    click.echo(table(doc))
    for line in opening(doc) + failures(doc):
        click.echo(line)
    if res.report_error:
        click.echo(f"error: report for {res.folder} failed: {res.report_error} (sweep.json is written)", err=True)
    elif res.page:
        click.echo(f"report: {res.page}", err=True)
    click.echo(res.gate.message())
