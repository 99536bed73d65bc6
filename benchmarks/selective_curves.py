"""The curves behind the selective-tasks sweep's rates, from its points' curves.json files.

    python benchmarks/selective_curves.py OUT/selective_tasks_sweep [--sweep FILE] [--svg docs/figures/selective-tasks.svg]

For every setting and cell, over the finished seeds (median over seeds of each statistic):
the decay path's log10 ||d s<t>/d s<t-k>|| (spectral norm, the median over the probe's
sequences) at lag 1 and at the last lag K, at initialisation and after training, and the
spread across sequences at lag K: q75 - q25 of log10 over the 8 probe sequences, in decades.
The decay path is `a` for the cells that feed their output back (LSTM, GRU, RG-LRU stacks)
and `state` for the others (Curves.decay_paths). A selective cell's decay depends on its
input, so its spread across sequences measures that input dependence; an LSTM's forget gate
depends on its input too, and the same number measures it. Prints a markdown table
(docs/explanation/selective-tasks.md holds it as measured); --svg also draws, per setting, each
cell's decay curve (median over seeds of the per-sequence median) at initialisation (dashed)
and after training (solid), with the median over seeds of the band between the quartiles
across sequences.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matplotlib.figure import Figure  # noqa: E402

from diagnostics.documents import Curves  # noqa: E402
from diagnostics.sweep.engine import point_dir  # noqa: E402
from diagnostics.sweep.grid import load_sweep  # noqa: E402
from diagnostics.sweep.narrative import setting  # noqa: E402


def _at(values, k):
    v = values[k]
    return np.nan if v is None else v


def _arr(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def curves(sweep, folder: Path) -> dict:
    """(setting, cell, checkpoint) -> (median, q25, q75) per lag, each the median over seeds."""
    acc = {}
    for p in sweep.points:
        d = point_dir(folder, p.id)
        if not (d / "run.json").is_file():
            continue
        key = setting({k: v for k, v in p.values.items() if k != sweep.seed_key})
        for (cell, ck), s in Curves.read(d / "curves.json").a_series().items():
            acc.setdefault((key, cell, ck), []).append(
                np.stack([_arr(s.log10.median), _arr(s.log10.q25), _arr(s.log10.q75)]))
    return {k: np.nanmedian(np.stack(v), axis=0) for k, v in acc.items()}


def figure(sweep, folder: Path, out: Path) -> None:
    cs = curves(sweep, folder)
    settings = list(dict.fromkeys(k[0] for k in cs))
    cells = list(dict.fromkeys(k[1] for k in cs))
    fig = Figure(figsize=(4.2 * len(settings), 3.6))
    colours = [f"C{i}" for i in range(len(cells))]
    for j, key in enumerate(settings):
        ax = fig.add_subplot(1, len(settings), j + 1)
        for cell, colour in zip(cells, colours):
            for ck in sorted({k[2] for k in cs if k[:2] == (key, cell)}):
                m, lo, hi = cs[(key, cell, ck)]
                lags = np.arange(1, len(m) + 1)
                ax.plot(lags, m, color=colour, ls="--" if ck == 0 else "-", lw=1.2,
                        label=cell if ck else None)
                if ck:
                    ax.fill_between(lags, lo, hi, color=colour, alpha=0.15, lw=0)
        ax.set_title(key.replace("task = ", ""), fontsize=8)
        ax.set_xlabel("lag k")
        if j == 0:
            ax.set_ylabel("log10 ||d s<t>/d s<t-k>|| (a or state)")
    fig.axes[-1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(out, format="svg", metadata={"Date": None})


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
    ap.add_argument("--svg", type=Path, help="also draw the curves into this file")
    args = ap.parse_args(argv)
    sweep = load_sweep(args.sweep)
    if args.svg:
        figure(sweep, args.folder, args.svg)
    print("| setting | cell | path | seeds | init: lag 1 | init: lag K | init: spread at K | "
          "trained: lag 1 | trained: lag K | trained: spread at K |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, cell, path, n, i1, iK, isp, t1, tK, tsp in rows(sweep, args.folder):
        print(f"| {key} | {cell} | {path} | {n} | {i1:.2f} | {iK:.2f} | {isp:.2f} | {t1:.2f} | {tK:.2f} | {tsp:.2f} |")


if __name__ == "__main__":
    main()
