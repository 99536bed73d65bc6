"""The HTML/PNG report, rendered from a synthetic run folder (tests/report_fixture.py); what the
decay figure draws for a run of the tiny case (its task lag, the bound of the norm drawn)."""
from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from report_fixture import CHECKPOINTS, write_run

from diagnostics.cli.main import main
from diagnostics.io import atomic_write_json
from diagnostics.report import render_report
from diagnostics.report.equations import cell_equations
from diagnostics.report.figures import FIGURES, fit_line
from diagnostics.report.html import notation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
XSS = "<script>alert(1)</script>"
# the model cells' figures (kind: model) are left off a page without them, as this torch-free
# fixture is; tests/test_influence_curves.py draws them
MODEL_ONLY = {"influence", "layer_memory"}
ALL = {f.slug for f in FIGURES} - MODEL_ONLY
TRAINING_ONLY = {"checkpoints", "fit_over_training", "grad_flow", "temporal_components", "training"}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    run_dir = write_run(tmp_path_factory.mktemp("full"), description=f"Copy task {XSS} & more")
    page = render_report(run_dir)
    return run_dir, page


def _valid_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    from matplotlib.image import imread
    img = imread(path)   # decodes the whole image: a truncated file fails here
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 400, (path, img.shape)
    # not a blank canvas: a drawn figure has many distinct colours
    assert len(np.unique(img.reshape(-1, img.shape[2])[::37], axis=0)) > 20, path


def test_every_figure_is_a_valid_png(full_run):
    run_dir, page = full_run
    assert page == run_dir / "index.html"
    for slug in ALL:
        _valid_png(run_dir / "figures" / f"{slug}.png")


def test_page_embeds_every_image_and_loads_nothing_external(full_run):
    run_dir, page = full_run
    html = page.read_text(encoding="utf-8")
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == len(ALL)
    import base64
    embedded = {base64.b64decode(b) for b in imgs}
    on_disk = {(run_dir / "figures" / f"{s}.png").read_bytes() for s in ALL}
    assert embedded == on_disk
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import|<link\b|<script\b", html, re.I)


def test_case_text_is_escaped(full_run):
    _, page = full_run
    html = page.read_text(encoding="utf-8")
    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_page_reads_like_a_report(full_run):
    run_dir, page = full_run
    html = page.read_text(encoding="utf-8")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["task_description"] in html
    for c in run["cells"]:
        assert f"<h3>{c['label']}<span" in html
    # the summary shows run.json's numbers for the last checkpoint, not something recomputed
    rows = [r for r in run["summary"] if r["checkpoint"] == CHECKPOINTS[-1]]
    assert len(rows) == len(run["cells"])
    assert any(r["lyapunov_top"] is None for r in rows)     # the dead ReLU RNN: -inf, written null
    for row in rows:
        assert f"<td>{row['factor']:.4f}</td>" in html
        lyap = "—" if row["lyapunov_top"] is None else f"{row['lyapunov_top']:+.4f}"
        assert f"<td>{lyap}</td>" in html
    assert "Γ<sub>f</sub> = σ(W<sub>f</sub> a<sup>⟨t−1⟩</sup>" in html   # the LSTM's equations, typeset


def test_missing_data_skips_figures_with_a_note(tmp_path):
    run_dir = write_run(tmp_path / "untrained", train=False, lstm=False)
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "training.png").write_bytes(b"stale")    # from an earlier render
    html = render_report(run_dir).read_text(encoding="utf-8")
    drawn = {p.stem for p in (run_dir / "figures").glob("*.png")}
    assert drawn == ALL - TRAINING_ONLY - {"memory_paths"}
    assert html.count('class="skipped"') == len(TRAINING_ONLY) + 1
    assert "no LSTM" in html and "does not train" in html
    assert "(at initialisation)" in html


def test_figures_of_what_the_case_did_not_ask_for_are_left_off(tmp_path):
    """Without probe.sensitivity, figures 10 and 11 are not on the page at all (they were listed
    as "Not drawn"), and their PNGs from an earlier render are removed."""
    run_dir = write_run(tmp_path / "nosens", train=False, lstm=False, sensitivity=False)
    (run_dir / "figures").mkdir()
    (run_dir / "figures" / "sensitivity.png").write_bytes(b"stale")
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "fig-sensitivity" not in html and "10. Sensitivity" not in html and "sensitivity" not in {
        p.stem for p in (run_dir / "figures").glob("*.png")}
    assert "fig-sensitivity_memory" not in html and "probe.sensitivity" not in html
    assert "fig-decay" in html


@pytest.mark.slow
def test_degenerate_run_renders_without_warnings(tmp_path):
    """Optional keys missing, a cell whose Jacobian is exactly zero at every lag (all null),
    a one-step training record: the page still renders, and matplotlib raises no warning."""
    import warnings
    src = write_run(tmp_path / "src", lstm=False)
    curves, run = (json.loads((src / f).read_text()) for f in ("curves.json", "run.json"))
    for key in ("bounds", "tk_map", "temporal_components", "grad_flow", "sensitivity"):
        del curves[key]
    for key in ("summary", "cells", "versions", "timings", "machine"):
        del run[key]
    relu = [s for s in curves["series"] if s["cell"] == "ReLU RNN"]
    assert relu and all(v is None for s in relu for v in s["log10"]["median"])   # exactly zero, as run
    for t in curves["training"]:
        for k in ("step", "loss", "grad_norm"):
            t[k] = t[k][:1]
    # a label with markup and mathtext dollars: literal text in the page and in the figures
    odd = "tanh <b>RNN</b> costs $5 or $x$"
    curves, run = (json.loads(json.dumps(x).replace("tanh RNN", odd.replace('"', ""))) for x in (curves, run))
    atomic_write_json(tmp_path / "curves.json", curves)
    atomic_write_json(tmp_path / "run.json", run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        html = render_report(tmp_path).read_text(encoding="utf-8")
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} == {
        "decay", "checkpoints", "fit_over_training", "training", "lyapunov", "norms"}
    assert "<td>ReLU RNN</td>" in html.replace('<td class="l">', "<td>")
    assert "tanh &lt;b&gt;RNN&lt;/b&gt; costs $5 or $x$" in html and "<b>RNN" not in html


@pytest.mark.slow
def test_rendering_is_deterministic(full_run, tmp_path):
    run_dir, page = full_run
    again = tmp_path / "again"
    again.mkdir()
    for f in ("curves.json", "run.json"):
        shutil.copy(run_dir / f, again / f)
    assert render_report(again).read_bytes() == page.read_bytes()
    for slug in ALL:
        assert (again / "figures" / f"{slug}.png").read_bytes() == (run_dir / "figures" / f"{slug}.png").read_bytes()


def test_bad_run_folder_gives_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="curves.json: no such file"):
        render_report(tmp_path)
    run_dir = write_run(tmp_path)
    (run_dir / "curves.json").write_text('{"format": "other/9"}')
    with pytest.raises(ValueError, match="format: expected 'diag-curves/1', got 'other/9'"):
        render_report(run_dir)
    assert not (run_dir / "index.html").exists()


def test_fit_line_reproduces_an_exact_geometric_curve():
    lags = np.arange(1.0, 51.0)
    curve = 0.3 + lags * np.log10(0.9)
    curve[40:] = -np.inf                     # exact zeros stay gaps in the line too
    line = fit_line(lags, curve, np.log10(0.9))
    np.testing.assert_allclose(line[:40], curve[:40], rtol=0, atol=1e-12)
    assert np.isnan(line[40:]).all()
    assert fit_line(lags, curve, None) is None


@pytest.mark.parametrize("kind, options, present, absent", [
    ("rnn", {"activation": "relu"}, ["max(0, W_a a<t-1>"], ["tanh"]),
    ("rnn", {"activation": "linear"}, ["a<t> = W_a a<t-1> + U_a x<t> + b_a"], ["tanh", "max"]),
    ("gru", {}, ["Γ_r = ", "(Γ_r * a<t-1>)", "(1 - Γ_u) * c<t-1>"], []),
    ("gru", {"reset_gate": False}, ["tanh(W_m a<t-1>"], ["Γ_r"]),
    ("gru", {"reset_after": True}, ["Γ_r * (W_m a<t-1> + b_hn)", "(1 - Γ_u) * c<t-1>"], ["(Γ_r * a<t-1>)"]),
    ("lstm", {}, ["Γ_f * c<t-1>", "Γ_o * tanh(c<t>)"], []),
    ("lstm", {"forget_gate": False, "output_tanh": False}, ["Γ_u * c~<t> + c<t-1>", "a<t> = Γ_o * c<t>"], ["Γ_f ="]),
    ("indrnn", {"activation": "tanh"}, ["a<t> = tanh(U_a x<t> + u * a<t-1> + b_a)"], ["max"]),
    ("lru", {"normalize": True}, ["x<t> = λ * x<t-1> + γ * (B u<t>)", "γ_j = sqrt(1 - |λ_j|²)"], ["γ_j = 1"]),
    ("lru", {"normalize": False}, ["γ_j = 1"], ["sqrt"]),
    ("mingru", {}, ["a<t> = (1 - Γ_u) * a<t-1> + Γ_u * c~<t>"], ["W_"]),
    ("minlstm", {}, ["(Γ_f / (Γ_f + Γ_u)) * a<t-1>"], ["W_"]),
    ("cornn", {"dt": 0.1}, ["a<t> = a<t-1> + Δt z<t>"], []),
    ("slstm", {"forget": "exp"}, ["m<t> = max(ln Γ_f + m<t-1>, ln Γ_u)", "ln Γ_f = W_f a<t-1>"], ["ln σ"]),
])
def test_equations_follow_the_options(kind, options, present, absent):
    eqs, words = cell_equations(kind, options)
    text = "\n".join(eqs)
    for p in present:
        assert p in text, (p, text)
    for a in absent:
        assert a not in text, (a, text)
    assert words


def test_notation_escapes_before_typesetting():
    out = str(notation("c~<t> = Γ_u * x <b>bold</b>"))
    assert out.startswith("c\u0303<sup>⟨t⟩</sup> = Γ<sub>u</sub>")
    assert "<b>" not in out and "&lt;b&gt;" in out


def test_loss_smoothing_is_a_geometric_mean_and_keeps_gaps():
    from diagnostics.report.figures import geometric_moving_mean
    out = geometric_moving_mean([1.0, 100.0, 1.0, None, 4.0], 3)
    assert out[1] == pytest.approx(100.0 ** (1 / 3), rel=1e-12)   # centred window (1, 100, 1)
    assert out[0] == pytest.approx(10.0, rel=1e-12)                # edge: mean of (1, 100) only
    assert np.isnan(out[3])                                        # no value where the run has none
    assert out[4] == pytest.approx(4.0, rel=1e-12)                 # its window holds (None, 4) only


# --- what the decay figure draws -------------------------------------------------------------

def test_the_task_lag_reaches_the_decay_figure(tmp_path, tiny_case, write_case):
    from diagnostics.report.data import RunData
    from diagnostics.report.figures import select_decay
    assert invoke("run", write_case(tmp_path, tiny_case()), "--out", tmp_path / "o", "--no-report").exit_code == 0
    d = RunData.load(tmp_path / "o" / "tiny")
    assert d.run.task_lag == 6 and select_decay(d)["task_lag"] == 6.0    # copy: delay + symbols


def test_pascanu_bound_holds_for_the_norm_drawn(tmp_path, tiny_case, write_case):
    """Frobenius-only curves used to be drawn under the spectral bound (0.7 decades above it)."""
    from diagnostics.report.data import RunData
    from diagnostics.report.figures import select_decay
    case = tiny_case(probe={**tiny_case()["probe"], "norms": ["frobenius"]})
    case["cells"][0]["hidden"] = 9
    assert invoke("run", write_case(tmp_path, case), "--out", tmp_path / "o", "--no-report").exit_code == 0
    d = RunData.load(tmp_path / "o" / "tiny")
    sel = select_decay(d)
    c = sel["curves"]["rnn"]
    spectral_bound = d.bound("rnn", d.last_checkpoint)
    np.testing.assert_allclose(c["bound"], spectral_bound + 0.5 * math.log10(9), rtol=0, atol=1e-12)
    assert (c["median"] <= c["bound"] + 1e-9).all()           # the bound shown holds for what is drawn
