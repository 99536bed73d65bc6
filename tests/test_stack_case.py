"""Stacks in case files (`kind: stack` with its layers): validation and its messages, the
built Stacked cell (layer input sizes from the output below, paths per layer and the whole
state), check_cell on stacks of the selective cells, their per-layer structured paths against
the dense chain, and a run whose report reads the state path of cells whose output is not fed
back and says so."""
from __future__ import annotations

import numpy as np
import pytest

from diagnostics.cells import Stacked, check_cell, make_cell
from diagnostics.errors import CaseError
from diagnostics.probing.core import probe
from diagnostics.report.data import RunData
from diagnostics.report.figures import select_checkpoints, select_decay, select_tk
from diagnostics.report.html import summary_display
from diagnostics.report.narrative import opening
from diagnostics.report.style import JAC, JAC_S, y_decay, y_jac
from diagnostics.run.runner import compute, run_to_folder
from diagnostics.run.spec import resolve

MAMBA2X = {"kind": "stack", "label": "mamba x2",
           "layers": [{"kind": "mamba", "hidden": 4, "d_state": 3}, {"kind": "mamba", "hidden": 3, "d_state": 2}]}


def _case(*cells, **extra) -> dict:
    return {"name": "stack", "task": {"kind": "adding", "length": 12}, "cells": list(cells),
            "probe": {"sequences": 3, "lyapunov": 0, "tk_map": {"anchors": 2}}, **extra}


def test_a_stack_entry_builds_a_stacked_cell_reading_each_output_below():
    spec = resolve(_case({"kind": "lstm", "hidden": 4}, MAMBA2X))
    cell = spec.cells[1]
    assert isinstance(cell, Stacked) and spec.labels == ("lstm", "mamba x2")
    first, second = cell.layers
    assert first.input_size == 2 and second.input_size == first.readout_size == 4
    assert cell.output_block == "y" and cell.readout_size == 3 and cell.blocks["y"] == cell.blocks["l1.y"]
    assert cell.paths == ("state", "l0.state", "l1.state") and cell.decay_path == "state"
    assert cell.path_block("state") == slice(0, cell.state_size)
    assert cell.path_block("l1.state") == cell.blocks["l1.state"] != cell.path_block("state")
    assert spec.resolved()["cells"][1]["layers"][1]["hidden"] == 3


@pytest.mark.parametrize("layers,line", [
    ([{"kind": "mamba", "hidden": 0}], "cells[0].layers[0].hidden: must be a positive integer, got 0"),
    ([{"kind": "mamba"}, {"kind": "mamba", "foo": 1}], "cells[0].layers[1].foo: unknown key"),
    ([], "cells[0].layers: must have at least 1 item(s), got []"),
    ([{"kind": "mambo"}], "cells[0].layers[0].kind: must be one of"),
    ([{"kind": "mlstm", "hidden": 4, "heads": 3}], "cells[0].layers[0].heads: must divide hidden (4), got 3"),
    ([{"kind": "lstm", "weights": {"file": "x.pt"}}], "cells[0].layers[0].weights: is not an option of lstm cells"),
])
def test_a_bad_layer_is_named_by_its_place(layers, line):
    with pytest.raises(CaseError) as e:
        resolve(_case({"kind": "stack", "layers": layers}))
    assert any(ln.startswith(line) for ln in e.value.lines), e.value.lines


STACKS = {
    "mamba2x": [("mamba", {"hidden": 3, "d_state": 2}), ("mamba", {"hidden": 2, "d_state": 2, "d_conv": 2})],
    "gdn-over-mlstm": [("mlstm", {"hidden": 4, "heads": 2}), ("gated_deltanet", {"hidden": 3, "head_dim": 2})],
    "lstm-mamba2": [("lstm", {"hidden": 3}), ("mamba2", {"hidden": 2, "d_state": 2, "heads": 2})],
    "rglru2": [("rglru", {"hidden": 3}), ("rglru", {"hidden": 4, "heads": 2})],
}


def _stack(name, d=2, seed=0):
    cells, inp = [], d
    for kind, opts in STACKS[name]:
        c = make_cell(kind, input_size=inp, **opts)
        cells.append(c)
        inp = c.readout_size
    cell = Stacked(tuple(cells))
    return cell, cell.init(np.random.default_rng(seed))


@pytest.mark.parametrize("name", STACKS)
def test_stacks_of_selective_cells_pass_every_check(name):
    cell, params = _stack(name)
    res = check_cell(cell, params, rng=np.random.default_rng(1))
    assert res.ok, str(res)
    # every stack has a layer with a structured path, forwarded: the log_diagonal check ran
    assert not res.skipped, str(res)


@pytest.mark.parametrize("name", STACKS)
def test_per_layer_structured_paths_equal_the_dense_chain(name):
    cell, params = _stack(name)
    xs = np.random.default_rng(2).normal(size=(40, 3, 2))
    fast = probe(cell, params, xs, lags=35, workers=1)
    dense = probe(cell, params, xs, lags=35, workers=1, diagonal=False)
    keys = [k for k in fast.log10 if not k[0].endswith("memory")]
    assert any(k[0].startswith("l0.") for k in keys)
    for key in keys:
        assert np.abs(fast.log10[key] - dense.log10[key]).max() <= 1e-12, key
    # a diagonal block of the block-triangular product is that layer's own product
    alone = probe(cell.layers[0], cell.layer_params(params, 0), xs, lags=35, workers=1)
    p0 = cell.layers[0].decay_path
    assert np.abs(fast.log10[(f"l0.{p0}", "spectral")] - alone.log10[(p0, "spectral")]).max() <= 1e-12


def test_a_run_reads_the_state_path_of_a_stack_and_says_so():
    spec = resolve(_case({"kind": "lstm", "hidden": 4}, MAMBA2X, train={"steps": 3, "batch": 4}), quick=True)
    res = compute(spec, show=False)
    rows = {(r.cell, r.checkpoint): r for r in res.summary}
    assert set(rows) == {("lstm", 0), ("lstm", 3), ("mamba x2", 0), ("mamba x2", 3)}
    state = res.curves.series_for("mamba x2", 3)
    assert state.path == "state" and rows[("mamba x2", 3)].factor == state.fit.factor
    assert res.curves.series_for("lstm", 3).path == "a"
    assert {m.path for m in res.curves.tk_map if m.cell == "mamba x2"} == {"state"}
    text = " ".join(opening(res.curves, res.summary))
    assert "‖∂a<t>/∂a<t-k>‖" in text and "for the lstm" in text
    assert ("The mamba x2 does not feed its output back, so its decay is read on the state path: "
            "‖∂S<t>/∂S<t-k>‖ (spectral norm, median over sequences)") in text
    assert np.isfinite(res.curves.training_of("mamba x2").loss).all()


@pytest.mark.parametrize("name", ["mamba2x", "gdn-over-mlstm"])
def test_the_structured_paths_give_the_same_bits_again_and_over_workers(name):
    """Determinism: the diagonal and Kronecker fast paths (and the stack's dense state path)
    read the same bits twice and whether the sequences are split over one worker or two (the
    spectral tracker iterates each matrix on its own, not the batch as one)."""
    cell, params = _stack(name)
    xs = np.random.default_rng(3).normal(size=(30, 6, 2))
    one = probe(cell, params, xs, lags=25, workers=1)
    again = probe(cell, params, xs, lags=25, workers=1)
    two = probe(cell, params, xs, lags=25, workers=2)
    for key in one.log10:
        assert one.log10[key].tobytes() == again.log10[key].tobytes() == two.log10[key].tobytes(), key


def test_a_stack_case_run_twice_gives_the_same_curves():
    spec = resolve(_case(MAMBA2X, {"kind": "stack", "layers": [{"kind": "gated_deltanet", "hidden": 3, "head_dim": 2},
                                                               {"kind": "rglru", "hidden": 3}]},
                         train={"steps": 2, "batch": 4}), quick=True)
    first, second = compute(spec, show=False), compute(spec, show=False)
    paths = {(s.cell, s.path) for s in first.curves.series}
    assert {("stack", "l0.state"), ("stack", "l1.a"), ("mamba x2", "l1.state")} <= paths, paths
    assert first.curves.to_json() == second.curves.to_json()


def test_the_decay_path_is_the_cells_own_not_whatever_was_probed():
    """An LSTM probed on c and state only has no decay curve (its decay path, a, was not
    probed): its whole state is not read as if its output were not fed back. The cells whose
    output is not fed back are recorded so in curves.json (state_decay)."""
    probe_ = {"sequences": 3, "lyapunov": 0, "tk_map": {"anchors": 0}}
    gated = compute(resolve(_case({"kind": "lstm", "hidden": 4}, probe={**probe_, "paths": ["c", "state"]}),
                            quick=True), show=False)
    mixed = compute(resolve(_case({"kind": "rnn", "hidden": 3}, MAMBA2X, probe=probe_), quick=True), show=False)
    assert gated.curves.decay_paths() == {"lstm": None} and gated.curves.state_decay == []
    assert gated.summary == [] and opening(gated.curves, gated.summary) == []
    assert '"state_decay"' not in gated.curves.to_json()          # files of today's cells as before
    assert mixed.curves.decay_paths() == {"rnn": "a", "mamba x2": "state"}
    assert mixed.curves.state_decay == ["mamba x2"]
    text = " ".join(opening(mixed.curves, mixed.summary))
    assert "The mamba x2 does not feed its output back" in text and "for the rnn" in text


def test_paths_that_leave_a_cell_nothing_to_probe_are_one_line():
    with pytest.raises(CaseError, match=r"probe\.paths: none of \['state'\] is a path of cells\[0\] \(rnn: a\)"):
        resolve(_case({"kind": "rnn", "hidden": 3}, MAMBA2X, probe={"paths": ["state"]}), quick=True)


def test_the_report_labels_a_state_path_as_such(tmp_path):
    """Figures and the summary table say where a curve is ∂S/∂S, not ∂a/∂a."""
    spec = resolve(_case({"kind": "lstm", "hidden": 4}, MAMBA2X, train={"steps": 2, "batch": 4}), quick=True)
    d = RunData.load(run_to_folder(spec, tmp_path / "run", report=False, show=False).folder)
    assert select_decay(d)["title"].startswith(f"How fast {JAC} (or {JAC_S}) shrinks")
    assert select_checkpoints(d)["paths"] == select_tk(d)["paths"] == {"lstm": "a", "mamba x2": "state"}
    assert {r["cell"]: r["kind"] for r in summary_display(d)} == {"lstm": "lstm", "mamba x2": "stack (state path)"}
    assert y_decay("spectral", ["state"]) == y_jac("spectral", "S")
    assert y_decay("spectral", ["a", "state"]).startswith(y_jac("spectral") + "\n")
    assert y_decay("spectral", ["a", None]) == y_jac("spectral")
