"""LagMonitor on a sequence model without an nn.RNN/GRU/LSTM (diagnostics/interop/torch.py): each
checkpoint records the model's input-to-output influence (lag_influence) and, for the selective
families, its memory paths (memory_paths), equal to a fresh measurement of the weights saved at
that step; monitoring changes nothing about the training; reopening appends; the page, diag check
and the adapters' scalars work on such a folder; bad input is one line at construction."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from torch import nn  # noqa: E402

import hf_models as hm  # noqa: E402
from diagnostics.documents import Curves, Run  # noqa: E402
from diagnostics.interop.monitor import MonitorError  # noqa: E402
from diagnostics.interop.torch import LagMonitor, lag_influence, memory_paths  # noqa: E402
from diagnostics.probing.series import pooled_summary  # noqa: E402

T, B, LAGS = 10, 3, 6
PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "monitor.md"
QUANTILES = ("median", "q25", "q75", "min", "max")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a loaded 2-core machine (tests/test_monitor.py)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _probe_batch():
    return torch.randn(B, T, hm.WIDTH, generator=torch.Generator().manual_seed(7))


def _train(model, steps, monitor=None, every=5):
    """Adam on the last output's distance to a target; the model in train mode (GPT-2's dropout
    draws from torch's RNG at every step); monitor.step after every backward pass."""
    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    saved = {}
    for s in range(steps):
        x = torch.randn(4, T, hm.WIDTH, generator=g)
        y = model(inputs_embeds=x, use_cache=False).last_hidden_state[:, -1]
        loss = ((y - x[:, 0]) ** 2).mean()
        loss.backward()
        if s % every == 0:
            saved[s] = {k: v.clone() for k, v in model.state_dict().items()}
        if monitor is not None:
            monitor.step(s, loss=loss)
        opt.step()
        opt.zero_grad()
    return saved


@pytest.mark.parametrize("name", ["Mamba2Model", "GPT2Model"])
def test_the_curves_at_a_step_are_a_fresh_measurement_of_the_weights_saved_there(tmp_path, name):
    model = hm.tiny(name)
    xs = _probe_batch()
    with LagMonitor(model, xs, tmp_path / "m", every=5, lags=LAGS, anchors=[8, 10]) as mon:
        saved = _train(model, 11, mon)
    curves = Curves.read(tmp_path / "m")
    assert curves.checkpoints == [0, 5, 10]
    memory = ("l0.memory", "l1.memory") if name == "Mamba2Model" else ()
    assert curves.float32_inside == ([name] if memory else [])
    for step in (0, 5, 10):
        ref = hm.tiny(name)
        ref.load_state_dict(saved[step])
        res = lag_influence(ref, xs, LAGS, anchors=[8, 10])
        mem = memory_paths(ref, xs, LAGS, anchors=[8, 10]) if memory else None
        for norm in ("spectral", "frobenius"):
            got = curves.influence_of(name, step, "influence", norm)
            assert got.lags == list(range(LAGS))
            want = pooled_summary(res.log10[("influence", norm)])
            for q in QUANTILES:
                np.testing.assert_allclose(getattr(got.log10, q), want[q], rtol=0, atol=1e-12, err_msg=f"{step} {q}")
            for path in memory:
                got = curves.series_for(name, step, path, norm).log10
                want = pooled_summary(mem.log10[(path, norm)])
                for q in QUANTILES:
                    np.testing.assert_allclose(getattr(got, q), want[q], rtol=0, atol=1e-12, err_msg=f"{path} {q}")
        assert [s.path for s in curves.series if s.checkpoint == step] == [p for p in memory for _ in range(2)]
    # the scalars the adapters log: the influence fit in the primary norm (spectral)
    fit = curves.influence_of(name, 10, "influence", "spectral").fit
    assert mon.last == {"step": 10, "horizon": fit.horizon, "decay_factor": fit.factor}


@pytest.mark.parametrize("name", ["Mamba2Model", "GPT2Model"])
def test_monitoring_changes_nothing_about_the_training(tmp_path, name):
    """20 steps, the same seed: bit-identical parameters with and without the monitor (GPT-2
    trains with dropout on, so a random state the probe moved would show); the model's mode
    and dtype are as the loop left them."""
    def run(monitored):
        model = hm.tiny(name)
        torch.manual_seed(3)
        if not monitored:
            _train(model, 20)
            return model
        with LagMonitor(model, _probe_batch(), tmp_path / "m", every=4, lags=4) as mon:
            _train(model, 20, mon)
        return model
    plain, watched = run(False), run(True)
    for (key, a), b in zip(plain.state_dict().items(), watched.state_dict().values()):
        assert torch.equal(a, b), key
    assert watched.training and next(watched.parameters()).dtype == torch.float32
    assert Curves.read(tmp_path / "m").checkpoints == [0, 4, 8, 12, 16, 19]


def test_reopening_appends_for_the_same_model_and_replaces_another(tmp_path):
    model = hm.tiny("Mamba2Model")
    mon = LagMonitor(model, _probe_batch(), tmp_path / "m", every=2, lags=4)
    for s in range(3):
        mon.step(s, loss=float(s))
    run = Run.read(tmp_path / "m")
    assert run.monitored and run.cells[0].kind == "Mamba2Model"
    assert run.cells[0].options["shapes"]["layers.0.mixer.A_log"] == [4]
    assert run.probe_plan.paths == {"Mamba2Model": ["influence", "l0.memory", "l1.memory"]}
    resumed = LagMonitor(hm.tiny("Mamba2Model", seed=1), _probe_batch(), tmp_path / "m", every=2, lags=4)
    resumed.step(4, loss=4.0)
    curves = Curves.read(tmp_path / "m")
    assert curves.checkpoints == [0, 2, 4] and curves.float32_inside == ["Mamba2Model"]
    assert curves.training[0].loss_at_checkpoints == [0.0, 1.5, 4.0]
    assert {x.checkpoint for x in curves.influence} == {0, 2, 4}
    with pytest.raises(MonitorError, match=r"^LagMonitor: out: .* probed with lags 4, .*not lags 3, "):
        LagMonitor(model, _probe_batch(), tmp_path / "m", lags=3)
    LagMonitor(hm.tiny("GPT2Model"), _probe_batch(), tmp_path / "m", every=7, lags=4).step(7)   # another: replaced
    curves = Curves.read(tmp_path / "m")
    assert curves.checkpoints == [7] and curves.series == [] and curves.float32_inside == []


def test_the_page_and_diag_check_of_a_monitored_model(tmp_path):
    from click.testing import CliRunner

    from diagnostics.cli import main

    model = hm.tiny("Mamba2Model")
    with LagMonitor(model, _probe_batch(), tmp_path / "m", every=5, lags=LAGS) as mon:
        _train(model, 11, mon)
        mon.save_baseline(tmp_path / "base")
        mon.save_baseline(tmp_path / "at0.json", checkpoint=0)
    base = Curves.read(tmp_path / "base")
    assert base.checkpoints == [10] and {x.checkpoint for x in base.influence} == {10}
    run = CliRunner().invoke(main, ["report", str(tmp_path / "m")])
    assert run.exit_code == 0, run.output
    figures = {p.stem for p in (tmp_path / "m" / "figures").glob("*.png")}
    assert figures == {"influence", "layer_memory", "fit_over_training", "training"}
    page = (tmp_path / "m" / "index.html").read_text(encoding="utf-8")
    assert "Input-to-output influence of the models" in page and "float32 inside" in page
    assert CliRunner().invoke(main, ["check", str(tmp_path / "m"), str(tmp_path / "base")]).exit_code == 0
    run = CliRunner().invoke(main, ["check", str(tmp_path / "m"), str(tmp_path / "at0.json")])
    assert run.exit_code == 1 and "checkpoint 10 of CURRENT against the baseline's checkpoint 0" in run.output
    assert "influence/spectral" in run.output


class Pooled(nn.Module):
    """Not a sequence model: one vector per sequence."""
    batch_first = True

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(hm.WIDTH, 2)

    def forward(self, x):
        return self.lin(x).mean(1)


@pytest.mark.parametrize("make, message", [
    (lambda out: LagMonitor(lambda x: x, _probe_batch(), out),
     r"^LagMonitor: model: expected a torch nn.Module \(a sequence model, or one holding an nn.RNN, nn.GRU or "
     r"nn.LSTM\), got function$"),
    (lambda out: LagMonitor(hm.tiny("Mamba2Model"), torch.randn(B, T, 5), out, lags=4),
     r"^LagMonitor: inputs: Mamba2Model takes 8 features per step, got shape \(3, 10, 5\)$"),
    (lambda out: LagMonitor(hm.tiny("GPT2Model"), torch.randint(0, 10, (B, T)), out, lags=4),
     r"^LagMonitor: inputs: must be floating-point embeddings, got torch.int64 "),
    (lambda out: LagMonitor(hm.tiny("GPT2Model"), (_probe_batch(),), out, lags=4),
     r"^LagMonitor: inputs: GPT2Model is measured on one tensor of inputs \(as lag_influence takes it\); "
     r"got a tuple of 1$"),
    (lambda out: LagMonitor(Pooled(), _probe_batch(), out, lags=4),
     r"^LagMonitor: model: Pooled is not a sequence model: its output has shape \(3, 2\), expected \(B, T, m\) "
     r"with B = 3, T = 10$"),
    (lambda out: LagMonitor(hm.tiny("GPT2Model"), _probe_batch(), out, lags=11),
     r"^LagMonitor: lags: must be <= the smallest anchor \(10\), got 11$"),
    (lambda out: LagMonitor(hm.tiny("GPT2Model"), _probe_batch(), out, lags=4, layer=0),
     r"^LagMonitor: layer, direction: choose a layer of an nn.RNN, nn.GRU or nn.LSTM; GPT2Model holds none$"),
])
def test_bad_input_is_one_line_at_construction_and_writes_nothing(tmp_path, make, message):
    with pytest.raises(MonitorError, match=message) as e:
        make(tmp_path / "m")
    assert len(str(e.value).splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_the_tutorials_snippet_runs_and_records_what_it_says(tmp_path, monkeypatch):
    """docs/tutorials/monitor.md, "Any other sequence model": its snippet as written."""
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
               if "Mamba2Model(" in c]
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, str(PAGE), "exec"), ns)
    curves = Curves.read("out/mamba2")
    assert curves.checkpoints == [0, 10, 20] and curves.float32_inside == ["Mamba2Model"]
    assert {(x.path, tuple(x.lags)) for x in curves.influence} == {("influence", tuple(range(16)))}
    assert {s.path for s in curves.series} == {"l0.memory", "l1.memory"}
    fit = curves.influence_of("Mamba2Model", 20, "influence", "spectral").fit
    assert ns["monitor"].last == {"step": 20, "horizon": fit.horizon, "decay_factor": fit.factor}
    assert None not in curves.training[0].loss_at_checkpoints


@pytest.mark.skipif(importlib.util.find_spec("accelerate") is None, reason="the Trainer needs accelerate")
def test_the_hf_trainer_callback_logs_the_influence_fit(tmp_path):
    """A GPT-2 language model under a Trainer: its logits' influence is recorded, and on_log
    adds the influence fit's horizon and decay factor to the logs the reporters get."""
    import transformers as tf

    from diagnostics.interop.hf import LagMonitorTrainerCallback

    class Seen(tf.TrainerCallback):   # after the monitor's callback: the logs as reporters get them
        logs: list = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(dict(logs))

    g = torch.Generator().manual_seed(2)
    data = [{"inputs_embeds": torch.randn(T, hm.WIDTH, generator=g), "labels": torch.randint(0, 10, (T,), generator=g)}
            for _ in range(32)]
    torch.manual_seed(0)
    model = tf.GPT2LMHeadModel(hm.CONFIGS["GPT2Model"]())
    args = tf.TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=8, per_device_train_batch_size=4,
                                logging_steps=4, report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True)
    callback = LagMonitorTrainerCallback(_probe_batch(), tmp_path / "m", every=4, lags=4)
    tf.Trainer(model=model, args=args, train_dataset=data, callbacks=[callback, Seen()]).train()
    curves = Curves.read(tmp_path / "m")
    assert curves.checkpoints == [0, 4, 8] and curves.series == []
    fit = curves.influence_of("GPT2LMHeadModel", 8, "influence", "spectral").fit
    last = [x for x in Seen.logs if "lag_decay_factor" in x][-1]
    assert last["lag_decay_factor"] == fit.factor and last.get("lag_horizon") == fit.horizon
    # on_log follows on_step_end: the loss logged at step 4 falls in checkpoint 8's window
    assert curves.training[0].loss_at_checkpoints[-1] == [x["loss"] for x in Seen.logs if "loss" in x][0]


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="lightning not installed")
def test_the_lightning_callback_logs_the_influence_fit(tmp_path):
    """A LightningModule around a Mamba-2 (batch_first, so the monitor lays the probe batch out
    as its forward takes it): lag/decay_factor logged is the influence fit's."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from diagnostics.interop.lightning import LagMonitorCallback

    class Lit(L.LightningModule):
        batch_first = True

        def __init__(self):
            super().__init__()
            self.net = hm.tiny("Mamba2Model")

        def forward(self, x):
            return self.net(inputs_embeds=x).last_hidden_state

        def training_step(self, batch, batch_idx):
            (x,) = batch
            return ((self(x)[:, -1] - x[:, 0]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    trainer = L.Trainer(max_steps=8, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False,
                        callbacks=[LagMonitorCallback(_probe_batch(), tmp_path / "m", every=4, lags=4)])
    trainer.fit(Lit(), DataLoader(TensorDataset(torch.randn(32, T, hm.WIDTH)), batch_size=4))
    curves = Curves.read(tmp_path / "m")
    assert curves.checkpoints == [0, 4, 8] and curves.float32_inside == ["Lit"]
    fit = curves.influence_of("Lit", 8, "influence", "spectral").fit
    assert float(trainer.callback_metrics["lag/decay_factor"]) == pytest.approx(fit.factor, rel=1e-6)


def test_weights_gone_non_finite_are_one_line_and_keep_the_finished_checkpoints(tmp_path):
    model = hm.tiny("GPT2Model")
    mon = LagMonitor(model, _probe_batch(), tmp_path / "m", every=1, lags=4)
    mon.step(0)
    with torch.no_grad():
        model.ln_f.weight.fill_(float("nan"))
    with pytest.raises(MonitorError, match=r"^LagMonitor: step 1: model: GPT2Model's output influence is not "
                                           r"finite \(inf or NaN\) on these inputs$"):
        mon.step(1)
    assert Curves.read(tmp_path / "m").checkpoints == [0]
