"""render_sweep_report(folder, doc): sweep.json -> figures/*.png and a self-contained index.html.

Nothing is recomputed: the page reads only the sweep.json document (and sweep-run.json for
the provenance block; documents.Sweep and SweepRun), so `diag sweep` on a finished sweep
redraws it in seconds. The look is the run report's (report/page.py and templates/base.html;
PNGs embedded as data URIs).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..documents import BadDocument, Sweep, SweepRun
from ..io import atomic_write_text
from ..numfmt import fmt
from ..report.page import FigureSpec, draw_figures, environment
from . import figures as fg
from .narrative import failures, opening, quartiles_text, setting

TEMPLATES = Path(__file__).parent / "templates"

FIGURES = (
    FigureSpec("success_rates", "Success rate over seeds",
               "Fraction of seeds whose training met the success criterion, for every cell, against the first "
               "varied key (one panel per value of the others), with 95% Wilson score intervals; the cells are "
               "drawn side by side at each value so that overlapping intervals stay visible. Where two "
               "intervals overlap, these counts cannot tell the two cells apart.",
               fg.select_success, fg.success_rates),
    FigureSpec("final_loss", "Final loss over seeds",
               "Final evaluation loss divided by the memoryless loss: median over seeds with the quartiles "
               "as the bar; the dashed line is the memoryless loss (1 = nothing learned).",
               fg.select_loss, fg.loss_quartiles),
    FigureSpec("decay_bands", "Gradient decay after training, pooled over seeds",
               "log10 ‖∂a<t>/∂a<t-k>‖ against the lag k at the last probe checkpoint: for each cell the median "
               "over seeds of each seed's median curve, and the band between the quartiles over seeds.",
               fg.select_decay, fg.decay_bands),
)


def table_rows(doc: Sweep) -> list[dict]:
    rows = []
    for g in doc.groups:
        for c in g.cells:
            h = c.horizon
            hz = "—" if not h else (f"> K ({h.beyond} of {h.n})" if h.median is None
                                    else f"{fmt(h.median, '.0f', '—')} ({h.beyond} of {h.n} > K)")
            rows.append({"setting": setting(g.values), "cell": c.cell,
                         "count": f"{c.successes} / {c.trials}", "rate": fmt(c.rate, ".2f", "—"),
                         "interval": f"{c.wilson95[0]:.2f} – {c.wilson95[1]:.2f}",
                         "loss": quartiles_text(c.final_loss, ".3g", "—"),
                         "accuracy": quartiles_text(c.accuracy, ".3f", "—"),
                         "within": quartiles_text(c.within, ".3f", "—"),
                         "factor": quartiles_text(c.factor, ".3f", "—"), "horizon": hz,
                         "diverged": c.diverged, "failed": c.failed})
    return rows


def _provenance(folder: Path) -> list[tuple[str, str]]:
    p = folder / SweepRun.FILE
    if not p.is_file():
        return []
    try:
        run = SweepRun.read(p).to_data()
    except BadDocument as e:   # the numbers are in sweep.json; say why the block is missing
        return [("sweep-run.json", str(e))]
    return [(k, v if isinstance(v, str) else json.dumps(v, separators=(", ", ": "))) for k, v in run.items()
            if v not in (None, "", {}, [])]


def render_sweep_report(folder: str | Path, doc: Sweep, title: str | None = None) -> Path:
    folder = Path(folder)
    doc = Sweep.of(doc, "sweep")
    figures = draw_figures(FIGURES, doc, folder)
    env = environment(TEMPLATES)
    page = env.get_template("sweep.html").render(
        name=doc.sweep, title=title or doc.sweep, case=doc.case, quick=doc.quick,
        keys=doc.keys, success=doc.success.description, counts=doc.counts,
        opening=opening(doc), failures=failures(doc), rows=table_rows(doc), figures=figures,
        show_within=any(c.within for g in doc.groups for c in g.cells),
        show_accuracy=any(c.accuracy for g in doc.groups for c in g.cells), provenance=_provenance(folder),
        failed_points=[p for p in doc.points if p.status != "finished"])
    out = folder / "index.html"
    atomic_write_text(out, page)
    return out
