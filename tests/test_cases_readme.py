"""cases/README.md against the code: its shipped-case table is generated here from the case
files themselves (a changed case fails until the README says the same), and its keys table
names every key of the case schema and every registered cell and task kind."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from diagnostics.cells import cell_kinds
from diagnostics.run.schema import case_model
from diagnostics.run.spec import resolve
from diagnostics.tasks import task_kinds

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "cases" / "README.md").read_text(encoding="utf-8")
CASES = sorted((ROOT / "cases").glob("*.yaml"))


def _cells(spec) -> str:
    """Labels with their sizes: "tanh RNN, LSTM (16)" when all share one size."""
    sizes = [getattr(c, "hidden", None) for c in spec.cells]
    if len(set(sizes)) == 1:
        return f"{', '.join(spec.labels)} ({sizes[0]})"
    return ", ".join(f"{lab} ({n})" for lab, n in zip(spec.labels, sizes))


def _training(spec) -> str:
    tr = spec.case.train
    if tr is None:
        imported = sum(f is not None for f in spec.feeds)
        return f"none ({imported} cells read trained weights)" if imported else "none (probed at initialisation)"
    opt = tr.optimizer
    return f"{tr.steps:,} {opt.kind.capitalize() if opt.kind == 'adam' else opt.kind.upper()} steps (lr {opt.lr:g})"


def _time(spec) -> str:
    m = re.search(r"((?:About|Under|A few)\b[^.;]*?) on 2 cores", spec.case.description)
    return m.group(1).replace("About", "about").replace("Under", "under").replace("A few", "a few") if m else "?"


def shipped_table() -> str:
    rows = ["| case | task | cells (hidden) | training | probe | time (2 cores) |", "|---|---|---|---|---|---|"]
    for path in CASES:
        spec = resolve(path)
        task = spec.task.sentence().split(";")[0]
        probe = f"{spec.plan.K} lags, {spec.plan.sequences} sequences"
        cols = [f"`{path.name}`", task, _cells(spec), _training(spec), probe, _time(spec)]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cols) + " |")
    return "\n".join(rows)


def test_the_shipped_case_table_is_the_case_files():
    table = shipped_table()
    assert table in README, f"cases/README.md must hold this table, generated from cases/*.yaml:\n{table}"


def _keys_table() -> str:
    start = README.index("| key | meaning |")
    return README[start:README.index("\n\n", start)]


@pytest.mark.parametrize("key", list(case_model().model_fields))
def test_every_case_key_is_in_the_keys_table(key):
    assert f"| `{key}" in _keys_table(), key


def test_every_probe_and_train_option_and_every_kind_is_named():
    from diagnostics.run.schema import ProbeSpec, TrainSpec
    table = _keys_table()
    for name in [*ProbeSpec.model_fields, *TrainSpec.model_fields, "weights"]:
        assert f"`{name}" in table, name
    for kind in [*cell_kinds(), *task_kinds()]:
        assert re.search(rf"\b{kind}\b", table), kind
