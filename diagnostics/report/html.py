"""render_report(run_dir): curves.json + run.json -> figures/*.png and a self-contained index.html.

Nothing is recomputed: the report reads only the two saved files, so `diag report` can redraw
an old run. Every PNG is also embedded in the page as a base64 data URI, so the page works
offline and when mailed on its own. Text from the case is escaped by Jinja2's autoescape;
the only markup added is <sub>/<sup> around notation in the report's own strings.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from markupsafe import Markup, escape

from ..documents import Curves, Run, all_diverged
from ..io import atomic_write_text
from ..numfmt import fmt
from ..probing.metrics import DECADES
from .data import RunData
from .equations import cell_equations, settings_text
from .figures import FIGURES
from .narrative import opening, warnings
from .page import draw_figures, environment

_SUPER = re.compile(r"([A-Za-z])(~?)&lt;([^&;]{1,12})&gt;")      # a<t-1>, c~<t> after escaping
_SUB = re.compile(r"([ΓWUbσγ‖])_\{?([A-Za-z]{1,3})\}?")          # Γ_u, W_a, b_f, σ_max, ‖J‖_F


def notation(text: str) -> Markup:
    """Escape, then typeset the notes' notation: a<t> -> a⟨t⟩ superscript, Γ_u -> Γ subscript u."""
    s = str(escape(text))
    s = _SUPER.sub(lambda m: m.group(1) + ("\u0303" if m.group(2) else "")
                   + "<sup>⟨" + m.group(3).replace("-", "−") + "⟩</sup>", s)
    s = _SUB.sub(r"\1<sub>\2</sub>", s)
    s = re.sub(r"\^([kλ])", r"<sup>\1</sup>", s)                     # (γ σ_max(W_a))^k, e^λ
    return Markup(s)


def summary_display(d: RunData) -> list[dict]:
    """The summary table's rows as text: one per cell at the last checkpoint, from the rows
    the run computed (run.json's summary, Curves.summary_rows: one rule for every table)."""
    rows = {}
    for r in d.summary:
        if r.checkpoint == d.last_checkpoint or r.cell not in rows:
            rows[r.cell] = r
    K = int(d.lags[-1]) if d.lags.size else 0
    out = []
    for cell in [c for c in d.cells if c in rows] + [c for c in rows if c not in d.cells]:
        r = rows[cell]
        factor, tau, hz = r.factor, r.tau, r.horizon
        if tau is None:
            tau_s = ("— (grows ×{:.4g} per step)".format(factor) if factor is not None and factor > 1
                     else "∞ (no decay)" if factor == 1 else "—")
        else:
            tau_s = fmt(tau, ".3g", "—")
        loss, memoryless = r.final_loss, r.memoryless_loss
        loss_s = "—" if loss is None else fmt(loss, ".4g", "—") + (
            "" if memoryless is None else f" vs {fmt(memoryless, '.4g', '—')}")
        training = d.training(cell)
        if training is not None and training.diverged_at is not None:
            loss_s = f"diverged at step {training.diverged_at}"
        solved = r.solved
        gone = all_diverged(r.forward_diverged)    # no pair left: no fit, no horizon
        kind = (r.kind or d.kinds.get(cell, "?")) + (" (state path)" if d.decay_path(cell) == "state" else "")
        out.append({"cell": cell, "kind": kind,
                    "factor": "diverged" if gone else fmt(factor, ".4f", "—"), "tau": tau_s,
                    "horizon": (f"> {K}" if K and not gone else "—") if hz is None else fmt(hz, ".0f", "—"),
                    "lyap": "diverged" if all_diverged(r.lyapunov_diverged) else fmt(r.lyapunov_top, "+.4f", "—"),
                    "loss": loss_s,
                    "solved": "—" if solved is None else ("yes" if solved else "no"),
                    "solved_class": "" if solved is None else ("yes" if solved else "no")})
    return out


def checkpoint_rows(d: RunData) -> list[dict]:
    """ρ and horizon per cell and checkpoint, when there was training."""
    if len(d.checkpoints) < 2:
        return []
    K, out = int(d.lags[-1]) if d.lags.size else 0, []
    for cell in d.cells:
        cols = []
        for ck in d.checkpoints:
            f = d.fit(cell, ck)
            factor, hz = (f.factor, f.horizon) if f else (None, None)
            cols.append(f"{fmt(factor, '.4f', '—')} / {f'> {K}' if hz is None else fmt(hz, '.0f', '—')}")
        out.append({"cell": cell, "cols": cols})
    return out


def cell_blocks(d: RunData) -> list[dict]:
    blocks = []
    for cell in d.cells:
        kind = d.kinds.get(cell, "?")
        opts = d.cell_options(cell)
        eqs, words = cell_equations(kind, opts, d.cell_doc(cell))
        blocks.append({"label": cell, "kind": kind, "equations": [notation(e) for e in eqs],
                       "words": notation(words), "settings": settings_text(opts)})
    return blocks


def _case_facts(d: RunData) -> list[tuple[str, str]]:
    if d.run.case is None:   # curves that came from no case file: what produced them, when probed
        return [("source", d.run.source or "not stated (no case file)"),
                ("probed at", "steps " + ", ".join(map(str, d.checkpoints)))]
    case, imported = d.case, d.imported
    facts = []
    task = case.get("task") or {}
    if task:
        facts.append(("task", settings_text(task) or str(task.get("kind"))))
    if case.get("train"):
        t = case["train"]
        opt = t.get("optimizer") or {}
        facts.append(("training", f"{t.get('steps')} steps, batch {t.get('batch')}, {opt.get('kind', '')} "
                      f"lr {opt.get('lr', '')}, clip {t.get('clip')}, probe at steps {', '.join(map(str, d.checkpoints))}"))
    elif d.curves.model_cells and set(d.curves.model_cells) >= set(d.cells):
        facts.append(("training", "none here: each model is measured with the weights it was given"))
    else:
        facts.append(("training", "none (the probe ran on " + ("the imported weights of " + ", ".join(imported)
                      + (" and the initial weights of the others)" if len(imported) < len(d.cells) else ")")
                      if imported else "the initial weights)")))
    for label, source in imported.items():
        facts.append((f"weights of {label}", source))
    for label in d.curves.model_cells:
        source = d.cell_options(label).get("source")
        if source:
            facts.append((f"model {label}", source))
    probe = case.get("probe") or {}
    if probe:
        facts.append(("probe", settings_text({k: v for k, v in probe.items() if not isinstance(v, dict)})))
    return facts


def _plain(v) -> str:
    """A provenance value as one line of text (nested machine facts as compact JSON)."""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(", ", ": "), default=str)
    return str(v)


def _provenance(d: RunData) -> list[tuple[str, str]]:
    run = d.run
    rows = [("command", run.command), ("case file", run.case_file)]
    rows += list(run.versions.items())
    rows += [(f"time: {k}", f"{v:.2f} s") for k, v in run.timings.items()]
    rows += list(run.machine.items())
    return [(k, _plain(v)) for k, v in rows if v not in (None, "", {}, [])]


def render_report(run_dir: str | Path, *, curves: Curves | dict | None = None, run: Run | dict | None = None) -> Path:
    """Draw every figure and write figures/<slug>.png and index.html in run_dir; returns the
    page. The documents are read from run_dir unless given (a run draws its page before it
    writes run.json, which comes last)."""
    run_dir = Path(run_dir)
    d = RunData(curves, run) if curves is not None and run is not None else RunData.load(run_dir)
    figures = draw_figures(FIGURES, d, run_dir, caption=notation)
    env = environment()
    page = env.get_template("index.html").render(
        name=d.name, title=str((d.case.get("report") or {}).get("title") or d.name), quick=d.run.quick,
        description=str(d.case.get("description") or ""),
        task_description=d.run.task_description or "",
        seed=d.run.seed if d.run.seed is not None else d.case.get("seed"),
        facts=_case_facts(d), cells=cell_blocks(d), summary=summary_display(d), checkpoints=d.checkpoints,
        trained=bool(d.curves.training) or bool(d.case.get("train")),
        checkpoint_rows=checkpoint_rows(d), figures=figures, decades=fmt(DECADES, "g", "—"),
        K=int(d.lags[-1]) if d.lags.size else 0, last_checkpoint=d.last_checkpoint,
        provenance=_provenance(d), opening=[notation(x) for x in opening(d.curves, d.summary, d.imported.keys())],
        warnings=[notation(x) for x in warnings(d.curves)])
    out = run_dir / "index.html"
    atomic_write_text(out, page)
    return out
