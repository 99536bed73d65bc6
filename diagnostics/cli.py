"""The `diag` command: run cases, validate them, list what exists, write a new case, re-render
a report, print the case JSON Schema, and (from diagnostics.regression) check curves.

Exit codes: 0 ok; 1 a run or check failed (e.g. a regression against the baseline); 2 bad
usage or a bad case file: one line per problem on stderr, no traceback, nothing written.
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import click

from . import __version__
from .caseload import CaseError, LoadedCase, load_case


def _fail(lines, code: int = 2):
    for line in ([lines] if isinstance(lines, str) else lines):
        click.echo(f"error: {line}", err=True)
    sys.exit(code)


def _load_all(files) -> list[LoadedCase]:
    """Every case validated before anything runs: one bad file means nothing is written."""
    loaded, problems = [], []
    for f in files:
        try:
            loaded.append(load_case(f))
        except CaseError as e:
            problems += e.lines
    names: dict[str, str] = {}
    for lc in loaded:
        if lc.case.name in names:
            problems.append(f"{lc.path}: name: {lc.case.name!r} is also the name of {names[lc.case.name]}; "
                            "both would write the same report folder")
        names.setdefault(lc.case.name, str(lc.path))
    if problems:
        _fail(problems)
    return loaded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diag")
def main():
    """gradient-diagnostics: how gradients vanish or explode in recurrent networks."""


@main.command()
@click.argument("cases", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="folder under which each case writes <name>/")
@click.option("--quick", is_flag=True, help="smoke run: fewer steps, lags and sequences (see `diag run -h`)")
@click.option("--update-baseline", is_flag=True, help="write (or rewrite) each case's baseline curves")
@click.option("--no-report", is_flag=True, help="write curves.json and run.json only, no HTML/PNG")
def run(cases, out, quick, update_baseline, no_report):
    """Run CASES (YAML files) and write OUT/<name>/: curves.json, run.json, index.html, figures/.

    Each run is compared with its baseline (cases/baselines/<name>.json beside the case, or the
    case's `baseline:` key; <name>.quick.json with --quick) and exits 1 on a regression. A
    missing baseline is reported, never created unless --update-baseline is given.

    --quick: train.steps -> min(steps, 30) (checkpoints scaled), batch -> min(batch, 16),
    probe.lags -> min(lags, 40), sequences -> min(sequences, 4), tk_map anchors -> min(count, 3),
    lyapunov_steps -> min(steps, 100). Deterministic; task, cells and seed unchanged.
    """
    if out.exists() and not out.is_dir():
        _fail(f"--out {out}: exists and is not a folder")
    loaded = _load_all(cases)
    if quick:
        from .plan import quick_case
        for lc in loaded:
            lc.case = quick_case(lc.case, lc.task.length)
    from .session import run_one
    code = 0
    for lc in loaded:
        try:
            code = max(code, run_one(lc, out, quick=quick, update_baseline=update_baseline,
                                     report=not no_report))
        except KeyboardInterrupt:
            _fail("interrupted; files already written are complete (writes are atomic)", 1)
        except Exception as e:  # noqa: BLE001 - a failed run is exit 1 with a message
            if os.environ.get("DIAG_DEBUG"):
                traceback.print_exc()
            click.echo(f"error: {lc.path}: run failed: {e.__class__.__name__}: {e} "
                       "(set DIAG_DEBUG=1 for the traceback)", err=True)
            code = 1
    sys.exit(code)


@main.command()
@click.argument("cases", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(cases):
    """Check CASES against the schema and the cells/tasks they name (nothing runs)."""
    for lc in _load_all(cases):
        tr = f", train {lc.case.train.steps} steps" if lc.case.train else ", no training"
        click.echo(f"ok: {lc.path}: {lc.case.name} ({lc.case.task.kind} task; cells: "
                   f"{', '.join(lc.labels)}{tr})")


@main.command("list")
def list_cmd():
    """Cells, tasks and their options with defaults (what a case file may say)."""
    from .listing import listing_text
    click.echo(listing_text())


@main.command()
@click.argument("name")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="folder to write NAME.yaml into")
def new(name, folder):
    """Write NAME.yaml, a commented case to start from (refuses to overwrite)."""
    from .newcase import new_case_text, safe_case_name
    stem = name[:-5] if name.endswith(".yaml") else name
    problem = safe_case_name(stem)
    if problem:
        _fail(f"NAME: {problem}, got {name!r}")
    path = folder / f"{stem}.yaml"
    if path.exists():
        _fail(f"{path}: exists; not overwritten (choose another NAME or remove the file)")
    from .io import atomic_write_text
    atomic_write_text(path, new_case_text(stem))
    click.echo(f"wrote {path}; edit it, then: diag validate {path} && diag run {path}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir):
    """Re-render RUN_DIR/index.html and figures/ from its curves.json + run.json (no recomputation)."""
    if not run_dir.is_dir():
        _fail(f"{run_dir}: not a folder (expected a run folder holding curves.json and run.json)")
    from .report import render_report
    t0 = time.perf_counter()
    try:
        page = render_report(run_dir)
    except (FileNotFoundError, ValueError) as e:
        _fail(str(e))
    click.echo(f"wrote {page} ({time.perf_counter() - t0:.1f} s)")


@main.command()
def schema():
    """Print the JSON Schema of case files (for editors: validation and completion)."""
    from .schema import json_schema
    click.echo(json.dumps(json_schema(), indent=2))


try:  # the regression helper's `diag check CURRENT BASELINE`
    from .regression.cli import check_cmd
    main.add_command(check_cmd, "check")
except ImportError:  # pragma: no cover - module not installed in a partial checkout
    pass


if __name__ == "__main__":
    main()
