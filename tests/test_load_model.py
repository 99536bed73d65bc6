"""Models named instead of built (diagnostics/interop/models.py load_model): a transformers class
from config kwargs, a save_pretrained folder read through safetensors only, a factory of the
user's; each bad spec one line; transformers missing is a one-line install hint."""
from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from hf_models import CONFIGS  # noqa: E402

from diagnostics.interop.models import ModelError, load_model  # noqa: E402
from diagnostics.optional import OptionalMissing  # noqa: E402

MAMBA2 = {"hf": "Mamba2Model", "config": CONFIGS["Mamba2Model"]().to_diff_dict()}


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_class_and_config_build_the_same_weights_from_the_seed_leaving_the_rng_alone():
    state = torch.random.get_rng_state()
    a, b = load_model(MAMBA2), load_model(MAMBA2)
    assert type(a).__name__ == "Mamba2Model" and same_weights(a, b) and not a.training
    assert torch.equal(state, torch.random.get_rng_state())
    assert not same_weights(a, load_model({**MAMBA2, "seed": 1}))


def test_a_save_pretrained_folder_is_read_through_safetensors(tmp_path):
    model = load_model(MAMBA2)
    model.save_pretrained(tmp_path / "weights" / "m2")
    back = load_model({"hf_folder": "weights/m2"}, base=tmp_path)
    assert type(back).__name__ == "Mamba2Model" and same_weights(model, back)


def test_a_factory_runs_with_its_kwargs_from_the_case_folder(tmp_path):
    (tmp_path / "my_models.py").write_text("import torch\n\ndef build(width):\n    return torch.nn.LSTM(3, width)\n")
    before = list(sys.path)
    model = load_model({"factory": "my_models:build", "kwargs": {"width": 5}}, base=tmp_path)
    assert isinstance(model, torch.nn.LSTM) and model.hidden_size == 5
    assert sys.path == before


def test_each_case_folder_runs_its_own_factory_module_of_the_same_name(tmp_path):
    """Two case folders with a my_models.py each, in one process: the second is not the first's
    module from sys.modules (it was, before: the second case measured the first's model)."""
    for width in (3, 4):
        d = tmp_path / f"case{width}"
        d.mkdir()
        (d / "my_models.py").write_text(f"import torch\n\ndef build():\n    return torch.nn.GRU({width}, 2)\n")
        assert load_model({"factory": "my_models:build", "kwargs": {}}, base=d).input_size == width


def folder(tmp_path, files: dict):
    d = tmp_path / "f"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    return {"hf_folder": str(d)}


@pytest.mark.parametrize("spec, message", [
    ({"hf": "NotAModel"}, r"^model\.hf: 'NotAModel' is not a model class of transformers [\d.]+ \(e\.g\."),
    ({"hf": "Mamba2Config"}, r"^model\.hf: 'Mamba2Config' is not a model class"),
    ({"hf": "Mamba2Model", "config": [1]}, r"^model\.config: must be a mapping of Mamba2Model's config options"),
    ({"hf": "Mamba2Model", "factory": "a:b"}, r"^model: must be a mapping with exactly one of hf, hf_folder, factory"),
    ({"factory": "no_colon"}, r"^model\.factory: must be 'package\.module:function', got 'no_colon'$"),
    ({"factory": "no_such_module_xyz:f"}, r"^model\.factory: cannot import 'no_such_module_xyz'"),
    ({"factory": "os:getcwd"}, r"^model\.factory: os:getcwd returned str, not a torch nn\.Module$"),
    ({"factory": "os:getcwd", "kwargs": {"x": 1}}, r"^model\.kwargs: os:getcwd does not take them: "),
    ({"factory": "math:nothing"}, r"^model\.factory: 'math' has no function 'nothing'$"),
])
def test_a_bad_spec_is_one_line(spec, message):
    with pytest.raises(ModelError, match=message) as e:
        load_model(spec)
    assert "\n" not in str(e.value)


def test_a_folder_without_weights_or_config_is_one_line(tmp_path):
    with pytest.raises(ModelError, match=r"has no \.safetensors weights \(only safetensors are read"):
        load_model(folder(tmp_path, {"config.json": '{"architectures": ["Mamba2Model"]}', "pytorch_model.bin": "x"}))
    with pytest.raises(ModelError, match=r"is not a folder$"):
        load_model({"hf_folder": "missing"}, base=tmp_path)
    (tmp_path / "g").mkdir()
    with pytest.raises(ModelError, match=r"has no config\.json \(expected a save_pretrained folder\)$"):
        load_model({"hf_folder": "g"}, base=tmp_path)


def test_a_folder_naming_a_class_transformers_lacks_is_refused_without_running_its_code(tmp_path):
    spec = folder(tmp_path, {"config.json": '{"architectures": ["EvilModel"], "auto_map": {"AutoModel": "x.Evil"}}',
                             "model.safetensors": "", "x.py": "raise SystemExit('ran')"})
    with pytest.raises(ModelError, match=r"^model\.hf_folder: 'EvilModel' is not a model class of transformers"):
        load_model(spec)


def test_without_transformers_the_error_is_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)   # import transformers -> ImportError
    with pytest.raises(OptionalMissing, match=r"^model\.hf needs transformers: pip install 'gradient-diagnostics\[hf\]'$"):
        load_model(MAMBA2)
