"""The project's own CI regression: every shipped case, in --quick form, against its committed
quick baseline (cases/baselines/<name>.quick.json). A missing baseline fails here with the command
that writes it; writing one is a deliberate act that shows in review:

    diag run cases/<name>.yaml --quick --no-report --update-baseline
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from diagnostics.cli.main import main

# the sweep files (diag sweep) live in cases/sweeps/, checked by test_shipped_sweeps.py
CASES = sorted((Path(__file__).resolve().parent.parent / "cases").glob("*.yaml"))
# a case with model cells (kind: model) needs torch and transformers, the [hf] extra
HF = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
MODEL_CASES = [p for p in CASES if "kind: model" in p.read_text(encoding="utf-8")]
NEEDS_HF = pytest.mark.skipif(not HF, reason="needs torch and transformers: pip install 'gradient-diagnostics[hf]'")


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(p, marks=NEEDS_HF) if p in MODEL_CASES else p for p in CASES],
                         ids=[p.stem for p in CASES])
def test_shipped_case_matches_its_quick_baseline(case, tmp_path):
    res = CliRunner().invoke(main, ["run", str(case), "--quick", "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.output, (
        f"{case.name}: no committed quick baseline or no comparison made; write it with\n"
        f"    diag run {case.relative_to(case.parent.parent)} --quick --no-report --update-baseline\n"
        f"and commit cases/baselines/. Output:\n{res.output}")


@pytest.mark.slow
def test_quickstart_full_run_matches_its_baseline(tmp_path):
    """The README's main command compares against cases/baselines/quickstart.json; that
    comparison must pass, or the first command a user runs would exit 1. The sentences the
    README quotes are the ones it prints (the README once showed two of three)."""
    case = CASES[0].parent / "quickstart.yaml"
    res = CliRunner().invoke(main, ["run", str(case), "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "checks passed" in res.output, res.output
    readme = (case.parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("    Over 60 lags after 250 training steps")
    quoted = " ".join(readme[start:readme.index("\n\n", start)].split())
    printed = [ln for ln in res.output.splitlines() if ln.startswith(("Over ", "On a held-out", "Of the decaying"))]
    assert quoted == " ".join(" ".join(printed).split()), (quoted, printed)


# A second set of kernels for the same shipped cases: OpenBLAS's oldest x86-64 kernels
# (Prescott, SSE3) on one thread, and numpy's own loops without the SIMD targets above its
# baseline. The quick cases moved by at most 1.1e-13 decades across 12 such settings
# (benchmarks/kernel_spread.py, docs in diagnostics/tolerances.py); a baseline that only holds
# on the machine that wrote it fails here, not on a user's machine.
OTHER_KERNELS = {"OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_NUM_THREADS": "1"}


def simd_targets() -> list[str]:
    """numpy's SIMD targets above its baseline that this CPU has, by this numpy's own names
    (numpy 2.4 groups them as X86_V3, X86_V4, ...; earlier versions say AVX2, AVX512F, ...):
    a name numpy does not know would be ignored, and the test would silently not test it."""
    umath = importlib.import_module("numpy._core._multiarray_umath" if np.lib.NumpyVersion(np.__version__) >= "2.0.0"
                                    else "numpy.core._multiarray_umath")
    return [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]


@pytest.mark.slow
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="the Prescott kernels are x86-64's")
def test_shipped_cases_hold_their_baselines_under_other_blas_kernels(tmp_path):
    env = {**os.environ, **OTHER_KERNELS, "NPY_DISABLE_CPU_FEATURES": " ".join(simd_targets())}
    probe = subprocess.run([sys.executable, "-c", "import numpy, threadpoolctl; print(' '.join("
                            "i['architecture'] for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'))"],
                           env=env, capture_output=True, text=True, check=True)
    if "Katmai" not in probe.stdout and "Prescott" not in probe.stdout:
        pytest.skip(f"this numpy's OpenBLAS ignores OPENBLAS_CORETYPE (runs {probe.stdout.strip() or 'no OpenBLAS'})")
    # numpy's kernels: the model cases' numbers are torch's, computed by its own kernels
    numpy_cases = [p for p in CASES if p not in MODEL_CASES]
    res = subprocess.run([sys.executable, "-m", "diagnostics.cli", "run", *map(str, numpy_cases), "--quick",
                          "--no-report", "--out", str(tmp_path)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.count("checks passed") == len(numpy_cases), res.stdout
