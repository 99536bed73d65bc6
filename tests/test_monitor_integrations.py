"""The monitor's three integrations as docs/tutorials/monitor.md shows them (a plain loop,
PyTorch Lightning, the Hugging Face Trainer): each snippet runs as written, in a fresh folder,
and what it promises is checked. Lightning and transformers are optional: their parts skip
cleanly without them."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from diagnostics.documents import Curves, Run  # noqa: E402

PAGE = Path(__file__).resolve().parent.parent / "docs" / "tutorials" / "monitor.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def plain(tmp_path, monkeypatch):
    """The plain loop's namespace (Model, adding, probe_batch), run in tmp_path."""
    monkeypatch.chdir(tmp_path)
    n = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny models on a loaded 2-core machine (tests/test_monitor.py)
    ns: dict = {}
    exec(compile(snippets()[0], str(PAGE), "exec"), ns)
    yield ns
    torch.set_num_threads(n)


def test_the_page_has_the_three_integrations():
    assert [("LagMonitor(" in s, "LagMonitorCallback(" in s, "LagMonitorTrainerCallback(" in s)
            for s in snippets()] == [(True, False, False), (False, True, False), (False, False, True),
                                     (True, False, False)]   # the last: any other sequence model


def test_the_plain_loop(plain):
    curves = Curves.read("out/plain")
    assert curves.checkpoints == [0, 20, 40]
    assert plain["monitor"].last["step"] == 40 and plain["monitor"].closed
    assert [t.loss_at_checkpoints for t in curves.training][0][1] is not None
    assert Run.read("out/plain").monitored
    assert Curves.read("out/baseline").checkpoints == [40]


@pytest.mark.skipif(importlib.util.find_spec("lightning") is None, reason="lightning not installed")
def test_lightning(plain):
    exec(compile(snippets()[1], str(PAGE), "exec"), plain)
    curves = Curves.read("out/lightning")
    assert curves.checkpoints == [0, 20, 40]
    horizon = curves.series_for("net.lstm", 40, "a", "spectral").fit.horizon   # found inside Lit.net
    assert float(plain["trainer"].callback_metrics["lag/horizon"]) == horizon
    assert curves.training[0].loss_at_checkpoints[1] is not None


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None or importlib.util.find_spec("accelerate") is None,
                    reason="transformers (and accelerate, which its Trainer needs) not installed")
def test_hf_trainer(plain, capsys):
    capsys.readouterr()
    exec(compile(snippets()[2], str(PAGE), "exec"), plain)
    curves = Curves.read("out/hf")
    assert curves.checkpoints == [0, 20, 40]
    # what the Trainer's reporter (PrinterCallback, disable_tqdm) got: the logs with our scalars
    printed = [line for line in capsys.readouterr().out.splitlines() if "lag_horizon" in line]
    horizon = curves.series_for("lstm", 40, "a", "spectral").fit.horizon
    assert len(printed) == 2 and f"'lag_horizon': '{horizon:g}'" in printed[-1]
    assert curves.training[0].loss_at_checkpoints[-1] is not None


@pytest.mark.parametrize("module, package, line", [
    ("diagnostics.interop.lightning", "lightning",
     "LagMonitorCallback needs PyTorch Lightning: pip install 'gradient-diagnostics[lightning]'"),
    ("diagnostics.interop.hf", "transformers",
     "LagMonitorTrainerCallback needs transformers: pip install 'gradient-diagnostics[hf]'"),
])
def test_an_adapter_without_its_package_says_what_to_install(monkeypatch, module, package, line):
    import importlib
    import sys

    from diagnostics.optional import OptionalMissing

    monkeypatch.setitem(sys.modules, package, None)   # import fails as if it were not installed
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(OptionalMissing) as e:
        importlib.import_module(module)
    assert e.value.lines == [line]
