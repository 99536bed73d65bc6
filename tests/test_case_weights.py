"""Case files that name a trained model's weights and the user's own sequences (issue 13):
`diag run` on a .pt state_dict of a trained nn.GRU gives the curves of autograd through that
nn.GRU; the shipped torch_import case runs without torch; bad files are one line, exit 2."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from diagnostics.cli.main import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.slow
def test_diag_run_on_a_trained_nn_gru_equals_autograd_through_it(tmp_path):
    torch = pytest.importorskip("torch")
    from torch_reference import StepRef, reference_curves
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 6)
    head = torch.nn.Linear(6, 1)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=0.02)
    gen = np.random.default_rng(0)
    for _ in range(200):            # a few hundred steps: weights far from their initialisation
        x = torch.as_tensor(gen.normal(size=(12, 16, 3)), dtype=torch.float32)
        loss = ((head(gru(x)[0][-1]) - x[:5, :, 0].sum(0, keepdim=True).T) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save({"encoder." + k: v for k, v in gru.state_dict().items()}, tmp_path / "model.pt")
    xs = gen.normal(size=(20, 4, 3))
    np.save(tmp_path / "seqs.npy", xs)
    case = {"name": "gru-file", "task": {"kind": "none", "length": 20, "input_size": 3},
            "cells": [{"kind": "gru", "label": "mine", "weights": {"file": "model.pt"}}],
            "probe": {"inputs": "seqs.npy", "lags": 20, "lyapunov": 0, "tk_map": {"anchors": 0}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(case))
    res = invoke("run", tmp_path / "c.yaml", "--out", tmp_path / "out", "--no-report")
    assert res.exit_code == 0, res.output
    curves = json.loads((tmp_path / "out" / "gru-file" / "curves.json").read_text())
    states, jac = StepRef(gru.double()).run(xs)           # the nn.GRU's own step, by torch.func
    want = reference_curves(jac, {"a": slice(0, 6)}, ["a"], 20)
    for s in curves["series"]:
        ref = want[("a", s["norm"])]                        # (B, K) per sequence
        np.testing.assert_allclose(s["log10"]["median"], np.median(ref, axis=0), rtol=0, atol=1e-9)
        np.testing.assert_allclose(s["log10"]["q25"], np.quantile(ref, 0.25, axis=0), rtol=0, atol=1e-9)
    run = json.loads((tmp_path / "out" / "gru-file" / "run.json").read_text())
    assert "model.pt" in run["files"] and "nn.GRU" in run["files"]["imported"]["mine"]


@pytest.mark.slow
def test_shipped_torch_import_case_reads_safetensors_without_torch(tmp_path):
    """The committed weights are .safetensors: resolving and running the case must not import torch."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from diagnostics.run.spec import resolve\n"
            "from diagnostics.run.runner import compute\n"
            "spec = resolve('cases/torch_import.yaml', quick=True)\n"
            "c = compute(spec, show=False).curves\n"
            "print(sorted({s.cell for s in c.series}), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['fresh LSTM', 'trained nn.GRU', 'trained nn.LSTM'] False"   # torch never loaded


BAD = [
    ({"weights": {"file": "nope.safetensors"}}, "cells[0].weights: ", "nope.safetensors"),
    ({"weights": {"file": "weights/adding_gru16.safetensors"}}, "cells[0].weights: ", "does not fit"),  # lstm vs gru
    ({"weights": {"file": "weights/adding_lstm16.safetensors"}, "hidden": 32}, "cells[0].weights: ", "hidden 32 given"),
    ({"weights": {"file": "weights/adding_lstm16.safetensors"}, "forget_bias": 2.0},
     "cells[0].forget_bias: is set by the weight file", ""),
    ({"weights": {"file": "weights/adding_lstm16.safetensors", "layer": 3}}, "cells[0].weights: layer: ", "0..0"),
    ({"weights": {"file": "weights/adding_lstm16.safetensors", "colour": 1}}, "cells[0].weights.colour: unknown key", ""),
]


@pytest.mark.parametrize("change,start,part", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_weights_one_line_exit_2_nothing_written(tmp_path, change, start, part):
    from pathlib import Path
    cases = Path(__file__).resolve().parents[1] / "cases"
    case = yaml.safe_load((cases / "torch_import.yaml").read_text())
    case["cells"] = [{"kind": "lstm", **change}]
    p = cases / f".tmp-{tmp_path.name}.yaml"                  # beside the committed weight files
    try:
        p.write_text(yaml.safe_dump(case))
        res = invoke("validate", p)
    finally:
        p.unlink()
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0].startswith(f"error: {p}: {start}") and part in lines[0], lines[0]


def test_inputs_of_the_wrong_size_or_rank(tmp_path):
    np.save(tmp_path / "two.npy", np.zeros((10, 3, 2)))
    np.save(tmp_path / "flat.npy", np.zeros((10, 3)))
    for name, part in (("two.npy", "have 2 features per step"), ("flat.npy", "must have 3 axes")):
        case = {"name": "x", "task": {"kind": "none", "length": 10, "input_size": 4},
                "cells": [{"kind": "rnn", "hidden": 3}], "probe": {"inputs": name}}
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(case))
        res = invoke("validate", tmp_path / "c.yaml")
        assert res.exit_code == 2 and "probe.inputs: " in res.output and part in res.output, res.output


def test_the_users_inputs_keep_every_other_probe_setting(tmp_path):
    """probe.inputs replaces the task's stream and nothing else: sensitivity, norms and paths
    are planned as without it (the sensitivity was once dropped)."""
    from diagnostics.run.runner import compute
    from diagnostics.run.spec import resolve
    np.save(tmp_path / "seqs.npy", np.random.default_rng(0).normal(size=(15, 3, 2)))
    case = {"name": "own", "task": {"kind": "none", "length": 15, "input_size": 2},
            "cells": [{"kind": "rnn", "hidden": 3}],
            "probe": {"lags": 10, "lyapunov": 0, "tk_map": {"anchors": 0}, "sensitivity": True,
                      "norms": ["spectral", "frobenius"], "paths": ["a"]}}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(case))
    case["probe"]["inputs"] = "seqs.npy"
    (tmp_path / "own.yaml").write_text(yaml.safe_dump(case))
    theirs, own = resolve(tmp_path / "task.yaml").plan, resolve(tmp_path / "own.yaml").plan
    assert own.sensitivity and own.sensitivity == theirs.sensitivity
    assert (own.norms, own.paths, own.K) == (theirs.norms, theirs.paths, theirs.K)
    assert (own.stream, own.sequences) == (15, 3)
    curves = compute(resolve(tmp_path / "own.yaml"), show=False).curves
    assert curves.sensitivity, "no sensitivity measured on the user's inputs"


def test_validate_checks_the_models_input_width_against_the_stream_the_probe_reads(tmp_path):
    """Imported weights of input width 2 with a task of input size 3 and no probe.inputs: the
    probe would feed them the task's stream. validate said ok and run failed (exit 1)."""
    from pathlib import Path
    weights = Path(__file__).resolve().parents[1] / "cases" / "weights" / "adding_lstm16.safetensors"
    case = {"name": "width", "task": {"kind": "none", "length": 12, "input_size": 3},
            "cells": [{"kind": "lstm", "weights": {"file": str(weights)}}],
            "probe": {"lags": 5, "lyapunov": 0, "tk_map": {"anchors": 0}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(case))
    for command in ("validate", "run"):
        res = invoke(command, tmp_path / "c.yaml", *(("--out", tmp_path / "out") if command == "run" else ()))
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1, res.output
        assert lines[0] == (f"error: {tmp_path / 'c.yaml'}: cells[0].weights: the model reads 2 features per step "
                            "but the none task gives 3; the probe reads the task's stream: set task.input_size: 2 "
                            "or give probe.inputs")
    assert not (tmp_path / "out").exists()
    np.save(tmp_path / "xs.npy", np.random.default_rng(0).normal(size=(12, 3, 2)))   # the model's own width
    case["probe"]["inputs"] = "xs.npy"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(case))
    res = invoke("run", tmp_path / "c.yaml", "--out", tmp_path / "out", "--no-report")
    assert res.exit_code == 0, res.output


def test_an_npz_of_several_arrays_is_read_by_key_from_a_case_file(tmp_path):
    """`key` chose the array of an .npz in Python (read_inputs) but a case file had no way to say it."""
    from diagnostics.run.runner import compute
    from diagnostics.run.schema import json_schema
    from diagnostics.run.spec import resolve
    rng = np.random.default_rng(0)
    xs, other = rng.normal(size=(15, 3, 2)), rng.normal(size=(9, 2, 2))
    np.savez(tmp_path / "runs.npz", xs=xs, other=other)
    np.save(tmp_path / "xs.npy", xs)
    case = {"name": "own", "task": {"kind": "none", "length": 15, "input_size": 2},
            "cells": [{"kind": "rnn", "hidden": 3}], "probe": {"lags": 5, "lyapunov": 0, "tk_map": {"anchors": 0}}}

    def with_inputs(inputs, name="c.yaml"):
        (tmp_path / name).write_text(yaml.safe_dump({**case, "probe": {**case["probe"], "inputs": inputs}}))
        return tmp_path / name

    keyed = resolve(with_inputs({"path": "runs.npz", "key": "xs"}, "keyed.yaml"))
    np.testing.assert_array_equal(keyed.inputs, xs)
    plain = resolve(with_inputs("xs.npy", "plain.yaml"))          # the plain string form still works
    assert compute(keyed, show=False).curves == compute(plain, show=False).curves
    for inputs, line in [("runs.npz", "probe.inputs: {p}: holds 2 arrays (other, xs); name the inputs with key"),
                         ({"path": "runs.npz", "key": "ys"}, "probe.inputs: {p}: no array 'ys'; found other, xs"),
                         ({"path": "xs.npy", "key": "xs"},
                          "probe.inputs: {p}: key 'xs' given, but a .npy file holds one array"),
                         ({"path": "runs.npz", "kee": "xs"}, "probe.inputs.kee: unknown key (did you mean 'key'?)"),
                         (7, "probe.inputs: must be a string or {path: ...}, got 7")]:
        res = invoke("validate", with_inputs(inputs))
        lines = res.output.strip().splitlines()
        path = inputs["path"] if isinstance(inputs, dict) else str(inputs)
        want = f"error: {tmp_path / 'c.yaml'}: " + line.replace("{p}", str(tmp_path / path))
        assert res.exit_code == 2 and lines == [want], lines
    res = invoke("run", with_inputs({"path": "runs.npz", "key": "xs"}), "--out", tmp_path / "out", "--no-report")
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "out" / "own" / "run.json").read_text())
    assert "runs.npz" in run["files"] and run["task_description"].startswith("your own inputs: runs.npz [xs] (15 steps")
    probe = json_schema()["$defs"]["ProbeSpec"]["properties"]["inputs"]       # diag schema says both forms
    forms = json.dumps(probe)
    assert '"type": "string"' in forms and "InputsFile" in forms
    assert set(json_schema()["$defs"]["InputsFile"]["properties"]) == {"path", "key"}
