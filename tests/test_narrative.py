"""The words the user reads (diagnostics/report/narrative.py, the terminal's summary table): the
page opens with sentences from the run's own numbers, says which loss is which, warns of pairs
that were not a number and of a probe stream stuck at a fixed point, and a growing curve's tau
says it grows."""
from __future__ import annotations

from click.testing import CliRunner

from diagnostics.cli.main import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def summary_row(**given):
    """A summary row (documents.SummaryRow): the given fields, null for the others."""
    from diagnostics.documents import SummaryRow
    none = dict.fromkeys(("tau", "horizon", "lyapunov_top", "final_loss", "memoryless_loss", "solved"))
    return SummaryRow(**{**none, **given})


def test_report_opens_with_sentences_from_its_own_numbers(tmp_path):
    from diagnostics.report.narrative import opening
    K = 60
    rnn = [-0.2 - 11.0 * k / (K - 1) for k in range(K)]              # falls 11 decades
    lstm = [-0.5 - 0.4 * k / (K - 1) for k in range(K)]              # stays within one
    doc = {"format": "diag-curves/1", "lags": list(range(1, K + 1)), "series": [
        {"cell": c, "checkpoint": 150, "path": "a", "norm": "spectral", "log10": {"median": y}}
        for c, y in (("tanh RNN", rnn), ("LSTM", lstm))]}
    rows = [summary_row(cell="tanh RNN", kind="rnn", checkpoint=150, factor=0.65, horizon=17, final_loss=0.16,
                        memoryless_loss=0.1667, solved=False),
            summary_row(cell="LSTM", kind="lstm", checkpoint=150, factor=0.985, horizon=None, final_loss=0.0041,
                        memoryless_loss=0.1667, solved=True)]
    text = " ".join(opening(doc, rows))
    assert "Over 60 lags after 150 training steps" in text
    assert "falls 11.0 decades for the tanh RNN" in text and "stays within one decade of its lag-1 value for the LSTM" in text
    assert "the loss stays at the memoryless loss 0.167 for the tanh RNN (0.16)" in text
    assert "40.7x below it for the LSTM (0.0041, solved)" in text


def test_tau_of_a_growing_curve_says_it_grows():
    from diagnostics.run.curves import summary_table
    row = summary_row(cell="rnn", kind="rnn", checkpoint=0, factor=1.0512, horizon=None, lyapunov_top=0.05)
    table = summary_table([row])
    assert "grows x1.051/step" in table and " inf " not in table
    assert table.splitlines()[0].split()[-2:] == ["memoryless", "solved"]      # 'baseline' is the regression file


def test_the_page_says_which_loss_is_which(tmp_path, tiny_case, write_case):
    res = invoke("run", write_case(tmp_path, tiny_case()), "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    page = (tmp_path / "o" / "tiny" / "index.html").read_text()
    assert "evaluation batch" in page and "separate evaluation batch of 256 sequences" in page
    assert "What this run shows." in page


def test_the_report_and_the_command_say_so(tmp_path):
    from diagnostics.report.narrative import warnings
    doc = {"format": "diag-curves/1", "lags": [1, 2, 3],
           "series": [{"cell": "lstm", "checkpoint": 5, "path": "a", "norm": "spectral", "nonfinite": [0, 2, 3]}],
           "lyapunov": [{"cell": "rnn", "checkpoint": 0, "fixed_point": True}]}
    lines = warnings(doc)
    assert "up to 3 (sequence, anchor) pairs were not a number" in lines[0] and "from lag 2 on" in lines[0]
    assert "fixed point" in lines[1]
