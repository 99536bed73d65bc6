"""The cell contract: required members refused by name (at construction and registration, not
at class definition), frozen dataclass cells, and one registry for cells and tasks by the
class's kind."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from user_cells import LeakyDiag

from diagnostics.cells import (
    Cell,
    cell_kinds,
    freeze,
    make_cell,
    register_cell,
    unregister_cell,
)
from diagnostics.run.schema import case_model
from diagnostics.tasks import (
    CopyTask,
    make_task,
    register_task,
    task_kinds,
    unregister_task,
)


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
