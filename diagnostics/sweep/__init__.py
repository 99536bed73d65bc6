"""Seeds and sweeps: a base case run over a grid of settings and seeds on Dask, aggregated
into success rates with 95% Wilson intervals and curves pooled over seeds.

    grid.py       the sweep file -> points, each validated like a case (schema.py: the file's keys)
    cluster.py    the Dask client: an embedded LocalCluster or --scheduler ADDRESS
    engine.py     points as Dask tasks, written whole to points/<id>/; reruns skip finished ones
    aggregate.py  sweep.json ("diag-sweep/1"; its fields are documented there)
    stats.py      the Wilson interval, quartiles
    baseline.py   comparing two sweep.json files, the sweep's baseline gate
    narrative.py  the opening sentences and the terminal table
    report.py     the HTML page and its figures (figures.py)
    (`diag sweep` itself is diagnostics/cli/sweep.py)

Nothing here is imported by `import diagnostics`; dask loads only when a sweep runs.
"""

MAX_POINTS = 5000   # the default of --max-points: a grid larger than this is refused with its size
