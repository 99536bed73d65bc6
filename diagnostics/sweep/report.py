"""render_sweep_report(folder, doc): sweep.json -> figures/*.png and a self-contained index.html.

Nothing is recomputed: the page reads only the sweep.json document (and sweep-run.json for
the provenance block), so `diag sweep` on a finished sweep redraws it in seconds. The look is
the run report's (report/page.py and templates/base.html; PNGs embedded as data URIs).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..io import atomic_write_text
from ..numfmt import fmt
from ..report.page import FigureSpec, draw_figures, environment
from . import figures as fg
from .narrative import failures, opening, setting

TEMPLATES = Path(__file__).parent / "templates"

FIGURES = (
    FigureSpec("success_rates", "Success rate over seeds",
               "Fraction of seeds whose training met the success criterion, for every cell, against the first "
               "varied key (one panel per value of the others), with 95% Wilson score intervals; the cells are "
               "drawn side by side at each value so that overlapping intervals stay visible. Where two "
               "intervals overlap, these counts cannot tell the two cells apart.",
               fg.select_success, fg.success_rates),
    FigureSpec("final_loss", "Final loss over seeds",
               "Final evaluation loss divided by the memoryless baseline: median over seeds with the quartiles "
               "as the bar; the dashed line is the baseline (1 = nothing learned).",
               fg.select_loss, fg.loss_quartiles),
    FigureSpec("decay_bands", "Gradient decay after training, pooled over seeds",
               "log10 ‖∂a<t>/∂a<t-k>‖ against the lag k at the last probe checkpoint: for each cell the median "
               "over seeds of each seed's median curve, and the band between the quartiles over seeds.",
               fg.select_decay, fg.decay_bands),
)


def table_rows(doc: dict) -> list[dict]:
    rows = []
    for g in doc["groups"]:
        for c in g["cells"]:
            loss, w, f, h, a = c["final_loss"], c["within"], c["factor"], c["horizon"], c["accuracy"]
            q = lambda d, spec: "—" if not d else (  # noqa: E731
                f"{fmt(d['median'], spec, '—')} [{fmt(d['q25'], spec, '—')}, {fmt(d['q75'], spec, '—')}]")
            hz = "—" if not h else (f"> K ({h['beyond']} of {h['n']})" if h["median"] is None
                                    else f"{fmt(h['median'], '.0f', '—')} ({h['beyond']} of {h['n']} > K)")
            rows.append({"setting": setting(g["values"]), "cell": c["cell"],
                         "count": f"{c['successes']} / {c['trials']}", "rate": fmt(c["rate"], ".2f", "—"),
                         "interval": f"{c['wilson95'][0]:.2f} – {c['wilson95'][1]:.2f}",
                         "loss": q(loss, ".3g"), "accuracy": q(a, ".3f"), "within": q(w, ".3f"),
                         "factor": q(f, ".3f"), "horizon": hz,
                         "diverged": c["diverged"], "failed": c["failed"]})
    return rows


def _provenance(folder: Path) -> list[tuple[str, str]]:
    p = folder / "sweep-run.json"
    if not p.is_file():
        return []
    run = json.loads(p.read_text(encoding="utf-8"))
    return [(k, v if isinstance(v, str) else json.dumps(v, separators=(", ", ": "))) for k, v in run.items()
            if v not in (None, "", {}, [])]


def render_sweep_report(folder: str | Path, doc: dict, title: str | None = None) -> Path:
    folder = Path(folder)
    figures = draw_figures(FIGURES, doc, folder)
    env = environment(TEMPLATES)
    has = lambda key: any(c[key] for g in doc["groups"] for c in g["cells"])  # noqa: E731
    page = env.get_template("sweep.html").render(
        name=doc["sweep"], title=title or doc["sweep"], case=doc.get("case"), quick=bool(doc.get("quick")),
        keys=doc["keys"], success=doc["success"]["description"], counts=doc["counts"],
        opening=opening(doc), failures=failures(doc), rows=table_rows(doc), figures=figures,
        show_within=has("within"), show_accuracy=has("accuracy"), provenance=_provenance(folder),
        failed_points=[p for p in doc["points"] if p["status"] != "finished"])
    out = folder / "index.html"
    atomic_write_text(out, page)
    return out
