"""Case files with model cells (`kind: model`, diagnostics/run/models.py): a sequence model named
instead of built (a transformers class and config, a save_pretrained folder, a factory that runs
the user's code), fed probe.inputs (embeddings, time-major in the file) or probe.tokens (ids
through the model's own embedding); `train:` refused; schema errors in one line, exit 2,
nothing written; `diag validate` builds the model and says so; `diag run` writes the influence
items the interop measures, the same bytes on every run."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from diagnostics.cli.main import main
from diagnostics.errors import CaseError
from diagnostics.run.spec import resolve, validate_data

LSTM = {"factory": "torch.nn:LSTM", "kwargs": {"input_size": 2, "hidden_size": 4, "batch_first": True}}


def case(cells, probe=None, **more) -> dict:
    return {"name": "models", "task": {"kind": "adding", "length": 12},
            "cells": cells, "probe": {"lags": 6, "sequences": 3, **(probe or {})}, **more}


def one_line(data, **kw) -> list[str]:
    with pytest.raises(CaseError) as e:
        resolve(data, **kw)
    return e.value.lines


# --- the schema: no torch needed ------------------------------------------------------------------
@pytest.mark.parametrize("model, expected", [
    ({"hff": "MambaModel"}, "cells[0].model: must be one of {hf: CLASS, config: {...}}, {hf_folder: FOLDER}, "
                            "{factory: 'package.module:function', kwargs: {...}}, got {'hff': 'MambaModel'}"),
    ({"factory": "pkg.mod"}, "cells[0].model.factory: must be 'package.module:function' (a module to import and a "
                             "function in it), got 'pkg.mod'"),
    ({"hf": "MambaModel", "hidden": 3}, "cells[0].model.hidden: unknown key"),
    ({"hf_folder": 3}, "cells[0].model.hf_folder: "),
])
def test_a_bad_model_is_one_line(model, expected):
    with pytest.raises(CaseError) as e:
        validate_data(case([{"kind": "model", "model": model}]))
    assert len(e.value.lines) == 1 and e.value.lines[0].startswith(expected), e.value.lines


def test_an_option_of_another_kind_names_the_model_options():
    with pytest.raises(CaseError) as e:
        validate_data(case([{"kind": "model", "model": {"hf_folder": "w"}, "hidden": 4}]))
    assert e.value.lines == ["cells[0].hidden: is not an option of model cells (model options: model, output, layers, "
                             "memory)"]


def test_train_is_refused_in_one_line_before_any_model_is_built():
    lines = one_line(case([{"kind": "model", "model": {"factory": "no_such_module_here:build"}}],
                          train={"steps": 3}))
    assert lines == ["cells[0]: a model cell takes no `train:` (training it is your own loop; give the trained "
                     "model's save_pretrained folder or factory instead); remove `train`"]


def test_a_bad_case_file_exits_2_and_writes_nothing(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\ntask: {kind: adding, length: 12}\ncells: [{kind: model, model: {factory: nope}}]\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(f), "--out", str(out)])
    assert res.exit_code == 2 and not out.exists()
    assert res.output.strip().splitlines() == [
        f"error: {f}: cells[0].model.factory: must be 'package.module:function' (a module to import and a function "
        "in it), got 'nope'"]


# --- built with torch -----------------------------------------------------------------------------
@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def inputs(tmp_path):
    xs = np.random.default_rng(0).normal(size=(12, 3, 2))      # (T, B, d) time-major, as every inputs file
    np.save(tmp_path / "xs.npy", xs)
    return xs


def test_a_factory_cell_is_measured_by_the_interop_on_the_inputs_in_its_own_layout(torch, tmp_path, inputs):
    from diagnostics.interop.influence import lag_influence
    from diagnostics.run.runner import compute
    data = case([{"kind": "model", "label": "mine", "model": LSTM}], {"inputs": "xs.npy"})
    spec = resolve(data, base_dir=tmp_path)
    curves = compute(spec, show=False).curves
    it = curves.influence_of("mine", 0, "influence", "frobenius")
    assert it.lags == list(range(6)) and it.kind == "LSTM" and curves.series == []
    # the file is time-major; the model is batch-first: the interop gets (B, T, d)
    torch.manual_seed(int(np.random.SeedSequence([0, 1, 0]).generate_state(1)[0]))
    model = torch.nn.LSTM(2, 4, batch_first=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), spec.cells[0].model.state_dict().values()))
    ref = lag_influence(model, inputs.transpose(1, 0, 2), 6, norms=("frobenius",))
    assert it.log10.median == list(np.median(ref.log10[("influence", "frobenius")][0], axis=0))
    assert curves.summary_rows()[0].cell == "mine"


def test_the_same_case_writes_the_same_bytes(torch, tmp_path, inputs):
    from diagnostics.run.runner import compute
    data = case([{"kind": "model", "model": LSTM}], {"inputs": "xs.npy"})
    a, b = (compute(resolve(data, base_dir=tmp_path), show=False).curves.to_json() for _ in range(2))
    assert a == b
    other = compute(resolve({**data, "seed": 1}, base_dir=tmp_path), show=False).curves.to_json()
    assert other != a        # the factory's random weights come from the case seed


def test_the_page_of_a_model_case_says_where_each_model_came_from(torch, tmp_path, inputs):
    from diagnostics.run.runner import run_to_folder
    data = case([{"kind": "model", "label": "mine", "model": LSTM}], {"inputs": "xs.npy"})
    folder = run_to_folder(resolve(data, base_dir=tmp_path), tmp_path / "out", show=False).folder
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "none here: each model is measured with the weights it was given" in page
    assert "your factory torch.nn:LSTM (your code, run)" in page
    assert {p.stem for p in (folder / "figures").glob("*.png")} == {"influence"}   # no memory: an nn.LSTM


def test_a_model_cell_needs_inputs_of_its_own(torch):
    assert one_line(case([{"kind": "model", "model": LSTM}])) == [
        "probe.inputs: cells[0] is a model cell: give its inputs as probe.inputs (embeddings, (T, B, d)) or "
        "probe.tokens (ids, (T, B))"]


def test_inputs_of_the_wrong_width_and_tokens_for_a_model_without_embedding_are_one_line(torch, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((12, 3, 5)))
    np.save(tmp_path / "ids.npy", np.zeros((12, 3), dtype=np.int64))
    lines = one_line(case([{"kind": "model", "model": LSTM}], {"inputs": "wide.npy"}), base_dir=tmp_path)
    assert lines == [f"probe.inputs: {tmp_path / 'wide.npy'}: inputs have 5 features per step (shape (12, 3, 5)), "
                     "the model expects 2"]
    lines = one_line(case([{"kind": "model", "model": LSTM}], {"tokens": "ids.npy"}), base_dir=tmp_path)
    assert lines == ["probe.tokens: cells[0] (LSTM) has no input embedding (get_input_embeddings); give probe.inputs "
                     "instead"]


def test_layers_and_memory_a_model_lacks_are_refused_when_validated(torch, tmp_path, inputs):
    lines = one_line(case([{"kind": "model", "model": LSTM, "layers": True}], {"inputs": "xs.npy"}), base_dir=tmp_path)
    assert lines == ["cells[0].layers: needs a Hugging Face model with a list of layers; LSTM is not one"]
    lines = one_line(case([{"kind": "model", "model": LSTM, "memory": True}], {"inputs": "xs.npy"}), base_dir=tmp_path)
    assert len(lines) == 1 and lines[0].startswith("cells[0].memory: LSTM has no supported recurrence; supported: "
                                                   "MambaMixer (Mamba)")


def test_validate_builds_the_model_and_says_a_factory_ran_your_code(torch, tmp_path, inputs):
    f = tmp_path / "c.yaml"
    (tmp_path / "my_models.py").write_text("import torch\n\ndef build(width):\n"
                                           "    return torch.nn.GRU(2, width, batch_first=True)\n")
    f.write_text(json.dumps(case([{"kind": "model", "label": "g", "model": {"factory": "my_models:build",
                                                                             "kwargs": {"width": 3}}}],
                                 {"inputs": "xs.npy"})))
    res = CliRunner().invoke(main, ["validate", str(f)])
    assert res.exit_code == 0, res.output
    assert "built the model cells to check them: g (GRU, your factory my_models:build (your code, run))" in res.output
    assert "my_models" not in sys.modules or str(tmp_path) not in sys.path      # the case folder left sys.path


def test_a_module_that_is_not_a_sequence_model_fails_the_run_in_one_line(torch, tmp_path, inputs):
    f = tmp_path / "c.yaml"
    # (T, B, d) -> (T, B d): no step axis of the inputs' length left
    f.write_text(json.dumps(case([{"kind": "model", "model": {"factory": "torch.nn:Flatten", "kwargs": {"start_dim": 1}}}],
                                 {"inputs": "xs.npy"})))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(f), "--out", str(out), "--no-report"])
    assert res.exit_code == 2 and not (out / "models").exists(), res.output
    err = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "cells[0] (model): model: Flatten is not a sequence model" in err[0], res.output


# --- Hugging Face models --------------------------------------------------------------------------
@pytest.fixture
def hf(torch):
    return pytest.importorskip("transformers")


def mamba2(tmp_path, seed=0):
    """A tiny Mamba2Model saved with save_pretrained (2 layers, width 8)."""
    from hf_models import tiny
    m = tiny("Mamba2Model", seed)
    m.save_pretrained(tmp_path / "m2")
    return m


def test_tokens_go_through_the_models_own_embedding(hf, torch, tmp_path):
    from diagnostics.run.runner import compute
    model = mamba2(tmp_path)
    ids = np.random.default_rng(0).integers(0, 10, size=(12, 3))
    np.save(tmp_path / "ids.npy", ids)
    with torch.no_grad():
        emb = model.get_input_embeddings()(torch.from_numpy(ids)).double().numpy()    # (T, B, d)
    np.save(tmp_path / "emb.npy", emb)
    cells = [{"kind": "model", "label": "m2", "model": {"hf_folder": "m2"}}]
    by_ids = compute(resolve(case(cells, {"tokens": "ids.npy"}), base_dir=tmp_path), show=False).curves
    by_emb = compute(resolve(case(cells, {"inputs": "emb.npy"}), base_dir=tmp_path), show=False).curves
    assert by_ids.to_json() == by_emb.to_json()
    assert by_ids.float32_inside == ["m2"] and {s.path for s in by_ids.series} == {"l0.memory", "l1.memory"}
    assert [s.norm for s in by_ids.influence] == ["spectral", "frobenius"]


def test_token_ids_outside_the_vocabulary_are_one_line(hf, tmp_path):
    mamba2(tmp_path)
    np.save(tmp_path / "ids.npy", np.full((12, 3), 10))
    lines = one_line(case([{"kind": "model", "model": {"hf_folder": "m2"}}], {"tokens": "ids.npy"}), base_dir=tmp_path)
    assert lines == [f"probe.tokens: {tmp_path / 'ids.npy'}: token ids must lie in 0..9 (the model's embedding), got 10"]


def test_a_folder_without_weights_is_one_line(hf, tmp_path, inputs):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text('{"architectures": ["Mamba2Model"]}')
    lines = one_line(case([{"kind": "model", "model": {"hf_folder": "empty"}}], {"inputs": "xs.npy"}), base_dir=tmp_path)
    assert len(lines) == 1 and lines[0].startswith(f"cells[0].model.hf_folder: {tmp_path / 'empty'} has no .safetensors")


def test_a_class_and_config_take_their_weights_from_the_case_seed(hf, tmp_path):
    from hf_models import CONFIGS
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(12, 2, 8)))
    cell = {"kind": "model", "model": {"hf": "GPT2Model", "config": CONFIGS["GPT2Model"]().to_diff_dict()}}
    a, b = (resolve(case([cell], {"inputs": "emb.npy"}, seed=s), base_dir=tmp_path).cells[0].model for s in (0, 0))
    c = resolve(case([cell], {"inputs": "emb.npy"}, seed=1), base_dir=tmp_path).cells[0].model
    same = lambda x, y: all(torch_equal(p, q) for p, q in zip(x.state_dict().values(), y.state_dict().values()))  # noqa: E731
    assert same(a, b) and not same(a, c)


def torch_equal(p, q) -> bool:
    import torch
    return bool(torch.equal(p, q))


def test_without_transformers_a_model_cell_is_the_install_hint(torch, tmp_path, inputs, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)   # import transformers -> ImportError
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"architectures": ["MambaModel"]}')
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    lines = one_line(case([{"kind": "model", "model": {"hf_folder": "m"}}], {"inputs": "xs.npy"}), base_dir=tmp_path)
    assert lines == ["cells[0]: model.hf_folder needs transformers: pip install 'gradient-diagnostics[hf]'"]


@pytest.mark.slow
def test_the_shipped_case_without_transformers_is_one_line_and_every_other_case_runs(torch, monkeypatch, tmp_path):
    """The core-only install: the shipped model case says what to install, in one line, exit 2;
    no other shipped case needs transformers (nor imports it)."""
    from pathlib import Path
    monkeypatch.setitem(sys.modules, "transformers", None)   # import transformers -> ImportError
    cases = Path(__file__).resolve().parent.parent / "cases"
    res = CliRunner().invoke(main, ["run", str(cases / "hf_recurrent.yaml"), "--out", str(tmp_path)])
    assert res.exit_code == 2 and not any(tmp_path.iterdir()), res.output
    assert res.output.strip().splitlines() == [
        f"error: {cases / 'hf_recurrent.yaml'}: cells[1], cells[2], cells[3], cells[4], cells[5]: model.hf_folder "
        "needs transformers: pip install 'gradient-diagnostics[hf]'"]
    others = [str(p) for p in sorted(cases.glob("*.yaml")) if "kind: model" not in p.read_text()]
    res = CliRunner().invoke(main, ["validate", *others])
    assert res.exit_code == 0 and res.output.count("ok: ") == len(others), res.output


def test_layers_measure_each_layers_output_beside_its_memory_path(hf, tmp_path):
    from diagnostics.run.runner import compute
    mamba2(tmp_path)
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(12, 2, 8)))
    cells = [{"kind": "model", "label": "m2", "model": {"hf_folder": "m2"}, "layers": True}]
    curves = compute(resolve(case(cells, {"inputs": "emb.npy", "norms": ["spectral"]}), base_dir=tmp_path),
                     show=False).curves
    assert [x.path for x in curves.influence] == ["influence", "l0.influence", "l1.influence"]
    assert [s.path for s in curves.series] == ["l0.memory", "l1.memory"]
