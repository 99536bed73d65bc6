"""One error base: every error of the package's own is a DiagnosticsError (a ValueError)
carrying one line per problem, and every command says it in one place: "error: ..." lines on
stderr, exit 2, no traceback."""
from __future__ import annotations

import pickle
import sys

import pytest
from click.testing import CliRunner

from diagnostics.cells import make_cell
from diagnostics.cli.check import check_cmd
from diagnostics.cli.main import main
from diagnostics.documents import CURVES, BadDocument, read_document
from diagnostics.errors import CaseError, DiagnosticsError
from diagnostics.optional import OptionalMissing, import_torch
from diagnostics.options import OptionError
from diagnostics.publish import ForeignFolder, claim
from diagnostics.regression.baseline import BadCurves
from diagnostics.run.spec import resolve
from diagnostics.weights import WeightsError, load_weights


def _raised(fn) -> BaseException:
    with pytest.raises(Exception) as e:
        fn()
    return e.value


def test_every_error_of_the_package_is_a_diagnostics_error_with_its_lines(tmp_path, monkeypatch):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` raises ImportError
    raised = {CaseError: _raised(lambda: resolve(tmp_path / "nope.yaml")),
              OptionError: _raised(lambda: make_cell("rnn", hidden=0)),
              WeightsError: _raised(lambda: load_weights(tmp_path / "nope.safetensors")),
              BadDocument: _raised(lambda: read_document(tmp_path / "nope.json", CURVES)),
              ForeignFolder: _raised(lambda: claim(tmp_path / "theirs")),
              OptionalMissing: _raised(lambda: import_torch("from_module"))}
    for cls, e in raised.items():
        assert type(e) is cls and isinstance(e, DiagnosticsError) and isinstance(e, ValueError), e
        assert len(e.lines) == 1 and e.lines[0] and "\n" not in e.lines[0] and str(e) == e.lines[0], e.lines
    assert isinstance(raised[OptionalMissing], ImportError)          # what a missing module is
    assert raised[OptionalMissing].lines == ["from_module needs PyTorch: pip install 'gradient-diagnostics[torch]'"]
    assert BadCurves is BadDocument


def test_an_error_keeps_its_lines_when_a_worker_sends_it_back():
    """Pickled (a sweep's worker returns it so), a CaseError of two lines came back as one
    CaseError per character of their join."""
    e = pickle.loads(pickle.dumps(CaseError(["cells[0].hidden: must be a positive integer, got 0", "name: is required"])))
    assert type(e) is CaseError and e.lines == ["cells[0].hidden: must be a positive integer, got 0", "name: is required"]
    w = pickle.loads(pickle.dumps(WeightsError("m.npz: no such file")))
    assert type(w) is WeightsError and w.lines == ["m.npz: no such file"]


def _errors(res) -> list[str]:
    return [ln for ln in res.output.splitlines() if ln.strip()]


def test_every_command_says_any_diagnostics_error_as_lines_and_exits_2(tmp_path, monkeypatch):
    """The commands caught the one error type each expected (CaseError here, BadCurves there):
    any other, a missing optional dependency say, was a traceback and exit 1."""
    from diagnostics.run import spec
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ntask: {kind: copy}\ncells: [{kind: rnn}]\n")

    def missing(*a, **k):
        raise OptionalMissing("a torchfn cell needs PyTorch: pip install 'gradient-diagnostics[torch]'")
    monkeypatch.setattr(spec, "resolve_files", missing)
    for args in (["validate", str(case)], ["run", str(case), "--out", str(tmp_path / "out")]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
        assert _errors(res) == ["error: a torchfn cell needs PyTorch: pip install 'gradient-diagnostics[torch]'"]
    assert not (tmp_path / "out").exists()


def test_a_check_with_a_bad_case_file_says_each_problem_on_its_own_error_line(tmp_path):
    """`diag check --case` printed a case's problems joined: the second without "error: "."""
    case = tmp_path / "c.yaml"
    case.write_text("name: c\ntask: {kind: copy}\ncells: [{kind: rnn}]\ntolerances: {decadez: 1, slope_rel: -1}\n")
    res = CliRunner().invoke(check_cmd, [str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--case", str(case)])
    assert res.exit_code == 2, res.output
    lines = _errors(res)
    assert len(lines) == 2 and all(ln.startswith(f"error: {case}: tolerances.") for ln in lines), lines
