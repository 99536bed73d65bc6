"""sweep.json ("diag-sweep/1"): what a sweep's points add up to; sweep-run.json
("diag-sweep-run/1"): what varies between two runs of the same sweep.

sweep.json is built only from the points' curves.json files and error records (never from
timings), in the grid's order, so the same sweep gives the same bytes whatever order, worker
count or number of interruptions its points ran in (diagnostics/sweep/aggregate.py builds it).
A trial succeeds when its training did not diverge and the criterion holds; a point that
failed (an exception, a lost worker) is not a trial: it is counted in `failed`.
"""
from __future__ import annotations

import json
from typing import Any, Literal, Optional

from pydantic import Field, StrictBool, StrictInt, StrictStr

from .base import SWEEP, SWEEP_RUN, BadDocument, Document, Model, Num, Values


class Success(Model):
    """The success criterion: kind task | loss_below_baseline | accuracy_at_least |
    within_at_least, its value (null for task) and a sentence."""
    kind: StrictStr
    value: Optional[Num]
    description: StrictStr


class Counts(Model):
    points: StrictInt
    finished: StrictInt
    failed: StrictInt
    missing: StrictInt
    reasons: dict[str, StrictInt]      # error type -> points that failed with it
    diverged: StrictInt                # cell trainings that diverged


class PointCell(Model):
    cell: StrictStr
    success: StrictBool
    final_loss: Optional[Num]
    diverged_at: Optional[StrictInt]


class Point(Model):
    index: StrictInt
    id: StrictStr
    values: dict[str, Any]             # key path -> value of this point
    status: Literal["finished", "failed", "missing"]
    error: Optional[StrictStr]         # "Type: message" of a failed point
    cells: list[PointCell]


class Quartiles(Model):
    """Median and quartiles over the group's finished points, `n` of them."""
    median: Optional[Num]
    q25: Optional[Num]
    q75: Optional[Num]
    n: StrictInt


class HorizonQuartiles(Quartiles):
    """`beyond`: points with no 3-decade fall within K lags (larger than any horizon; a
    quartile that lands on them is null)."""
    beyond: StrictInt


class Band(Model):
    lo: Values
    hi: Values


class Bands(Model):
    """Per statistic, how far it could move at each lag if any one seed's curve changed to
    anything (lo: the largest seed's value replaced by an exact zero; hi: the smallest by a value
    above all); null where too few seeds bound it (fewer than 5 for a quartile, 3 for the median)."""
    median: Optional[Band]
    q25: Optional[Band]
    q75: Optional[Band]


class PooledEstimate(Model):
    """The pooled curves are of estimates (curves.json `estimated`, probe.estimator): each seed's
    from `rows` random rows, "hutchinson" (Frobenius) or "lower_bound" (spectral); the rows'
    seeds are the points' own."""
    kind: StrictStr
    rows: StrictInt
    value: StrictStr


class PooledCurve(Model):
    """Per probe checkpoint, each seed's median curve of path a (primary norm) pooled: median
    and quartiles over the seeds at every lag (null = an exact zero, as in curves.json)."""
    OPTIONAL = frozenset({"band", "estimated"})
    WHEN_MEASURED = frozenset({"estimated"})
    checkpoint: StrictInt
    seeds: StrictInt
    median: Values
    q25: Values
    q75: Values
    band: Optional[Bands] = None       # absent in files from before it
    estimated: Optional[PooledEstimate] = None   # absent when every pooled curve is exact

    def stat(self, name: str) -> Values:
        return {"median": self.median, "q25": self.q25, "q75": self.q75}[name]


class SweepCell(Model):
    """One cell at one setting, over its seeds."""
    cell: StrictStr
    kind: StrictStr
    trials: StrictInt                  # finished points
    successes: StrictInt
    rate: Optional[Num]                # null at 0 trials
    wilson95: list[Num]                # [low, high]
    diverged: StrictInt
    failed: StrictInt                  # points without a result
    memoryless_loss: Optional[Num] = Field(alias="baseline")
    final_loss: Optional[Quartiles]
    accuracy: Optional[Quartiles]      # cross-entropy tasks
    within: Optional[Quartiles]        # the fraction of evaluation sequences within the task's tolerance
    factor: Optional[Quartiles]        # the fitted decay factor ρ of path a after training
    horizon: Optional[HorizonQuartiles]
    curves: list[PooledCurve]


class Group(Model):
    """One combination of the varied keys other than the seed."""
    values: dict[str, Any]
    lags: list[StrictInt]
    cells: list[SweepCell]

    def cell(self, label: str) -> SweepCell:
        return next(c for c in self.cells if c.cell == label)

    @property
    def key(self) -> str:
        return json.dumps(self.values, sort_keys=True)


class Sweep(Document):
    FORMAT = SWEEP
    FILE = "sweep.json"

    format: Literal["diag-sweep/1"]
    sweep: StrictStr
    case: Optional[StrictStr]          # the base case's name
    quick: StrictBool
    keys: list[StrictStr]              # the varied key paths, in the file's order
    seed_key: Optional[StrictStr]      # "seed" when varied
    success: Success
    counts: Counts
    points: list[Point]
    groups: list[Group]

    @property
    def labels(self) -> list[str]:
        return [c.cell for c in self.groups[0].cells] if self.groups else []

    def cells_by_key(self) -> dict[tuple[str, str], SweepCell]:
        """(group key, cell) -> the cell's entry; the identity the sweep regression compares by."""
        return {(g.key, c.cell): c for g in self.groups for c in g.cells}


class SweepSeconds(Model):
    points: Num
    command: Num
    point_compute_sum: Num


class SweepRun(Document):
    FORMAT = SWEEP_RUN
    FILE = "sweep-run.json"
    OPTIONAL = frozenset({"format"})

    format: Optional[Literal["diag-sweep-run/1"]] = None   # absent in files from before it
    sweep: StrictStr
    quick: StrictBool
    sweep_file: Optional[StrictStr]
    command: StrictStr
    points: StrictInt
    skipped: StrictInt
    ran: StrictInt
    failed: StrictInt
    workers: StrictInt
    seconds: SweepSeconds
    versions: dict[str, Optional[StrictStr]]
    machine: dict[str, Any]

    @staticmethod
    def looks_legacy(data: dict | None) -> bool:
        """A sweep-run.json from before it named its format, known by its own keys."""
        return (data is not None and "format" not in data and isinstance(data.get("sweep"), str)
                and isinstance(data.get("versions"), dict))

    @classmethod
    def _check_format(cls, data: dict, where: str) -> None:
        if "format" in data and data["format"] != cls.FORMAT:
            raise BadDocument(f"{where}: format: expected {cls.FORMAT!r}, got {data['format']!r}")
