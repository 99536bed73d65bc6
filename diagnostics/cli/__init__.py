"""The `diag` command (the console script `diag = diagnostics.cli:main`).

    main.py    the group and `diag run`, `validate`, `list`, `new`, `report`, `schema`
    check.py   `diag check`: two curves.json files or run folders, or two sweeps
    sweep.py   `diag sweep`
    command.py the commands' class: a DiagnosticsError becomes "error: ..." lines and exit 2

Every command turns a project error into one line per problem on stderr and exit 2.
"""
from .main import main

__all__ = ["main"]
