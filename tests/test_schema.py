"""The case schema: the contract example, defaults, and one clear line per problem."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from diagnostics.errors import CaseError
from diagnostics.run.plan import QUICK, make_plan, quick_case
from diagnostics.run.runner import probe_stream
from diagnostics.run.schema import json_schema
from diagnostics.run.spec import resolve
from diagnostics.yamlfile import read_yaml

validate_case = load_case = resolve

CASES = Path(__file__).resolve().parent.parent / "cases"

def problems(raw) -> list[str]:
    with pytest.raises(CaseError) as e:
        validate_case(raw)
    return e.value.lines


def test_contract_example_validates(contract_case):
    lc = validate_case(contract_case())
    assert lc.labels == ("tanh RNN", "gru", "lstm")
    assert lc.case.train.checkpoints == [0, 100, 500]
    assert [c.kind for c in lc.cells] == ["rnn", "gru", "lstm"]
    assert lc.cells[2].forget_bias == 1.0 and lc.cells[0].input_size == lc.task.input_size


def test_contract_probe_stream_concatenates_episodes(contract_case):
    """200 lags > one copy episode (120 steps): the stream is two whole episodes, anchor at its end."""
    lc = validate_case(contract_case())
    plan = make_plan(lc.case, lc.task, lc.cells)
    assert (plan.K, plan.episode, plan.stream, plan.anchors) == (200, 120, 240, (240,))
    small = plan.__class__(**{**plan.__dict__, "sequences": 3, "lyapunov_steps": 10, "tk_anchors": ()})
    xs = probe_stream(lc.task, small, seed=0)
    assert xs.shape == (240, 3, lc.task.input_size)
    rng = np.random.default_rng([0, 2])     # the runner's probe stream: episode after episode
    first, second = lc.task.sample(rng, 3).inputs, lc.task.sample(rng, 3).inputs
    np.testing.assert_array_equal(xs, np.concatenate([first, second]))


def test_defaults_and_labels():
    raw = {"name": "d", "task": {"kind": "adding", "length": 10},
           "cells": [{"kind": "lstm", "hidden": 4}, {"kind": "lstm", "hidden": 4, "forget_bias": 0.0},
                     {"kind": "rnn", "hidden": 4}], "train": {"steps": 7}}
    lc = validate_case(raw)
    assert lc.labels == ("lstm", "lstm 2", "rnn")
    assert lc.case.train.checkpoints == [0, 7]
    plan = make_plan(lc.case, lc.task, lc.cells)
    assert plan.K == 10 and plan.anchors == (10,) and plan.lyapunov == 4   # min(8, rnn state 4)


def test_duplicate_labels_are_an_error(contract_case):
    raw = contract_case()
    raw["cells"][1]["label"] = "tanh RNN"
    assert problems(raw) == ["cells[1].label: must be unique; 'tanh RNN' is also the label of cells[0]"]


BAD = [
    (("cells", 1, "hidden"), 0, "cells[1].hidden: must be a positive integer, got 0"),
    (("cells", 0, "hidden"), -3, "cells[0].hidden: must be a positive integer, got -3"),
    (("cells", 0, "hidden"), "64", "cells[0].hidden: must be an integer, got '64'"),
    (("cells", 0, "hidden"), 6.5, "cells[0].hidden: must be an integer, got 6.5"),
    (("train", "steps"), 0, "train.steps: must be a positive integer, got 0"),
    (("train", "batch"), True, "train.batch: must be an integer, got True"),
    (("train", "optimizer", "lr"), -1.0, "train.optimizer.lr: must be a positive number, got -1.0"),
    (("train", "optimizer", "kind"), "adamw", "train.optimizer.kind: must be one of adam, sgd, got 'adamw'"),
    (("train", "optimizer", "betas"), [1.0, 0.999], "train.optimizer.betas[0]: must be < 1, got 1.0"),
    (("train", "optimizer", "momentum"), 0.9, "train.optimizer.momentum: unknown key"),
    (("probe", "sequences"), 0, "probe.sequences: must be a positive integer, got 0"),
    (("probe", "norms"), "spectral", "probe.norms: must be a list, got 'spectral'"),
    (("seed",), -1, "seed: must be a non-negative integer, got -1"),
    # other tests may register extra kinds: check the start and the suggestion, not the whole list
    (("cells", 2, "kind"), "lstn", ("cells[2].kind: must be one of ", "gru, ", "got 'lstn' (did you mean 'lstm'?)")),
    (("task", "kind"), "cpy", ("task.kind: must be one of adding, copy, ", "got 'cpy' (did you mean 'copy'?)")),
    (("task", "delay"), 0, "task.delay: must be a positive integer, got 0"),
    (("task", "alphabet"), 1, "task.alphabet: must be >= 2, got 1"),
    (("cells", 2, "chrono"), 1.5, "cells[2].chrono: must be >= 2, got 1.5"),   # one rule set: the cell's
    (("name",), "abc\n", "name: must be a safe folder name"),
    (("cells", 0, "activation"), "tahn", "cells[0].activation: must be one of tanh, relu or linear, "
                                         "got 'tahn' (did you mean 'tanh'?)"),
    (("cells", 0, "forget_bias"), 1.0, "cells[0].forget_bias: is not an option of rnn cells"),
    (("cells", 0, "kind"), 7, "cells[0].kind: must be one of"),
    (("cells", 1, "output_tanh"), False, "cells[1].output_tanh: is not an option of gru cells"),
    (("cells", 2, "reset_gate"), True, "cells[2].reset_gate: is not an option of lstm cells"),
    (("cells", 2, "forget_bais"), 1.0, "cells[2].forget_bais: unknown key (did you mean 'forget_bias'?)"),
    (("task", "dealy"), 5, "task.dealy: unknown option of copy tasks (did you mean 'delay'?)"),
    (("nmae",), "x", "nmae: unknown key (did you mean 'name'?)"),
    (("probe", "lyapnuov"), 3, "probe.lyapnuov: unknown key (did you mean 'lyapunov'?)"),
    (("probe", "lyapunov"), 500, "probe.lyapunov: must be <= the smallest cell state size (64), got 500"),
    (("train", "checkpoints"), [0, 900], "train.checkpoints: must lie in 0..steps (500), got [0, 900]"),
    (("name",), "a/b", "name: must be a safe folder name"),
    (("name",), "..", "name: must be a safe folder name"),
    (("name",), "../up", "name: must be a safe folder name"),
    (("name",), ".hidden", "name: must be a safe folder name"),
    (("name",), 7, "name: must be a string, got 7"),
    (("cells",), [], "cells: must have at least 1 item(s)"),
    (("cells", 0, "recurrent_init"), {"kind": "orthogonl"},
     "cells[0].recurrent_init.kind: must be one of gaussian, orthogonal, identity, uniform or zeros, "
     "got 'orthogonl' (did you mean 'orthogonal'?)"),
    (("cells", 2, "forget_bias"), float("nan"), "cells[2].forget_bias: must be a finite number, got nan"),
    (("train", "clip"), float("inf"), "train.clip: must be a finite number, got inf"),
    (("tolerances", "decade"), 0.1, "tolerances.decade: unknown key (did you mean 'decades'?)"),
    # an infinite tolerance would switch the case's own gate off without a word
    (("tolerances", "decades"), float("inf"), "tolerances.decades: must be a finite number, got inf"),
    (("tolerances", "lyapunov_abs"), float("nan"), "tolerances.lyapunov_abs: must be a finite number, got nan"),
    # a union that is not discriminated: the member the value fits, or one line naming them all
    # (was one line per member, each under a pydantic label such as function-after[_non_negative(), int])
    (("probe", "tk_map", "anchors"), -1, "probe.tk_map.anchors: must be a non-negative integer, got -1"),
    (("probe", "tk_map", "anchors"), [0], "probe.tk_map.anchors[0]: must be a positive integer, got 0"),
    (("probe", "tk_map", "anchors"), "x", "probe.tk_map.anchors: must be an integer or a list, got 'x'"),
    (("probe", "estimator", "kind"), "skecth", "probe.estimator.kind: must be one of exact, sketch or auto, "
                                               "got 'skecth' (did you mean 'sketch'?)"),
    (("probe", "estimator", "rows"), 1, "probe.estimator.rows: must be >= 2, got 1"),
    (("probe", "estimator", "rows"), "32", "probe.estimator.rows: must be an integer, got '32'"),
    (("probe", "estimator", "row"), 32, "probe.estimator.row: unknown key (did you mean 'rows'?)"),
]


@pytest.mark.parametrize("where,value,expected", BAD, ids=[".".join(map(str, b[0])) + "=" + repr(b[1]) for b in BAD])
def test_one_clear_line_per_problem(where, value, expected, contract_case):
    raw = contract_case()
    node = raw
    for k in where[:-1]:
        node = node[k] if isinstance(k, int) else node.setdefault(k, {})
    node[where[-1]] = value
    lines = problems(raw)
    assert len(lines) == 1, lines
    start, *rest = expected if isinstance(expected, tuple) else (expected,)
    assert lines[0].startswith(start) and all(r in lines[0] for r in rest), lines


def test_a_union_in_a_cells_weights_is_one_line(contract_case):
    raw = contract_case()
    raw["cells"][2]["weights"] = {"file": "m.pt", "layer": "top"}
    assert problems(raw) == ["cells[2].weights.layer: must be an integer or all, got 'top'"]


def test_missing_required_keys_and_many_problems_at_once(contract_case):
    assert sorted(problems({"seed": 1})) == ["cells: is required", "name: is required", "task: is required"]
    raw = contract_case()
    raw["cells"][0]["hidden"] = 0
    raw["cells"][1]["hidden"] = "x"
    raw["task"]["dealy"] = 3
    raw["train"]["optimizer"] = {"kind": "adam", "momentum": 0.9}
    lines = problems(raw)
    assert len(lines) == 4, lines
    assert {ln.split(":")[0] for ln in lines} == {"cells[0].hidden", "cells[1].hidden", "task.dealy",
                                                  "train.optimizer.momentum"}


def _write(tmp_path, text, name="c.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,expected", [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("name: [unclosed\n", "YAML error at line"),
    ("name: a\n  bad: indent\n", "YAML error at line"),
    ("- a\n- b\n", "must be a mapping of keys"),
    ("name: a\nname: b\n", "duplicate key 'name'"),
    ("!!python/object/apply:os.system ['echo pwned']\n", "is not allowed"),
    ("name: !!python/object:builtins.object {}\n", "the tag !!python/object:builtins.object is not allowed"),
])
def test_yaml_problems(tmp_path, text, expected):
    p = _write(tmp_path, text)
    with pytest.raises(CaseError) as e:
        read_yaml(p)
    assert len(e.value.lines) == 1 and expected in e.value.lines[0] and str(p) in e.value.lines[0]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CaseError, match="no such file"):
        read_yaml(tmp_path / "nope.yaml")
    with pytest.raises(CaseError, match="is a directory"):
        read_yaml(tmp_path)


def test_load_case_prefixes_the_file(tmp_path, contract_case):
    raw = contract_case()
    raw["cells"][0]["hidden"] = 0
    p = _write(tmp_path, yaml.safe_dump(raw))
    with pytest.raises(CaseError) as e:
        load_case(p)
    assert e.value.lines == [f"{p}: cells[0].hidden: must be a positive integer, got 0"]


def test_json_schema_is_json_and_describes_the_keys():
    s = json.loads(json.dumps(json_schema()))
    assert set(s["properties"]) >= {"name", "description", "seed", "task", "cells", "train", "probe",
                                    "report", "baseline", "tolerances"}
    assert s["additionalProperties"] is False
    assert set(s["required"]) == {"name", "task", "cells"}


def test_quick_form_is_deterministic_and_small(contract_case):
    lc = validate_case(contract_case())
    q = quick_case(lc.case, lc.task.length)
    assert q.train.steps == QUICK["steps"] and q.train.checkpoints == [0, 6, 30]
    assert q.probe.lags == 40 and q.probe.sequences == 4 and q.train.batch == 16
    assert quick_case(lc.case, lc.task.length) == q
    again = validate_case(q.model_dump(mode="json", exclude_none=True))   # still a valid case
    assert again.case == q


def test_shipped_cases_validate_in_both_forms():
    files = sorted(f for f in CASES.glob("*.yaml") if not f.stem.endswith("_sweep"))
    assert len(files) >= 6, files
    names = set()
    for f in files:
        if "kind: model" in f.read_text() and not all(importlib.util.find_spec(m) for m in ("torch", "transformers")):
            # its models are built to load it: without the [hf] extra, one line with the install hint
            with pytest.raises(CaseError, match=r"needs (torch and )?transformers: pip install 'gradient-diagnostics\[hf\]'$"):
                load_case(f)
            doc = yaml.safe_load(f.read_text())
            names.add(doc["name"])
            assert "2 cores" in doc["description"], f"{f}: description must say how long it takes"
            continue
        lc = load_case(f)
        names.add(lc.case.name)
        assert "2 cores" in lc.case.description, f"{f}: description must say how long it takes"
        q = resolve(f, quick=True)
        assert q.plan.K <= QUICK["lags"] and q.plan.sequences <= QUICK["sequences"]
    assert len(names) == len(files)


def test_json_schema_checks_cases_like_the_loader(contract_case):
    """Editors validate with the JSON Schema: shipped cases pass, kind-specific options are checked."""
    jsonschema = pytest.importorskip("jsonschema")
    v = jsonschema.Draft202012Validator(json_schema())
    for f in sorted(f for f in CASES.glob("*.yaml") if not f.stem.endswith("_sweep")):
        assert not list(v.iter_errors(yaml.safe_load(f.read_text()))), f
    assert not list(v.iter_errors(contract_case()))
    bad = contract_case()
    bad["cells"][0]["forget_bias"] = 1.0     # an lstm option on an rnn
    bad["task"]["dealy"] = 3                 # not a copy option
    bad["probe"]["lagz"] = 3
    assert len(list(v.iter_errors(bad))) == 3
    # each alone is caught, like the loader catches it, and so are these
    wrong = [("cells", 0, {"kind": "rnn", "forget_bias": 1.0}), ("cells", 1, {"kind": "lstn"}),
             ("cells", 2, {"hidden": 4}), ("cells", 2, {"kind": "lstm", "chrono": "x"}),
             ("task", None, {"kind": "copy", "dealy": 3}), ("task", None, {"kind": "latch", "p": 1}),
             ("train", None, {"steps": 5, "optimizer": {"kind": "sgd", "betas": [0.9, 0.9]}})]
    for key, i, value in wrong:
        case = contract_case()
        if i is None:
            case[key] = value
        else:
            case[key][i] = value
        assert list(v.iter_errors(case)), (key, value)
        with pytest.raises(CaseError):
            validate_case(case)
