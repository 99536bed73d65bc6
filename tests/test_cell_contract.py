"""The cell contract a user can check: required members refused by name, register_cell by the
class's kind, check_cell catching a wrong hook in a user's cell as it would in a built-in one,
a cell probed through log_diagonal alone, and parametrize_with_cell_checks in a user's pytest."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from user_cells import LeakyDiag, WideDiag

import diagnostics as dg
from diagnostics.cells import (
    Cell,
    cell_kinds,
    check_cell,
    freeze,
    make_cell,
    register_cell,
    unregister_cell,
)
from diagnostics.cells.checks import CHECKS
from diagnostics.probing.core import probe
from diagnostics.run.schema import case_model
from diagnostics.tasks import (
    CopyTask,
    make_task,
    register_task,
    task_kinds,
    unregister_task,
)

pytest_plugins = ["pytester"]
TESTS = Path(__file__).resolve().parent

@pytest.fixture
def registered(clean_registry):
    register_cell(WideDiag)
    register_cell(LeakyDiag)


def _check(kind, **opts):
    cell = make_cell(kind, input_size=2, hidden=5, **opts)
    return check_cell(cell, cell.init(np.random.default_rng(0)))


def test_a_correct_user_cell_passes_every_check(registered):
    res = _check("leaky_diag")
    assert res.ok and res.passed == CHECKS and not res.skipped and not res.failures, str(res)
    assert str(res).splitlines()[0] == "LeakyDiag(input_size=2, hidden=5): 7 passed, 0 failed, 0 skipped"


@pytest.mark.parametrize("wrong,line", [
    ("vjp", r"vjp: 1 row: max relative error \S+ against M @ J, the cell's jacobian \(tolerance 1e-12\)"),
    ("backward", r"backward: gradient of w: max relative error \S+ against complex step of step \(tolerance 1e-10\)"),
    ("log_diagonal", (r"log_diagonal: path a: max relative error \S+ of P Pᵀ against diag\(exp\(2 Σ ln\|d\|\)\), "
                      r"P the complex step of step over 4 steps \(tolerance 1e-10\)")),
    ("input_vjp", r"input_vjp: 1 row: max relative error \S+ against M @ d step/d x, the complex step of step"),
    ("param_vjp", r"param_vjp: b: max relative error \S+ against rows of the complex step of step"),
    ("analytic", (r"step: complex-step derivative differs from central differences by \S+ \(tolerance 1e-06\); "
                  r"a step that is not complex-analytic sets analytic = False")),
])
def test_check_cell_catches_one_wrong_hook_in_a_registered_user_cell(registered, wrong, line):
    res = _check("leaky_diag", wrong=wrong)
    assert not res.ok
    failed = [f for f in res.failures if not (wrong == "analytic" and not f.startswith("step"))]
    assert len(failed) == 1 and re.fullmatch(line + r".*", failed[0]), res.failures
    if wrong != "analytic":   # every other check still passes: the line blames the right hook
        assert res.failures == tuple(failed) and len(res.passed) == len(CHECKS) - 1


def test_a_wrong_jacobian_fails_the_jacobian_check(registered):
    res = _check("leaky_diag", wrong="jacobian")
    assert res.failures[0].startswith("jacobian: max relative error ")
    assert res.failures[0].endswith(" against complex step of step (tolerance 1e-10)")


def test_a_hook_that_raises_is_one_line(registered):
    @dataclass(frozen=True)
    class Raising(LeakyDiag):
        kind: ClassVar[str] = "raising"

        def vjp(self, params, cache, m):
            raise ValueError("shapes do not match\nsecond line")
    cell = Raising(input_size=2, hidden=3)
    res = check_cell(cell, cell.init(np.random.default_rng(0)))
    assert res.failures == ("vjp: raised ValueError: shapes do not match",)


def test_hooks_a_cell_lacks_are_skipped_with_what_happens_instead():
    @dataclass(frozen=True)
    class Bare(Cell):
        """init, step and jacobian only: the README's minimal cell."""
        input_size: int = 2
        hidden: int = 3

        def init(self, rng):
            return freeze({"W": rng.normal(size=(3, 3)) / 2, "U": rng.normal(size=(3, 2))})

        def step(self, params, state, x):
            t = np.tanh(state @ params["W"].T + x @ params["U"].T)
            return t, t

        def jacobian(self, params, cache):
            return (1 - cache ** 2)[:, :, None] * params["W"]
    res = check_cell(Bare(), Bare().init(np.random.default_rng(0)))
    assert res.ok and res.passed == ("step", "jacobian", "vjp")
    assert res.skipped == (
        "input_vjp: not provided, nor backward: the cell cannot sit above another in a stack",
        "backward: not provided (training only): the cell cannot be trained",
        "param_vjp: not provided, nor backward: no state sensitivity",
        "log_diagonal: declares no diagonal path: the probe takes the dense chain")
    assert "vjp: passed (Cell's default, through jacobian)" in str(res)


# --- the way to the probe: log_diagonal alone ------------------------------------------------
def test_a_cell_without_a_jacobian_is_checked_and_probed_through_log_diagonal():
    wide, dense = WideDiag(input_size=2, hidden=6), LeakyDiag(input_size=2, hidden=6)
    params = wide.init(np.random.default_rng(1))
    res = check_cell(wide, params)
    assert res.ok and res.skipped == ("jacobian: not provided: the probe takes the paths log_diagonal declares",)
    assert "vjp" in res.passed            # its own vjp, against complex-step Jacobians
    xs = np.random.default_rng(2).normal(size=(30, 4, 2))
    fast = probe(wide, params, xs, lags=20, workers=1)
    chain = probe(dense, params, xs, lags=20, workers=1, diagonal=False)
    for key, v in chain.log10.items():
        np.testing.assert_allclose(fast.log10[key], v, rtol=0, atol=1e-12)
    with pytest.raises(NotImplementedError, match="wide_diag: no dense jacobian; its paths are declared diagonal"):
        wide.jacobian(params, wide.step(params, wide.initial_state(1), xs[0, :1])[1])


def test_a_cell_without_a_jacobian_must_declare_every_path():
    @dataclass(frozen=True)
    class TwoPaths(WideDiag):
        kind: ClassVar[str] = "two_paths"

        @property
        def blocks(self):
            return {"a": slice(0, self.hidden), "lo": slice(0, 1)}

        @property
        def paths(self):
            return ("a", "lo")
    cell = TwoPaths(input_size=2, hidden=3)
    res = check_cell(cell, cell.init(np.random.default_rng(0)))
    assert res.failures == ("log_diagonal: the cell has no jacobian, so every path must be declared; lo is not",)


# --- required members, abstract classes and frozen dataclasses --------------------------------
def test_required_members_are_named_at_construction_and_registration():
    @dataclass(frozen=True)
    class NoStep(Cell):
        hidden: int = 2
        kind: ClassVar[str] = "no_step"

        def init(self, rng):
            return {}

        def jacobian(self, params, cache):
            return np.zeros((1, 2, 2))
    with pytest.raises(TypeError, match="^Can't instantiate abstract class NoStep with.* step"):
        NoStep()
    with pytest.raises(TypeError, match=r"^register_cell: NoStep is not a complete cell: it lacks step$"):
        register_cell(NoStep)

    @dataclass(frozen=True)
    class NoRoute(Cell):                # init and step, but neither jacobian nor log_diagonal
        hidden: int = 2
        kind: ClassVar[str] = "no_route"

        def init(self, rng):
            return {}

        def step(self, params, state, x):
            return state, None
    with pytest.raises(TypeError, match=r"^Can't instantiate cell class NoRoute without a way to the probe: "
                                        r"jacobian\(params, cache\) -> \(B, S, S\), or log_diagonal"):
        NoRoute()
    with pytest.raises(TypeError, match=r"^register_cell: NoRoute is not a complete cell: it lacks a way to the probe"):
        register_cell(NoRoute)
    assert "no_step" not in cell_kinds() and "no_route" not in cell_kinds()


def test_an_intermediate_class_may_leave_the_required_members_to_its_subclasses():
    @dataclass(frozen=True)
    class Base(Cell):                   # defining it is no error: it is abstract
        input_size: int = 1
        hidden: int = 3
        scale: float = 0.5

        def init(self, rng):
            return freeze({"w": rng.normal(size=self.hidden)})

    @dataclass(frozen=True)
    class Done(Base):
        def step(self, params, state, x):
            return self.scale * params["w"] * state + x.sum(axis=1, keepdims=True), state

        def jacobian(self, params, cache):
            return np.broadcast_to(np.diag(self.scale * params["w"]), (len(cache), self.hidden, self.hidden))
    with pytest.raises(TypeError, match="abstract class Base"):
        Base()
    cell = Done(hidden=3, scale=0.25)       # a frozen dataclass: its options validated and fixed
    assert cell.scale == 0.25 and dataclasses.is_dataclass(cell)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.scale = 1.0
    with pytest.raises(ValueError, match="^scale: must be a"):
        Done(scale="x")
    assert dataclasses.replace(cell, scale=0.5).scale == 0.5   # constructed anew, checks included
    assert check_cell(cell, cell.init(np.random.default_rng(0))).ok


# --- one registry: cells and tasks by their kind -------------------------------------------
def test_register_cell_by_kind_and_the_older_form():
    register_cell(LeakyDiag)
    try:
        assert "leaky_diag" in cell_kinds() and type(make_cell("leaky_diag", hidden=2)) is LeakyDiag
        with pytest.raises(ValueError, match="^register_cell: a cell named 'leaky_diag' exists; pass overwrite=True"):
            register_cell(LeakyDiag)
        register_cell("leaky_diag", LeakyDiag, overwrite=True)          # the older form, same name: fine
    finally:
        unregister_cell("leaky_diag")
    with pytest.raises(ValueError) as e:
        register_cell("leaky", LeakyDiag)
    assert str(e.value) == ("register_cell: name 'leaky' differs from LeakyDiag.kind 'leaky_diag'; "
                            "register_cell(LeakyDiag) registers it under its kind")
    assert "leaky" not in cell_kinds()


def test_a_class_without_its_own_kind_or_not_a_cell_is_refused():
    @dataclass(frozen=True)
    class Anonymous(LeakyDiag):
        kind: ClassVar[str] = Cell.kind
    with pytest.raises(ValueError, match=r"^register_cell: Anonymous has no kind of its own; declare "
                                         r"kind: ClassVar\[str\] = 'mine' in the class$"):
        register_cell("mine", Anonymous)
    with pytest.raises(TypeError, match="^register_cell: expected a Cell subclass, got <function"):
        register_cell("fn", lambda **kw: LeakyDiag(**kw))


def test_tasks_share_the_registry():
    class Copy2(CopyTask):
        kind = "copy2"
    register_task(Copy2)
    try:
        assert "copy2" in task_kinds()
    finally:
        unregister_task("copy2")
    with pytest.raises(ValueError, match="^register_task: name 'copy3' differs from Copy2.kind 'copy2'"):
        register_task("copy3", Copy2)
    with pytest.raises(ValueError, match="^task kind: must be one of adding, copy, .*got 'copi' \\(did you mean 'copy'\\?\\)"):
        make_task("copi")


def test_the_case_schema_rebuilds_when_a_cell_is_registered():
    before = case_model()
    register_cell(LeakyDiag)
    try:
        assert case_model() is not before
        assert "leaky_diag" in str(case_model().model_json_schema())
    finally:
        unregister_cell("leaky_diag")
    assert "leaky_diag" not in str(case_model().model_json_schema())


# --- public names, and a user's pytest ------------------------------------------------------
def test_check_cell_is_public_and_refuses_bad_arguments():
    assert dg.check_cell is check_cell
    cell = LeakyDiag(hidden=2)
    with pytest.raises(ValueError, match="^checks: 'vjpp' is not a check; expected some of step, jacobian"):
        check_cell(cell, cell.init(np.random.default_rng(0)), checks=["vjpp"])
    with pytest.raises(ValueError, match="^batch: must be a positive integer, got 0"):
        check_cell(cell, cell.init(np.random.default_rng(0)), batch=0)
    wrong = LeakyDiag(hidden=2, wrong="vjp")       # vjp off by O(1): a tolerance of the user's applies
    assert not check_cell(wrong, wrong.init(np.random.default_rng(0)), checks=["vjp"]).ok
    assert check_cell(wrong, wrong.init(np.random.default_rng(0)), checks=["vjp"], tol={"vjp": 10.0}).ok
    assert check_cell(wrong, wrong.init(np.random.default_rng(0)), checks=["vjp"], tol=10.0).ok


@pytest.mark.slow
def test_parametrize_with_cell_checks_in_a_users_pytest(pytester):
    pytester.makepyfile(test_mine=f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import numpy as np
from diagnostics.testing import parametrize_with_cell_checks
from user_cells import LeakyDiag, WideDiag

wide = WideDiag(input_size=2, hidden=3)

@parametrize_with_cell_checks([LeakyDiag(input_size=2, hidden=3, wrong="vjp"),
                               (wide, wide.init(np.random.default_rng(5)))])
def test_cell(cell, check):
    check(cell)
""")
    res = pytester.runpytest_subprocess("-rfs", "-p", "no:cacheprovider", str(pytester.path / "test_mine.py"))
    res.assert_outcomes(passed=12, failed=1, skipped=1)
    out = res.stdout.str()
    assert "FAILED test_mine.py::test_cell[LeakyDiag(input_size=2, hidden=3, wrong='vjp')-vjp]" in out
    assert re.search(r"\nLeakyDiag\(input_size=2, hidden=3, wrong='vjp'\): vjp: 1 row: max relative error \S+ "
                     r"against M @ J, the cell's jacobian \(tolerance 1e-12\)\n", out), out
    assert "jacobian: not provided: the probe takes the paths log_diagonal declares" in out


def test_the_package_does_not_import_pytest():
    code = "import sys, diagnostics as dg; dg.check_cell; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_step_that_raises_on_the_way_to_the_point_is_the_step_checks_line():
    @dataclass(frozen=True)
    class Boom(LeakyDiag):
        kind: ClassVar[str] = "boom"

        def step(self, params, state, x):
            raise RuntimeError("boom")
    cell = Boom(hidden=2)
    res = check_cell(cell, cell.init(np.random.default_rng(0)))
    assert res.failures == ("step: raised RuntimeError: boom while reaching a state to check at",)
    assert len(res.skipped) == len(CHECKS) - 1 and all(s.endswith(": step failed") for s in res.skipped)
