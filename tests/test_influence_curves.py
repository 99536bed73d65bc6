"""A model cell's curves in curves.json: the input-to-output influence as its own item kind
(`influence`, its own lags 0..K-1), memory paths l{i}.memory as series, the float32-inside note;
read back byte for byte, in the JSON Schema, compared by the regression at their own lags,
told in the narrative as input-to-output influence (never as ∂a/∂a) and drawn on the page.

The results are built here as the interop's ModelResult is (a ProbeResult with lags 0..K-1),
so these tests need neither torch nor transformers.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from diagnostics.cli.main import main
from diagnostics.documents import Curves, Run
from diagnostics.probing.core import ProbeResult
from diagnostics.regression.comparison import compare
from diagnostics.report.html import render_report
from diagnostics.report.narrative import opening, warnings
from diagnostics.run.curves import assemble, influence_items, series_items

K, A, B = 12, 1, 3


def influence_result(rate: float, paths=("influence",), seed: int = 0) -> ProbeResult:
    """log10 of a norm falling `rate` decades per step from lag 0, with noise per sequence."""
    rng = np.random.default_rng(seed)
    k = np.arange(K)
    log10 = {(p, n): (-rate * k + 0.01 * rng.normal(size=(A, B, K))) for p in paths for n in ("spectral", "frobenius")}
    return ProbeResult(lags=k, anchors=np.array([K]), paths=tuple(paths), norms=("spectral", "frobenius"), log10=log10)


def memory_result(rate: float) -> ProbeResult:
    k = np.arange(1, K + 1)
    log10 = {("l0.memory", n): np.broadcast_to(-rate * k, (A, B, K)).copy() for n in ("spectral", "frobenius")}
    return ProbeResult(lags=k, anchors=np.array([K]), paths=("l0.memory",), norms=("spectral", "frobenius"),
                       log10=log10)


def document(rate_mamba=0.1, rate_gpt=0.0, float32=("mamba",)) -> Curves:
    norms = ("spectral", "frobenius")
    parts = {"influence": influence_items("mamba", "MambaModel", 0, influence_result(rate_mamba), ("influence",), norms)
             + influence_items("gpt", "GPT2Model", 0, influence_result(rate_gpt, seed=1), ("influence",), norms),
             "series": series_items("mamba", "MambaModel", 0, memory_result(0.05), ("l0.memory",), norms),
             "float32_inside": list(float32)}
    return assemble("models", K, parts)


def test_influence_is_its_own_item_with_its_own_lags_and_reads_back_byte_for_byte(tmp_path):
    doc = document()
    data = json.loads(doc.to_json())
    assert data["lags"] == list(range(1, K + 1))                       # the series' lags, as ever
    assert [x["lags"] for x in data["influence"]] == [list(range(K))] * 4   # 2 cells x 2 norms, from 0
    assert {x["path"] for x in data["influence"]} == {"influence"}
    assert [s["path"] for s in data["series"]] == ["l0.memory"] * 2
    assert data["float32_inside"] == ["mamba"]
    p = doc.write(tmp_path / "curves.json")
    assert Curves.read(p).to_json() == p.read_text(encoding="utf-8")
    # a case without model cells writes neither key (its file is the one it wrote before)
    plain = assemble("plain", K, {"series": series_items("x", "lstm", 0, memory_result(0.1), ("l0.memory",),
                                                          ("spectral",))})
    assert "influence" not in plain.to_data() and "float32_inside" not in plain.to_data()


def test_the_schema_printed_has_the_influence_item():
    res = CliRunner().invoke(main, ["schema", "--document", "curves"])
    assert res.exit_code == 0, res.output
    schema = json.loads(res.output)
    item = schema["$defs"]["Influence"]
    assert {"cell", "kind", "path", "norm", "lags", "log10", "fit"} <= set(item["required"])
    assert "influence" in schema["properties"] and "float32_inside" in schema["properties"]
    assert "input-to-output" in item["description"] or "d y<t> / d x<t-k>" in item["description"]


def test_a_summary_row_of_a_model_cell_is_its_influence_fit():
    doc = document()
    rows = {r.cell: r for r in doc.summary_rows()}
    assert set(rows) == {"mamba", "gpt"}                 # the memory series is no decay path of diag's
    assert rows["mamba"].factor == pytest.approx(10 ** -0.1, rel=1e-2)
    assert rows["mamba"].horizon is None                 # 3 decades below lag 1 is lag 31, beyond K - 1
    assert rows["mamba"].kind == "MambaModel" and rows["mamba"].lyapunov_top is None


def test_regression_compares_influence_at_its_own_lags():
    base = document()
    assert compare(document(), base).ok
    moved = json.loads(base.to_json())
    moved["influence"][0]["log10"]["median"][0] += 0.3            # lag 0 of mamba/spectral
    cmp = compare(moved, base)
    bad = [r for r in cmp.failing if r.what == "point"]
    assert bad and bad[0].lag == 0 and bad[0].key[0] == "influence" and "influence" in bad[0].series
    gone = json.loads(base.to_json())
    del gone["influence"][1]
    assert any(r.what == "missing" and r.key[0] == "influence" for r in compare(gone, base).failing)
    shifted = json.loads(base.to_json())
    shifted["influence"][0]["lags"] = list(range(1, K + 1))
    assert any(r.what == "lags" for r in compare(shifted, base).failing)


def test_narrative_says_input_to_output_and_never_a_state_jacobian():
    doc = document(rate_mamba=0.4, rate_gpt=0.0)
    text = " ".join(opening(doc, doc.summary_rows()))
    assert "‖∂y<t>/∂x<t-k>‖" in text and "input k steps back" in text
    assert "∂a<t>" not in text and "∂S<t>" not in text
    # mamba falls 0.4 decades per step from lag 1 to lag 11: 4.0 decades; the GPT-2 stays flat
    assert "falls 4.0 decades for the mamba (MambaModel)" in text
    assert "stays within one decade of its lag-1 value for the gpt (GPT2Model)" in text
    notes = warnings(doc)
    assert any(n.startswith("mamba: the model computes in float32 inside") for n in notes)
    assert not any(n.startswith("gpt:") for n in notes)


def test_the_page_draws_influence_and_layer_memory_and_labels_them(tmp_path):
    doc = document()
    run = Run.for_curves(doc, "a test of model cells")
    page = render_report(tmp_path, curves=doc, run=run).read_text(encoding="utf-8")
    assert (tmp_path / "figures" / "influence.png").is_file() and (tmp_path / "figures" / "layer_memory.png").is_file()
    assert "Input-to-output influence of the models" in page and "Memory paths of the selective layers" in page
    assert "float32 inside" in page
    # a page of model cells only: the cells' figures (∂a/∂a and the rest) are left off, not drawn empty
    assert "Gradient decay over the lag" not in page and not (tmp_path / "figures" / "decay.png").exists()


def test_a_page_without_model_cells_has_no_model_figures(tmp_path):
    doc = assemble("plain", K, {"series": series_items("x", "lstm", 0, memory_result(0.1), ("l0.memory",),
                                                        ("spectral",))})
    page = render_report(tmp_path, curves=doc, run=Run.for_curves(doc, "plain")).read_text(encoding="utf-8")
    assert "influence" not in page.lower() and not (tmp_path / "figures" / "influence.png").exists()


def test_diag_check_fails_a_moved_influence_and_draws_its_overlay_at_its_own_lags(tmp_path):
    base = document().write(tmp_path / "base.json")
    moved = json.loads(base.read_text())
    moved["influence"][2]["log10"]["median"][3] -= 0.2              # gpt/spectral at lag 3
    (tmp_path / "cur.json").write_text(json.dumps(moved))
    res = CliRunner().invoke(main, ["check", str(tmp_path / "cur.json"), str(base), "--overlays", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    assert re.search(r"gpt ckpt=0 influence/spectral median\s+\|?\s*point\s+\|?\s*3\b", res.output), res.output
    (png,) = (tmp_path / "o").glob("*.png")
    assert png.name.startswith("influence-gpt") and png.read_bytes()[:4] == b"\x89PNG"
    assert CliRunner().invoke(main, ["check", str(base), str(base)]).exit_code == 0
