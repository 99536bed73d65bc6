"""Every bad weight or input file is one WeightsError line naming the file, the key or value,
and what was expected. Files are written with numpy and safetensors (no torch), except the
pickle cases, which need torch and skip without it."""
from __future__ import annotations

import numpy as np
import pytest

from diagnostics.weights import (
    WeightsError,
    from_state_dict,
    load_weights,
    read_inputs,
    read_state_dict,
)

H, D = 4, 2


def lstm_sd(prefix="", layers=1, bidirectional=False, bias=True, proj=0, rows=4):
    rng = np.random.default_rng(0)
    out, hc = {}, proj or H
    for k in range(layers):
        for sfx in [""] + (["_reverse"] if bidirectional else []):
            d = D if k == 0 else H * (2 if bidirectional else 1)
            out[f"weight_ih_l{k}{sfx}"] = rng.normal(size=(rows * H, d)).astype(np.float32)
            out[f"weight_hh_l{k}{sfx}"] = rng.normal(size=(rows * H, hc)).astype(np.float32)
            if bias:
                out[f"bias_ih_l{k}{sfx}"] = rng.normal(size=rows * H).astype(np.float32)
                out[f"bias_hh_l{k}{sfx}"] = rng.normal(size=rows * H).astype(np.float32)
            if proj:
                out[f"weight_hr_l{k}{sfx}"] = rng.normal(size=(proj, H)).astype(np.float32)
    return {(f"{prefix}.{k}" if prefix else k): v for k, v in out.items()}


def one_line(excinfo, *parts):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


def test_good_file_reads_as_float64(tmp_path):
    np.savez(tmp_path / "m.npz", **lstm_sd())
    sd = read_state_dict(tmp_path / "m.npz")
    assert all(v.dtype == np.float64 for v in sd.values())
    imp = load_weights(tmp_path / "m.npz", "lstm", hidden=H)
    assert imp.cell.kind == "lstm" and imp.cell.hidden == H and imp.cell.input_size == D and not imp.reverse


# --- files ---------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(WeightsError) as e:
        load_weights(tmp_path / "nope.safetensors")
    one_line(e, "nope.safetensors", "no such file")


def test_unknown_suffix(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "m.h5")
    one_line(e, "m.h5", "'.h5'", ".pt, .pth, .bin, .safetensors, .npz")


@pytest.mark.parametrize("name", ["m.npz", "m.safetensors", "m.pt"])
def test_damaged_file(tmp_path, name):
    if name.endswith(".pt"):
        pytest.importorskip("torch")
    (tmp_path / name).write_bytes(b"this is not a weight file")
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / name)
    one_line(e, name, "not a readable")


def test_npz_object_array_needs_pickle(tmp_path):
    np.savez(tmp_path / "m.npz", w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "m.npz")
    one_line(e, "m.npz", "'w'", "pickle")


def test_pickle_that_needs_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.LSTM(D, H), tmp_path / "whole.pt")      # the module object, not its state_dict
    with pytest.raises(WeightsError) as e:
        load_weights(tmp_path / "whole.pt")
    one_line(e, "whole.pt", "needs code", "torch.nn.modules.rnn.LSTM", "state_dict()")


def test_torch_file_not_a_mapping(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save([torch.ones(2)], tmp_path / "list.pt")
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "list.pt")
    one_line(e, "list.pt", "expected a state_dict", "list")



@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")   # torch.save of a quantized tensor
def test_a_tensor_numpy_has_no_array_for_is_one_line_naming_it(tmp_path):
    """A sparse tensor was a traceback (TypeError: can't convert Sparse layout tensor to numpy)."""
    torch = pytest.importorskip("torch")
    sd = {k: torch.as_tensor(v) for k, v in lstm_sd().items()}
    torch.save({**sd, "weight_hh_l0": sd["weight_hh_l0"].to_sparse()}, tmp_path / "sparse.pt")
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "sparse.pt")
    one_line(e, "sparse.pt", "'weight_hh_l0'", "sparse_coo", "not dense", "to_dense()")
    with pytest.warns(UserWarning):   # torch deprecates quantized tensors, but files hold them
        quantized = torch.quantize_per_tensor(sd["bias_ih_l0"], 0.1, 0, torch.qint8)
    torch.save({**sd, "bias_ih_l0": quantized}, tmp_path / "quantized.pt")
    with pytest.raises(WeightsError) as e:
        read_state_dict(tmp_path / "quantized.pt")
    one_line(e, "quantized.pt", "'bias_ih_l0'", "cannot be read as an array", "QInt8")

# --- keys and shapes -----------------------------------------------------------------------
def test_no_recurrent_module(tmp_path):
    np.savez(tmp_path / "m.npz", **{"head.weight": np.ones((1, 3))})
    with pytest.raises(WeightsError) as e:
        load_weights(tmp_path / "m.npz")
    one_line(e, "m.npz", "no recurrent module", "weight_hh_l0", "head.weight")


def test_key_missing_names_expected_and_found():
    sd = lstm_sd(layers=2)
    del sd["bias_hh_l1"]
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, layer=1, source="m.safetensors")
    one_line(e, "m.safetensors", "'bias_hh_l1' missing", "expected weight_ih_l1, weight_hh_l1, bias_ih_l1, bias_hh_l1",
             "found bias_hh_l0")


def test_input_weights_missing():
    sd = lstm_sd()
    del sd["weight_ih_l0"]
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "f.npz", "'weight_ih_l0' missing")


def test_shape_contradicting_another_names_both():
    sd = lstm_sd(layers=2)
    sd["weight_ih_l1"] = np.zeros((4 * H, H + 1))
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, layer="all", source="f.npz")
    one_line(e, "f.npz", f"weight_ih_l1 has shape (16, {H + 1})", f"expected (16, {H})", f"layer 0's output: hidden {H}")
    sd = lstm_sd()
    sd["bias_ih_l0"] = np.zeros(3 * H)
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "bias_ih_l0 has shape (12,)", "expected (16,)")


def test_rows_not_a_whole_number_of_gates():
    sd = lstm_sd(rows=2)
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "f.npz", "weight_hh_l0 has shape (8, 4)", "not 1, 3 or 4 times hidden 4")


def test_kind_checked_against_rows():
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(), "gru", source="f.npz")
    one_line(e, "f.npz", "weight_hh_l0 has shape (16, 4) = 4 x hidden 4 rows", "gru", "3 x 4")
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(), "transformer")
    one_line(e, "kind: must be rnn, gru or lstm", "'transformer'")


def test_hidden_contradicting_the_file():
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(), hidden=8, source="f.npz")
    one_line(e, "f.npz", "hidden 8 given", "the file's is 4")


def test_proj_size_refused_by_name():
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(proj=3), source="f.npz")
    one_line(e, "f.npz", "proj_size 3", "weight_hr_l0", "not supported")


def test_several_modules_need_a_prefix():
    sd = {**lstm_sd("enc"), **lstm_sd("dec")}
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "2 recurrent modules", "'dec'", "'enc'", "prefix")
    assert from_state_dict(sd, prefix="dec").cell.kind == "lstm"
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, prefix="mid", source="f.npz")
    one_line(e, "no recurrent module under prefix 'mid'", "'enc'")


def test_bidirectional_needs_a_direction():
    sd = lstm_sd(bidirectional=True)
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "f.npz", "bidirectional", "direction='forward' or 'backward'")
    assert from_state_dict(sd, direction="backward").reverse
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(), direction="backward")
    one_line(e, "direction:", "not bidirectional")
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, direction="sideways")
    one_line(e, "direction: must be forward or backward", "'sideways'")
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(layers=2, bidirectional=True), layer="all", direction="forward")
    one_line(e, "layer: 'all' is not possible", "bidirectional")


@pytest.mark.parametrize("layer", [2, -1, "top", True, 1.0])
def test_bad_layer(layer):
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(layers=2), layer=layer)
    one_line(e, "layer: must be 0..1 or 'all'", repr(layer))


def test_bad_nonlinearity():
    with pytest.raises(WeightsError) as e:
        from_state_dict(lstm_sd(), nonlinearity="relu")
    one_line(e, "nonlinearity: only nn.RNN has one")
    sd = lstm_sd(rows=1)
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, nonlinearity="sigmoid")
    one_line(e, "nonlinearity: must be tanh or relu", "'sigmoid'")


def test_non_float_and_non_finite_weights():
    sd = lstm_sd()
    sd["weight_hh_l0"] = np.zeros((4 * H, H), dtype=np.int64)
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "weight_hh_l0 has dtype int64", "floating")
    sd = lstm_sd()
    sd["bias_ih_l0"] = np.full(4 * H, np.nan)
    with pytest.raises(WeightsError) as e:
        from_state_dict(sd, source="f.npz")
    one_line(e, "bias_ih_l0 holds NaN")


# --- inputs --------------------------------------------------------------------------------
def test_read_inputs_good(tmp_path):
    xs = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    np.save(tmp_path / "xs.npy", xs)
    got = read_inputs(tmp_path / "xs.npy", 2)
    assert got.dtype == np.float64 and got.shape == (4, 3, 2) and np.array_equal(got, xs)
    np.savez(tmp_path / "xs.npz", inputs=xs, labels=np.zeros(3))
    assert np.array_equal(read_inputs(tmp_path / "xs.npz", 2, key="inputs"), xs)


@pytest.mark.parametrize("array,msg", [
    (np.zeros((4, 2)), "must have 3 axes (T, B, 2)"),
    (np.zeros((4, 3, 5)), "have 5 features per step"),
    (np.zeros((0, 3, 2)), "at least one step"),
    (np.array([[[np.nan, 0.0]]]), "must be finite"),
    (np.array([[["a", "b"]]]), "must be numbers"),
])
def test_read_inputs_bad_arrays(tmp_path, array, msg):
    np.save(tmp_path / "xs.npy", array)
    with pytest.raises(WeightsError) as e:
        read_inputs(tmp_path / "xs.npy", 2)
    one_line(e, "xs.npy", msg)


def test_read_inputs_bad_files(tmp_path):
    with pytest.raises(WeightsError) as e:
        read_inputs(tmp_path / "none.npy", 2)
    one_line(e, "none.npy", "no such file")
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 1, 2)), b=np.zeros((1, 1, 2)))
    with pytest.raises(WeightsError) as e:
        read_inputs(tmp_path / "two.npz", 2)
    one_line(e, "two.npz", "2 arrays (a, b)", "key")
    with pytest.raises(WeightsError) as e:
        read_inputs(tmp_path / "two.npz", 2, key="c")
    one_line(e, "no array 'c'", "found a, b")
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(WeightsError) as e:
        read_inputs(tmp_path / "obj.npy", 2)
    one_line(e, "obj.npy", "pickle")
    (tmp_path / "xs.csv").write_text("1,2")
    with pytest.raises(WeightsError) as e:
        read_inputs(tmp_path / "xs.csv", 2)
    one_line(e, "xs.csv", "expected .npy or .npz")


def test_imported_inputs_checks_the_model_input_size():
    imp = from_state_dict(lstm_sd(layers=2), layer=1)
    assert imp.input_size == D and imp.cell.input_size == H
    with pytest.raises(WeightsError) as e:
        imp.inputs(np.zeros((3, 2, H)))
    one_line(e, f"inputs have {H} features per step", f"the model expects {D}")
    assert imp.inputs(np.zeros((3, 2, D))).shape == (3, 2, H)


def test_errors_are_value_errors():
    assert issubclass(WeightsError, ValueError)


def test_without_torch(tmp_path):
    """With torch unimportable: .safetensors and .npz still read, and everything that needs
    torch says so in one line with the install command."""
    import subprocess
    import sys

    from safetensors.numpy import save_file
    save_file({k: v for k, v in lstm_sd("rnn").items()}, str(tmp_path / "m.safetensors"))
    np.savez(tmp_path / "m.npz", **lstm_sd())
    (tmp_path / "m.pt").write_bytes(b"")
    code = f"""
import sys
class NoTorch:                       # import torch now raises ImportError, as where it is not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
sys.meta_path.insert(0, NoTorch())
import numpy as np
import diagnostics
from diagnostics.weights import load_weights, WeightsError
from diagnostics.probing import probe
for f in ("m.safetensors", "m.npz"):
    imp = load_weights(r"{tmp_path}/" + f, "lstm")
    probe(imp.cell, imp.params, np.zeros((5, 2, 2)), lags=3)
try:
    load_weights(r"{tmp_path}/m.pt")
except WeightsError as e:
    print(e)
from diagnostics.interop.torch import from_module
from diagnostics.cells.torchfn import TorchFn
for f in (lambda: from_module(None), lambda: TorchFn(lambda p, s, x: s, hidden=2).step({{}}, np.zeros((1, 2)), np.zeros((1, 1)))):
    try:
        f()
    except ImportError as e:
        print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [f"{tmp_path}/m.pt: reading a .pt file needs PyTorch: pip install 'gradient-diagnostics[torch]'",
                   "from_module needs PyTorch: pip install 'gradient-diagnostics[torch]'",
                   "a torchfn cell needs PyTorch: pip install 'gradient-diagnostics[torch]'"], out
