"""LagMonitor: lag curves recorded in a training loop of one's own (diagnostics/interop/torch.py,
diagnostics/interop/monitor.py): what it records equals a fresh probe, it changes nothing about
the training, a killed run leaves a readable folder that a new monitor appends to, and bad input
is one line at construction."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from diagnostics.documents import Curves, Run  # noqa: E402
from diagnostics.interop.monitor import MonitorError  # noqa: E402
from diagnostics.interop.torch import LagMonitor, from_module  # noqa: E402
from diagnostics.probing import probe  # noqa: E402
from diagnostics.probing.series import pooled_summary  # noqa: E402
from diagnostics.publish import ForeignFolder  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
T, D, H = 24, 3, 8


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: torch's OpenMP pool on a loaded 2-core machine made 50 steps take 59 s
    against 0.25 s on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Net(nn.Module):
    """An LSTM inside a larger module: a linear layer before it, a head after it."""

    def __init__(self, rnn=None):
        super().__init__()
        self.pre = nn.Linear(D, 4)
        self.rnn = rnn or nn.LSTM(4, H, batch_first=True)
        self.head = nn.Linear(H, 1)

    def forward(self, x):
        return self.head(self.rnn(torch.tanh(self.pre(x)))[0][:, -1])


def _batch(g):
    x = torch.randn(6, T, D, generator=g)
    return x, x[:, 0, :1] * x[:, 1, 1:2]


def _train(model, steps, monitor=None, accumulate=1, seed=0):
    """SGD with momentum on a long-lag product; monitor.step after every backward pass."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    saved = {}
    for s in range(steps):
        x, y = _batch(g)
        loss = ((model(x) - y) ** 2).mean() / accumulate
        loss.backward()
        if s % 10 == 0:   # the weights the monitor sees at step s
            saved[s] = {k: v.clone() for k, v in model.state_dict().items()}
        if monitor is not None:   # between backward and the update: .grad holds this step's gradient
            monitor.step(s, loss=loss)
        if (s + 1) % accumulate == 0:
            opt.step()
            opt.zero_grad()
    return saved


def _probe_batch():
    return torch.randn(4, T, D, generator=torch.Generator().manual_seed(7))


def test_the_curves_at_a_step_are_a_fresh_probe_of_the_weights_saved_there(tmp_path):
    torch.manual_seed(0)
    model = Net()
    xs = _probe_batch()
    with LagMonitor(model, xs, tmp_path / "m", every=10, lags=16) as mon:
        saved = _train(model, 21, mon)
    curves = Curves.read(tmp_path / "m")
    assert curves.checkpoints == [0, 10, 20]
    for step in (0, 10, 20):
        ref = Net()
        ref.load_state_dict(saved[step])
        ref = ref.double()
        with torch.no_grad():   # the LSTM's inputs computed here, not through the monitor's hook
            feed = torch.tanh(ref.pre(xs.double())).numpy().transpose(1, 0, 2)
        imp = from_module(ref.rnn, layer="all")
        res = probe(imp.cell, imp.params, feed, lags=16)
        for path in imp.cell.paths:
            for norm in ("spectral", "frobenius"):
                got = curves.series_for("rnn", step, path, norm).log10
                want = pooled_summary(res.log10[(path, norm)])
                for q in ("median", "q25", "q75", "min", "max"):
                    np.testing.assert_allclose(getattr(got, q), want[q], rtol=0, atol=1e-12, err_msg=f"{path} {q}")


@pytest.mark.parametrize("accumulate", [1, 2])
def test_monitoring_changes_nothing_about_the_training(tmp_path, accumulate):
    """200 steps, the same seed: bit-identical parameters with and without the monitor, also
    when gradients accumulate across the monitor's steps (`.grad` untouched)."""
    def run(monitored):
        torch.manual_seed(0)
        model = Net()
        if not monitored:
            _train(model, 200, accumulate=accumulate)
            return model
        with LagMonitor(model, _probe_batch(), tmp_path / f"m{accumulate}", every=25, lags=8) as mon:
            _train(model, 200, mon, accumulate=accumulate)
        return model
    plain, watched = run(False), run(True)
    for (name, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(a, b), name
    assert Curves.read(tmp_path / f"m{accumulate}").checkpoints == list(range(0, 200, 25)) + [199]


def test_a_probe_leaves_mode_grads_and_every_random_state_as_they_were(tmp_path):
    torch.manual_seed(0)
    model = Net()
    model.rnn.dropout = 0.0
    model.train()
    ((model(_probe_batch()) ** 2).mean()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    np.random.seed(3)
    random.seed(4)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    mon = LagMonitor(model, _probe_batch(), tmp_path / "m", every=1, lags=8, estimator="sketch", rows=4)
    mon.step(0)
    assert model.training and model.rnn.training
    assert all(torch.equal(p.grad, grads[n]) for n, p in model.named_parameters())
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]
    assert next(model.parameters()).dtype == torch.float32


def test_wrappers_are_unwrapped_and_only_rank_0_probes(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Net()
    xs = _probe_batch()
    plain = LagMonitor(model, xs, tmp_path / "plain", lags=8)
    plain.step(0)
    for name, wrapped in (("compiled", torch.compile(model)), ("dataparallel", nn.DataParallel(model))):
        mon = LagMonitor(wrapped, xs, tmp_path / name, lags=8)
        mon.step(0)
        assert Curves.read(tmp_path / name).series == Curves.read(tmp_path / "plain").series, name
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 1)
    other = LagMonitor(model, xs, tmp_path / "rank1", lags=8)
    assert other.step(0, loss=1.0) is None
    other.close()
    assert not (tmp_path / "rank1").exists()


def test_the_loss_window_mean_goes_beside_each_checkpoint(tmp_path):
    mon = LagMonitor(nn.GRU(D, H), torch.randn(T, 2, D), tmp_path / "m", every=3, lags=4)
    for s, loss in enumerate([9.0, 1.0, 2.0, 3.0, torch.tensor(5.0), 7.0]):
        mon.step(s, loss=loss)
    mon.close()   # step 5 was given last: it is probed at close
    t = Curves.read(tmp_path / "m").training[0]
    assert t.checkpoints == [0, 3, 5] and t.loss_at_checkpoints == [9.0, 2.0, 6.0]
    run = Run.read(tmp_path / "m")
    assert run.monitored and run.case is None and run.cells[0].kind == "gru"
    assert run.cells[0].options["shapes"]["weight_hh_l0"] == [3 * H, H]


KILLED = """
import os, signal, sys, torch
from torch import nn
from diagnostics.interop.torch import LagMonitor
torch.set_num_threads(1)
torch.manual_seed(0)
rnn = nn.RNN(3, 8)
opt = torch.optim.SGD(rnn.parameters(), lr=0.01)
mon = LagMonitor(rnn, torch.randn(20, 2, 3), sys.argv[1], every=5, lags=6)
for s in range(100):
    loss = rnn(torch.randn(20, 4, 3))[0][-1].pow(2).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    mon.step(s, loss=loss)
    if s == 12:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_leaves_a_readable_folder_that_reopening_appends_to(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(KILLED))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "m")], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert Curves.read(tmp_path / "m").checkpoints == [0, 5, 10]
    assert Run.read(tmp_path / "m").monitored
    torch.manual_seed(1)
    rnn = nn.RNN(3, 8)   # the same shapes: a resumed training
    mon = LagMonitor(rnn, torch.randn(20, 2, 3), tmp_path / "m", every=5, lags=6)
    mon.step(15)
    assert Curves.read(tmp_path / "m").checkpoints == [0, 5, 10, 15]
    with pytest.raises(MonitorError, match=r"^LagMonitor: out: .* probed with lags 6, .*not lags 4, .*; choose "
                                           r"another out, or the same settings to append$"):
        LagMonitor(rnn, torch.randn(20, 2, 3), tmp_path / "m", lags=4)
    LagMonitor(nn.RNN(3, 5), torch.randn(20, 2, 3), tmp_path / "m", lags=4).step(0)   # another model: replaced
    assert Curves.read(tmp_path / "m").checkpoints == [0]


@pytest.mark.parametrize("make, message", [
    (lambda out: LagMonitor(nn.Sequential(nn.LSTM(3, 4), nn.LSTM(4, 4)), torch.randn(5, 2, 3), out),
     r"^LagMonitor: model: Sequential holds 2 recurrent modules \('0' \(LSTM\), '1' \(LSTM\)\); choose one "
     r"with prefix$"),
    (lambda out: LagMonitor(Net(), torch.randn(2, 5, 3), out, prefix="pre"),
     r"^LagMonitor: model: no recurrent module named 'pre' in Net; found 'rnn'$"),
    (lambda out: LagMonitor(nn.LSTM(3, 4), torch.randn(5, 2, 7), out),
     r"^LagMonitor: inputs: .*3"),
    (lambda out: LagMonitor(Net(), torch.randn(2, 5, 9), out),
     r"^LagMonitor: inputs: the model cannot take them \(RuntimeError: "),
    (lambda out: LagMonitor(nn.LSTM(3, 4), torch.randn(5, 2, 3), out, every=0),
     r"^LagMonitor: every: must be a positive integer, got 0$"),
    (lambda out: LagMonitor(nn.LSTM(3, 4), torch.randn(5, 2, 3), out, lags=9),
     r"^LagMonitor: lags: must be <= the smallest anchor \(5\), got 9$"),
    (lambda out: LagMonitor(nn.LSTM(3, 4), torch.randn(5, 2, 3), out, estimator="fast"),
     r"^LagMonitor: estimator: must be exact, sketch or auto, got 'fast'$"),
])
def test_bad_input_is_one_line_at_construction_and_writes_nothing(tmp_path, make, message):
    with pytest.raises(MonitorError, match=message) as e:
        make(tmp_path / "m")
    assert len(str(e.value).splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_someone_elses_folder_is_refused_at_construction(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    with pytest.raises(ForeignFolder, match=r"m: holds notes.txt, not written by diag") as e:
        LagMonitor(nn.LSTM(3, 4), torch.randn(5, 2, 3), tmp_path / "m", lags=4)
    assert len(str(e.value).splitlines()) == 1
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["notes.txt"]


def test_a_saved_baseline_passes_diag_check_and_a_moved_one_fails(tmp_path):
    from click.testing import CliRunner

    from diagnostics.cli import main

    torch.manual_seed(0)
    model = Net()
    with LagMonitor(model, _probe_batch(), tmp_path / "m", every=10, lags=8) as mon:
        _train(model, 21, mon)
        mon.save_baseline(tmp_path / "base")
        mon.save_baseline(tmp_path / "at10.json", checkpoint=10)
    run = CliRunner().invoke(main, ["check", str(tmp_path / "m"), str(tmp_path / "base")])
    assert run.exit_code == 0, run.output
    assert Curves.read(tmp_path / "base").checkpoints == [20]
    run = CliRunner().invoke(main, ["check", str(tmp_path / "m"), str(tmp_path / "at10.json")])
    assert run.exit_code == 1 and "checkpoint 20 of CURRENT against the baseline's checkpoint 10" in run.output
    run = CliRunner().invoke(main, ["check", str(tmp_path / "m"), str(tmp_path / "at10.json"), "--checkpoint", "10"])
    assert run.exit_code == 0, run.output
    run = CliRunner().invoke(main, ["check", str(tmp_path / "m"), str(tmp_path / "base"), "--checkpoint", "7"])
    assert run.exit_code == 2 and "--checkpoint: must be a checkpoint of CURRENT (0, 10, 20), got 7" in run.output


def test_diag_report_draws_a_monitored_run(tmp_path):
    """The page of a monitored run: the decay per checkpoint (figure 3, at most 8 of the
    checkpoints), the horizon and decay factor over training (3b), the loss."""
    from click.testing import CliRunner

    from diagnostics.cli import main
    from diagnostics.report.data import RunData
    from diagnostics.report.figures import select_checkpoints, thinned

    mon = LagMonitor(nn.RNN(D, H), torch.randn(T, 2, D), tmp_path / "m", every=1, lags=6)
    for s in range(12):
        mon.step(s, loss=1.0 / (s + 1))
    run = CliRunner().invoke(main, ["report", str(tmp_path / "m")])
    assert run.exit_code == 0, run.output
    figures = {p.stem for p in (tmp_path / "m" / "figures").glob("*.png")}
    assert {"decay", "checkpoints", "fit_over_training", "training"} <= figures
    assert thinned(list(range(12))) == [0, 2, 3, 5, 6, 8, 9, 11]
    assert list(select_checkpoints(RunData.load(tmp_path / "m"))["cells"]["rnn"]) == [0, 2, 3, 5, 6, 8, 9, 11]
