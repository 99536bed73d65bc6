"""The HTML/PNG report of a run: `render_report(run_dir)` reads curves.json and run.json only."""
from .html import render_report

__all__ = ["render_report"]
