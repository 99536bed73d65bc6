"""The `diag` command: run cases, validate them, list what exists, write a new case, re-render
a report, print the case JSON Schema, and (from diagnostics.regression) check curves; `diag
sweep` (diagnostics.sweep) runs a case over a grid of settings and seeds.

Exit codes: 0 ok; 1 a run or check failed (e.g. a regression against the baseline); 2 bad
usage or a bad case file: one line per problem on stderr, no traceback, nothing written. A
training or forward pass that diverged is a finding of the run, not a failure of it (exit 0):
the summary table and the opening sentences say so, and a baseline gate fails on it when the
baseline did not diverge (it compares `diverged_at` and `nonfinite`).
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import click

from ..documents import CURVES, MODELS, RUN, json_schema, read_document
from ..errors import fail
from ..interop.models import ModelError
from ..io import atomic_write_text
from ..publish import ForeignFolder, refusal, replacing
from ..version import __version__
from .check import check_cmd
from .command import Group
from .sweep import sweep_cmd


def _resolve_all(files, quick: bool = False, baseline_anywhere: bool = False):
    """Every case resolved before anything runs: one bad file means nothing is written."""
    from ..run.spec import resolve_files
    return resolve_files(files, quick=quick, baseline_anywhere=baseline_anywhere)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diag")
def main():
    """gradient-diagnostics: how gradients vanish or explode in recurrent networks."""


@main.command()
@click.argument("cases", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="folder under which each case writes <name>/")
@click.option("--quick", is_flag=True, help="smoke run: fewer steps, lags and sequences (details below); "
              "writes OUT/<name>.quick/, never the full run's folder")
@click.option("--update-baseline", is_flag=True, help="write (or rewrite) each case's baseline curves")
@click.option("--no-report", is_flag=True, help="write curves.json and run.json only, no HTML/PNG")
@click.option("--baseline-anywhere", is_flag=True,
              help="allow a case's `baseline:` outside its folder (absolute, or climbing with ..)")
@click.option("--max-memory", "max_memory", default=None, metavar="SIZE",
              help="refuse a case whose estimated memory exceeds SIZE (e.g. 4GB); default: what the machine has free")
def run(cases, out, quick, update_baseline, no_report, baseline_anywhere, max_memory):
    """Run CASES (YAML files) and write OUT/<name>/: curves.json, run.json, index.html, figures/
    (OUT/<name>.quick/ with --quick).

    Each run is compared with its baseline (cases/baselines/<name>.json beside the case, or the
    case's `baseline:` key; <name>.quick.json with --quick) and exits 1 on a regression. A
    missing baseline is reported, never created unless --update-baseline is given.

    --quick: train.steps -> min(steps, 30) (checkpoints scaled), batch -> min(batch, 16),
    probe.lags -> min(lags, 40), sequences -> min(sequences, 4), tk_map anchors -> min(count, 3),
    lyapunov_steps -> min(steps, 100). Deterministic; task, cells and seed unchanged.
    """
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a folder")
    specs = _resolve_all(cases, quick, baseline_anywhere)
    _check_budget(specs, max_memory)
    _check_folders(out, specs)
    made = not out.exists()
    code = 0
    for spec in specs:
        try:
            code = max(code, _run_one(spec, out, update_baseline=update_baseline, report=not no_report))
        except KeyboardInterrupt:
            if made and out.is_dir() and not any(out.iterdir()):
                out.rmdir()    # nothing finished: leave no empty --out behind
            fail("interrupted; reports already finished are complete (each is swapped in whole)", 130)
        except Exception as e:  # noqa: BLE001 - a failed run is exit 1 with a message
            _failed(spec, e)
            code = max(code, 1)
    sys.exit(code)


def _failed(spec, e: Exception, after: str = "") -> None:
    if os.environ.get("DIAG_DEBUG"):
        traceback.print_exc()
    click.echo(f"error: {spec.path}: run failed: {e.__class__.__name__}: {e}{after} "
               "(set DIAG_DEBUG=1 for the traceback)", err=True)


def _check_folders(out: Path, specs) -> None:
    """Refuse, before anything runs, to replace what this tool did not write (one line each;
    publish.py says whose a folder is)."""
    problems = [line for spec in specs if (line := refusal(out / spec.folder_name))]
    if problems:
        fail(list(dict.fromkeys(problems)))


def _check_budget(specs, max_memory) -> None:
    """Refuse, before anything runs, a case that would not fit in memory (one line each)."""
    from ..run.budget import over_budget, parse_size
    limit = None
    if max_memory is not None:
        try:
            limit = parse_size(max_memory)
        except ValueError as e:
            fail(f"--max-memory: {e}")
    problems = [f"{spec.path}: {line}" for spec in specs if (line := over_budget(spec, limit))]
    if problems:
        fail(problems)


def _run_one(spec, out: Path, *, update_baseline: bool, report: bool) -> int:
    """Run, compare with the baseline, publish (the overlays of a regression inside the folder,
    so it is swapped in whole with them), print the summary and the comparison; the exit code.
    The baseline is written (--update-baseline) only once the folder is published."""
    from ..regression.baseline import gate, load_curves
    from ..regression.overlay import write_overlays
    from ..run.curves import summary_table
    from ..run.runner import compute, run_to_folder
    click.echo(f"== {spec.name}{' (quick)' if spec.quick else ''}: {spec.path}", err=True)
    tol = spec.case.tolerances
    g = None
    try:
        result = compute(spec)
        g = None if update_baseline else gate(result.curves, spec.baseline_path, tol)

        def overlays(stage: Path) -> None:
            if g is not None and g.status == "regression":
                write_overlays(g.comparison, result.curves, load_curves(spec.baseline_path), stage / "regression")

        res = run_to_folder(spec, out, report=report, result=result, extra=overlays)
    except ForeignFolder as e:   # written into since _check_folders
        click.echo(f"error: {e}", err=True)
        return 2
    except ModelError as e:
        # a model cell refusing its inputs (not a sequence model, wrong width, an output not
        # finite): bad input found only when it runs, a usage error
        click.echo(f"error: {spec.path}: {e}; nothing written", err=True)
        return 2
    except Exception as e:  # noqa: BLE001 - whole or not at all: nothing was swapped in
        _failed(spec, e, f"; {out / spec.folder_name} is as it was")
        if g is not None and g.status == "regression":   # what moved is still worth saying
            click.echo(g.message())
        return 1
    if report:
        click.echo(f"report: {res.folder / 'index.html'}", err=True)
    t = res.result.timings
    took = f"compute {t.get('compute', 0):.1f} s" + (f", report {t['report']:.1f} s" if "report" in t else "")
    click.echo(f"\n{spec.name}: {res.folder}  ({took})")
    click.echo(summary_table(res.result.summary))
    from ..report.narrative import opening, warnings
    imported = [lab for lab, f in zip(spec.labels, spec.feeds) if f is not None]
    for line in opening(res.result.curves, res.result.summary, imported):
        click.echo(line)
    for line in warnings(res.result.curves):
        click.echo(f"warning: {line}")
    if update_baseline:
        g = gate(res.result.curves, spec.baseline_path, tol, update=True)
    elif g.status == "regression":
        g.overlays = sorted((res.folder / "regression").glob("*.png"))
    click.echo(g.message())
    return g.exit_code


@main.command()
@click.argument("cases", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(cases):
    """Check CASES against the schema and the cells/tasks they name (nothing runs)."""
    from ..run.budget import estimate, human
    for spec in _resolve_all(cases):
        tr = f", train {spec.case.train.steps} steps" if spec.case.train else ", no training"
        est = estimate(spec)
        click.echo(f"ok: {spec.path}: {spec.name} ({spec.task.kind} task; cells: "
                   f"{', '.join(spec.labels)}{tr}; {spec.plan.K} lags; about {human(est.bytes)} "
                   f"and {est.flops:.1g} flops)")
        # a model cell was built to validate it: say so, and that a factory ran the user's code
        built = [f"{label} ({c.kind}, {c.source})" for label, c in zip(spec.labels, spec.cells) if c.state_size is None]
        if built:
            click.echo(f"    built the model cells to check them: {'; '.join(built)}")


@main.command("list")
def list_cmd():
    """Cells, tasks and their options with defaults (what a case file may say)."""
    from ..run.listing import listing_text
    click.echo(listing_text())


@main.command()
@click.argument("name")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="folder to write NAME.yaml into")
def new(name, folder):
    """Write NAME.yaml, a commented case to start from (refuses to overwrite)."""
    from ..run.newcase import new_case_text, safe_case_name
    stem = name[:-5] if name.endswith(".yaml") else name
    problem = safe_case_name(stem)
    if problem:
        fail(f"NAME: {problem}, got {name!r}")
    path = folder / f"{stem}.yaml"
    if path.exists():
        fail(f"{path}: exists; not overwritten (choose another NAME or remove the file)")
    atomic_write_text(path, new_case_text(stem))
    click.echo(f"wrote {path}; edit it, then: diag validate {path} && diag run {path}")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir):
    """Re-render RUN_DIR/index.html and figures/ from its curves.json + run.json (no recomputation)."""
    if not run_dir.is_dir():
        fail(f"{run_dir}: not a folder (expected a run folder holding curves.json and run.json)")
    from ..report import render_report
    t0 = time.perf_counter()
    curves, run = read_document(run_dir, CURVES), read_document(run_dir, RUN)
    try:   # drawn beside the saved numbers in a stage swapped in whole, as `diag run` does
        # (resolved: given a link to a run folder, the folder is replaced, not the link)
        with replacing(run_dir.resolve(), keep=True) as stage:
            render_report(stage, curves=curves, run=run)
    except ValueError as e:   # not a run folder of diag's (ForeignFolder is a ValueError); documents it cannot draw
        fail(str(e))
    except OSError as e:   # a full disk: the previous page is as it was
        fail(f"{run_dir}: report failed: {e.__class__.__name__}: {e}; the folder is as it was", 1)
    click.echo(f"wrote {run_dir / 'index.html'} ({time.perf_counter() - t0:.1f} s)")


@main.command()
@click.option("--document", type=click.Choice(sorted(MODELS)), default=None,
              help="print the schema of an output file instead: curves.json, run.json, sweep.json, sweep-run.json")
def schema(document):
    """Print the JSON Schema of case files (for editors: validation and completion), or with
    --document of an output file (for other tools reading them)."""
    if document is not None:
        click.echo(json.dumps(json_schema(document), indent=2))
        return
    from ..run.schema import json_schema as case_schema
    click.echo(json.dumps(case_schema(), indent=2))


main.add_command(check_cmd, "check")
main.add_command(sweep_cmd, "sweep")
