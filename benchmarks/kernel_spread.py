"""How far the shipped quick cases move across BLAS kernels, BLAS threads and numpy's SIMD paths.

    python benchmarks/kernel_spread.py [--out DIR] [--cases cases/a.yaml ...] [--configs a,b,...]
    python benchmarks/kernel_spread.py --sweeps [--configs a,b,...]    # cases/sweeps/*.yaml --quick

Each configuration runs `diag run CASES --quick --no-report` in a fresh process with its own
environment (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS, NPY_DISABLE_CPU_FEATURES); the committed
quick baselines are one more configuration. Every pair is compared with zero tolerances, and the
largest difference of each kind of quantity (curve point at initialisation, curve point after
training, slope, horizon, loss, Lyapunov exponent) is printed per case, beside the default
tolerance: the tolerances in diagnostics/tolerances.py are set from these figures.

Kernels offered by numpy's OpenBLAS on x86-64: Prescott (SSE3), Nehalem, Sandybridge (AVX),
Haswell (AVX2; Zen runs these), SkylakeX (AVX-512: only where the CPU has it, else SIGILL).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diagnostics.publish import what_it_is  # noqa: E402
from diagnostics.regression.comparison import compare  # noqa: E402
from diagnostics.tolerances import Tolerances  # noqa: E402


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def configs() -> dict[str, dict[str, str]]:
    """name -> environment overrides (an empty string unsets)."""
    out = {}
    kernels = ["", "Prescott", "Sandybridge", "Haswell"] + (["SkylakeX"] if has_avx512() else [])
    for k, t in itertools.product(kernels, ["1", "2"]):
        out[f"{k or 'default'}-{t}t"] = {"OPENBLAS_CORETYPE": k, "OPENBLAS_NUM_THREADS": t}
    # numpy's own SIMD dispatch: off above the baseline (X86_V2) on this CPU's best targets
    simd = "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
    out["default-2t-npy-v2"] = {"OPENBLAS_CORETYPE": "", "OPENBLAS_NUM_THREADS": "2",
                                "NPY_DISABLE_CPU_FEATURES": simd}
    out["Prescott-1t-npy-v2"] = {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "1",
                                 "NPY_DISABLE_CPU_FEATURES": simd}
    return out


def fresh(folder: Path) -> None:
    """Empty a configuration's folder of an earlier run's results (only folders diag wrote),
    so that a configuration that fails now cannot be compared with its old files."""
    if not folder.exists():
        return
    for child in folder.iterdir():
        if child.is_dir() and what_it_is(child) in ("run", "sweep"):
            shutil.rmtree(child)
        else:
            sys.exit(f"{folder}: holds {child.name}, which diag did not write; choose another --out")


def run_config(name: str, env_over: dict, cases: list[Path], out: Path, sweep: bool = False) -> float:
    """Run every case (or sweep) under one configuration; exits naming the configuration and
    the error if a command fails (exit 1, a curve that moved against its baseline, is data)."""
    env = dict(os.environ)
    for k, v in env_over.items():
        if v:
            env[k] = v
        else:
            env.pop(k, None)
    env.pop("OMP_NUM_THREADS", None)
    fresh(out / name)
    t0 = time.perf_counter()
    commands = ([["sweep", str(c), "--quick", "--no-report", "--out", str(out / name)] for c in cases] if sweep
                else [["run", *map(str, cases), "--quick", "--no-report", "--out", str(out / name)]])
    for args in commands:
        res = subprocess.run([sys.executable, "-m", "diagnostics.cli", *args], env=env, cwd=ROOT, check=False,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if res.returncode not in (0, 1):   # SIGILL (a kernel this CPU lacks), bad input, a crash
            sys.exit(f"configuration {name}: diag {' '.join(args[:2])} exited {res.returncode}:\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def sweep_spreads(docs: dict[str, dict]) -> dict[str, dict]:
    """As `spreads`, for sweep.json documents: success counts and pooled curve points."""
    from diagnostics.sweep.baseline import compare_sweeps
    from diagnostics.sweep.tolerances import SweepTolerances
    zero = SweepTolerances(successes=0, decades=0)
    out: dict[str, dict] = {}
    for (na, a), (nb, b) in itertools.combinations(docs.items(), 2):
        for row in compare_sweeps(a, b, zero).rows:
            if row.difference is None or row.what not in ("successes", "point"):
                continue
            d = abs(row.difference)
            cur = out.setdefault(row.what, {"max": 0.0, "rel": 0.0})
            if d > cur["max"]:
                cur.update(max=d, where=f"{row.series} @{row.lag}", pair=f"{na} / {nb}",
                           values=(row.baseline, row.current))
    return out


def kind_of(row) -> str | None:
    """The kind of quantity a comparison row measures (None: not a number to spread)."""
    if row.difference is None or row.what in ("nonfinite", "missing", "lags", "duplicate", "diverged"):
        return None
    if row.what == "point":
        if row.key[0] == "sensitivity":
            return "sensitivity"
        return "point@init" if row.key[2] == 0 else "point@trained"
    return row.what


def spreads(docs: dict[str, dict]) -> dict[str, dict]:
    """{quantity kind: {"max": largest |difference| over every pair, "rel": largest relative,
    "where": the row's series and lag, "pair": the two configurations}}."""
    zero = Tolerances(decades=0, slope_rel=0, slope_abs=0, horizon_steps=0, horizon_rel=0, loss_rel=0,
                      loss_abs=0, lyapunov_abs=0)
    out: dict[str, dict] = {}
    for (na, a), (nb, b) in itertools.combinations(docs.items(), 2):
        for row in compare(a, b, zero).rows:
            kind = kind_of(row)
            if kind is None:
                continue
            d = abs(row.difference)
            rel = d / abs(row.baseline) if isinstance(row.baseline, (int, float)) and row.baseline else float("inf")
            cur = out.setdefault(kind, {"max": 0.0, "rel": 0.0})
            if d > cur["max"]:
                cur.update(max=d, where=f"{row.series} @{row.lag}", pair=f"{na} / {nb}",
                           values=(row.baseline, row.current))
            cur["rel"] = max(cur["rel"], rel if d > 0 else 0.0)
    return out


def lyapunov_table(docs: dict[str, dict]) -> list[str]:
    """Every exponent's range over the configurations, with its value: which ones are noise."""
    lines = []
    first = next(iter(docs.values()))
    for item in first.get("lyapunov", []):
        key = (item["cell"], item["checkpoint"], item["path"])
        rows = [next((x["exponents"] for x in d.get("lyapunov", []) if (x["cell"], x["checkpoint"], x["path"]) == key),
                     None) for d in docs.values()]
        rows = [r for r in rows if r is not None]
        for i in range(len(item["exponents"])):
            vals = [r[i] for r in rows if i < len(r) and r[i] is not None]
            if vals:
                lines.append(f"  {key[0]} ckpt={key[1]} #{i + 1}: {min(vals):.4f} .. {max(vals):.4f} "
                             f"(range {max(vals) - min(vals):.2e}, top {max(r[0] for r in rows if r and r[0] is not None):.4f})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/kernel_spread"))
    ap.add_argument("--cases", nargs="*", type=Path)
    ap.add_argument("--configs", default=None, help="comma-separated names (default: all)")
    ap.add_argument("--reuse", action="store_true", help="compare the folders already in --out")
    ap.add_argument("--lyapunov", action="store_true", help="print every exponent's range")
    ap.add_argument("--sweeps", action="store_true", help="the shipped sweeps in --quick form instead of the cases")
    args = ap.parse_args()
    cases = args.cases or sorted((ROOT / "cases" / ("sweeps" if args.sweeps else "")).glob("*.yaml"))
    cfg = configs()
    if args.configs:
        cfg = {k: cfg[k] for k in args.configs.split(",")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    for name, env in cfg.items():
        if not args.reuse:
            took = run_config(name, env, cases, args.out, sweep=args.sweeps)
            print(f"# {name}: {took:.0f} s", flush=True)
    print("| case | quantity | largest difference | largest relative | default tolerance | where |")
    print("|---|---|---|---|---|---|")
    tol = Tolerances()
    tol_of = {"point@init": tol.decades, "point@trained": tol.decades, "sensitivity": tol.decades,
              "slope": f"{tol.slope_rel:g} rel (floor {tol.slope_abs:g})", "horizon": tol.horizon_steps,
              "loss": f"{tol.loss_rel:g} rel (floor {tol.loss_abs:g})", "lyapunov": tol.lyapunov_abs}
    summary = {}
    if args.sweeps:
        for sweep in cases:
            name = sweep.stem
            docs = {c: json.loads(f.read_text()) for c in cfg
                    if (f := args.out / c / f"{name}.quick" / "sweep.json").exists()}
            base = sweep.parent / "baselines" / f"{name}.sweep.quick.json"
            if base.exists():
                docs["committed"] = json.loads(base.read_text())
            summary[name] = sp = sweep_spreads(docs)
            for kind, s in sorted(sp.items()):
                print(f"| {name} | {kind} | {s['max']:.3g} | | | {s.get('where', '')} ({s.get('pair', '')}) |")
        (args.out / "spread.json").write_text(json.dumps(summary, indent=1, default=str))
        return
    for case in cases:
        name = case.stem
        docs = {}
        for c in cfg:
            f = next((args.out / c).glob(f"{name}*.quick/curves.json"), None)
            if f is not None:
                docs[c] = json.loads(f.read_text())
        base = ROOT / "cases" / "baselines" / f"{name}.quick.json"
        if base.exists():
            docs["committed"] = json.loads(base.read_text())
        if len(docs) < 2:
            continue
        sp = spreads(docs)
        summary[name] = sp
        for kind, s in sorted(sp.items()):
            print(f"| {name} | {kind} | {s['max']:.3g} | {s['rel']:.3g} | {tol_of.get(kind, '')} | "
                  f"{s.get('where', '')} ({s.get('pair', '')}) |")
        if args.lyapunov:
            print("\n".join(lyapunov_table(docs)))
    (args.out / "spread.json").write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
