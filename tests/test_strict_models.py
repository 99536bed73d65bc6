"""One strict base for every model of a file the user writes (a case, a sweep file, their
tolerances, a task's options, a cell's options): strict types, unknown keys refused, finite
numbers, frozen."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from diagnostics.cells.registry import cell_factory, cell_kinds
from diagnostics.errors import _members
from diagnostics.options import StrictModel, options_model
from diagnostics.run.schema import case_model
from diagnostics.sweep.schema import SweepFile
from diagnostics.sweep.tolerances import SweepTolerances
from diagnostics.tasks import task_class, task_kinds
from diagnostics.tolerances import Tolerances


def _reachable(roots) -> set:
    seen, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [sub for f in m.model_fields.values() for sub in _members(f.annotation)]
    return seen


def test_every_model_of_a_file_is_a_strict_model():
    roots = [case_model(), SweepFile, Tolerances, SweepTolerances]
    roots += [task_class(k).Options for k in task_kinds()] + [options_model(cell_factory(k)) for k in cell_kinds()]
    models = _reachable(roots)
    assert len(models) > 30
    assert [m.__name__ for m in models if not issubclass(m, StrictModel)] == []
    for m in models:   # a model may add to the config (a title), never loosen it
        assert {k: m.model_config.get(k) for k in ("strict", "extra", "allow_inf_nan", "frozen")} == {
            "strict": True, "extra": "forbid", "allow_inf_nan": False, "frozen": True}, m.__name__


@pytest.mark.parametrize("cls", [Tolerances, SweepTolerances])
def test_tolerances_are_strict_finite_and_frozen(cls):
    """The tolerances were the two file models that could be changed after they were read."""
    with pytest.raises(ValidationError):
        cls(decades=float("inf"))     # would switch the gate off
    with pytest.raises(ValidationError):
        cls(decades="0.05")
    tol = cls()
    with pytest.raises(ValidationError):
        tol.decades = 1.0
