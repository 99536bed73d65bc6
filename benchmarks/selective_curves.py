"""The curves behind the selective-tasks sweep's rates, from its points' curves.json files.

    python benchmarks/selective_curves.py OUT/selective_tasks_sweep [--sweep cases/sweeps/selective_tasks_sweep.yaml]

For every setting and cell, over the finished seeds (median over seeds of each statistic):
the decay path's log10 ||d s<t>/d s<t-k>|| (spectral norm, the median over the probe's
sequences) at lag 1 and at the last lag K, at initialisation and after training, and the
spread across sequences at lag K: q75 - q25 of log10 over the 8 probe sequences, in decades.
The decay path is `a` for the cells that feed their output back (LSTM, GRU, RG-LRU stacks)
and `state` for the others (Curves.decay_paths). A selective cell's decay depends on its
input, so its spread across sequences measures that input dependence; an LSTM's forget gate
depends on its input too, and the same number measures it. Prints a markdown table
(docs/explanation/selective-tasks.md holds it as measured).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnostics.documents import Curves  # noqa: E402
from diagnostics.sweep.engine import point_dir  # noqa: E402
from diagnostics.sweep.grid import load_sweep  # noqa: E402
from diagnostics.sweep.narrative import setting  # noqa: E402


def _at(values, k):
    v = values[k]
    return np.nan if v is None else v


def rows(sweep, folder: Path):
    groups = {}
    for p in sweep.points:
        d = point_dir(folder, p.id)
        if not (d / "run.json").is_file():
            continue
        curves = Curves.read(d / "curves.json")
        key = setting({k: v for k, v in p.values.items() if k != sweep.seed_key})
        for (cell, ck), s in curves.a_series().items():
            first = 0 if ck == 0 else 1
            m, q25, q75 = s.log10.median, s.log10.q25, s.log10.q75
            K = len(m) - 1
            g = groups.setdefault((key, cell, s.path), [[], []])
            g[first].append((_at(m, 0), _at(m, K), _at(q75, K) - _at(q25, K)))
    for (key, cell, path), (init, trained) in groups.items():
        a, b = np.array(init, dtype=float), np.array(trained, dtype=float)
        yield (key, cell, path, len(b), *np.nanmedian(a, axis=0), *np.nanmedian(b, axis=0))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--sweep", default=str(ROOT / "cases" / "sweeps" / "selective_tasks_sweep.yaml"))
    args = ap.parse_args(argv)
    sweep = load_sweep(args.sweep)
    print("| setting | cell | path | seeds | init: lag 1 | init: lag K | init: spread at K | "
          "trained: lag 1 | trained: lag K | trained: spread at K |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, cell, path, n, i1, iK, isp, t1, tK, tsp in rows(sweep, args.folder):
        print(f"| {key} | {cell} | {path} | {n} | {i1:.2f} | {iK:.2f} | {isp:.2f} | {t1:.2f} | {tK:.2f} | {tsp:.2f} |")


if __name__ == "__main__":
    main()
