"""Running one case: the case file -> a resolved specification -> the documents and the page.

    schema.py    the case schema, built from the cell and task registries (a union per kind)
    spec.py      resolve(case) -> RunSpec: validated, defaults filled, --quick applied, cells and
                 task built, weights read, the probe planned (plan.py); nothing reads YAML after it
    plan.py      the probe plan (lags, stream, anchors, Lyapunov) and --quick
    budget.py    the memory and work a RunSpec needs, against the machine
    runner.py    compute(spec) -> RunResult (curves.json's document in memory); run_to_folder
                 writes the folder whole (curves.json, the page, run.json last)
    curves.py    curves.json's items from probe, Lyapunov and training results; the summary table
    runinfo.py   run.json: the resolved case, versions, machine, timings
    listing.py   `diag list`;  newcase.py: `diag new`

The twin of diagnostics/sweep/, which runs a case over a grid of settings and seeds.
"""
