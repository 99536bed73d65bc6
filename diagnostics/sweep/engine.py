"""Running a sweep's points on Dask, so that nothing is lost and nothing is done twice.

    outcome = run_points(sweep, folder, workers=None, scheduler=None, show=True)

Each point is one Dask task: the worker resolves the point's case (plain data travels, not
the built cells), computes it with the probe on one worker (the parallelism is across
points) and BLAS on one thread, and returns curves.json's and run.json's documents. The
command writes them to FOLDER/points/<id>/ as a whole (a staging folder swapped in, run.json
last), so a point folder holding run.json is finished, whatever moment the command was
killed at. A rerun skips finished points. A point that raised, or whose worker was lost,
gets FOLDER/points/<id>/error.json (type, message, traceback) and the sweep goes on; a rerun
tries it again.

The curves do not depend on where a point ran: the same case gives the same curves.json
bytes from `diag run`, from one worker or from two (tests/test_sweep_cluster.py).
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ..documents import SweepPoint
from ..io import atomic_write_json
from ..probing.parallel import single_threaded_blas
from ..publish import POINTS, remove_abandoned, replacing
from ..run.runinfo import run_document
from ..run.runner import compute
from ..run.spec import resolve
from .cluster import open_client, worker_count


@dataclass
class Outcome:
    total: int
    skipped: int                                  # finished before this command
    ran: list[str] = field(default_factory=list)  # ids finished by this command
    failed: dict[str, str] = field(default_factory=dict)   # id -> "Type: message"
    seconds: float = 0.0
    workers: int = 0


def point_dir(folder: Path, pid: str) -> Path:
    return Path(folder) / POINTS / pid


def finished(folder: Path, pid: str) -> bool:
    return (point_dir(folder, pid) / "run.json").is_file()


def run_point(case: dict, quick: bool, base_dir: str) -> dict:
    """On a worker: {"curves": ..., "run": ...} or {"error": {type, message, traceback}}."""
    try:
        spec = resolve(case, quick=quick, base_dir=base_dir)
        with single_threaded_blas():
            res = compute(spec, show=False, workers=1)
        return {"curves": res.curves, "run": run_document(spec, res.summary, res.timings)}
    except Exception as e:  # noqa: BLE001 - a failed point is a record, not the end of the sweep
        return {"error": {"type": e.__class__.__name__, "message": str(e),
                          "traceback": traceback.format_exc()}}


def write_point(folder: Path, point, result: dict, command: str) -> None:
    """A finished point whole (staging folder, run.json last), or its error.json."""
    final = point_dir(folder, point.id)
    if "error" in result:
        atomic_write_json(final / "error.json", {"point": point.index, "values": point.values,
                                                 "case": point.case, **result["error"]})
        return
    run = result["run"].model_copy(update={"command": command})
    run.sweep_point = SweepPoint(index=point.index, id=point.id, values=point.values)
    with replacing(final, "point", clean=False) as stage:   # run_points cleaned points/ once
        result["curves"].write(stage / "curves.json")
        run.write(stage / "run.json")


def _lost(exc: BaseException) -> dict:
    return {"error": {"type": exc.__class__.__name__,
                      "message": f"the point did not come back from its worker: {exc}",
                      "traceback": "".join(traceback.format_exception(exc))}}


def run_points(sweep, folder: Path, *, workers: int | None = None, scheduler: str | None = None,
               show: bool = True, command: str | None = None, plugins=()) -> Outcome:
    """Run the points not finished under `folder`. `plugins`: Dask worker plugins registered
    before the points are sent (the tests register a cell of their own on the workers)."""
    from distributed import as_completed

    folder = Path(folder)
    command = command or " ".join(["diag"] + sys.argv[1:])
    remove_abandoned(folder / POINTS)   # a killed sweep's half-written points, once, not per point
    todo = [p for p in sweep.points if not finished(folder, p.id)]
    out = Outcome(total=len(sweep.points), skipped=len(sweep.points) - len(todo))
    if not todo:
        return out
    t0 = time.perf_counter()
    with open_client(None if scheduler else worker_count(workers, len(todo)), scheduler) as client:
        for plugin in plugins:
            client.register_plugin(plugin)
        out.workers = len(client.scheduler_info(n_workers=-1)["workers"])
        futures = {client.submit(run_point, p.case, sweep.quick, str(p.spec.base_dir),
                                 key=f"diag-point-{p.id}", pure=False): p for p in todo}
        bar = tqdm(total=out.total, initial=out.skipped, desc=f"sweep {sweep.name}", unit="point",
                   disable=None if show else True, dynamic_ncols=True)
        try:
            for fut in as_completed(futures):
                p = futures[fut]
                try:
                    result = fut.result()
                except Exception as e:  # noqa: BLE001 - worker lost, cancelled: recorded
                    result = _lost(e)
                write_point(folder, p, result, command)
                if "error" in result:
                    out.failed[p.id] = f"{result['error']['type']}: {result['error']['message']}"
                else:
                    out.ran.append(p.id)
                running = sum(len(v) for v in client.processing().values()) if show else 0
                bar.set_postfix_str(f"running {running}, failed {len(out.failed)}", refresh=False)
                bar.update(1)
        finally:
            bar.close()
            for fut in futures:
                fut.release()
    out.seconds = time.perf_counter() - t0
    return out
