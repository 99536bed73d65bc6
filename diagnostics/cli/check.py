"""`diag check CURRENT BASELINE`: compare two curves files (or run folders) on their own.

Exit codes: 0 within tolerance, 1 regression (table printed, overlays written with --overlays),
2 bad input (one line naming the file and the problem, no traceback).
cli/main.py registers it.
"""
from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from ..errors import fail
from ..regression.baseline import load_curves, monitored, one_checkpoint
from ..regression.comparison import compare
from ..sweep.baseline import check_files, is_sweep_document
from ..sweep.tolerances import SweepTolerances
from ..tolerances import Tolerances
from .command import Command


def _tolerances(cls, values: dict):
    """cls(**values), or exit 2 naming the command-line option a value was wrong for."""
    try:
        return cls(**values)
    except ValidationError as e:
        err = e.errors()[0]
        fail(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg'].lower()}, got {err.get('input')!r}")


def _check_sweeps(current, baseline, decades, successes, seed_band, mixed_estimators, all_rows) -> None:
    given = {k: v for k, v in (("decades", decades), ("successes", successes), ("seed_band", seed_band),
                               ("mixed_estimators", mixed_estimators)) if v is not None}
    tol = _tolerances(SweepTolerances, given)
    text, ok = check_files(current, baseline, tol, all_rows)
    click.echo(text)
    sys.exit(0 if ok else 1)


@click.command("check", cls=Command)
@click.argument("current", type=click.Path(path_type=str))
@click.argument("baseline", type=click.Path(path_type=str))
@click.option("--decades", type=float, default=None, help="max log10 difference at any curve point [0.05]")
@click.option("--slope-rel", type=float, default=None, help="max relative change of the fitted slope [0.05]")
@click.option("--horizon-steps", type=int, default=None, help="max change of the horizon in steps [2]")
@click.option("--loss-rel", type=float, default=None, help="max relative change of the loss at checkpoints [0.05]")
@click.option("--lyapunov-abs", type=float, default=None, help="max change of a Lyapunov exponent [0.02]")
@click.option("--mixed-estimators/--no-mixed-estimators", default=None,
              help="compare series (sweeps: pooled curves) measured differently (exact against estimated, "
                   "other rows or seed) [off]")
@click.option("--case", "case_file", type=click.Path(path_type=str), default=None,
              help="take the tolerances from this case file's `tolerances:` (flags still override)")
@click.option("--overlays", "overlays", type=click.Path(file_okay=False, path_type=str), default=None,
              help="write an overlay PNG per failing series into this folder")
@click.option("--checkpoint", type=int, default=None,
              help="compare this checkpoint of CURRENT only (a monitored training: its last by default)")
@click.option("--all", "all_rows", is_flag=True, help="print every compared row, not only the failing ones")
@click.option("--successes", type=int, default=None,
              help="sweeps: max change of a success count [1]")
@click.option("--seed-band/--no-seed-band", default=None,
              help="sweeps: let a pooled curve move as far as one seed changing could move it [on]")
def check_cmd(current, baseline, decades, slope_rel, horizon_steps, loss_rel, lyapunov_abs, mixed_estimators,
              case_file, overlays, checkpoint, all_rows, successes, seed_band):
    """Compare CURRENT against BASELINE curves (curves.json files or run folders), or two
    sweeps (sweep.json files or sweep folders: success counts and pooled curves).

    Exit 0 when every curve point, slope, horizon, loss and Lyapunov exponent (for sweeps:
    every trial count, success count and pooled curve point) is within tolerance, 1 on a
    regression, 2 on bad input. Curves a LagMonitor recorded in a training loop are compared at
    one checkpoint: CURRENT's last, or --checkpoint N, against the baseline's same step (its
    last when it has no such step).
    """
    if is_sweep_document(current) or is_sweep_document(baseline):
        _check_sweeps(current, baseline, decades, successes, seed_band, mixed_estimators, all_rows)
    given = {"decades": decades, "slope_rel": slope_rel, "horizon_steps": horizon_steps,
             "loss_rel": loss_rel, "lyapunov_abs": lyapunov_abs, "mixed_estimators": mixed_estimators}
    start = {}
    if case_file is not None:
        from ..run.spec import resolve
        start = resolve(case_file).case.tolerances.model_dump()
    tol = _tolerances(Tolerances, {**start, **{k: v for k, v in given.items() if v is not None}})
    cur = load_curves(current)
    base = load_curves(baseline)
    if checkpoint is not None or monitored(current):
        try:
            cur, base, note = one_checkpoint(cur, base, checkpoint)
        except ValueError as e:
            fail(str(e))
        if note:
            click.echo(note)
    if cur.case != base.case:   # legal (a renamed case), but say it before the verdict
        click.echo(f"note: comparing two different cases: {cur.case!r} ({current}) against "
                   f"{base.case!r} ({baseline})")
    cmp = compare(cur, base, tol)
    click.echo(cmp.table(all_rows=all_rows))
    if cmp.ok:
        sys.exit(0)
    if overlays:
        from ..regression.overlay import write_overlays
        try:
            paths = write_overlays(cmp, cur, base, overlays)
        except OSError as e:
            fail(f"--overlays {overlays}: cannot write ({e.strerror})")
        for p in paths:
            click.echo(f"overlay: {p}")
    sys.exit(1)
