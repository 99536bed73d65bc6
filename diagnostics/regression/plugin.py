"""pytest plugin (entry point pytest11 `diagnostics`): the `gradient_curves` fixture.

    def test_my_lstm(gradient_curves):
        gradient_curves.check((cell, params, xs))              # probe a cell on inputs
        gradient_curves.check(probe(cell, params, xs), label="lstm", kind="lstm")  # a ProbeResult
        gradient_curves.check(curves_dict, basename="mine")    # or any diag-curves/1 dict
        gradient_curves.check(nn.LSTM(2, 16), xs)               # a torch module on its own inputs
        gradient_curves.check(mamba_model, xs, lags=50)         # any other sequence model: its influence

    def test_quickstart(gradient_curves):
        gradient_curves.check_case("cases/quickstart.yaml", quick=True)

Baselines live beside the test file in a folder named after the test module, as pytest-regressions
does: tests/test_mine.py -> tests/test_mine/<basename>.json, basename defaulting to the test's name
(for check_case, the test's name plus the case name, and `.quick` for quick runs).

`pytest --diag-update` writes or rewrites the baselines and the tests pass; the written files are
listed at the end of the session, so the update shows in review. Without it, a MISSING baseline
fails the test and creates nothing (unlike pytest-regressions, which creates the file and fails):
a baseline should only ever come from a deliberate --diag-update, and the same rule holds for
`diag run` (issue 5: "never silently created"). On a regression the table of what moved is the
failure message; the obtained curves and one overlay PNG per failing series are written under
pytest's temporary folder and named in the message.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

_WRITTEN = pytest.StashKey[list]()


def pytest_addoption(parser):
    group = parser.getgroup("diagnostics", "gradient-curve regression (gradient_curves fixture)")
    group.addoption("--diag-update", action="store_true", default=False,
                    help="write or rewrite the gradient_curves baselines instead of checking them")


def pytest_configure(config):
    config.stash[_WRITTEN] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    written = config.stash.get(_WRITTEN, [])
    if written:
        terminalreporter.write_sep("-", f"diag: {len(written)} gradient-curve baseline(s) written")
        for p in written:
            terminalreporter.write_line(str(p))


def _safe(name: str) -> str:
    return re.sub(r"\W", "_", name)


class GradientCurves:
    """The fixture object: compares curves with a stored baseline, or writes it with --diag-update."""

    def __init__(self, request, tmp_dir_factory):
        self._request = request
        self._tmp_factory = tmp_dir_factory
        self._used: set[str] = set()
        self.update: bool = bool(request.config.getoption("diag_update"))
        test_file = Path(request.node.path)
        self.datadir: Path = test_file.parent / test_file.stem

    def baseline_path(self, basename: str) -> Path:
        return self.datadir / f"{basename}.json"

    def check(self, data, xs=None, basename: str | None = None, tol=None, **probe_kwargs):
        """Check `data` -- a diag-curves/1 dict, a ProbeResult (`probe_kwargs`: label, kind,
        checkpoint), a (cell, params, xs) tuple probed with `probe_kwargs` (label, lags, norms,
        paths, lyapunov), a torch nn.RNN/GRU/LSTM (or *Cell, or a module holding one) probed on
        its inputs `xs` (`probe_kwargs` also: layer, direction), or any other torch sequence
        model (a Hugging Face Mamba, Mamba2, RecurrentGemma, xLSTM, GPT-2, your own module; or
        any module with influence=True) measured on `xs` as it takes them by its input-to-output
        influence and, for the selective recurrences, memory paths (regression.adapt.curves_from_model;
        `probe_kwargs`: lags (default: every step of xs), label, anchors, norms, estimator, rows,
        seed, layers, output, memory) -- against the stored baseline.
        Returns the Comparison (fails the test on a regression or a missing baseline)."""
        from ..documents import Curves
        from ..tolerances import Tolerances
        from .adapt import curves_from_probe, curves_from_result

        if isinstance(xs, str) and basename is None:   # check(curves, "name"): the old position
            xs, basename = None, xs
        if xs is not None:   # a torch module; torch is imported only on this branch
            from ..interop.torch import holds_recurrent, is_module
            from .adapt import curves_from_model, curves_from_module
            if not is_module(data):
                raise TypeError(f"gradient_curves.check: inputs xs go with a torch module, got {type(data).__name__}")
            if probe_kwargs.pop("influence", False) or not holds_recurrent(data):
                data = curves_from_model(data, xs, name=basename or self._default(), **probe_kwargs)
            else:
                data = curves_from_module(data, xs, name=basename or self._default(), **probe_kwargs)
        elif isinstance(data, (tuple, list)) and len(data) == 3:
            cell, params, xs = data
            data = curves_from_probe(cell, params, xs, name=basename or self._default(), **probe_kwargs)
        elif hasattr(data, "summary") and hasattr(data, "log10"):        # a ProbeResult
            data = curves_from_result(data, name=basename or self._default(), **probe_kwargs)
        elif not isinstance(data, (dict, Curves)):
            raise TypeError("gradient_curves.check: expected a diag-curves/1 document or dict (format: "
                            f"'diag-curves/1') or a (cell, params, xs) tuple, got {type(data).__name__}")
        else:   # a dict that is not a diag-curves/1 document: BadDocument, one line naming the key
            data = Curves.of(data, "gradient_curves.check: curves")
        if isinstance(tol, dict):
            tol = Tolerances(**tol)
        return self._check(data, basename or self._default(), tol)

    def check_case(self, case_path, quick: bool = True, basename: str | None = None, tol=None):
        """Run a case file (in memory, nothing written) and check its curves. A relative
        `case_path` is taken relative to the test file's folder (then to the working folder).
        The case's own `tolerances:` apply unless `tol` is given."""
        from ..tolerances import Tolerances

        curves, case_tol, name = self._run_case(case_path, quick)
        if isinstance(tol, dict):
            tol = Tolerances(**tol)
        basename = basename or f"{self._default()}-{_safe(name)}" + (".quick" if quick else "")
        return self._check(curves, basename, tol or case_tol)

    def _run_case(self, case_path, quick: bool):
        """Resolve and compute the case as `diag run [--quick]` would, in memory."""
        from ..errors import CaseError
        from ..run.runner import compute
        from ..run.spec import resolve

        p = Path(case_path)
        if not p.is_absolute() and not p.exists():
            near = Path(self._request.node.path).parent / p
            p = near if near.exists() else p
        try:
            spec = resolve(p, quick=quick)
        except CaseError as e:
            problem = "\n".join(e.lines)
        else:
            return compute(spec, show=False).curves, spec.case.tolerances, spec.name
        # outside the except block, so the failure is the message alone, not a chained traceback
        pytest.fail("gradient_curves.check_case: bad case file\n" + problem, pytrace=False)

    # -----------------------------------------------------------------------------------------
    def _default(self) -> str:
        return _safe(self._request.node.name)

    def _check(self, curves: dict, basename: str, tol):
        from .baseline import BadCurves, load_curves, write_baseline
        from .comparison import compare
        from .overlay import write_overlays

        if basename in self._used:
            raise ValueError(f"gradient_curves: basename {basename!r} used twice in one test; pass basename=")
        self._used.add(basename)
        path = self.baseline_path(basename)
        if self.update:
            write_baseline(curves, path)
            self._request.config.stash[_WRITTEN].append(path)
            return compare(curves, curves, tol)          # trivially ok: same interface as a check
        if not path.exists():
            pytest.fail(f"gradient_curves: no baseline {path}\n"
                        f"(nothing was created; run pytest with --diag-update to write it)", pytrace=False)
        try:
            base = load_curves(path)
        except BadCurves as e:
            pytest.fail(f"gradient_curves: unusable baseline: {e}", pytrace=False)
        cmp = compare(curves, base, tol)
        if cmp.ok:
            return cmp
        out = self._tmp_factory.mktemp(f"diag-{basename}"[:60], numbered=True)
        obtained = write_baseline(curves, out / f"{basename}.obtained.json")
        overlays = write_overlays(cmp, curves, base, out)
        lines = [f"gradient curves moved against {path}", cmp.table(),
                 f"obtained curves: {obtained}"]
        lines += [f"overlay: {p}" for p in overlays]
        lines.append("If the change is intended, rerun with --diag-update and review the baseline diff.")
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.fixture
def gradient_curves(request, tmp_path_factory) -> GradientCurves:
    """Regression-check gradient curves against baselines stored beside the test file."""
    return GradientCurves(request, tmp_path_factory)
