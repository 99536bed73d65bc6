"""A new cell kind needs its own module and one registry line, nothing else: from its typed
fields alone it gets case-file validation, a `diag list` row, a JSON Schema entry that an
editor can complete, and runs through `diag run`."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from diagnostics.cells import Cell, freeze, register_cell
from diagnostics.cli.main import main
from diagnostics.options import PosFloat, PosInt


# --- the new cell's module: two options, typed ----------------------------------------------
@dataclass(frozen=True)
class Leaky(Cell):
    """A leaky tanh RNN: a<t> = (1 - leak) a<t-1> + leak tanh(W a<t-1> + U x<t>)."""
    input_size: PosInt = 1
    hidden: PosInt = 8
    leak: PosFloat = 0.3
    squash: Literal["tanh", "none"] = "tanh"
    kind: ClassVar[str] = "leaky"

    def check(self):
        if self.leak > 1:
            raise ValueError(f"leak: must be <= 1 (a convex mix), got {self.leak}")

    def init(self, rng):
        n, d = self.hidden, self.input_size
        return freeze({"W": rng.normal(size=(n, n)) / np.sqrt(n), "U": rng.normal(size=(n, d))})

    def step(self, params, state, x):
        z = state @ params["W"].T + x @ params["U"].T
        t = np.tanh(z) if self.squash == "tanh" else z
        return (1 - self.leak) * state + self.leak * t, (1 - t * t) if self.squash == "tanh" else np.ones_like(z)

    def jacobian(self, params, cache):
        return (1 - self.leak) * np.eye(self.hidden) + self.leak * cache[:, :, None] * params["W"]


@pytest.fixture
def leaky(clean_registry):
    register_cell("leaky", Leaky)          # the one registry line


CASE = {"name": "leaky-case", "task": {"kind": "none", "length": 12, "input_size": 2},
        "cells": [{"kind": "leaky", "hidden": 5, "leak": 0.5, "squash": "tanh"}, {"kind": "rnn", "hidden": 5}],
        "probe": {"lags": 10, "sequences": 4, "lyapunov": 2, "lyapunov_steps": 20, "tk_map": {"anchors": 0}}}


def _write(tmp_path, case) -> str:
    p = tmp_path / "case.yaml"
    p.write_text(yaml.safe_dump(case, sort_keys=False))
    return str(p)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_validate_list_schema_and_run(leaky, tmp_path):
    case = _write(tmp_path, CASE)
    res = invoke("validate", case)
    assert res.exit_code == 0 and "cells: leaky, rnn" in res.output, res.output
    listed = invoke("list").output
    block = re.search(r"\n  leaky .*?(?=\n  \S)", listed, re.S).group(0)   # its header and option lines
    assert "leak: 0.3" in block and "squash: tanh" in block and "A leaky tanh RNN" in block
    schema = json.loads(invoke("schema").output)
    entry = schema["$defs"]["cell_leaky"]
    assert set(entry["properties"]) == {"kind", "label", "hidden", "leak", "squash"}
    assert entry["properties"]["squash"]["enum"] == ["tanh", "none"] and entry["additionalProperties"] is False
    res = invoke("run", case, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    curves = json.loads((tmp_path / "out" / "leaky-case" / "curves.json").read_text())
    assert {s["cell"] for s in curves["series"]} == {"leaky", "rnn"}
    page = (tmp_path / "out" / "leaky-case" / "index.html").read_text()   # its card: its own docstring
    assert "A leaky tanh RNN: a<sup>⟨t⟩</sup> = (1 - leak) a<sup>⟨t−1⟩</sup>" in page


@pytest.mark.parametrize("change,line", [
    ({"leak": -1.0}, "cells[0].leak: must be a positive number, got -1.0"),
    ({"leak": 2.0}, "cells[0].leak: must be <= 1 (a convex mix), got 2.0"),          # its check()
    ({"squash": "relu"}, "cells[0].squash: must be one of tanh or none, got 'relu'"),
    ({"leek": 0.5}, "cells[0].leek: unknown key (did you mean 'leak'?)"),
    ({"forget_bias": 1.0}, "cells[0].forget_bias: is not an option of leaky cells (leaky options: hidden, leak, squash)"),
])
def test_bad_options_of_the_new_kind_are_one_line_each(leaky, tmp_path, change, line):
    case = json.loads(json.dumps(CASE))
    case["cells"][0].update(change)
    res = invoke("validate", _write(tmp_path, case))
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"error: {tmp_path / 'case.yaml'}: {line}"]


def test_the_schema_offers_each_kind_only_its_own_options(leaky):
    """What an editor sees: a leaky cell with an lstm option, or an lstm with `leak`, is invalid
    under the JSON Schema, as it is under the loader."""
    jsonschema = pytest.importorskip("jsonschema")
    v = jsonschema.Draft202012Validator(json.loads(invoke("schema").output))
    assert not list(v.iter_errors(CASE))
    for cell in ({"kind": "leaky", "forget_bias": 1.0}, {"kind": "lstm", "leak": 0.5}, {"kind": "leaky", "leak": "x"}):
        bad = json.loads(json.dumps(CASE))
        bad["cells"][0] = cell
        assert list(v.iter_errors(bad)), cell
